"""Benchmarks. Every figure is printed next to a baseline measured in the same run on the same data,
because these machines are shared and noisy: absolute events/s mean little, ratios travel.

  1. replay (full engine; in one process and with the CLI's content processes) vs orjson parse-only
     of the same file
  2. worker through the real broker vs a plain aiokafka consumer reading + parsing the same topic:
     sustained events/s through all three stages, CPU seconds per 1,000 events, peak RSS; and a Faust
     agent that only takes, parses and acknowledges the same topic (the framework's ceiling);
     the same worker with one content process (DG_CONTENT_JOBS=1); two workers against one on the
     same topic (scale-out)
  3. produce-to-decision latency p50/p99 at offered loads (default: half of the events/s one worker reached
     in pass 2, issue 18's target load, then 500 and 5,000 events/s; 60 s or 100,000 events each), overall
     and by the stage that decided
  4. state bytes per account / fingerprint after the replay (orjson snapshots, as stored in tables)
  5. the core's cost per event by stage over the first --cost-events records, next to orjson parse-only
     issue 18's target of 120 us per event and the time per event a replay ratio of 0.03 (its target) would
     leave (app/bench/costs.py);
     observations and links per gateway event, the cluster stage's cost per link and the gateway input its
     one partition can absorb (issue 18's target). `--skip-replay --skip-kafka` runs this pass alone

`--markdown PATH` also writes the run's figures as tables, with the machine, Python, date and commit
(app/bench/markdown.py; `make bench` writes docs/benchmarks.md).

Usage: python -m app.bench [--events FILE] [--kafka-events N] [--skip-kafka] [--skip-replay]
       [--latency-rate EPS] [--latency-seconds S] [--skip-scale-out] [--cost-events N] [--markdown PATH]"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson

from app.bench import markdown
from app.bench.markdown import TARGET_CORE_US, TARGET_P99_LOAD, TARGET_REPLAY_RATIO
from app.bench.markdown import ms_text as _ms
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


def cpu_model() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def run_meta() -> dict:
    """Where and on what this run happens: machine, Python, date, and the commit (dirty when tracked files
    differ from it, so a figure is never credited to a commit that did not produce it)."""
    head = _git("rev-parse", "--short", "HEAD")
    changed = _git("status", "--porcelain", "--untracked-files=no")
    n = len(changed.splitlines()) if changed is not None else 0
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": head.strip() if head else "unknown (not a git checkout)", "dirty": n > 0, "changed_files": n,
            "load_start": os.getloadavg()[0]}


def simulator_digest() -> str:
    """What the default day is made from: the simulator's sources and its packaged scenarios. The cached day
    is made again when this changes (a day cached before the scenario gained a population is not it)."""
    sim = Path(__file__).resolve().parents[1] / "sim"
    h = hashlib.sha256()
    for f in sorted(p for p in sim.rglob("*") if p.suffix in (".py", ".yaml", ".json") and p.is_file()):
        h.update(f.relative_to(sim).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def ensure_events(path: Path | None) -> Path:
    if path is not None:
        return path
    out = BENCH_DIR / "default"
    events, stamp = out / "events.jsonl", out / "simulator.sha256"
    digest = simulator_digest()
    if not events.exists() or not stamp.exists() or stamp.read_text().strip() != digest:
        print("generating the default simulated day (cached in .bench/ until the simulator changes) ...",
              file=sys.stderr)
        stamp.unlink(missing_ok=True)
        subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", "default", "--seed", "7",
                        "--out", str(out)], check=True)
        stamp.write_text(digest + "\n")
    return events


def bench_replay(events: Path, rules) -> dict:
    # read the file once untimed: the baseline is the parse, not the disk (a cold page cache made
    # parse-only 39,000 events/s instead of ~160,000 in one run, and the ratio 3.5x too flattering)
    for _ in iter_lines(events):
        pass
    t0 = time.perf_counter()
    n = 0
    for _, raw in iter_lines(events):
        orjson.loads(raw)
        n += 1
    parse_s = time.perf_counter() - t0

    from app.drivers.content_pool import resolve_jobs
    from app.engine import Engine

    jobs = resolve_jobs("auto")
    pooled = None
    if jobs:  # the CLI's default: prompts analysed in `jobs` other processes (same records out)
        p_sink = NullSink()
        p_stats = replay(events, rules, p_sink, content_jobs=jobs)
        pooled = {"jobs": jobs, "eps": p_stats.events / p_stats.seconds, "outputs": p_sink.n}
    engine = Engine(rules)
    sink = NullSink()
    stats = replay(events, rules, sink, engine=engine)
    if pooled is not None and pooled["outputs"] != sink.n:
        raise RuntimeError(f"replay with {jobs} content processes gave {pooled['outputs']} records, "
                           f"in one process {sink.n}")
    acct_bytes = [len(orjson.dumps(v.snapshot())) for _, v in engine.accounts.store.items()]
    fp_bytes = [len(orjson.dumps(v.snapshot())) for _, v in engine.fingerprints.store.items()]
    return {
        "events": n, "parse_eps": n / parse_s, "replay_eps": stats.events / stats.seconds,
        "ratio": (stats.events / stats.seconds) / (n / parse_s),
        "accounts": len(acct_bytes), "bytes_per_account": sum(acct_bytes) / max(1, len(acct_bytes)),
        "fingerprints": len(fp_bytes), "bytes_per_fingerprint": sum(fp_bytes) / max(1, len(fp_bytes)),
        "outputs": sink.n, "pooled": pooled,
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


def _faust_take(bootstrap: str, topic: str, n: int, timeout_s: float = 600, worker_transport: bool = False) -> float:
    """Events/s of a Faust agent that only takes, parses and acknowledges (app/bench/faust_take.py), through
    Faust's stock transport or the worker's (`worker_transport`: app/drivers/transport.py)."""
    result = BENCH_DIR / f"faust-take-{uuid.uuid4().hex[:6]}.json"
    log = result.with_suffix(".log")
    with log.open("wb") as out:
        proc = subprocess.run([sys.executable, "-m", "app.bench.faust_take", "--topic", topic, "--events", str(n),
                               "--result", str(result), "--bootstrap", bootstrap]
                              + (["--worker-transport"] if worker_transport else []),
                              stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    if proc.returncode != 0 or not result.exists():
        raise RuntimeError(f"the Faust take-only agent exited with {proc.returncode}; see {log}")
    r = orjson.loads(result.read_bytes())
    return r["events"] / r["seconds"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchWorker:
    """One `distill-guard worker` process, read through its /metrics and /proc."""

    def __init__(self, uid: str, topic: str, bootstrap: str, n: int = 0, extra: dict | None = None) -> None:
        self.port = _free_port()
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, DG_APP_ID=f"bench-{uid}",
                   DG_REQUESTS_TOPIC=topic, DG_ALERTS_TOPIC=f"bench-{uid}.alerts",
                   DG_DECISIONS_TOPIC=f"bench-{uid}.decisions", DG_DLQ_TOPIC=f"bench-{uid}.dlq",
                   DG_METRICS_PORT=str(self.port), DG_DATA_DIR=str(BENCH_DIR / f"state-{uid}-{n}"),
                   DG_STORE=os.environ.get("DG_STORE", "rocksdb://"), **(extra or {}))
        self.log_path = BENCH_DIR / f"worker-{uid}-{n}.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env,
                                     stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def families(self) -> dict:
        import urllib.request

        from prometheus_client.parser import text_string_to_metric_families

        try:
            page = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2).read().decode()
        except OSError:
            return {}
        return {f.name: f for f in text_string_to_metric_families(page)}

    def _tree(self) -> list[int]:
        """The worker and its descendants (content processes, multiprocessing's resource tracker)."""
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d.name))
        tree, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        return tree

    def cpu_s(self) -> float:
        """utime + stime of the worker and its content processes (children's own times: they are not
        waited for, so the parent's cutime does not hold them)."""
        total = 0
        for pid in self._tree():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """Peak RSS of the worker process plus that of each of its content processes."""
        total = 0
        for pid in self._tree():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}; see {self.log_path}")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _samples(fams: dict, name: str, label: str | None = None) -> dict:
    fam = fams.get(name)
    out: dict = {}
    for s in fam.samples if fam else []:
        if s.name.endswith("_total"):
            k = s.labels.get(label) if label else ""
            out[k] = out.get(k, 0.0) + s.value
    return out


