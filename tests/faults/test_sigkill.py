"""Crash recovery with real RocksDB state, three scenarios:

1. `run`: a few thousand events; the worker is killed with SIGKILL at random points (three times while
   processing, once during start-up/recovery), restarted each time with the same app id and data
   directory, then left to finish. What it publishes must cover every account-keyed decision replay makes
   for the same file (at-least-once: a decision may come twice, with the same content).
2. `recovery`: everything committed, then SIGKILL and the data directory deleted, so the tables can only
   come back from their changelog topics; harvesters' windows and escalation must continue as in replay.
3. `reprocess`: scenario 1's failure made deterministic (offsets committed only every two minutes, so the
   kill always leaves a consumed batch uncommitted).

Scenarios 1 and 3 exercise re-delivery: Faust re-delivers what was consumed after the last committed
offset, whose effect the tables may already hold. Every state key remembers the position of the last
input it applied (app/drivers/faust_store.py), so the worker skips those instead of counting them twice."""

from __future__ import annotations

import contextlib
import random
import shutil
import time

import orjson
import pytest

from app.ingest.parse import parse_ts
from tests.faults.harness import (
    FaultWorker,
    HarnessError,
    OutputWatch,
    add_summary,
    cluster_derived,
    coverage,
    describe,
    fault_seed,
    group_lag,
    heavy_feed,
    keyed,
    list_topics,
    new_uid,
    oracle,
    read_json,
    release,
    smoke_events,
    start_worker,
    wait_group_done,
    wait_until,
)
from tests.integration.workerproc import free_port, produce
from tests.traffic import build

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# (records of the smoke day, SIGKILLs): the CI run, and a longer one for `make test-stress`
RUNS = [pytest.param((3000, 4), id="4-kills"), pytest.param((12000, 10), id="10-kills", marks=pytest.mark.stress)]


def _ts(raw: bytes) -> int:
    return parse_ts(orjson.loads(raw)["ts"], "ts")


@pytest.fixture(scope="module", params=RUNS)
def run(request, tmp_path_factory, kafka_bootstrap, rules):
    smoke_n, kills_n = request.param
    seed = fault_seed()
    rng = random.Random(seed)
    tmp = tmp_path_factory.mktemp("sigkill")
    smoke = keyed(smoke_events(tmp, smoke_n))
    # the small hand-made traffic (two heavy harvesters that escalate, a ring, ordinary users) laid over
    # the first hour of the smoke day, merged in time order
    extra, roles = build(_ts(smoke[0][1]))
    feed = [r for _, r in sorted(((_ts(v), i), (k, v)) for i, (k, v) in enumerate(smoke + extra))]
    now_ms = int(time.time() * 1000)
    want = oracle(tmp, feed, rules, now_ms)

    uid = new_uid()
    # the worker's own group settings (static membership, Faust's 60 s session timeout): what a deployment
    # sees after a crash, and what the restart timing below measures
    w = FaultWorker(uid, tmp / "state", tmp / "worker.log", free_port(), fast_group=False)
    kills: list[dict] = []
    restarts: list[dict] = []  # per restart: seconds from the new process to its first output
    t_start = time.monotonic()
    watch = None
    try:
        for k in range(kills_n):
            t0, before = time.monotonic(), watch.count() if watch else 0
            start_worker(w)
            if k == 0:  # the worker creates its topics on start
                produce(w.topic("requests"), feed)
                watch = OutputWatch(w)
            first = {}

            def progressed(t: int, k=k, watch=watch, first=first, t0=t0, before=before) -> bool:
                if k and "s" not in first and watch.count() > before:
                    first["s"] = time.monotonic() - t0
                return w.consumed() >= t and (t == 0 or not k or "s" in first)

            # one kill lands during start-up/recovery, the others after a random amount of processing (and,
            # after a restart, once the worker has published again)
            target = 0 if k == 2 else rng.randint(150, 600)
            with contextlib.suppress(HarnessError):  # input exhausted or slow start: kill wherever it is
                wait_until(lambda t=target: progressed(t), 90, 0.2, f"life {k}: {target} records consumed")
            if k and target:
                restarts.append({"life": k, "first_output_s": first.get("s")})
            time.sleep(rng.uniform(0.0, 0.6))
            consumed = w.consumed()
            rss = w.rss_kb()
            uncommitted = group_lag(w.app_id, [w.topic("requests")])
            kill_ms = int(time.time() * 1000)
            w.kill9()
            kills.append({"life": k, "target": target, "consumed": consumed, "rss_kb": rss, "at_ms": kill_ms})
            print(f"SIGKILL #{k + 1}: after {consumed:.0f} records consumed in this life (target {target}), "
                  f"{uncommitted} input records not committed yet, RSS {rss // 1024} MiB")
        t0, before = time.monotonic(), watch.count()
        backlog = group_lag(w.app_id, [w.topic("requests")])
        start_worker(w)
        wait_until(lambda: watch.count() > before, 120, 0.1, "first output after the last restart")
        first_s = time.monotonic() - t0  # from the new process, not from when its metrics came up
        took = wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=240)
        caught_up_s = time.monotonic() - t0 - 1.0  # wait_group_done's second clean check is 1 s after the first
        restarts.append({"life": kills_n, "first_output_s": first_s, "caught_up_s": caught_up_s,
                         "backlog": backlog})
        final = w.counters()
        rss = w.rss_kb()
        got = read_json(w.topic("decisions"))
        alerts = read_json(w.topic("alerts"))
        code = w.stop()
    finally:
        if watch is not None:
            watch.close()
        release(w)
    print(f"finished {took:.1f}s after the last restart; {time.monotonic() - t_start:.0f}s in all")
    print("restarts: " + "; ".join(f"life {r['life']}: first output {_s(r['first_output_s'])}"
                                   + (f", caught up with {r['backlog']} records {r['caught_up_s']:.1f}s"
                                      if "caught_up_s" in r else "") for r in restarts))
    yield {"want": want, "got": got, "alerts": alerts, "kills": kills, "final": final, "rss": rss,
           "exit": code, "log": w.tail(), "roles": roles, "feed": feed, "seed": seed, "restarts": restarts}


