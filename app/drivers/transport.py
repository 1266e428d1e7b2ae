"""Faust's aiokafka transport with the consumer's fetch wait set by the worker instead of fixed.

Faust (0.11-0.15) builds its consumer with `fetch_max_wait_ms=1500`: a fetch the broker holds waits up
to 1.5 s for data on the partitions it names. aiokafka leaves out of the next fetch every partition
whose earlier records have not been handed on yet, so a record the worker itself writes to such a
partition (an observation bundle, a link bundle: the worker's internal topics) waits for the fetch in
flight to come back, up to 1.5 s per hop (docs/design.md, "Fetch wait", has the figures). A shorter
wait costs an empty fetch response every wait when there is no traffic at all.

The consumer also hands each fetched record to Faust's delivery callback without four tasks around it
when the callback does not have to wait (see `_Consumer._drain_messages`), and awaits the transport's
`before_wait_empty` hook, when set, before Faust waits for every record handed on to be acknowledged (on
a rebalance and on stop): the worker writes the state it holds then, and acknowledges the inputs behind
it, which Faust would otherwise wait for forever.

Used by `app.drivers.worker` through the app's public `transport` setter; everything else is Faust's."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

YIELD_EVERY = 100  # records handed on between two turns given to the event loop (Faust's figure)


@types.coroutine
def _carry_on(coro: Any, pending: Any) -> Generator[Any, Any, Any]:
    """Go on running `coro`, which has already run up to its first suspension (where it yielded
    `pending` to whoever drives it): yield that to the task driving this, then drive `coro` as `await`
    would (values sent, exceptions thrown, closing passed on)."""
    while True:
        try:
            value = yield pending
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # thrown in by the task (cancellation): pass it on
            try:
                pending = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            pending = coro.send(value)
        except StopIteration as stop:
            return stop.value


async def _rest_of(coro: Any, pending: Any) -> Any:
    return await _carry_on(coro, pending)


def started(coro: Any) -> tuple[bool, Any]:
    """Run `coro` up to its first suspension. (True, result) if it finished without suspending, else
    (False, an awaitable that runs the rest of it, fit for a task of its own)."""
    try:
        pending = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, _rest_of(coro, pending)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by aiokafka when the consumer starts and builds its fetcher (AIOKafkaConsumer.start)
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        hook = getattr(self.transport, "before_wait_empty", None)
        if hook is not None:
            await hook()
        await super().wait_empty()

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (`Consumer._drain_messages`, faust-streaming 0.11-0.15) with one change.
        Faust awaits each record's delivery as `wait_first(callback(message), suspend_flow.wait())`:
        four tasks made, waited for and three cancelled per record, so that a rebalance (which sets
        `suspend_flow`) can cancel a delivery waiting for room in a full stream queue. Almost every
        delivery has nothing to wait for. Here the callback runs inline up to its first suspension;
        only one that suspends goes on in a task under the same `wait_first`, so it can still be
        cancelled the same way. Offsets read, gaps, `broker_commit_every` and the handling of a stopped
        consumer are as in Faust's loop."""
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        flag = faust_consumer.CONSUMER_FETCHING
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag)
                records = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany may return at once, loop after loop: let others run
                if not self.should_stop:
                    async for tp, message in records:
                        since_yield += 1
                        if since_yield > YIELD_EVERY:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        last = read_offset.get(tp)
                        if last is not None and offset < last:
                            continue  # behind what this consumer already handed on (Faust drops it too)
                        if last and offset - last > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, last + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        done, rest = started(callback(message))
                        if not done:
                            await self.wait_first(rest, self.suspend_flow.wait())
                        read_offset[tp] = offset
                    unset_flag(flag)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag)


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        # awaited by the consumer before it waits for every record handed on to be acknowledged
        self.before_wait_empty: Callable[[], Awaitable[None]] | None = None


def install(app: Any, fetch_max_wait_ms: int) -> None:
    """Make `app` consume through this transport (call before anything asks for `app.transport`)."""
    app.transport = Transport(app.conf.broker_consumer, app, fetch_max_wait_ms=fetch_max_wait_ms)
