"""Rules and allowlist reload in a running worker, without a restart and without losing state.

Harvesters are decided in the first part of a run. Then, while the worker keeps running:
1. the rules file is overwritten with an invalid one: the reload is rejected, the worker keeps the rules
   it has and keeps working;
2. the rules file is switched to global shadow mode and one harvester is allowlisted: the reload is
   accepted. The allowlisted harvester gets a `lift` for its live decision on its next request (which
   needs its policy memory from before the reload: state kept), enforced although the rules are in shadow
   mode, and the others' later decisions are shadow decisions.
`distill_guard_rules_reload_failing` is 1 while the invalid file is on disk, 0 once a valid one loaded."""

from __future__ import annotations

import shutil
import time

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.ingest.parse import parse_ts
from app.settings import DEFAULT_RULES
from tests.faults.harness import (
    FaultWorker,
    heavy_feed,
    new_uid,
    read_json,
    release,
    start_worker,
    wait_group_done,
    wait_until,
)
from tests.integration.workerproc import free_port, produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _reloads(w: FaultWorker) -> dict[str, float]:
    fams = {f.name: f for f in text_string_to_metric_families(w.metrics())}
    fam = fams.get("distill_guard_rules_reloads")
    out = {s.labels["result"]: s.value for s in (fam.samples if fam else []) if s.name.endswith("_total")}
    failing = fams.get("distill_guard_rules_reload_failing")
    out["failing"] = failing.samples[0].value if failing else -1.0
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    tmp = tmp_path_factory.mktemp("reload")
    rules_path, allow_path = tmp / "rules.yaml", tmp / "allow.yaml"
    shutil.copy(DEFAULT_RULES, rules_path)
    allow_path.write_text("[]\n")
    now_ms = int(time.time() * 1000)
    start = now_ms - 6 * 3_600_000
    feed = heavy_feed(start, prefix="hr")
    cut = start + 50 * 60_000  # every harvester holds a live decision by then (throttle at ~19 min)
    first = [r for r in feed if parse_ts(orjson.loads(r[1])["ts"], "ts") < cut]
    second = feed[len(first):]
    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port(),
                    extra_env={"DG_RULES": str(rules_path), "DG_ALLOWLIST": str(allow_path),
                               "DG_RULES_RELOAD_S": "0.5"})
    try:
        start_worker(w)
        produce(w.topic("requests"), first)
        wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=120)
        before = read_json(w.topic("decisions"))

        rules_path.write_text("mode: sometimes\nsignals: 7\n")
        wait_until(lambda: _reloads(w).get("rejected", 0) >= 1, 30, 0.2, "invalid rules rejected")
        rejected_alive = w.alive()
        failing_while_invalid = _reloads(w)["failing"]

        doc = yaml.safe_load(DEFAULT_RULES.read_text())
        doc["mode"] = "shadow"
        rules_path.write_text(yaml.safe_dump(doc))
        allow_path.write_text(yaml.safe_dump([{"scope": "account", "value": "hr-0", "reason": "analyst verdict"}]))
        wait_until(lambda: _reloads(w).get("ok", 0) >= 1, 30, 0.2, "valid rules reloaded")
        time.sleep(2.0)  # both files are written; a last reload (files settle for 1 s) picks up the second
        produce(w.topic("requests"), second)
        wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=120)
        seen = {d["decision_id"] for d in before}
        after = sorted((d for d in read_json(w.topic("decisions")) if d["decision_id"] not in seen),
                       key=lambda d: d["ts"])
        counters = w.counters()
        reloads = _reloads(w)
        code = w.stop()
    finally:
        release(w)
    return {"before": before, "after": after, "counters": counters, "reloads": reloads, "exit": code,
            "rejected_alive": rejected_alive, "feed": feed, "log": w.tail(),
            "failing_while_invalid": failing_while_invalid}


def test_harvesters_were_decided_before_the_reload(run):
    decided = {d["value"] for d in run["before"] if d["scope"] == "account" and d["mode"] == "enforce"}
    assert {"hr-0", "hr-1", "hr-2"} <= decided, decided


def test_invalid_rules_are_rejected_and_the_worker_keeps_working(run):
    assert run["rejected_alive"]
    assert run["reloads"].get("rejected", 0) >= 1
    # distill_guard_rules_reload_failing: up while the invalid file was on disk, down once a valid one loaded
    assert (run["failing_while_invalid"], run["reloads"]["failing"]) == (1, 0)
    assert run["counters"]["valid"] == len(run["feed"])
    assert run["exit"] == 0, run["log"]


def test_allowlisted_account_is_lifted_with_its_state_kept(run):
    mine = [d for d in run["after"] if d["scope"] == "account" and d["value"] == "hr-0"]
    assert mine and mine[0]["action"] == "lift", [(d["action"], d["mode"]) for d in mine]
    assert "ALLOWLISTED" in mine[0]["reasons"]
    # made in shadow mode, and still enforced: the enforcer ignores shadow records, and this lift is how the
    # allowlisted account's enforced decision ends
    assert mine[0]["mode"] == "enforce"
    assert not [d for d in mine[1:] if d["mode"] == "enforce"], mine


def test_decisions_after_the_switch_to_shadow_mode_are_shadow(run):
    others = [d for d in run["after"] if d["scope"] == "account" and d["value"] in ("hr-1", "hr-2")]
    assert others, "the harvesters keep going after the reload and must be decided again"
    assert {d["mode"] for d in others} == {"shadow"}, [(d["value"], d["action"], d["mode"]) for d in others]
