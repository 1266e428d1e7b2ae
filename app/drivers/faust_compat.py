"""Every use the worker makes of a private part of faust-streaming, aiokafka or mode, in one place.

The worker depends on internals of the versions in `SUPPORTED` (the range pyproject.toml pins); importing
this module checks the installed versions and refuses any other with `UnsupportedVersion`, which names
the range. Each function says what it reaches into; docs/design.md ("Faust internals we depend on") says
what each one works around and links the upstream issue. tests/drivers/test_faust_compat.py checks that
the internals are still there and that no other module of app/ touches a private attribute of those
libraries."""

from __future__ import annotations

import asyncio
import types
import weakref
from collections.abc import Awaitable, Callable, Generator
from importlib import metadata
from typing import Any

# (distribution, lowest supported, first unsupported): pyproject.toml's pins, checked by a test
SUPPORTED: tuple[tuple[str, str, str], ...] = (
    ("faust-streaming", "0.11", "0.16"),
    ("aiokafka", "0.14", "0.15"),
)


class UnsupportedVersion(RuntimeError):
    """An installed faust-streaming or aiokafka outside the range the worker was built against."""


def installed_version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _release(v: str) -> tuple[int, ...]:
    """The numeric release of a version string ("0.15.3" -> (0, 15, 3); "0.16.0rc1" -> (0, 16, 0))."""
    out = []
    for part in v.split("."):
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        out.append(int(digits))
        if len(digits) < len(part):
            break
    return tuple(out)


def check_versions() -> None:
    """Raise UnsupportedVersion unless every library of SUPPORTED is installed within its range."""
    bad = []
    for dist, low, high in SUPPORTED:
        v = installed_version(dist)
        if v is None or not _release(low) <= _release(v) < _release(high):
            bad.append(f"{dist} {v or 'not installed'} (supported: >={low},<{high})")
    if bad:
        wanted = " and ".join(f"{dist} >={low},<{high}" for dist, low, high in SUPPORTED)
        raise UnsupportedVersion(
            f"distill-guard's worker relies on internals of {wanted} (pyproject.toml; docs/design.md, 'Faust "
            f"internals we depend on'); installed: {'; '.join(bad)}. Install a supported version "
            "(pip install -e .) or review app/drivers/faust_compat.py first.")


check_versions()

# ruff: noqa: E402 - the libraries are imported only once their versions are known to be supported
import faust.streams
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

# ------------------------------------------------------------------------------------ current event


def set_current_event(event: Any) -> None:
    """Make `event` Faust's current event (faust.streams._current_event): a partitioned table reads and
    writes the partition of the current event's message. The worker processes many events of a batch at
    once, so it sets the one whose key is being handled."""
    faust.streams._current_event.set(weakref.ref(event))


# ------------------------------------------------------------------------------------ consumer state


def queued(stream: Any) -> int:
    """Records waiting in an agent stream's queue (its channel's `_queue`; 0 before there is one)."""
    queue = getattr(getattr(stream, "channel", None), "_queue", None)
    return queue.qsize() if queue is not None else 0


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The consumer's committed offset of `tp` (the next to read; Consumer._committed_offset), or None."""
    return getattr(consumer, "_committed_offset", {}).get(tp)


def read_offset(consumer: Any, tp: Any) -> int | None:
    """The last offset of `tp` the consumer has read from the broker, or None: the later of what Faust
    recorded handing to the streams (Consumer._read_offset) and what aiokafka handed to Faust (its
    position less one: AIOKafkaConsumerThread._consumer, the subscription's TopicPartitionState). Faust
    drops records aiokafka returned for a partition whose flow it suspended without recording them; when
    that is every record since an assignment, its own record stays empty, and only the position shows
    that they were read."""
    faust_read = getattr(consumer, "_read_offset", {}).get(tp)
    ak = getattr(getattr(consumer, "_thread", None), "_consumer", None)
    sub = getattr(getattr(ak, "_subscription", None), "subscription", None)
    assignment = getattr(sub, "assignment", None)
    state = assignment.state_value(tp) if assignment is not None else None  # None: not assigned to it
    position = state._position if state is not None else None  # None until the consumer has a position
    if position is None:
        return faust_read
    return position - 1 if faust_read is None else max(faust_read, position - 1)


def take_over_gaps(consumer: Any) -> Callable[[Any, int, int], Awaitable[None]] | None:
    """Switch off Faust's own gap recording (Consumer._add_gap: offsets missing from what its fetcher hands
    on, which it may commit past) and return it, for the offsets the broker really has nothing for. None
    when it was taken over already (or the consumer has none)."""
    original = getattr(consumer, "_add_gap", None)
    if original is None or getattr(original, "_dg_no_gap", False):
        return None

    async def no_gap(tp: Any, offset_from: int, offset_to: int) -> None:
        return None

    no_gap._dg_no_gap = True  # type: ignore[attr-defined]
    consumer._add_gap = no_gap
    return original


# ------------------------------------------------------------------------------------ table store


def rocksdict_index(data: Any) -> Any | None:
    """The key -> partition index of Faust's rocksdict-backed table store (Store._key_index; the batch
    paths keep it current as Faust's own reads and writes do), or None for any other store."""
    if not getattr(data, "use_rocksdict", False) or not hasattr(data, "_db_for_partition"):
        return None
    return getattr(data, "_key_index", None)


def partition_db(data: Any, partition: int) -> Any:
    """The rocksdict database of one partition of a RocksDB-backed store (Store._db_for_partition)."""
    return data._db_for_partition(partition)


def open_partition_dbs(data: Any) -> dict[int, Any] | None:
    """Partition -> database of the partition databases a RocksDB-backed store has open (Store._dbs), or
    None for a store without them."""
    if rocksdict_index(data) is None or not hasattr(data, "_dbs"):
        return None
    return data._dbs


def changelog_sent_callback(table: Any) -> Callable[[Any], None]:
    """What Faust calls when a changelog record of `table` is acknowledged (Table._on_changelog_sent: it
    records the offset as the local store's persisted changelog offset)."""
    return table._on_changelog_sent


def aiokafka_producer(producer: Any) -> Any | None:
    """The started aiokafka producer under Faust's (Producer._ensure_producer), when it offers the batch
    interface (create_batch/send_batch); else None."""
    ensure = getattr(producer, "_ensure_producer", None)
    ak = ensure() if ensure is not None else None
    if not (hasattr(ak, "create_batch") and hasattr(ak, "send_batch")):
        return None
    return ak


# ------------------------------------------------------------------------------------ transport

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
        # Faust builds it with fetch_max_wait_ms=1500; aiokafka reads this when the consumer starts and
        # builds its fetcher (AIOKafkaConsumer.start)
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
        read_offsets = self._read_offset
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
                        last = read_offsets.get(tp)
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
                        read_offsets[tp] = offset
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
    """Faust's aiokafka transport with the consumer's fetch wait set by the worker, the inline record
    delivery of `_Consumer._drain_messages`, and the `before_wait_empty` hook."""

    Consumer = _Consumer

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        # awaited by the consumer before it waits for every record handed on to be acknowledged
        self.before_wait_empty: Callable[[], Awaitable[None]] | None = None


__all__ = [
    "SUPPORTED", "TP", "Transport", "UnsupportedVersion", "aiokafka_producer", "changelog_sent_callback",
    "check_versions", "committed_offset", "installed_version", "open_partition_dbs", "partition_db", "queued",
    "read_offset", "rocksdict_index", "set_current_event", "started", "take_over_gaps",
]
