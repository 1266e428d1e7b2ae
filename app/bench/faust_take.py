"""The framework's own ceiling, for `make bench`: a Faust app with one agent that takes batches from a
topic exactly as the worker's stages do (`noack_take`, the same batch size, wait, stream buffer and fetch
size), parses each record with orjson and acknowledges it, and does nothing else. Its events/s bound what
any worker built on Faust's streams can reach on this machine, next to the plain aiokafka consumer.

Run by the bench as a process of its own (a Faust worker owns its event loop):

    python -m app.bench.faust_take --topic T --events N --result FILE [--bootstrap HOST:PORT] [--worker-transport]

`--worker-transport` consumes through the worker's transport (`app/drivers/transport.py`: its fetch wait
and its record delivery) instead of Faust's stock one.

It writes {"events": n, "seconds": s} to FILE (first record taken to the N-th) and exits."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

from app.drivers.worker import STREAM_BUFFER_BATCHES
from app.settings import Settings


def build(topic: str, n: int, result: Path, bootstrap: str, datadir: str, worker_transport: bool = False):
    import faust

    d = Settings()
    app = faust.App(f"bench-take-{uuid.uuid4().hex[:8]}", broker=f"kafka://{bootstrap}", store="memory://",
                    datadir=datadir, web_enabled=False, consumer_auto_offset_reset="earliest",
                    stream_buffer_maxsize=STREAM_BUFFER_BATCHES * d.batch_max,
                    consumer_max_fetch_size=1024 * 1024, topic_replication_factor=1)
    if worker_transport:
        from app.drivers.transport import install

        install(app, d.fetch_max_wait_ms)
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")
    state = {"got": 0, "t0": None}

    @app.agent(source)
    async def take(stream) -> None:
        loads = orjson.loads
        async for batch in stream.noack_take(d.batch_max, within=d.batch_within_ms / 1000.0):
            if state["t0"] is None:
                state["t0"] = time.perf_counter()
            for event in batch:
                loads(event.message.value)
                await stream.ack(event)
            state["got"] += len(batch)
            if state["got"] >= n:
                result.write_bytes(orjson.dumps({"events": state["got"],
                                                 "seconds": time.perf_counter() - state["t0"]}))
                sys.stdout.flush()
                os._exit(0)  # measured; nothing to hand over

    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.bench.faust_take")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--result", type=Path, required=True)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--worker-transport", action="store_true")
    args = ap.parse_args(argv)
    import faust

    with tempfile.TemporaryDirectory(prefix="dg-take-") as datadir:
        app = build(args.topic, args.events, args.result, args.bootstrap, datadir, args.worker_transport)
        faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
