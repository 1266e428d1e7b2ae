"""The operator's brakes on the real broker (issue 21): a worker process runs with the default rules, every
decision path's trigger is produced (tests/brakes.py places each path's decision just after a switch time
T), the rules or allowlist file is switched while the worker runs, then the events that make each path's
decision are produced.

- global shadow / every signal in shadow: no enforcing decision is published after the switch, on any
  path, and every path decides (shown as shadow) after it;
- an allowlist entry for each path's subjects: nothing allowlisted is enforced after the switch, lifts are
  enforced;
- stand-down of one cluster (with the real enforcer following the topic): exactly that cluster's live
  enforcing decisions are lifted (plus the earlier decisions on their keys it names), the enforcer lets
  its accounts and card through and still blocks another cluster's; a re-run publishes nothing;
- a broken rules file: rejected, the old rules kept, `distill_guard_rules_reload_failing` 1 while it is there;
- measured: a small simulated world (seed 2, 40,464 events), 15,000 events, switch to shadow, the other
  25,464: enforcing decisions published after the switch (0)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.drivers.replay import replay
from app.emit.sinks import ListSink
from app.enforce.table import DecisionTable, parse_ts_ms
from app.operate.standdown import Match, fold, plan
from app.rules.load import compile_rules, load_rules
from app.settings import DEFAULT_RULES, Settings
from tests.brakes import Scenario, actors, build, keyed
from tests.conftest import BOOTSTRAP, ROOT
from tests.enforce.enforcerproc import EnforcerProc, wait_for
from tests.faults.harness import (
    FaultWorker,
    add_summary,
    new_uid,
    read_all,
    read_json,
    release,
    start_worker,
    wait_group_done,
    wait_until,
)
from tests.integration.workerproc import free_port, produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MIN = 60_000


def doc() -> dict:
    return yaml.safe_load(DEFAULT_RULES.read_text())


def write_atomically(path: Path, data) -> None:
    """As an operator (or a ConfigMap) should: a new file renamed over the old one."""
    tmp = path.with_suffix(".new")
    tmp.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def reloads(w: FaultWorker) -> dict[str, float]:
    fams = {f.name: f for f in text_string_to_metric_families(w.metrics())}
    out = {s.labels["result"]: s.value for s in (fams["distill_guard_rules_reloads"].samples
                                                  if "distill_guard_rules_reloads" in fams else [])
           if s.name.endswith("_total")}
    failing = fams.get("distill_guard_rules_reload_failing")
    out["failing"] = failing.samples[0].value if failing else -1.0
    return out


class Run:
    """A worker with its own rules and allowlist files (reloaded every 0.5 s)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rules_path, self.allow_path = tmp / "rules.yaml", tmp / "allow.yaml"
        shutil.copy(DEFAULT_RULES, self.rules_path)
        self.allow_path.write_text("[]\n")
        self.w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port(), store="memory://",
                             extra_env={"DG_RULES": str(self.rules_path), "DG_ALLOWLIST": str(self.allow_path),
                                        "DG_RULES_RELOAD_S": "0.5"})

    def topics(self) -> list[str]:
        return [self.w.topic("requests"), *self.w.internal_topics()]

    def feed(self, records: list[tuple[bytes, bytes]], timeout_s: float = 300) -> None:
        produce(self.w.topic("requests"), records)
        wait_group_done(self.w, self.topics(), timeout_s=timeout_s)

    def switch(self, rules: dict | None = None, allow: list | None = None) -> float:
        """Write the new file(s) and wait until the worker has loaded them; the wall time it did."""
        ok = reloads(self.w).get("ok", 0)
        if allow is not None:
            write_atomically(self.allow_path, allow)
        if rules is not None:
            write_atomically(self.rules_path, rules)
        wait_until(lambda: reloads(self.w).get("ok", 0) > ok, 30, 0.2, "the new rules loaded")
        time.sleep(1.5)  # both files written: a second reload would have come by now
        return time.time()

    def decisions(self) -> list[dict]:
        return read_json(self.w.topic("decisions"))


def switch_at() -> int:
    """T two minutes ago (whole second): the decisions made before T are live by the enforcer's wall clock
    (the worker's throttles last an hour); the last events after it are ~20 minutes ahead of the clock."""
    return (int(time.time()) - 120) * 1000


