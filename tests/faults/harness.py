"""Shared machinery of the fault-tolerance tests (issue 5): a worker subprocess with real RocksDB state,
consumer-group progress read from the broker, whole-topic reads, the replay oracle and the summary
table each test adds a row to (printed at the end of the run by tests/faults/conftest.py).

Everything here talks to 127.0.0.1 only and is bounded: every wait has a deadline."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from app.drivers.replay import replay
from app.emit.sinks import ListSink
from tests.conftest import BOOTSTRAP, ROOT
from tests.integration.workerproc import WorkerProc

KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
SMOKE_SEED = 3

# The consumer group of a worker killed with SIGKILL keeps its dead member until the broker's session
# timeout expires (Faust's default: 60 s). A restarted worker takes its partitions back at once through
# static membership (DG_GROUP_INSTANCE_ID, derived from the host and the data directory), but a worker that
# does not come back, or a second worker that joins, waits for it; most tests shorten it through Faust's own
# environment settings (the behaviour under test does not depend on it). test_sigkill.py's restart timing
# runs with the worker's own settings (`fast_group=False`).
FAST_GROUP_ENV = {
    "BROKER_SESSION_TIMEOUT": "8",
    "BROKER_HEARTBEAT_INTERVAL": "1",
    "BROKER_REBALANCE_TIMEOUT": "20",
}

class HarnessError(RuntimeError):
    """The test machinery could not do its part (worker did not start, a wait timed out, the broker did
    not answer). Deliberately not an AssertionError: a broken run must read as an error of the harness,
    never as a finding about the worker (and never satisfy an `xfail(raises=AssertionError)`)."""


# rows of the summary table: (test, load, faults injected, records tried, records lost, notes)
SUMMARY: list[tuple[str, str, str, str, str, str]] = []


def add_summary(test: str, load: str, faults: str, tried: int | str, lost: int | str, notes: str = "") -> None:
    row = (test, load, faults, str(tried), str(lost), notes)
    SUMMARY[:] = [r for r in SUMMARY if r[0] != test] + [row]
    print("\n" + format_summary([row]))


def format_summary(rows: list[tuple[str, ...]] | None = None) -> str:
    rows = SUMMARY if rows is None else rows
    head = ("test", "load", "faults injected", "records tried", "records lost", "notes")
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def new_uid() -> str:
    return uuid.uuid4().hex[:8]


def fault_seed() -> int:
    """Seed of the random fault points: DG_FAULT_SEED to reproduce a run, else fresh (and printed)."""
    s = os.environ.get("DG_FAULT_SEED")
    seed = int(s) if s else random.SystemRandom().randrange(1, 10**6)
    print(f"fault seed {seed} (set DG_FAULT_SEED={seed} to reproduce)")
    return seed


# -- the worker process


@dataclass
class FaultWorker(WorkerProc):
    """WorkerProc with a chosen store (RocksDB by default) and extra environment."""

    store: str = "rocksdb://"
    extra_env: dict[str, str] = field(default_factory=dict)
    loglevel: str = "warn"
    fast_group: bool = True  # FAST_GROUP_ENV; False: the worker's own group settings

    def start(self) -> None:
        self.log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--loglevel", self.loglevel],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
        )

    @property
    def env(self) -> dict[str, str]:
        env = WorkerProc.env.fget(self)  # type: ignore[attr-defined]
        env["DG_STORE"] = self.store
        if self.fast_group:
            env.update(FAST_GROUP_ENV)
        env.update(self.extra_env)
        return env

    @property
    def app_id(self) -> str:
        return self.env["DG_APP_ID"]

    def internal_topics(self) -> list[str]:
        a = self.app_id
        return [f"{a}-requests-rekeyed", f"{a}-observations", f"{a}-links"]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise HarnessError("no VmRSS")

    def families(self) -> dict:
        return {f.name: f for f in text_string_to_metric_families(self.metrics())}

    def counters(self) -> dict:
        """consumed (all sources), valid, dead-lettered by reason, rekeyed (internal), re-delivered inputs
        skipped because their state had already applied them."""
        fams = self.families()

        def total(name: str, label: str | None = None) -> float | dict:
            fam = fams.get(name)
            samples = [s for s in fam.samples if s.name.endswith("_total")] if fam else []
            if label is None:
                return sum(s.value for s in samples)
            return {s.labels[label]: s.value for s in samples}

        internal = total("distill_guard_internal_messages", "topic")
        return {"consumed": total("distill_guard_events_consumed"), "valid": total("distill_guard_events_valid"),
                "dead": total("distill_guard_events_dead_lettered", "reason"),
                "rekeyed": internal.get("requests-rekeyed", 0.0),
                "skipped": total("distill_guard_redelivered_skipped")}

    def stages(self) -> tuple[float, float, float]:
        """(events the account stage has finished, observations and links sent but not yet handled by the
        fingerprint and cluster stages)."""
        fams = self.families()

        def by_label(name: str, label: str) -> dict:
            fam = fams.get(name)
            return {x.labels[label]: x.value for x in (fam.samples if fam else []) if x.name.endswith("_total")}

        items = by_label("distill_guard_stage_items", "stage")
        internal = by_label("distill_guard_internal_messages", "topic")
        return (items.get("accounts", 0.0), internal.get("observations", 0.0) - items.get("fingerprints", 0.0),
                internal.get("links", 0.0) - items.get("clusters", 0.0))

    def finished(self) -> float:
        """Events the account stage has finished, counted only once the fingerprint and cluster stages
        have also handled everything sent to them (so: events through the whole pipeline)."""
        accounts, obs_lag, link_lag = self.stages()
        return accounts if obs_lag <= 0 and link_lag <= 0 else 0.0

    def consumed(self) -> float:
        try:
            return self.counters()["consumed"]
        except OSError:
            return -1.0

    def kill9(self) -> None:
        """SIGKILL to the worker's process group, no grace."""
        self.stop(signal.SIGKILL, timeout_s=10)


