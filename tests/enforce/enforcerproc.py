"""Runs `distill-guard enforcer` as a real subprocess against the real broker, on a decisions topic unique
to the test, and talks to it over HTTP."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BOOTSTRAP


def create_topic(topic: str, partitions: int = 3) -> None:
    from app.settings import Settings
    from app.topics import TopicSpec, ensure_topics

    ensure_topics(Settings(bootstrap_servers=BOOTSTRAP), [TopicSpec(topic, partitions)])


def publish(topic: str, records: list[dict]) -> None:
    """Each decision keyed "<scope>:<value>", as the worker publishes them."""
    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    for rec in records:
        p.send(topic, key=f"{rec['scope']}:{rec['value']}".encode(), value=orjson.dumps(rec))
    p.flush(30)
    p.close()


@dataclass
class EnforcerProc:
    topic: str
    port: int
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self, *extra: str) -> None:
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP, DG_DECISIONS_TOPIC=self.topic)
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "enforcer", "--listen", f"127.0.0.1:{self.port}", *extra],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def get(self, path: str, headers: dict | None = None, timeout: float = 5) -> tuple[int, dict, bytes]:
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def check(self, **headers: str) -> tuple[int, dict]:
        status, h, _ = self.get("/check/v1/messages", {k.replace("_", "-"): v for k, v in headers.items()})
        return status, h

    def health_history(self, timeout_s: float = 60) -> list[int]:
        """/healthz answers from the first one the server gives until the first 200 (polled every 5 ms)."""
        seen: list[int] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"enforcer exited with {self.proc.returncode}: {self.tail()}")
            try:
                status = self.get("/healthz", timeout=2)[0]
            except OSError:
                time.sleep(0.005)
                continue
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == 200:
                return seen
            time.sleep(0.005)
        raise AssertionError(f"/healthz not 200 within {timeout_s}s ({seen}): {self.tail()}")

    def metrics(self) -> dict[str, dict[tuple, float]]:
        """{sample name: {label values: value}}."""
        body = self.get("/metrics")[2].decode()
        out: dict[str, dict[tuple, float]] = {}
        for fam in text_string_to_metric_families(body):
            for s in fam.samples:
                out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
        return out

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int:
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

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def wait_for(pred, timeout_s: float = 10, every_s: float = 0.01) -> float:
    """Seconds until `pred()` held; fails after `timeout_s`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return time.monotonic() - t0
        time.sleep(every_s)
    raise AssertionError(f"not within {timeout_s}s")