def run_variant(tmp: Path, new_rules: dict | None, allowlist: bool) -> dict:
    rules = load_rules(DEFAULT_RULES)
    t = switch_at()
    sc = build(t, rules)
    r = Run(tmp)
    try:
        start_worker(r.w)
        r.feed(keyed(sc.before))
        before = r.decisions()
        switched = r.switch(new_rules, sc.allowlist() if allowlist else None)
        r.feed(keyed(sc.after))
        published = r.decisions()
        seen = {d["decision_id"] for d in before}
        after = [d for d in published if d["decision_id"] not in seen]
        out = {"scenario": sc, "T": t, "before": before, "after": after, "published": published, "run": r,
               "switched": switched, "reloads": reloads(r.w)}
    except BaseException:
        release(r.w)
        raise
    return out


def of_path(ds: list[dict], sc: Scenario, path: str) -> list[dict]:
    subjects = sc.paths[path].subjects()
    return [d for d in ds if (d["scope"], d["value"]) in subjects]


PATHS = ["account", "upgrade", "escalation", "cluster", "late_joiner", "reach_again", "weak_ring", "payment_ring",
         "cluster_escalation"]


# --------------------------------------------------------------------------------------- global shadow
@pytest.fixture(scope="module")
def shadow(tmp_path_factory, kafka_bootstrap):
    d = doc()
    d["mode"] = "shadow"
    res = run_variant(tmp_path_factory.mktemp("shadow"), d, allowlist=False)
    yield res
    release(res["run"].w)


def test_every_path_triggered_before_the_switch(shadow):
    """Each path's trigger is in force before the switch: the decisions it builds on were published
    enforced (the paths that continue a decision), and no path's own decision came early."""
    sc, before, t = shadow["scenario"], shadow["before"], shadow["T"]
    for path in ("upgrade", "escalation", "late_joiner", "reach_again", "cluster_escalation"):
        assert any(d["mode"] == "enforce" for d in of_path(before, sc, path)), path
    assert all(parse_ts_ms(d["ts"]) < t for d in before)


@pytest.mark.parametrize("path", PATHS)
def test_switch_to_shadow_between_trigger_and_decision(shadow, path):
    sc = shadow["scenario"]
    mine = of_path(shadow["after"], sc, path)
    assert mine, f"{path}: no decision after the switch"
    assert [d for d in mine if d["mode"] == "enforce"] == [], mine


def test_no_enforcing_decision_after_the_switch_to_shadow(shadow):
    after = shadow["after"]
    assert after and all(parse_ts_ms(d["ts"]) >= shadow["T"] for d in after)
    enforcing = [d for d in after if d["mode"] == "enforce"]
    add_summary("shadow switch, every path (tests/brakes.py)", f"{len(shadow['scenario'].events)} events, 9 paths",
                "rules switched to global shadow between each path's trigger and its decision",
                len(after), len(enforcing), "enforcing decisions published after the switch")
    assert enforcing == []