def progress(workers: list[BenchWorker]) -> tuple[float, bool]:
    """(events the account stage finished, whether every stage has drained what was sent to it)."""
    done = obs_sent = obs_done = links_sent = links_done = 0.0
    for w in workers:
        fams = w.families()
        items = _samples(fams, "distill_guard_stage_items", "stage")
        internal = _samples(fams, "distill_guard_internal_messages", "topic")
        done += items.get("accounts", 0.0)
        obs_done += items.get("fingerprints", 0.0)
        links_done += items.get("clusters", 0.0)
        obs_sent += internal.get("observations", 0.0)
        links_sent += internal.get("links", 0.0)
    return done, obs_done >= obs_sent and links_done >= links_sent


def wait_drained(workers: list[BenchWorker], n: int, timeout_s: float = 1200) -> tuple[float, float]:
    """Wait until all workers together finished `n` events through all three stages; returns the
    perf_counter time of the first finished event and of the end."""
    t_first = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for w in workers:
            w.check()
        done, drained = progress(workers)
        now = time.perf_counter()
        if done > 0 and t_first is None:
            t_first = now
        if done >= n and drained:
            return t_first or now, now
        # each poll renders the worker's /metrics page (a few % of its CPU at 10 polls a second, where
        # Prometheus scrapes every 15 s); twice a second keeps the end time within 1 % of these runs
        time.sleep(0.5)
    raise RuntimeError(f"workers did not finish {n} events in {timeout_s:.0f} s")