class OutputWatch:
    """Records on the worker's output topics (alerts, decisions, DLQ), for the time to its first output."""

    def __init__(self, w: FaultWorker) -> None:
        self.c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, request_timeout_ms=30000)
        self.topics = [w.topic("alerts"), w.topic("decisions"), w.topic("dlq")]
        self.tps: list[TopicPartition] = []

    def count(self) -> int:
        if not self.tps:
            self.tps = [TopicPartition(t, p) for t in self.topics for p in sorted(self.c.partitions_for_topic(t) or ())]
        return sum(self.c.end_offsets(self.tps).values()) if self.tps else 0

    def close(self) -> None:
        self.c.close()


def start_worker(w: FaultWorker, timeout_s: float = 60) -> None:
    w.start()
    try:
        w.wait_metrics(timeout_s)
    except AssertionError as exc:
        raise HarnessError(str(exc)) from None


@dataclass
class Drained:
    decisions: list[dict]
    alerts: list[dict]
    counters: dict
    exit: int
    took_s: float  # from the last record produced to the group caught up on every input topic
    log: str


def drain_through_worker(tmp: Path, feed: list[tuple[bytes | None, bytes]], timeout_s: float = 900) -> Drained:
    """One worker of a new app drains `feed` (produced at once): its decisions, alerts and counters."""
    from tests.integration.workerproc import free_port, produce

    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port())
    try:
        start_worker(w)
        produce(w.topic("requests"), feed)
        took = wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=timeout_s)
        decisions, alerts = read_json(w.topic("decisions")), read_json(w.topic("alerts"))
        counters = w.counters()
        code = w.stop()
    finally:
        release(w)
    return Drained(decisions, alerts, counters, code, took, w.tail())


# -- the broker


