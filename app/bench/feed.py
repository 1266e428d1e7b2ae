"""A load generator for benchmarks and fault tests: records go to a topic through Apache Kafka's own
Java `ConsoleProducer` (the kafka-tools jar that deploy/kafka/pom.xml fetches), fed lines on its stdin.

Why not a Python producer: kafka-python spends ~100 µs of CPU per record, so on a 2-core machine an
offered load of a few thousand records a second would take the CPU the worker under test needs, and the
producer, not the worker, would set the pace. Here Python only writes bytes to a pipe; the JVM does the
batching, and a paced load of tens of thousands of records a second costs the test little."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LIBS = Path(os.environ.get("KAFKA_LIBS", ROOT / "deploy" / "kafka" / ".cache" / "libs"))
KEY_SEP = b"\t"


class FeedError(RuntimeError):
    """The producer process could not be started or exited with an error."""


class ConsoleFeed:
    """One ConsoleProducer process writing keyed records to `topic`. Keys and values are raw bytes; a
    value is one line (JSON lines are), a key holds no tab. `close()` flushes and returns once every
    record written has been acknowledged (the process exits after its producer's close)."""

    def __init__(self, topic: str, bootstrap: str, *, acks: str = "all", linger_ms: int = 5,
                 libs: Path = KAFKA_LIBS) -> None:
        if not any(libs.glob("kafka-tools-[0-9]*.jar")):
            raise FeedError(f"no kafka-tools jar in {libs}: run `make kafka-up` (it fetches the jars)")
        cmd = ["java", "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-cp", f"{libs}/*",  # no log4j2 file: its default configuration logs errors to stderr
               "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", bootstrap, "--topic", topic,
               "--reader-property", "parse.key=true", "--reader-property", "key.separator=\t",
               "--command-property", f"acks={acks}", "--command-property", f"linger.ms={linger_ms}",
               "--command-property", "batch.size=262144", "--command-property", "max.request.size=4194304",
               "--command-property", "buffer.memory=134217728"]
        self.topic = topic
        self.sent = 0
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the process; closed in close())
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._err)
        except OSError as e:
            raise FeedError(f"cannot start java: {e}") from e

    def send(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Write records and push them to the producer now."""
        if not records:
            return
        if self.proc.poll() is not None:
            raise FeedError(f"ConsoleProducer exited ({self.proc.returncode}): {self._stderr()}")
        self.proc.stdin.write(b"".join(k + KEY_SEP + v + b"\n" for k, v in records))
        self.proc.stdin.flush()
        self.sent += len(records)

    def paced(self, records: Sequence[tuple[bytes, bytes]], rate: float, tick_s: float = 0.02,
              every: Callable[[int], None] | None = None) -> float:
        """Send `records` at `rate` records/s, in slices of `tick_s`; `every(sent so far)` is called
        after each slice. Returns the seconds the writing took (the records may still be in flight)."""
        t0 = time.monotonic()
        done = 0
        while done < len(records):
            due = min(len(records), int((time.monotonic() - t0) * rate) + 1)
            self.send(records[done:due])
            done = due
            if every is not None:
                every(done)
            time.sleep(tick_s)
        return time.monotonic() - t0

    def close(self, timeout_s: float = 60) -> None:
        """Flush everything written, stop the process; FeedError if it failed."""
        try:
            if self.proc.stdin and not self.proc.stdin.closed:
                self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired as e:
            self.proc.kill()
            self.proc.wait(10)
            raise FeedError(f"ConsoleProducer did not finish within {timeout_s}s") from e
        err = self._stderr() if code != 0 else ""
        self._err.close()
        if code != 0:
            raise FeedError(f"ConsoleProducer exited {code}: {err}")

    def _stderr(self) -> str:
        try:
            self._err.seek(0)
            return self._err.read()[-2000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def __enter__(self) -> ConsoleFeed:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.proc.kill()
            self.proc.wait(10)
            self.proc.stdin.close()
            self._err.close()
