"""The enforcer process: one asyncio loop that follows the decisions topic into the map and answers checks.

Following the topic: its own consumer, no consumer group and no committed offsets. At start it reads each
partition's end offset, seeks to the earliest retained record and reads everything (the rebuild); once its
position has reached those end offsets on every partition it is ready (/healthz 200), and it goes on
following. A restart therefore rebuilds the same map from the topic. Partitions added to the topic later
are picked up within a minute, from their beginning.

If the broker goes away after the rebuild, the enforcer keeps answering from the map it has (expiry still
applies) and reports the lag it can see; decisions published meanwhile take effect when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time

import orjson

from app.enforce.http import CheckProtocol, render_answer, render_plain
from app.enforce.metrics import ANSWERS, APPLY_BUCKETS, CHECK_BUCKETS, make_registry
from app.enforce.table import DecisionTable, LatencyHistogram

log = logging.getLogger("distill_guard.enforcer")

DEFAULT_LISTEN = "127.0.0.1:8181"
DEFAULT_MAX_ENTRIES = 1_000_000
BATCH = 250  # records applied between two chances for checks to run (~2.5 ms of work)
PARTITION_REFRESH_S = 60.0


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT, [IPv6]:PORT or :PORT (all interfaces)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen wants HOST:PORT, got {value!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class EnforcerService:
    def __init__(self, bootstrap_servers: str, topic: str, max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock=time.time, kafka_options: dict | None = None) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.kafka_options = kafka_options or {}
        self.table = DecisionTable(max_entries, clock)
        self.checks = dict.fromkeys(ANSWERS, 0)
        self.check_latency = LatencyHistogram(CHECK_BUCKETS)
        self.apply_delay = LatencyHistogram(APPLY_BUCKETS)
        self.ready = False
        self.lag_records = 0
        self.rebuild: dict[str, float] = {}  # records read and seconds taken by the rebuild, once ready
        self.registry = make_registry(self)
        self.server: asyncio.base_events.Server | None = None
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ HTTP

    def respond(self, req, started: float) -> bytes:
        path = req.path
        if path.startswith(b"/check") and (len(path) == 6 or path[6] in b"/?"):
            verdict = self.table.check(req.keys)
            self.checks[verdict.action] += 1
            out = render_answer(verdict, req.close)
            self.check_latency.observe(time.perf_counter() - started)
            return out
        route = path.split(b"?", 1)[0]
        if route == b"/healthz":
            if self.ready:
                return render_plain(200, b"ok\n", req.close)
            return render_plain(503, b"rebuilding the decision map from the topic\n", req.close)
        if route == b"/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

            return render_plain(200, generate_latest(self.registry), req.close, CONTENT_TYPE_LATEST)
        return render_plain(404, b"not found: /check..., /healthz, /metrics\n", req.close)

    async def start_server(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: CheckProtocol(self), host, port, reuse_address=True,
                                               backlog=1024)
        return self.server.sockets[0].getsockname()[:2]

    # ------------------------------------------------------------------ following the topic

    def _consumer(self):
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, client_id="distill-guard-enforcer", group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            # the broker answers a fetch as soon as a record arrives; this only bounds an idle poll
            fetch_max_wait_ms=100, **self.kafka_options)

    async def follow(self) -> None:
        """Rebuild, then follow, until stop(); reconnects if the broker is not there at start."""
        delay = 1.0
        while not self._stop.is_set():
            consumer = self._consumer()
            try:
                await consumer.start()
            except Exception as exc:  # any failure to reach the broker: retry
                log.warning("enforcer: cannot reach %s (%s); retrying in %.0f s", self.bootstrap_servers, exc,
                            delay)
                await consumer.stop()
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            try:
                await self._run(consumer)
                return
            finally:
                await consumer.stop()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _partitions(self, consumer) -> set:
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        # the consumer's own metadata covers only assigned topics: ask the cluster (aiokafka's topics() does
        # the same, but returns only the names)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, client_id="distill-guard-enforcer",
                                    **self.kafka_options)
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        parts = {p["partition"] for t in described if t["topic"] == self.topic and not t["error_code"]
                 for p in t["partitions"]}
        return {TopicPartition(self.topic, p) for p in parts}

    async def _run(self, consumer) -> None:
        started = time.monotonic()
        tps: set = set()
        while not tps and not self._stop.is_set():
            tps = await self._partitions(consumer)
            if not tps:
                log.warning("enforcer: topic %s does not exist yet; waiting", self.topic)
                await self._sleep(2.0)
        if self._stop.is_set():
            return
        consumer.assign(sorted(tps))
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(list(tps))
        begins = await consumer.beginning_offsets(list(tps))
        to_read = sum(ends[tp] - begins[tp] for tp in tps)
        log.info("enforcer: rebuilding the map from %s (%d records in %d partitions)", self.topic, to_read,
                 len(tps))
        await self._maybe_ready(consumer, ends, started, to_read)
        table = self.table
        delay = self.apply_delay
        refreshed = time.monotonic()
        while not self._stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            now = time.time()
            now_ms = int(now * 1000)
            ready = self.ready
            for records in batches.values():
                for r in records:
                    try:
                        rec = orjson.loads(r.value)
                    except orjson.JSONDecodeError:
                        table.outcomes["invalid"] += 1
                        continue
                    if not isinstance(rec, dict):
                        table.outcomes["invalid"] += 1
                        continue
                    table.apply(rec, now_ms)
                    if ready:
                        delay.observe(max(0.0, now - r.timestamp / 1000))
            if not self.ready:
                await self._maybe_ready(consumer, ends, started, to_read)
            lag = 0
            for tp in consumer.assignment():
                lag += max(0, (consumer.highwater(tp) or 0) - await consumer.position(tp))
            self.lag_records = lag
            if time.monotonic() - refreshed > PARTITION_REFRESH_S:
                refreshed = time.monotonic()
                await self._add_partitions(consumer)
            if batches:
                await asyncio.sleep(0)  # let waiting checks run between batches

    async def _maybe_ready(self, consumer, ends: dict, started: float, to_read: int) -> None:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return
        # The rebuilt map is most of the heap, and a full collection would walk all of it (~300 ms at a
        # million decisions, past Envoy's 250 ms timeout). Its objects form no reference cycles (they are
        # freed by reference counting when they expire), so they are moved out of the collector's sight
        # once, after a last collection of whatever startup left behind.
        gc.collect()
        gc.freeze()
        self.ready = True
        self.rebuild = {"records": to_read, "seconds": time.monotonic() - started}
        log.info("enforcer: caught up with %s in %.1f s: %d live decisions (%s); ready", self.topic,
                 self.rebuild["seconds"], self.table.live, self.table.outcomes)

    async def _add_partitions(self, consumer) -> None:
        current = set(consumer.assignment())
        new = await self._partitions(consumer) - current
        if not new:
            return
        positions = {tp: await consumer.position(tp) for tp in current}
        consumer.assign(sorted(current | new))
        for tp, pos in positions.items():
            consumer.seek(tp, pos)
        await consumer.seek_to_beginning(*new)
        log.info("enforcer: %s has new partitions %s; reading them from the beginning", self.topic,
                 sorted(tp.partition for tp in new))

    async def expire_every(self, seconds: float = 1.0) -> None:
        while not self._stop.is_set():
            self.table.expire()
            await self._sleep(seconds)

    def stop(self) -> None:
        self._stop.set()

    async def serve(self, host: str, port: int) -> int:
        """The whole process: server + follower + expiry sweep until SIGTERM/SIGINT (exit code 0), or until
        the follower fails (1: a map that no longer follows the topic must not go on answering)."""
        bound = await self.start_server(host, port)
        log.warning("enforcer: listening on http://%s:%d (/check..., /healthz, /metrics); decisions from %s "
                    "on %s", bound[0], bound[1], self.topic, self.bootstrap_servers)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        tasks = [asyncio.create_task(self.follow()), asyncio.create_task(self.expire_every())]
        failed: list[BaseException] = []

        def on_done(task: asyncio.Task) -> None:
            if not task.cancelled() and task.exception() is not None:
                failed.append(task.exception())
                log.error("enforcer: stopping: following %s failed", self.topic, exc_info=task.exception())
                self.stop()

        for t in tasks:
            t.add_done_callback(on_done)
        try:
            await self._stop.wait()
            return 1 if failed else 0
        finally:
            self.server.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(TimeoutError):  # 3.12+ waits for keep-alive connections too: bounded
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
