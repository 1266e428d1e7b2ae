"""Benchmarks. Every figure is printed next to a baseline measured in the same run on the same data,
because these machines are shared and noisy: absolute events/s mean little, ratios travel.

  1. replay (full engine) vs orjson parse-only of the same file
  2. worker through the real broker vs a plain aiokafka consumer reading + parsing the same topic
  3. state bytes per account / fingerprint after the replay (orjson snapshots, as stored in tables)

Usage: python -m app.bench [--events FILE] [--kafka-events N] [--skip-kafka]"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from app.drivers.replay import iter_lines, replay
from app.rules.load import load_rules
from app.settings import DEFAULT_RULES

BENCH_DIR = Path(".bench")


class NullSink:
    def __init__(self) -> None:
        self.n = 0

    def alert(self, a) -> None:
        self.n += 1

    def decision(self, d) -> None:
        self.n += 1

    def dead_letter(self, r) -> None:
        self.n += 1


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def ensure_events(path: Path | None) -> Path:
    if path is not None:
        return path
    out = BENCH_DIR / "default"
    events = out / "events.jsonl"
    if not events.exists():
        print("generating the default simulated day (once, cached in .bench/) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", "default", "--seed", "7",
                        "--out", str(out)], check=True)
    return events


def bench_replay(events: Path, rules) -> dict:
    t0 = time.perf_counter()
    n = 0
    for _, raw in iter_lines(events):
        orjson.loads(raw)
        n += 1
    parse_s = time.perf_counter() - t0

    from app.engine import Engine

    engine = Engine(rules)
    sink = NullSink()
    stats = replay(events, rules, sink, engine=engine)
    acct_bytes = [len(orjson.dumps(v.snapshot())) for _, v in engine.accounts.store.items()]
    fp_bytes = [len(orjson.dumps(v.snapshot())) for _, v in engine.fingerprints.store.items()]
    return {
        "events": n, "parse_eps": n / parse_s, "replay_eps": stats.events / stats.seconds,
        "ratio": (stats.events / stats.seconds) / (n / parse_s),
        "accounts": len(acct_bytes), "bytes_per_account": sum(acct_bytes) / max(1, len(acct_bytes)),
        "fingerprints": len(fp_bytes), "bytes_per_fingerprint": sum(fp_bytes) / max(1, len(fp_bytes)),
        "outputs": sink.n,
    }


async def _plain_consumer(bootstrap: str, topic: str, n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                         group_id=f"bench-plain-{uuid.uuid4().hex[:6]}", enable_auto_commit=False)
    await c.start()
    try:
        got = 0
        t0 = None
        while got < n:
            batch = await c.getmany(timeout_ms=1000, max_records=5000)
            for recs in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for r in recs:
                    orjson.loads(r.value)
                got += len(recs)
        return got / (time.perf_counter() - t0)
    finally:
        await c.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _consumed(port: int) -> float:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1.0
    for fam in text_string_to_metric_families(page):
        if fam.name == "distill_guard_events_consumed":
            return sum(s.value for s in fam.samples if s.name.endswith("_total"))
    return 0.0


def bench_kafka(events: Path, n: int, bootstrap: str = "127.0.0.1:9092") -> dict:
    from kafka import KafkaProducer

    from app.settings import Settings
    from app.topics import TopicSpec, ensure_topics

    uid = uuid.uuid4().hex[:8]
    topic = f"bench-{uid}.requests"
    ensure_topics(Settings(bootstrap_servers=bootstrap), [TopicSpec(topic, 6)])
    prod = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1)
    sent = 0
    for _, raw in iter_lines(events):
        prod.send(topic, key=orjson.loads(raw)["account_id"].encode(), value=raw)
        sent += 1
        if sent >= n:
            break
    prod.flush(120)
    prod.close()

    plain_eps = asyncio.run(_plain_consumer(bootstrap, topic, sent))

    port = _free_port()
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, DG_APP_ID=f"bench-{uid}",
               DG_REQUESTS_TOPIC=topic, DG_ALERTS_TOPIC=f"bench-{uid}.alerts",
               DG_DECISIONS_TOPIC=f"bench-{uid}.decisions", DG_DLQ_TOPIC=f"bench-{uid}.dlq",
               DG_METRICS_PORT=str(port), DG_DATA_DIR=str(BENCH_DIR / f"state-{uid}"),
               DG_STORE=os.environ.get("DG_STORE", "rocksdb://"))
    log = (BENCH_DIR / f"worker-{uid}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t_first = None
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}; see {log.name}")
            c = _consumed(port)
            if c > 0 and t_first is None:
                t_first, c_first = time.perf_counter(), c
            if c >= sent:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"worker did not consume {sent} events in 900 s")
        worker_eps = (sent - c_first) / (time.perf_counter() - t_first)
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return {"events": sent, "plain_eps": plain_eps, "worker_eps": worker_eps, "ratio": worker_eps / plain_eps}


def _print_replay(r: dict) -> None:
    print(f"replay    {r['events']:>9,} events  parse-only {r['parse_eps']:>10,.0f} ev/s  "
          f"full engine {r['replay_eps']:>9,.0f} ev/s  ratio {r['ratio']:.3f}")
    print(f"state     {r['accounts']:,} accounts, {r['bytes_per_account']:.0f} B/account; "
          f"{r['fingerprints']:,} fingerprint values, {r['bytes_per_fingerprint']:.0f} B/value")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.bench")
    ap.add_argument("--events", type=Path)
    ap.add_argument("--kafka-events", type=int, default=100_000)
    ap.add_argument("--skip-kafka", action="store_true")
    ap.add_argument("--skip-replay", action="store_true")
    args = ap.parse_args(argv)
    rules = load_rules(os.environ.get("DG_RULES", DEFAULT_RULES))
    BENCH_DIR.mkdir(exist_ok=True)
    events = ensure_events(args.events)
    print(f"machine: {machine()}")
    if not args.skip_replay:
        _print_replay(bench_replay(events, rules))
    if not args.skip_kafka:
        k = bench_kafka(events, args.kafka_events)
        print(f"kafka     {k['events']:>9,} events  plain aiokafka {k['plain_eps']:>8,.0f} ev/s  "
              f"worker {k['worker_eps']:>8,.0f} ev/s  ratio {k['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