def fill_topic(events: Path, topic: str, n: int, bootstrap: str, partitions: int = 6) -> int:
    from kafka import KafkaProducer

    from app.settings import Settings
    from app.topics import TopicSpec, ensure_topics

    ensure_topics(Settings(bootstrap_servers=bootstrap), [TopicSpec(topic, partitions)])
    prod = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024, acks=1)
    sent = 0
    for _, raw in iter_lines(events):
        prod.send(topic, key=orjson.loads(raw)["account_id"].encode(), value=raw)
        sent += 1
        if sent >= n:
            break
    prod.flush(120)
    prod.close()
    return sent


def broker_load(bootstrap: str, prefix: str) -> dict[str, dict[str, int]]:
    """What a run wrote to the broker, per topic whose name starts with `prefix` (the run's input, its
    outputs, the worker's topics between stages and its tables' changelogs): records (the partitions' end
    offsets) and bytes (the partitions' size in the broker's log directories: record batches as stored, one
    replica; a compacted changelog is measured before any compaction, its segments being still active)."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        topics = sorted(t for t in admin.list_topics() if t.startswith(prefix))
        sizes: dict[str, int] = {}
        for broker in admin.describe_log_dirs(topics) if topics else []:
            for d in broker["log_dirs"]:
                for t in d["topics"]:
                    sizes[t["name"]] = sizes.get(t["name"], 0) + sum(p["partition_size"] for p in t["partitions"])
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        ends = consumer.end_offsets(parts) if parts else {}
    finally:
        consumer.close()
    records: dict[str, int] = {}
    for tp, end in ends.items():
        records[tp.topic] = records.get(tp.topic, 0) + end
    return {t: {"records": records.get(t, 0), "bytes": sizes.get(t, 0)} for t in topics}


def drop_topics(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a run's input, outputs, stage topics and
    changelogs, once measured): a bench run writes ~1 GB to the broker, which repeated runs would keep.
    The deleted topics' names; a failure is said, not raised (the figures are measured already)."""
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            topics = sorted(t for t in admin.list_topics() if t.startswith(prefix))
            if topics:
                admin.delete_topics(topics)
        finally:
            admin.close()
    except Exception as exc:  # cleaning up after the measurement must not lose it
        print(f"bench: could not delete the topics {prefix}*: {exc}", file=sys.stderr)
        return []
    return topics


