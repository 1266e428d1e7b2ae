"""Worker and replay on traffic no rule was tuned on: the first 10,000 events of randomised world 14 (an
even, reporting seed; campaigns, proxy resellers and the benign traps) through the real broker.

What holds (docs/design.md, "Worker and replay"): the account-keyed decisions are identical, ids and
content; the decided subjects agree at least 0.99 over all decisions (issue 18's target). Decisions a
cluster gives its members and values carry the cluster's id and the id of the alert that decided it, and
the worker's cluster stage sees links in the order six partitions deliver them, so their ids, times and
steps may differ: the test prints those agreements and bounds the strongest enforced action per subject."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.faults.harness import assert_account_keyed_identical, drain_through_worker, keyed, oracle

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WORLD_SEED = 14
EVENTS = 10_000
STEP = {"throttle": 1, "challenge": 2, "block": 3}


@pytest.fixture(scope="module")
def world(tmp_path_factory, kafka_bootstrap, rules):
    tmp = tmp_path_factory.mktemp("world")
    out = tmp / "sim"
    subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--world", str(WORLD_SEED), "--out", str(out)],
                   check=True, capture_output=True, timeout=300, cwd=ROOT)
    lines = [ln for ln in (out / "events.jsonl").read_bytes().splitlines() if ln.strip()][:EVENTS]
    feed = keyed(lines)
    want = oracle(tmp, feed, rules, int(time.time() * 1000), name="world")
    run = drain_through_worker(tmp, feed)
    return {"want": want, "got": run.decisions, "counters": run.counters, "exit": run.exit, "feed": feed,
            "log": run.log}


def _strongest(decisions: list[dict]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for d in decisions:
        if d["mode"] == "enforce" and d["action"] in STEP:
            k = (d["scope"], d["value"])
            out[k] = max(out.get(k, 0), STEP[d["action"]])
    return out


def test_every_event_is_accounted_for(world):
    c = world["counters"]
    assert c["valid"] == world["want"].events == len(world["feed"])


def test_account_keyed_decisions_are_identical(world):
    assert_account_keyed_identical(world["want"].decisions, world["got"], "the world's first events")


def test_decided_subjects_agree(world):
    want, got = world["want"].decisions, world["got"]
    ws, gs = {(d["scope"], d["value"]) for d in want}, {(d["scope"], d["value"]) for d in got}
    subjects = len(ws & gs) / len(ws | gs)
    wi, gi = {d["decision_id"] for d in want}, {d["decision_id"] for d in got}
    sw, sg = _strongest(want), _strongest(got)
    same_step = sum(1 for k in sw.keys() | sg.keys() if sw.get(k) == sg.get(k)) / len(sw.keys() | sg.keys())
    print(f"world {WORLD_SEED}, {EVENTS} events: decisions replay {len(want)}, worker {len(got)}; decided subjects "
          f"agreement {subjects:.3f} ({len(ws & gs)}/{len(ws | gs)}; only replay {sorted(ws - gs)[:5]}, only "
          f"worker {sorted(gs - ws)[:5]}); strongest enforced step per subject equal {same_step:.3f}; "
          f"decision ids in common {len(wi & gi) / len(wi | gi):.3f}")
    assert len(ws) > 100, "the world's campaigns must be decided"
    assert subjects >= 0.99
    # the step can differ (a member whose own evidence arrives after its cluster's decision in one order
    # and before it in the other); measured 0.956 on this input
    assert same_step >= 0.85


def test_worker_stops_cleanly(world):
    assert world["exit"] == 0, world["log"]