def _restart_figures(restarts: list[dict]) -> str:
    firsts = [r["first_output_s"] for r in restarts if r["first_output_s"] is not None]
    last = restarts[-1]
    return (f"{min(firsts):.1f}-{max(firsts):.1f}s ({len(firsts)} of {len(restarts)} restarts), to caught up "
            f"{last['caught_up_s']:.1f}s ({last['backlog']} records behind)" if firsts else "none seen")


def _s(v: float | None) -> str:
    return "none seen" if v is None else f"{v:.1f}s"


@pytest.fixture(scope="module")
def cov(run):
    c = coverage(run["want"].decisions, run["got"])
    print(c.line())
    print("lost: " + describe(c.missing, 8))
    print("spurious: " + describe(c.extra, 8))
    lost = len(c.missing)
    n = len(run["kills"])
    add_summary(f"SIGKILL x{n} (RocksDB state)", f"{len(run['feed'])} events, smoke+heavy, all produced up front",
                f"{n} x SIGKILL ({n - 1} mid-stream, 1 in start-up), restart same app id + data dir",
                len(run["feed"]), f"{lost} of {c.want} account decisions",
                f"{c.dup_ids} dup ids ({len(c.dup_conflicts)} differing), {len(c.changed)} changed, "
                f"{len(c.extra)} spurious; cluster agreement {c.cluster_agreement:.2f}; restart to first output "
                f"{_restart_figures(run['restarts'])}")
    return c


# After a SIGKILL and a restart, the new process's first output (alert, decision or dead letter), from its
# start: issue 18's 15 s for the median restart, and RESTART_MAX_S for every one (the machine is two cores
# shared with the broker and other sessions' runs: at load 7 one restart in five took 23-28 s). Both are
# far under the 60 s a restart cost while it waited for the killed process's group membership to expire,
# so a return to that fails. The backlog left by the last kill drained within DRAIN_BOUND_S. Measured
# figures: tests/faults/README.md.
RESTART_BOUND_S = 15.0
RESTART_MAX_S = 40.0
DRAIN_BOUND_S = 120.0