def bench_kafka(events: Path, n: int, bootstrap: str = "127.0.0.1:9092", workers: int = 1,
                extra: dict | None = None) -> dict:
    """Sustained throughput: `n` events already in the topic, drained by `workers` worker processes
    (with the settings in `extra`) through all three stages; next to a plain aiokafka consumer reading
    and parsing the same topic, and (one default worker) the take-only Faust agents."""
    uid = uuid.uuid4().hex[:8]
    topic = f"bench-{uid}.requests"
    sent = fill_topic(events, topic, n, bootstrap)
    plain_eps = asyncio.run(_plain_consumer(bootstrap, topic, sent))
    ceiling = workers == 1 and not extra
    take_eps = _faust_take(bootstrap, topic, sent) if ceiling else None
    take_w_eps = _faust_take(bootstrap, topic, sent, worker_transport=True) if ceiling else None
    if ceiling:
        drop_topics(bootstrap, "bench-take-")  # the take-only apps' own topics
    procs = [BenchWorker(uid, topic, bootstrap, i, extra) for i in range(workers)]
    try:
        while progress(procs)[0] <= 0:  # CPU counted from the first processed event (not start-up)
            for w in procs:
                w.check()
            time.sleep(0.05)
        cpu0 = sum(w.cpu_s() for w in procs)
        t0, t1 = wait_drained(procs, sent)
        cpu = sum(w.cpu_s() for w in procs) - cpu0
        rss = max(w.peak_rss_mb() for w in procs)
        stages = stage_breakdown(procs)
    finally:
        for w in procs:
            w.stop()  # a graceful stop: the tables' last changes reach their changelogs
    eps = sent / (t1 - t0)
    broker = broker_load(bootstrap, f"bench-{uid}")
    drop_topics(bootstrap, f"bench-{uid}")
    return {"events": sent, "workers": workers, "plain_eps": plain_eps, "take_eps": take_eps,
            "take_worker_transport_eps": take_w_eps, "worker_eps": eps,
            "ratio": eps / plain_eps, "cpu_s_per_1k": cpu / sent * 1000, "peak_rss_mb": rss,
            "seconds": t1 - t0, "stages": stages, "broker": broker,
            "compression": _compression(extra),
            "topic_prefix": f"bench-{uid}"}


def _compression(extra: dict | None) -> str:
    """The record-batch compression the bench's workers produce with (`DG_COMPRESSION`): their environment,
    read as the worker reads it."""
    from app.settings import Settings

    return Settings.from_env({**os.environ, **(extra or {})}).compression


def stage_breakdown(workers: list[BenchWorker]) -> dict[str, dict[str, float]]:
    """Per stage, summed over workers: batches, mean records per batch, seconds in the core, seconds
    waiting for the broker's acknowledgements."""
    out: dict[str, dict[str, float]] = {}
    for w in workers:
        fams = w.families()
        for name, field in (("distill_guard_batch_records", "records"), ("distill_guard_stage_seconds", "core_s"),
                            ("distill_guard_deliver_seconds", "deliver_s")):
            fam = fams.get(name)
            for smp in fam.samples if fam else []:
                st = out.setdefault(smp.labels.get("stage", "?"), {})
                if smp.name.endswith("_sum"):
                    st[field] = st.get(field, 0.0) + smp.value
                elif smp.name.endswith("_count") and field == "records":
                    st["batches"] = st.get("batches", 0.0) + smp.value
    return out


def _matches(sample, match: dict[str, str]) -> bool:
    """Does a Prometheus sample carry every label in `match` with its value?"""
    return all(sample.labels.get(k) == v for k, v in match.items())


def _buckets(fams: dict, name: str, **match: str) -> dict[float, float]:
    """Cumulative bucket counts of a Prometheus histogram, summed over its label sets (those carrying
    the labels in `match`)."""
    fam = fams.get(name)
    counts: dict[float, float] = {}
    for s in fam.samples if fam else ():
        if s.name.endswith("_bucket") and _matches(s, match):
            le = float(s.labels["le"])
            counts[le] = counts.get(le, 0.0) + s.value
    return counts


