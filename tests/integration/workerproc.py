"""Runs `distill-guard worker` as a real subprocess against the real broker, on topics and a consumer
group unique to the test, and reads what it publishes back with kafka-python."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.conftest import BOOTSTRAP


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WorkerProc:
    uid: str
    data_dir: Path
    log_path: Path
    port: int
    proc: subprocess.Popen | None = None
    extra: dict[str, str] = field(default_factory=dict)  # more environment (e.g. DG_CONTENT_JOBS)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "DG_APP_ID": f"dg-test-{self.uid}",
            "DG_REQUESTS_TOPIC": f"t{self.uid}.requests",
            "DG_ALERTS_TOPIC": f"t{self.uid}.alerts",
            "DG_DECISIONS_TOPIC": f"t{self.uid}.decisions",
            "DG_DLQ_TOPIC": f"t{self.uid}.dlq",
            "DG_METRICS_PORT": str(self.port),
            "DG_DATA_DIR": str(self.data_dir),
            "DG_STORE": os.environ.get("DG_TEST_STORE", "memory://"),
        })
        env.update(self.extra)
        return env

    def topic(self, name: str) -> str:
        return self.env[f"DG_{name.upper()}_TOPIC"]

    def start(self) -> None:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--loglevel", "warn"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_metrics(self, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}: {self.tail()}")
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2).read().decode()
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"worker metrics did not come up in {timeout_s}s: {self.tail()}")

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        try:
            if self.proc is None or self.proc.poll() is not None:
                return self.proc.returncode if self.proc else 0
            os.killpg(self.proc.pid, sig)
            try:
                return self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                return self.proc.wait(10)
        finally:
            self.log.close()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def produce(topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024)
    for key, value in records:
        p.send(topic, key=key, value=value)
    p.flush(30)
    p.close()


def read_topic(topic: str, expect_at_least: int, timeout_s: float, settle_s: float = 4.0) -> list[dict]:
    """Everything on `topic` once at least `expect_at_least` records arrived and nothing new came
    for `settle_s` seconds (or the timeout passed)."""
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=500)
    deadline = time.monotonic() + timeout_s
    parts = None
    while parts is None and time.monotonic() < deadline:
        parts = c.partitions_for_topic(topic)
        if parts is None:
            time.sleep(0.5)
    if parts is None:
        c.close()
        return []
    tps = [TopicPartition(topic, p) for p in parts]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    out: list[dict] = []
    last_new = time.monotonic()
    while time.monotonic() < deadline:
        got = c.poll(timeout_ms=500)
        n = sum(len(v) for v in got.values())
        for recs in got.values():
            out.extend(orjson.loads(r.value) | {"_key": r.key.decode() if r.key else None} for r in recs)
        if n:
            last_new = time.monotonic()
        elif len(out) >= expect_at_least and time.monotonic() - last_new >= settle_s:
            break
    c.close()
    return out
