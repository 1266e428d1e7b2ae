"""Publishes a simulation to Kafka (keyed by account id), as fast as possible or at N x real time."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from app.settings import Settings
from app.sim.generator import Simulation
from app.sim.timing import format_ts
from app.topics import TopicSpec, ensure_topics, project_topics


class Progress:
    """A plain-text progress bar on stderr, redrawn at most every `every` seconds."""

    def __init__(self, label: str, stream: TextIO | None = None, every: float | None = None) -> None:
        self.label, self.stream = label, stream or sys.stderr
        self._tty = getattr(self.stream, "isatty", lambda: False)()
        # redraw in place on a terminal; in a log, one line every few seconds is plenty
        self.every = every if every is not None else (0.5 if self._tty else 5.0)
        self._t0 = time.monotonic()
        self._last = self._t0

    def __call__(self, done: int, total: int, ts_ms: int | None = None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every and done < total:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        elapsed = now - self._t0
        rate = done / elapsed if elapsed > 0 else 0.0
        sim = f"  sim {format_ts(ts_ms)[:16]}Z" if ts_ms is not None else ""
        line = f"{self.label} [{bar:<30}] {frac:6.1%} {done:,}/{total:,}  {rate:,.0f}/s{sim}"
        end = "\r" if self._tty and done < total else "\n"
        self.stream.write(line + end)
        self.stream.flush()


def publish(sim: Simulation, settings: Settings, topic: str | None = None, speed: float = 0.0,
            progress: Callable[..., None] | None = None, limit: int | None = None) -> tuple[int, set[str]]:
    """Send every event (or the first `limit`) to `topic`; `speed` > 0 paces sends at speed x event time.

    Returns the number of events sent and the accounts they came from.
    """
    from kafka import KafkaProducer

    topic = topic or settings.requests_topic
    specs = [t for t in project_topics(settings) if t.name == topic] or [TopicSpec(topic, settings.requests_partitions)]
    ensure_topics(settings, specs)
    extra: dict[str, str] = {}
    if settings.sasl_username:
        extra = {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
                 "sasl_plain_username": settings.sasl_username, "sasl_plain_password": settings.sasl_password}
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, client_id=f"{settings.app_id}-simulate",
                             linger_ms=20, batch_size=512 * 1024, acks=1, max_request_size=4 * 1024 * 1024, **extra)
    total = min(sim.total, limit) if limit is not None else sim.total
    sent = 0
    seen: set[str] = set()
    t_wall = time.monotonic()
    t_sim: int | None = None
    try:
        for ts, account_id, data in sim.events():
            if sent >= total:
                break
            if speed > 0:
                t_sim = ts if t_sim is None else t_sim
                wait = (ts - t_sim) / 1000 / speed - (time.monotonic() - t_wall)
                if wait > 0:
                    time.sleep(wait)
            producer.send(topic, key=account_id.encode(), value=data)
            seen.add(account_id)
            sent += 1
            if progress is not None and sent % 1000 == 0:
                progress(sent, total, ts)
        producer.flush()
    finally:
        producer.close()
    if progress is not None:
        progress(sent, total, None, force=True)
    return sent, seen