def _quantile(fams: dict, name: str, q: float, since: dict | None = None, **match: str) -> float:
    """Quantile of a Prometheus histogram (of what it counted after the scrape `since`), linear within
    the bucket (what histogram_quantile does); 0 when it counted nothing."""
    now = _buckets(fams, name, **match)
    before = _buckets(since, name, **match) if since else {}
    buckets = sorted((le, c - before.get(le, 0.0)) for le, c in now.items())
    if not buckets or buckets[-1][1] <= 0:
        return 0.0
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / max(c - prev_c, 1e-9))
        prev_le, prev_c = le, c
    return prev_le


def bench_latency(events: Path, rate: int, seconds: float, bootstrap: str = "127.0.0.1:9092") -> dict:
    """Produce at a fixed offered load and read the worker's produce-to-decision latency histogram
    (broker timestamp of the source record to the decision acknowledged by the broker). The load comes
    from Kafka's Java ConsoleProducer (app/bench/feed.py), so the producer does not take the worker's CPU.
    Past the worker's capacity the backlog, and with it the latency, grows for as long as the run lasts:
    `backlog_end` says how far behind the worker was when the offered load stopped."""
    from app.bench.feed import ConsoleFeed
    from app.settings import Settings
    from app.topics import TopicSpec, ensure_topics

    uid = uuid.uuid4().hex[:8]
    topic = f"bench-{uid}.requests"
    ensure_topics(Settings(bootstrap_servers=bootstrap), [TopicSpec(topic, 6)])
    total = int(rate * seconds)
    records = []
    for _, raw in iter_lines(events):
        records.append((orjson.loads(raw)["account_id"].encode(), raw))
        if len(records) >= total + 100:
            break
    w = BenchWorker(uid, topic, bootstrap)
    feed = ConsoleFeed(topic, bootstrap, acks="1", linger_ms=1)
    try:
        # warm up: the worker is up and has its partitions once a first record came through
        warm = 0
        while progress([w])[0] < 1:
            w.check()
            feed.send(records[warm:warm + 1])
            warm += 1
            time.sleep(0.2)
        wait_drained([w], warm)
        base = w.families()
        load = records[warm:warm + total]
        took = feed.paced(load, rate, tick_s=0.01)
        backlog_end = len(load) + warm - progress([w])[0]
        offered = len(load) / took
        wait_drained([w], warm + len(load))
        fams = w.families()
    finally:
        feed.close()
        w.stop()
        drop_topics(bootstrap, f"bench-{uid}")
    name = "distill_guard_decision_latency_seconds"
    out = {"offered_eps": offered, "events": len(load), "backlog_end": backlog_end,
           "decisions": _quantile_counts(fams) - _quantile_counts(base),
           "p50_ms": _quantile(fams, name, 0.5, base) * 1000, "p99_ms": _quantile(fams, name, 0.99, base) * 1000}
    for stage in ("accounts", "clusters"):  # which stage the slow decisions come from
        out[stage] = {"decisions": _quantile_counts(fams, stage=stage) - _quantile_counts(base, stage=stage),
                      "p50_ms": _quantile(fams, name, 0.5, base, stage=stage) * 1000,
                      "p99_ms": _quantile(fams, name, 0.99, base, stage=stage) * 1000}
    return out


# Each latency run offers at most this many events: p99 of a minute at 500-1,000 events/s rests on
# 800-1,700 decisions (20 s gave ~350 and moved by 2x between runs), and 20 s at 5,000/s (over capacity)
# already leaves a backlog that takes a minute to drain.
LATENCY_MAX_EVENTS = 100_000


def _quantile_counts(fams: dict, **match: str) -> float:
    fam = fams.get("distill_guard_decision_latency_seconds")
    return sum(s.value for s in fam.samples if s.name.endswith("_count") and _matches(s, match)) if fam else 0.0