def run_cli(w: FaultWorker, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP, DG_DECISIONS_TOPIC=w.topic("decisions"))
    return subprocess.run([sys.executable, "-m", "app.cli", "stand-down", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def live(records: list[dict], now_ms: int) -> set[tuple[str, str, str]]:
    table = DecisionTable(10**6, clock=lambda: now_ms / 1000)
    for rec in records:
        table.apply(rec, now_ms)
    return {(s, v, a) for s, v in {(r["scope"], r["value"]) for r in records}
            for a in table.get(s, v, now_ms)}


HEADERS = {"account": "x-account-id", "payment_fp": "x-payment-fp", "device_id": "x-device-id"}


def enforced(e: EnforcerProc, scope: str, value: str) -> bool:
    """Whether the enforcer acts on a request naming only (scope, value): a block or challenge answers 403,
    a throttle 429 once its limit_rpm is used up (at most 7 requests: the scenario's throttles allow 6)."""
    headers = {HEADERS[scope]: value} if scope == "account" else {"x-account-id": "nobody", HEADERS[scope]: value}
    for _ in range(7):
        status, _, _ = e.get("/check/v1/messages", headers)
        if status in (403, 429):
            return True
    return False


def test_stand_down_lifts_exactly_the_live_enforcing_decisions_of_a_cluster(shadow, tmp_path):
    """The cluster with the most live enforcing decisions (the worker's clusters need not be replay's: links
    reach the cluster stage in another order), stood down with the real enforcer following the topic."""
    w = shadow["run"].w
    topic = w.topic("decisions")
    published = shadow["published"]
    now = int(time.time() * 1000)
    live_now, _ = fold(published, now)
    by_cluster: dict[str, list[dict]] = {}
    for d in live_now:
        if d.get("cluster_id"):
            by_cluster.setdefault(d["cluster_id"], []).append(d)
    cid, mine = max(sorted(by_cluster.items()), key=lambda kv: len(kv[1]))
    assert len(mine) >= 2, by_cluster
    others = [d for d in live_now if d.get("cluster_id") not in (None, cid)
              and (d["scope"], d["value"]) not in {(m["scope"], m["value"]) for m in mine}]
    also = plan(published, Match(cluster=cid), "r", "o", now).also_ended
    e = EnforcerProc(topic, free_port(), tmp_path / "enforcer.log")
    e.start()
    try:
        e.health_history(60)
        keys = sorted({(d["scope"], d["value"]) for d in mine})
        assert all(enforced(e, *k) for k in keys)
        raw_before = read_all(topic)
        assert len(raw_before) == len(published)
        at = {(r.partition, r.offset) for r in raw_before}

        args = ("--cluster", cid, "--reason", "wave was wrong", "--operator", "oncall-1", "--now", str(now))
        dry = run_cli(w, *args, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert f"{len(mine)} match (cluster {cid})" in dry.stdout and "dry run" in dry.stdout
        assert len([line for line in dry.stdout.splitlines() if "would lift" in line]) == len(mine)
        assert len(read_all(topic)) == len(published)  # nothing published

        res = run_cli(w, *args)
        assert res.returncode == 0, res.stderr
        assert f"lifted {len(mine)} decisions" in res.stdout
        assert len([line for line in res.stdout.splitlines() if "also ends" in line]) == len(also)
        raw = read_all(topic)
        new = [(r, orjson.loads(r.value)) for r in raw if (r.partition, r.offset) not in at]
        lifts = [x for _, x in new]
        assert {x["action"] for x in lifts} == {"lift"} and len(lifts) == len(mine)
        assert all(x["operator"] == "oncall-1" and x["note"] == "wave was wrong" and x["mode"] == "enforce"
                   and x["reasons"] == ["STAND_DOWN"] and x["cluster_id"] == cid for x in lifts)
        # each lift went where its decision is: same key, so the same partition (it follows it in the topic)
        part = {orjson.loads(r.value)["decision_id"]: r.partition for r in raw_before}
        by_key = {(d["scope"], d["value"], d["ts"]): d for d in mine}
        for rec, x in new:
            lifted = by_key[(x["scope"], x["value"], x["ts"])]
            assert rec.key.decode() == f"{x['scope']}:{x['value']}" and rec.partition == part[lifted["decision_id"]]
        # exactly the cluster's live enforcing decisions end, plus the earlier ones on their keys it named
        everything = [*published, *lifts]  # each key's records in order: a lift after its key's decisions
        gone = live(published, now) - live(everything, now)
        assert gone == {(d["scope"], d["value"], d["action"]) for d in [*mine, *also]}
        left = live(everything, now)
        # the enforcer applies them: a lifted key with nothing else live goes through; another cluster's
        # decisions are still enforced
        free = [k for k in keys if not any((k[0], k[1]) == (s, v) for s, v, _ in left)]
        assert free
        wait_for(lambda: not any(enforced(e, *k) for k in free), timeout_s=15, every_s=0.2)
        assert all(enforced(e, d["scope"], d["value"]) for d in others[:5])
        # a re-run finds nothing to lift and publishes nothing
        again = run_cli(w, "--cluster", cid, "--reason", "again", "--operator", "oncall-2", "--now", str(now))
        assert again.returncode == 0 and "nothing to lift" in again.stdout, again.stdout
        assert len(read_all(topic)) == len(raw)
        add_summary("stand-down of one cluster", f"{len(published)} decisions on the topic, {len(live_now)} live",
                    f"stand-down --cluster: {len(mine)} live enforcing decisions of the cluster", len(mine), 0,
                    f"exactly its {len(mine)} lifted ({len(also)} earlier decisions on their keys named and ended "
                    f"with them); the enforcer lets {len(free)} keys through, {min(5, len(others))} of other "
                    "clusters still enforced; a re-run publishes 0")
    finally:
        e.stop()


def test_a_broken_rules_file_keeps_the_old_rules_and_raises_the_flag(shadow):
    r = shadow["run"]
    before = reloads(r.w)
    assert before["failing"] == 0
    write_atomically(r.rules_path, "mode: enforce\nsignals: {}\n")
    wait_until(lambda: reloads(r.w).get("rejected", 0) > before.get("rejected", 0), 30, 0.2, "the file rejected")
    assert reloads(r.w)["failing"] == 1
    log = r.w.tail(200)
    assert "rules reload rejected, keeping the rules in force" in log and "required property" in log
    # the rules in force are still the shadow ones: a new harvester's decision is shadow
    harvester = next(a for a in actors() if a.path == "account")
    rename = {"ah-0": "bk-0", "org-ah0": "org-bk0", "ah-card": "bk-card", "192.0.2.10": "192.0.32.10"}
    harvester.plan = [tuple(rename.get(x, x) if isinstance(x, str) else x for x in step) for step in harvester.plan]
    seen = {d["decision_id"] for d in r.decisions()}
    r.feed(keyed(harvester.events(shadow["T"] + 30 * MIN)))
    new = [d for d in r.decisions() if d["decision_id"] not in seen and d["value"] == "bk-0"]
    assert new and {d["mode"] for d in new} == {"shadow"}, new
    time.sleep(2)
    assert reloads(r.w)["failing"] == 1  # still the broken file on disk
    write_atomically(r.rules_path, dict(doc(), mode="shadow"))
    wait_until(lambda: reloads(r.w)["failing"] == 0, 30, 0.2, "a valid file loaded")


# --------------------------------------------------------------------------------- every signal in shadow
@pytest.fixture(scope="module")
def signals(tmp_path_factory, kafka_bootstrap):
    d = doc()
    for s in d["signals"].values():
        s["shadow"] = True
    res = run_variant(tmp_path_factory.mktemp("signals"), d, allowlist=False)
    yield res
    release(res["run"].w)


@pytest.mark.parametrize("path", PATHS)
def test_every_signal_switched_to_shadow_between_trigger_and_decision(signals, path):
    mine = of_path(signals["after"], signals["scenario"], path)
    assert [d for d in mine if d["mode"] == "enforce"] == [], mine


def test_per_signal_shadow_reaches_the_members_of_a_cluster_decided_before(signals):
    reach = {(d["value"], d["mode"]) for d in of_path(signals["after"], signals["scenario"], "reach_again")}
    assert {("rr-3", "shadow"), ("rr-out", "shadow"), ("rr-dev", "shadow")} <= reach
    enforcing = [d for d in signals["after"] if d["mode"] == "enforce"]
    add_summary("every signal switched to shadow, every path", f"{len(signals['scenario'].events)} events",
                "every signal's shadow: true between each path's trigger and its decision",
                len(signals["after"]), len(enforcing), "enforcing decisions published after the switch")
    assert enforcing == []


# ------------------------------------------------------------------------------------------- allowlist
@pytest.fixture(scope="module")
def allowlisted(tmp_path_factory, kafka_bootstrap):
    res = run_variant(tmp_path_factory.mktemp("allow"), None, allowlist=True)
    yield res
    release(res["run"].w)


def named(sc: Scenario, d: dict) -> bool:
    entries = {(a["scope"], a["value"]) for a in sc.allowlist()}
    orgs = sc.orgs()
    if d["scope"] == "account":
        return ("account", d["value"]) in entries or ("org", orgs.get(d["value"], "")) in entries
    holders = sc.holders(parse_ts_ms(d["ts"])).get((d["scope"], d["value"]), set())
    return (d["scope"], d["value"]) in entries or any(
        ("account", a) in entries or ("org", orgs[a]) in entries for a in holders)


@pytest.mark.parametrize("path", PATHS)
def test_allowlist_entry_arriving_between_trigger_and_decision(allowlisted, path):
    sc = allowlisted["scenario"]
    mine = of_path(allowlisted["after"], sc, path)
    assert [d for d in mine if named(sc, d) and d["mode"] == "enforce" and d["action"] != "lift"] == []
    assert all(d["mode"] == "enforce" for d in mine if d["action"] == "lift")


def test_allowlist_lifts_and_leaves_the_others_decided(allowlisted):
    sc, after = allowlisted["scenario"], allowlisted["after"]
    lifts = [d for d in after if d["action"] == "lift"]
    assert {d["value"] for d in lifts} >= {"rr-3", "uh-0"} and {d["mode"] for d in lifts} == {"enforce"}
    others = {d["value"] for d in after if d["mode"] == "enforce" and d["action"] != "lift"}
    assert {"cr-1", "pr-1"} <= others
    leaked = [d for d in after if named(sc, d) and d["mode"] == "enforce" and d["action"] != "lift"]
    add_summary("allowlist entries, every path", f"{len(sc.events)} events",
                f"{len(sc.allowlist())} allowlist entries between each path's trigger and its decision",
                len(after), len(leaked), "enforcing decisions on allowlisted subjects after the switch")


# ------------------------------------------------------------------------------ measured: a simulated world
WORLD_SEED = 2
BEFORE_SWITCH = 15_000


class _Tail:
    """A simulation without its first `skip` events (what app.sim.publish.publish sends after the switch)."""

    def __init__(self, sim, skip: int) -> None:
        self.sim, self.skip, self.total = sim, skip, sim.total - skip

    def events(self):
        return itertools.islice(self.sim.events(), self.skip, None)


@pytest.mark.parametrize("seed", [WORLD_SEED])
def test_measured_no_enforcing_decision_after_a_switch_to_shadow(tmp_path, kafka_bootstrap, seed):
    from app.sim.generator import build as build_sim
    from app.sim.publish import publish
    from app.sim.worlds import draw

    def sim():  # a Simulation's events are single use: a fresh one for each pass
        return build_sim(draw(seed, "small"), seed)

    total = sim().total
    assert total - BEFORE_SWITCH >= 20_000
    r = Run(tmp_path)
    try:
        start_worker(r.w)
        settings = Settings(bootstrap_servers=BOOTSTRAP, requests_topic=r.w.topic("requests"))
        sent, _ = publish(sim(), settings, limit=BEFORE_SWITCH)
        assert sent == BEFORE_SWITCH
        wait_group_done(r.w, r.topics(), timeout_s=600)
        before = r.decisions()
        d = doc()
        d["mode"] = "shadow"
        r.switch(d)
        sent_after, _ = publish(_Tail(sim(), BEFORE_SWITCH), settings)
        wait_group_done(r.w, r.topics(), timeout_s=900)
        seen = {x["decision_id"] for x in before}
        after = [x for x in r.decisions() if x["decision_id"] not in seen]
        code = r.w.stop()
    finally:
        release(r.w)
    # what the same traffic would have enforced after the switch without it (replay, default rules)
    events = tmp_path / "events.jsonl"
    stamps = []
    with events.open("wb") as f:
        for ts, _, data in sim().events():
            f.write(data + b"\n")
            stamps.append(ts)
    sink = ListSink()
    replay(events, compile_rules(doc(), "<default>"), sink, content_jobs=0)
    cut = max(stamps[:BEFORE_SWITCH])
    would = [x for x in sink.decisions if x.ts_ms > cut and x.mode == "enforce"]
    decided_before = {x.get("cluster_id") for x in before if x.get("cluster_id")}
    fanout = [x for x in after if "CLUSTER_MEMBER" in x["reasons"] and x.get("cluster_id") in decided_before]
    enforcing = [x for x in after if x["mode"] == "enforce"]
    add_summary("shadow switch on a simulated world", f"world {seed} (small): {BEFORE_SWITCH:,} events, switch, "
                f"{sent_after:,} more", "rules switched to global shadow mid-stream", len(after), len(enforcing),
                f"decisions after the switch: {len(after)} ({len(fanout)} fan-out to members of clusters decided "
                f"before it); replay without the switch enforces {len(would)} of them; before it "
                f"{len(before)} decisions")
    print(f"world {seed}: {BEFORE_SWITCH} + {sent_after} events; before the switch {len(before)} decisions; after "
          f"{len(after)} ({len(fanout)} cluster fan-out to members of clusters decided before), "
          f"{len(enforcing)} enforcing; replay without a switch: {len(would)} enforcing after the cut")
    assert code == 0
    assert sent_after >= 20_000
    assert len(would) > 0, "the world enforces after the cut without a switch: the measurement means something"
    assert after, "decisions were made after the switch (as shadow)"
    assert enforcing == [], enforcing[:5]

