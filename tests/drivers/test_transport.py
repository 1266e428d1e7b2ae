"""The worker's transport: Faust's own aiokafka transport except for the consumer's fetch wait, which
Faust fixes at 1,500 ms (app/drivers/transport.py says why that held internal records back)."""

from __future__ import annotations

import asyncio

import faust
import pytest

from app.drivers.transport import Transport, install


def _consumer_of(app: faust.App) -> dict:
    """What the aiokafka consumer Faust's consumer thread would start is built with (not started)."""

    thread = app.consumer._thread

    async def build() -> dict:
        consumer = thread._create_worker_consumer(app.transport)
        try:
            return {"fetch_max_wait_ms": consumer._fetch_max_wait_ms, "group_id": consumer._group_id}
        finally:
            await consumer.stop()

    try:
        return asyncio.run(build())
    finally:
        thread.thread_loop.close()  # the consumer thread's own loop (never started here)


def test_the_consumer_fetches_with_the_wait_the_worker_sets() -> None:
    app = faust.App("dg-test-transport", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    install(app, 50)
    assert type(app.transport) is Transport
    consumer = _consumer_of(app)
    assert consumer["fetch_max_wait_ms"] == 50  # aiokafka builds its fetcher from it on start
    assert consumer["group_id"] == app.conf.id  # the rest is Faust's worker consumer, unchanged


def test_faust_alone_would_wait_up_to_one_and_a_half_seconds() -> None:
    """What the transport is for; if a faust-streaming release changes this, the transport may go."""
    app = faust.App("dg-test-transport-2", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    assert _consumer_of(app)["fetch_max_wait_ms"] == 1500


def test_the_worker_installs_it_with_its_setting(tmp_path) -> None:
    from app.drivers.worker import Worker
    from app.rules.load import load_rules
    from app.settings import DEFAULT_RULES, Settings

    w = Worker(Settings(store="memory://", data_dir=tmp_path, fetch_max_wait_ms=75, metrics_port=0),
               load_rules(DEFAULT_RULES))
    try:
        assert type(w.app.transport) is Transport and w.app.transport.fetch_max_wait_ms == 75
        assert _consumer_of(w.app)["fetch_max_wait_ms"] == 75
    finally:
        w.close()


# --- record delivery: the callback runs inline up to its first suspension (app/drivers/transport.py) ---

from app.drivers import faust_compat as compat  # noqa: E402
from app.drivers import transport as tr  # noqa: E402


def test_a_delivery_that_never_waits_finishes_inline() -> None:
    ran = []

    async def deliver(x: int) -> int:
        ran.append(x)
        return x * 2

    done, value = tr.started(deliver(21))
    assert (done, value, ran) == (True, 42, [21])  # no event loop, no task: it ran to the end here


def test_a_delivery_that_waits_goes_on_in_a_task_with_its_result_and_errors() -> None:
    async def main() -> None:
        gate = asyncio.get_running_loop().create_future()
        steps = []

        async def deliver() -> str:
            steps.append("before")
            got = await gate  # a full stream queue, say
            steps.append(f"after {got}")
            await asyncio.sleep(0)  # a bare yield to the loop on the way
            return "delivered"

        done, rest = tr.started(deliver())
        assert not done and steps == ["before"]  # ran inline up to the wait, not again in the task
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        assert not task.done()
        gate.set_result("room")
        assert await task == "delivered" and steps == ["before", "after room"]

        async def fails() -> None:
            await asyncio.sleep(0)
            raise ValueError("undecodable")

        done, rest = tr.started(fails())
        with pytest.raises(ValueError, match="undecodable"):
            await rest

    asyncio.run(main())


def test_a_waiting_delivery_can_still_be_cancelled_by_a_rebalance() -> None:
    """Faust cancels a delivery stuck on a full queue when a rebalance suspends the flow; the coroutine
    must see the cancellation where it waits (its cleanup runs), as it would under Faust's own loop."""

    async def main() -> None:
        seen = []

        async def deliver() -> None:
            try:
                await asyncio.get_running_loop().create_future()  # never gets room
            except asyncio.CancelledError:
                seen.append("cancelled where it waited")
                raise
            finally:
                seen.append("cleaned up")

        done, rest = tr.started(deliver())
        assert not done
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["cancelled where it waited", "cleaned up"]

        async def stuck() -> None:
            try:
                await asyncio.get_running_loop().create_future()
            finally:
                seen.append("closed")

        _, rest = tr.started(stuck())
        rest.close()  # never scheduled (the consumer stopped first): closing it closes the delivery
        assert seen[-1] == "closed"

    asyncio.run(main())


def test_the_fetch_loop_it_replaces_is_still_faust_s() -> None:
    """The worker's consumer (app/drivers/faust_compat.py) replaces Faust's `_drain_messages`; it reads what
    that loop reads. If a
    faust-streaming release changes the loop (or the names it uses), this fails and the copy is reviewed."""
    import inspect

    from faust.transport import consumer as fc

    src = inspect.getsource(fc.Consumer._drain_messages)
    assert "await self.wait_first(\n                                callback(message), self.suspend_flow.wait()" in src
    for name in ("self._read_offset", "self._commit_every", "self._n_acked", "self._add_gap",
                 "acks_enabled_for", "CONSUMER_FETCHING", "getmany(timeout=1.0)", "yield_every = 100"):
        assert name in src, name
    assert compat._Consumer._drain_messages is not fc.Consumer._drain_messages
    app = faust.App("dg-test-transport-3", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    install(app, 50)
    try:
        assert isinstance(app.consumer, compat._Consumer)
    finally:
        app.consumer._thread.thread_loop.close()  # the consumer thread's own loop (never started here)


def test_the_consumer_runs_the_hook_before_faust_waits_for_acknowledgements(monkeypatch) -> None:
    from faust.transport.drivers import aiokafka as faust_aiokafka

    order = []

    async def faust_wait_empty(self) -> None:
        order.append("faust waits for every record handed on to be acknowledged")

    async def hook() -> None:
        order.append("hook")

    monkeypatch.setattr(faust_aiokafka.Consumer, "wait_empty", faust_wait_empty)
    app = faust.App("dg-test-transport-4", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    install(app, 50)
    try:
        asyncio.run(app.consumer.wait_empty())  # no hook set: Faust's alone
        app.transport.before_wait_empty = hook
        asyncio.run(app.consumer.wait_empty())
    finally:
        app.consumer._thread.thread_loop.close()
    assert order == ["faust waits for every record handed on to be acknowledged", "hook",
                     "faust waits for every record handed on to be acknowledged"]