def latency_loads(spec: str, worker_eps: float) -> list[tuple[int, bool]]:
    """The offered loads of `--latency-rate`, in order, as (events/s, is it the half-capacity load): each
    item a number of events/s or `half`, half of `worker_eps` (what one worker reached in the throughput
    pass; issue 18's p99 target is held at that load)."""
    loads = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        if item == "half":
            loads.append((max(1, round(worker_eps * TARGET_P99_LOAD)), True))
        else:
            loads.append((int(item), False))
    return loads


def _print_replay(r: dict) -> None:
    print(f"replay    {r['events']:>9,} events  parse-only {r['parse_eps']:>10,.0f} ev/s  "
          f"full engine {r['replay_eps']:>9,.0f} ev/s  ratio {r['ratio']:.3f}  (one process)")
    if r["pooled"]:
        p = r["pooled"]
        print(f"replay    {r['events']:>9,} events  parse-only {r['parse_eps']:>10,.0f} ev/s  "
              f"full engine {p['eps']:>9,.0f} ev/s  ratio {p['eps'] / r['parse_eps']:.3f}  "
              f"(+{p['jobs']} content process{'es' if p['jobs'] > 1 else ''}, the CLI default)")
    print(f"state     {r['accounts']:,} accounts, {r['bytes_per_account']:.0f} B/account; "
          f"{r['fingerprints']:,} fingerprint values, {r['bytes_per_fingerprint']:.0f} B/value")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.bench")
    ap.add_argument("--events", type=Path)
    ap.add_argument("--kafka-events", type=int, default=100_000)
    ap.add_argument("--skip-kafka", action="store_true")
    ap.add_argument("--skip-replay", action="store_true")
    ap.add_argument("--latency-rate", default="half,500,5000",
                    help="offered loads for the latency runs, events/s, comma-separated; `half` is half the "
                         "events/s one worker reached in the throughput run (issue 18's target load)")
    ap.add_argument("--latency-seconds", type=float, default=60.0,
                    help="how long each load is offered, at most 100,000 events (an offered load "
                         "past capacity takes as long again to drain)")
    ap.add_argument("--skip-scale-out", action="store_true")
    ap.add_argument("--cost-events", type=int, default=100_000,
                    help="records of the file the per-stage cost pass reads (0: no cost pass)")
    ap.add_argument("--markdown", type=Path, metavar="PATH",
                    help="also write the run's figures as Markdown tables to PATH (make bench: docs/benchmarks.md), "
                         "keeping what follows the file's keep marker")
    args = ap.parse_args(argv)
    meta = run_meta()  # before the run: the tree as it was when the figures were made
    rules = load_rules(os.environ.get("DG_RULES", DEFAULT_RULES))
    BENCH_DIR.mkdir(exist_ok=True)
    events = ensure_events(args.events)
    results: dict = {"meta": meta, "latency": [], "run": {
        "events_file": str(events), "default_day": args.events is None,
        "kafka_events": 0 if args.skip_kafka else args.kafka_events, "latency_seconds": args.latency_seconds,
        "cost_events": args.cost_events,
        "env": {k: v for k, v in os.environ.items() if k.startswith("DG_")}}}
    print(f"machine: {machine()}")
    if not args.skip_replay:
        results["replay"] = r = bench_replay(events, rules)
        _print_replay(r)
    if args.cost_events:  # also alone: --skip-replay --skip-kafka runs only the cost pass
        from app.bench.costs import describe, stage_costs

        costs = stage_costs(events, rules, args.cost_events, int(time.time() * 1000))
        results["costs"] = costs.as_dict()
        print("\n".join(describe(costs, TARGET_REPLAY_RATIO, TARGET_CORE_US)))
    if not args.skip_kafka:
        results["kafka"] = k = bench_kafka(events, args.kafka_events)
        print(f"kafka     {k['events']:>9,} events  plain aiokafka {k['plain_eps']:>8,.0f} ev/s  "
              f"worker {k['worker_eps']:>8,.0f} ev/s  ratio {k['ratio']:.3f}  "
              f"CPU {k['cpu_s_per_1k']:.2f} s/1k events  peak RSS {k['peak_rss_mb']:.0f} MiB")
        tw = k["take_worker_transport_eps"]
        print(f"kafka     {k['events']:>9,} events  plain aiokafka {k['plain_eps']:>8,.0f} ev/s  "
              f"Faust take-only agent {k['take_eps']:>8,.0f} ev/s  ratio {k['take_eps'] / k['plain_eps']:.3f}  "
              f"(stock Faust delivery)")
        print(f"kafka     {k['events']:>9,} events  plain aiokafka {k['plain_eps']:>8,.0f} ev/s  "
              f"Faust take-only agent {tw:>8,.0f} ev/s  ratio {tw / k['plain_eps']:.3f}  "
              f"(the worker's transport: the framework's ceiling, worker / take-only {k['worker_eps'] / tw:.3f})")
        for name, st in sorted(k["stages"].items()):
            b = max(1.0, st.get("batches", 0.0))
            print(f"  stage {name:<12} {st.get('batches', 0):>6.0f} batches of {st.get('records', 0) / b:>6.0f} "
                  f"records; core {st.get('core_s', 0):6.1f} s, waiting for acks {st.get('deliver_s', 0):6.1f} s "
                  f"of {k['seconds']:.1f} s")
        per_core = 1000 / k["cpu_s_per_1k"]
        print(f"sizing    {per_core:,.0f} events per CPU-second: 100,000 requests/s need ~{100_000 / per_core:.0f} "
              f"busy cores of workers (at 70 % utilisation ~{100_000 / per_core / 0.7:.0f} worker processes, as "
              f"many partitions or more)")
        if (os.cpu_count() or 1) > 1:
            results["content"] = kc = bench_kafka(events, args.kafka_events, extra={"DG_CONTENT_JOBS": "1"})
            print(f"kafka     {kc['events']:>9,} events  plain aiokafka {kc['plain_eps']:>8,.0f} ev/s  "
                  f"worker + 1 content process {kc['worker_eps']:>8,.0f} ev/s  ratio {kc['ratio']:.3f}  "
                  f"CPU {kc['cpu_s_per_1k']:.2f} s/1k events (both processes)  peak RSS {kc['peak_rss_mb']:.0f} MiB "
                  f"(x{kc['worker_eps'] / k['worker_eps']:.2f} the default worker; {os.cpu_count()} cores shared "
                  f"with the broker)")
        if not args.skip_scale_out:
            results["scale_out"] = k2 = bench_kafka(events, args.kafka_events, workers=2)
            print(f"scale-out 2 workers {k2['worker_eps']:>8,.0f} ev/s vs 1 worker {k['worker_eps']:>8,.0f} ev/s "
                  f"(x{k2['worker_eps'] / k['worker_eps']:.2f}; {os.cpu_count()} cores shared with the broker)")
        for rate, half in latency_loads(args.latency_rate, k["worker_eps"]):
            lat = bench_latency(events, rate, min(args.latency_seconds, LATENCY_MAX_EVENTS / rate))
            results["latency"].append({"rate": rate, **lat, **({"half_capacity": True, "capacity_eps": k["worker_eps"]}
                                                               if half else {})})
            if half:
                print(f"latency   half of one worker's {k['worker_eps']:,.0f} ev/s: {rate:,} ev/s offered")
            print(f"latency   offered {lat['offered_eps']:,.0f} ev/s for {lat['events']:,} events, "
                  f"{lat['decisions']:.0f} decisions: produce->decision p50 {_ms(lat['p50_ms'])}, "
                  f"p99 {_ms(lat['p99_ms'])} (one worker; {lat['backlog_end']:,.0f} events behind when the "
                  f"load stopped)")
            for stage in ("accounts", "clusters"):
                st = lat[stage]
                print(f"  decided by {stage:<9} {st['decisions']:>6.0f} decisions: p50 {_ms(st['p50_ms'])}, "
                      f"p99 {_ms(st['p99_ms'])}")
    print("\n".join(markdown.targets(results)))  # issue 18's targets, each with its figure and verdict
    if args.markdown:
        meta["load_end"] = os.getloadavg()[0]  # other work on a shared machine slows every figure
        markdown.write(results, args.markdown)
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