def kafka_sh(cmd: str, timeout_s: float = 150) -> str:
    env = dict(os.environ, PYTHON=sys.executable)
    r = subprocess.run(["bash", str(KAFKA_SH), cmd], env=env, capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0 and cmd != "status":
        raise HarnessError(f"kafka.sh {cmd} failed ({r.returncode}): {r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def broker_up() -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=3000)
        try:
            admin.describe_cluster()
        finally:
            admin.close()
        return True
    except Exception:
        return False


# -- topics


def producer() -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, max_request_size=4 * 1024 * 1024,
                         request_timeout_ms=30000)


def produce_all(topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    p = producer()
    try:
        for key, value in records:
            p.send(topic, key=key, value=value)
        p.flush(60)
    finally:
        p.close(10)


def end_offsets(topics: list[str]) -> dict[TopicPartition, int]:
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, request_timeout_ms=30000)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(c.partitions_for_topic(t) or ())]
        return dict(c.end_offsets(tps)) if tps else {}
    finally:
        c.close()


def group_behind(group: str, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """Partitions of `topics` that consumer group `group` has not committed to their end: (topic,
    partition) -> (committed offset, end offset); a partition never committed counts from 0."""
    ends = end_offsets(topics)
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    behind = {}
    for tp, end in ends.items():
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        if end > done:
            behind[(tp.topic, tp.partition)] = (done, end)
    return behind


def group_lag(group: str, topics: list[str]) -> int:
    """Records on `topics` not yet committed by consumer group `group` (a partition never committed
    counts in full)."""
    return sum(end - done for done, end in group_behind(group, topics).values())


def wait_group_done(w: FaultWorker, topics: list[str], timeout_s: float, stable_checks: int = 2) -> float:
    """Until the worker's group has committed everything on `topics` (checked `stable_checks` times in a
    row); returns the seconds it took. Fails if the worker dies or the deadline passes; then the error
    names the partitions behind, and the worker (still running) is asked to write the stacks of its
    tasks to its log (mode's SIGUSR1 handler) for the post-mortem."""
    t0 = time.monotonic()
    ok = 0
    lag = -1
    behind: dict[tuple[str, int], tuple[int, int]] | str = "not read"
    while time.monotonic() - t0 < timeout_s:
        if not w.alive():
            raise HarnessError(f"worker died (exit {w.proc.returncode}): {w.tail()}")
        try:
            behind = group_behind(w.app_id, topics)
            lag = sum(end - done for done, end in behind.values())
        except KafkaError as exc:  # broker briefly busy or group coordinator moving: try again
            print(f"group_lag: {exc!r}")
            behind, lag = repr(exc), -1
        ok = ok + 1 if lag == 0 else 0
        if ok >= stable_checks:
            return time.monotonic() - t0
        time.sleep(1.0)
    if isinstance(behind, dict):
        behind = ", ".join(f"{t}/{p} {done}..{end}" for (t, p), (done, end) in sorted(behind.items()))
    tail = w.tail()  # before the stacks are written after it
    with contextlib.suppress(OSError):
        os.kill(w.proc.pid, signal.SIGUSR1)
    raise HarnessError(f"group {w.app_id} still {lag} records behind after {timeout_s}s (committed..end, at "
                       f"the last check: {behind}; task stacks in {w.log_path}): {tail}")


def read_all(topic: str, timeout_s: float = 60) -> list:
    """Every record on `topic` up to its current end (raw ConsumerRecords)."""
    c = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=1000,
                      max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    try:
        parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        ends = c.end_offsets(tps)
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(c.position(tp) >= ends[tp] for tp in tps):
                return out
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        raise HarnessError(f"could not read {topic} to its end in {timeout_s}s ({len(out)} records)")
    finally:
        c.close()


def read_json(topic: str, timeout_s: float = 60) -> list[dict]:
    return [orjson.loads(r.value) | {"_key": r.key.decode() if r.key else None, "_ts": r.timestamp}
            for r in read_all(topic, timeout_s)]


def list_topics(prefix: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
    try:
        return sorted(t for t in admin.list_topics() if t.startswith(prefix))
    finally:
        admin.close()


def delete_topics(prefixes: list[str]) -> None:
    """Best-effort cleanup of a test's topics (they are unique to the test)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=10000)
        try:
            names = [t for t in admin.list_topics() if any(t.startswith(p) for p in prefixes)]
            if names:
                admin.delete_topics(names, timeout_ms=10000)
        finally:
            admin.close()
    except Exception as exc:
        print(f"topic cleanup skipped: {exc!r}")


def cleanup_topics(w: FaultWorker) -> None:
    delete_topics([w.app_id, f"t{w.uid}."])


def release(w: FaultWorker) -> None:
    """A test's teardown: stop the worker if it still runs (and close its log file, also when it died on
    its own: an open log would fail the next test with a ResourceWarning), then delete the topics it used."""
    if w.proc is not None:
        w.stop()
    cleanup_topics(w)


# -- traffic


def scenario_events(tmp: Path, scenario: str, seed: int, n: int, skip: int = 0) -> list[bytes]:
    """`n` raw event lines of a simulator scenario, after skipping `skip` (generated once per `tmp`)."""
    out = tmp / f"{scenario}-{seed}"
    if not (out / "events.jsonl").exists():
        subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", scenario, "--seed",
                        str(seed), "--out", str(out)], check=True, capture_output=True, timeout=120,
                       cwd=ROOT)
    lines = [ln for ln in (out / "events.jsonl").read_bytes().splitlines() if ln.strip()]
    return lines[skip:skip + n]


def smoke_events(tmp: Path, n: int, skip: int = 0) -> list[bytes]:
    """`n` raw event lines of the simulator's smoke scenario (seed 3), after skipping `skip`."""
    return scenario_events(tmp, "smoke", SMOKE_SEED, n, skip)


def keyed(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [(orjson.loads(v)["account_id"].encode(), v) for v in lines]


@dataclass
class Oracle:
    sink: ListSink
    events: int
    dead: int

    @property
    def decisions(self) -> list[dict]:
        return [d.wire() for d in self.sink.decisions]


def oracle(tmp: Path, records: list[tuple[bytes | None, bytes]], rules, now_ms: int, name: str = "feed") -> Oracle:
    path = tmp / f"{name}.jsonl"
    path.write_bytes(b"".join(v + b"\n" for _, v in records))
    sink = ListSink()
    stats = replay(path, rules, sink, now_ms=now_ms)
    return Oracle(sink, stats.events, stats.dead_letters)


# -- decision checks


def cluster_derived(d: dict) -> bool:
    return "CLUSTER_MEMBER" in d["reasons"] or "CLUSTER_FP" in d["reasons"]


def strip(d: dict) -> bytes:
    return orjson.dumps({k: v for k, v in d.items() if not k.startswith("_")}, option=orjson.OPT_SORT_KEYS)


@dataclass
class Coverage:
    want: int                      # account-keyed decisions replay produces
    missing: list[dict]            # ... that the worker never published
    changed: list[tuple[dict, dict]]  # same id, different content than replay (want, got)
    dup_ids: int                   # ids published more than once
    dup_conflicts: list[str]       # ids published more than once with different content
    extra: list[dict]              # account-keyed decisions published that replay does not produce
    published: int
    cluster_agreement: float
    cluster_counts: tuple[int, int]

    def line(self) -> str:
        a, b = self.cluster_counts
        return (f"account-keyed decisions: replay {self.want}, missing {len(self.missing)}, changed "
                f"{len(self.changed)}, spurious {len(self.extra)}; published {self.published} records, "
                f"{self.dup_ids} ids more than once ({len(self.dup_conflicts)} with differing content); "
                f"cluster-derived (scope, value, action) agreement {self.cluster_agreement:.3f} ({a}/{b})")


def coverage(expected: list[dict], published: list[dict]) -> Coverage:
    want = {d["decision_id"]: d for d in expected if not cluster_derived(d)}
    by_id: dict[str, list[dict]] = {}
    for d in published:
        by_id.setdefault(d["decision_id"], []).append(d)
    conflicts = [i for i, ds in by_id.items() if len({strip(d) for d in ds}) > 1]
    dups = sum(1 for ds in by_id.values() if len(ds) > 1)
    missing = [d for i, d in want.items() if i not in by_id]
    changed = [(d, by_id[i][0]) for i, d in want.items() if i in by_id and strip(by_id[i][0]) != strip(d)]
    extra = [ds[0] for i, ds in by_id.items() if i not in want and not cluster_derived(ds[0])]
    cw = {(d["scope"], d["value"], d["action"]) for d in expected if cluster_derived(d)}
    cg = {(d["scope"], d["value"], d["action"]) for d in published if cluster_derived(d)}
    both = len(cw & cg)
    union = len(cw | cg)
    return Coverage(len(want), missing, changed, dups, conflicts, extra, len(published),
                    both / union if union else 1.0, (both, union))


def assert_account_keyed_identical(expected: list[dict], published: list[dict], what: str) -> Coverage:
    """The worker published replay's account-keyed decisions exactly: none lost, changed, spurious, or
    published twice with different content. `what` names the input in the message for an empty oracle."""
    cov = coverage(expected, published)
    print(cov.line())
    assert cov.want > 0, f"{what} must produce account-keyed decisions"
    assert not cov.missing, f"{len(cov.missing)} lost: {describe(cov.missing)}"
    assert not cov.changed and not cov.extra, (describe([a for a, _ in cov.changed]), describe(cov.extra))
    assert not cov.dup_conflicts
    return cov


def describe(ds: list[dict], n: int = 5) -> str:
    return "; ".join(f"{d['scope']}:{d['value']} {d['action']} @{d['ts']} {d['reasons']}" for d in ds[:n])


def counts(xs) -> dict:
    return dict(Counter(xs))


def wait_until(pred, timeout_s: float, every_s: float = 0.5, what: str = "condition") -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return time.monotonic() - t0
        time.sleep(every_s)
    raise HarnessError(f"{what} not reached in {timeout_s}s")


def heavy_feed(start_ms: int, prefix: str = "hv", accounts: int = 3, events: int = 150, every_ms: int = 60_000,
               canary: str = "", seed: int = 5) -> list[tuple[bytes, bytes]]:
    """Harvesters that run for hours (trace-elicitation prompts, large outputs), so that replay decides on
    each of them more than once (throttle, then escalations once the cooldown is over). `canary`, when
    given, is written into every prompt."""
    from app.emit.records import iso_ms
    from tests.traffic import TRACE_PROMPTS

    rng = random.Random(seed)
    day = 86_400_000
    out: list[tuple[int, str, dict]] = []
    for a in range(accounts):
        acct = f"{prefix}-{a}"
        for i in range(events):
            ts = start_ms + a * 7_000 + i * every_ms + rng.randrange(5_000)
            prompt = TRACE_PROMPTS[(a + i) % len(TRACE_PROMPTS)].format(n=i)
            if canary:
                prompt = f"{canary} {prompt} {canary}" if i % 2 else f"{prompt}\n{canary}: step by step"
            out.append((ts, acct, {
                "event_id": f"{acct}-{i}", "ts": iso_ms(ts), "account_id": acct,
                "account": {"created_at": iso_ms(start_ms - 400 * day), "kyc": "card", "tier": "build",
                            "signup_channel": "standard", "payment_fp": f"pf-{acct}", "billing_country": "US",
                            "email_domain_class": "freemail"},
                "org_id": f"org-{acct}",
                "client": {"ip": f"192.0.2.{10 + a}", "asn_type": "datacenter", "country": "US",
                           "ja4": f"t13d_{acct}", "access_path": "api"},
                "request": {"model": "model-a", "prompt": prompt, "input_tokens": 300, "thinking": True},
                "response": {"status": 200, "output_tokens": 12_000, "thinking_tokens": 6_000, "latency_ms": 1500},
            }))
    out.sort(key=lambda t: (t[0], t[1]))
    return [(acct.encode(), orjson.dumps(e)) for _, acct, e in out]