def test_output_resumes_within_the_bound_after_every_restart(run):
    """A restarted worker takes its partitions back at once (static group membership) and compiles its cue
    regexes between batches, so it publishes again within seconds, not after the broker has expired the
    killed process's membership (60 s)."""
    measured = sorted(r["first_output_s"] for r in run["restarts"] if r["first_output_s"] is not None)
    assert len(run["restarts"]) >= 3 and len(measured) == len(run["restarts"]), run["restarts"]
    assert measured[len(measured) // 2] <= RESTART_BOUND_S, run["restarts"]
    assert measured[-1] <= RESTART_MAX_S, run["restarts"]


def test_the_backlog_drains_after_the_last_restart(run):
    last = run["restarts"][-1]
    assert last["backlog"] > 0, last  # the last restart had input left to catch up with
    assert last["caught_up_s"] <= DRAIN_BOUND_S, last


def test_worker_restarts_after_every_kill_and_finishes(run):
    assert len(run["kills"]) >= 3
    assert sum(1 for k in run["kills"] if k["consumed"] > 0) >= 3, run["kills"]
    assert run["exit"] == 0, run["log"]


def test_no_account_keyed_decision_is_lost(cov):
    assert cov.want, "the feed must produce account-keyed decisions"
    assert not cov.missing, f"{len(cov.missing)} lost: {describe(cov.missing)}"


def test_duplicates_carry_identical_content(cov):
    assert not cov.dup_conflicts, cov.dup_conflicts[:5]


def test_account_keyed_decisions_match_replay_exactly(cov):
    """No decision replay would not make, and none with different content under a replay id: a record
    processed again after a crash must not count twice in the account's windows."""
    assert not cov.changed, [(a["decision_id"], a["action"], b["action"]) for a, b in cov.changed[:5]]
    assert not cov.extra, f"{len(cov.extra)} spurious: {describe(cov.extra)}"


def test_account_alerts_are_replays(run):
    """Alerts are what analysts read: every account-scoped alert replay raises is published, and none other,
    whatever the kills interrupted (a repeated alert keeps its id)."""
    want = {a.alert_id for a in run["want"].sink.alerts if a.scope == "account"}
    got = {a["alert_id"] for a in run["alerts"] if a["subject"]["scope"] == "account"}
    print(f"account alerts: replay {len(want)}, published {len(got)}")
    assert want, "the feed must produce account alerts"
    assert not want - got, f"{len(want - got)} lost: {sorted(want - got)[:5]}"
    assert not got - want, f"{len(got - want)} extra: {sorted(got - want)[:5]}"


def test_cluster_derived_decisions_agree_on_decided_subjects(run, cov):
    """Cluster state spans partitions, so after the restarts a cluster threshold can trip on another event
    than in replay, and the action reached can differ. Which accounts and values get decided must stay
    what replay decides, to the bound tests/integration asserts without crashes (>= 0.8)."""
    want = {(d["scope"], d["value"]) for d in run["want"].decisions if cluster_derived(d)}
    got = {(d["scope"], d["value"]) for d in run["got"] if cluster_derived(d)}
    subjects = len(want & got) / len(want | got) if want | got else 1.0
    print(f"cluster-derived decided subjects agreement {subjects:.3f} ({len(want & got)}/{len(want | got)}); "
          f"(scope, value, action) agreement {cov.cluster_agreement:.3f} {cov.cluster_counts}")
    assert want, "the feed must produce cluster-derived decisions"
    assert subjects >= 0.8, (sorted(want - got)[:5], sorted(got - want)[:5])


# -- changelog recovery without reprocessing: everything committed, then SIGKILL and the data directory
#    wiped, so the tables can only come back from their changelog topics


def _split(feed: list[tuple[bytes, bytes]], at_ms: int):
    a = [r for r in feed if _ts(r[1]) < at_ms]
    return a, feed[len(a):]


@pytest.fixture(scope="module")
def recovery(tmp_path_factory, kafka_bootstrap, rules):
    tmp = tmp_path_factory.mktemp("recovery")
    now_ms = int(time.time() * 1000)
    start = now_ms - 6 * 3_600_000
    feed = heavy_feed(start, prefix="rc")
    first, second = _split(feed, start + 50 * 60_000)  # replay: throttle at ~19 min, escalation at ~80 min
    want = oracle(tmp, feed, rules, now_ms)
    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port())
    try:
        start_worker(w)
        produce(w.topic("requests"), first)
        wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=120)
        kill_ms = int(time.time() * 1000)
        w.kill9()
        files = sum(1 for _ in (tmp / "state").rglob("*"))
        shutil.rmtree(tmp / "state")
        print(f"SIGKILL after {len(first)} records, all committed; wiped the data dir ({files} files)")
        start_worker(w)
        produce(w.topic("requests"), second)
        wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=120)
        got = read_json(w.topic("decisions"))
        changelogs = list_topics(f"{w.app_id}-")
        code = w.stop()
    finally:
        release(w)
    c = coverage(want.decisions, got)
    print("changelog recovery: " + c.line())
    add_summary("SIGKILL at rest + data dir wiped", f"{len(feed)} events, 3 harvesters over 2.5 h of event time",
                "1 x SIGKILL once all was committed, RocksDB dir deleted, restart", len(feed),
                f"{len(c.missing)} of {c.want} account decisions", f"{len(c.extra)} spurious, {len(c.changed)} changed")
    return {"want": want, "got": got, "cov": c, "kill_ms": kill_ms, "exit": code, "changelogs": changelogs}


