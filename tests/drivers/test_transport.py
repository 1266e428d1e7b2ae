"""The worker's transport: Faust's own aiokafka transport except for the consumer's fetch wait, which
Faust fixes at 1,500 ms (app/drivers/transport.py says why that held internal records back)."""

from __future__ import annotations

import asyncio

import faust

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