def test_tables_come_back_from_changelogs_and_windows_continue(recovery):
    c = recovery["cov"]
    assert any(t.endswith("-changelog") for t in recovery["changelogs"]), recovery["changelogs"]
    assert c.want >= 6 and not c.missing and not c.changed and not c.extra, c.line()
    # the escalated decisions (second offence: TTL doubled, 1 h output-token window full of pre-restart
    # events) were published by the restarted worker, whose local state started empty
    after = [d for d in recovery["got"] if d["_ts"] > recovery["kill_ms"] and d["scope"] == "account"]
    escalated = [d for d in after if d["ttl_s"] > 3600 and "ACCT_OUTPUT_TOKENS_1H" in d["reasons"]]
    assert len({d["value"] for d in escalated}) == 3, [(d["value"], d["ttl_s"], d["reasons"]) for d in after]
    assert recovery["exit"] == 0


# -- the same at-least-once reprocessing, made deterministic: the worker commits offsets only every
#    two minutes, so a SIGKILL a few seconds after it consumed a batch always leaves that batch
#    uncommitted (while its table updates already reached the changelog)


@pytest.fixture(scope="module")
def reprocess(tmp_path_factory, kafka_bootstrap, rules):
    tmp = tmp_path_factory.mktemp("reprocess")
    now_ms = int(time.time() * 1000)
    start = now_ms - 6 * 3_600_000
    feed = heavy_feed(start, prefix="rp", events=40)
    first, second = _split(feed, start + 15 * 60_000)  # replay decides on each account at ~19 min
    want = oracle(tmp, feed, rules, now_ms)
    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port(),
                    extra_env={"BROKER_COMMIT_INTERVAL": "120"})
    try:
        start_worker(w)
        produce(w.topic("requests"), first)
        # through every stage, not only consumed: the account stage waits for the cue warm-up at start,
        # which under load outlasts a fixed sleep after consumption (the kill then found nothing applied)
        wait_until(lambda: w.finished() >= len(first), 120, 0.2, "first batch through every stage")
        time.sleep(3)  # held state is written within DG_STATE_FLUSH_MS (1 s) of its batch
        uncommitted = group_lag(w.app_id, [w.topic("requests")])
        w.kill9()
        if uncommitted != len(first):
            raise HarnessError(f"the kill must leave the batch uncommitted: {uncommitted} of {len(first)}")
        w.extra_env = {}  # the restarted worker commits as usual
        start_worker(w)
        produce(w.topic("requests"), second)
        wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=120)
        skipped = w.counters()["skipped"]
        got = read_json(w.topic("decisions"))
        code = w.stop()
    finally:
        release(w)
    c = coverage(want.decisions, got)
    print(f"re-delivered inputs skipped as already applied: {skipped:.0f}")
    print(f"reprocessing after SIGKILL ({uncommitted} of {len(first)} records uncommitted): " + c.line())
    add_summary("SIGKILL with an uncommitted batch", f"{len(feed)} events, 3 harvesters",
                f"1 x SIGKILL {uncommitted} records after the last commit (commit interval 120 s)", len(feed),
                f"{len(c.missing)} of {c.want} account decisions",
                f"{len(c.extra)} spurious, {len(c.changed)} changed; {skipped:.0f} re-delivered inputs skipped")
    return {"cov": c, "uncommitted": uncommitted, "first": first, "exit": code, "skipped": skipped}


def test_reprocessed_records_do_not_count_twice(reprocess):
    c = reprocess["cov"]
    # the uncommitted batch really was delivered again, and its inputs were recognised as applied
    assert reprocess["skipped"] >= reprocess["uncommitted"], reprocess["skipped"]
    assert c.want and not c.missing and not c.extra and not c.changed, c.line()
    assert reprocess["exit"] == 0
