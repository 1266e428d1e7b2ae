"""Broker outage: while the worker is busy, the (single) broker is stopped with `deploy/kafka/kafka.sh down`
for about ten seconds and started again with `up`. The same worker process must reconnect and finish,
and what it publishes must still cover every account-keyed decision replay makes for the input.

The broker is brought back in a `finally` even when the test fails, so the rest of the suite (and any
other user of the development broker) gets it back."""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import (
    FaultWorker,
    HarnessError,
    add_summary,
    broker_up,
    coverage,
    describe,
    kafka_sh,
    keyed,
    new_uid,
    oracle,
    produce_all,
    read_json,
    release,
    smoke_events,
    start_worker,
    wait_group_done,
    wait_until,
)
from tests.integration.workerproc import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 2500
SKIP = 3000  # a different slice of the smoke day than the SIGKILL test
OUTAGE_S = 10


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap, rules):
    if "up" not in kafka_sh("status"):
        raise HarnessError("the broker on 127.0.0.1:9092 is not managed by deploy/kafka/kafka.sh: cannot restart it")
    tmp = tmp_path_factory.mktemp("broker")
    feed = keyed(smoke_events(tmp, EVENTS, skip=SKIP))
    now_ms = int(time.time() * 1000)
    want = oracle(tmp, feed, rules, now_ms)
    cut = len(feed) * 3 // 5
    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port())
    timeline: dict[str, float] = {}
    try:
        start_worker(w)
        pid = w.proc.pid
        produce_all(w.topic("requests"), feed[:cut])
        wait_until(lambda: w.consumed() >= 400, 120, 0.2, "400 records consumed")
        before = w.consumed()
        t0 = time.monotonic()
        kafka_sh("down")
        timeline["down_s"] = time.monotonic() - t0
        time.sleep(OUTAGE_S)
        timeline["outage_s"] = time.monotonic() - t0
        during = w.consumed()
        alive_during = w.alive()
        kafka_sh("up")
        timeline["up_s"] = time.monotonic() - t0
        produce_all(w.topic("requests"), feed[cut:])
        took = wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=300)
        timeline["done_s"] = time.monotonic() - t0
        same_process = w.alive() and w.proc.pid == pid
        final = w.counters()
        got = read_json(w.topic("decisions"))
        code = w.stop()
    finally:
        if not broker_up():
            kafka_sh("up")
        release(w)
    c = coverage(want.decisions, got)
    print(f"broker down at {before:.0f} consumed, {during:.0f} while down (worker alive: {alive_during}); "
          f"timeline {timeline}; finished {took:.0f}s after `up`")
    print(c.line())
    add_summary("broker stop/start", f"{len(feed)} events ({cut} before the outage, the rest after)",
                f"kafka.sh down, {OUTAGE_S} s, up (down took {timeline['down_s']:.0f}s, back after "
                f"{timeline['up_s']:.0f}s)", len(feed), f"{len(c.missing)} of {c.want} account decisions",
                f"same worker process: {same_process}; {c.dup_ids} dup ids ({len(c.dup_conflicts)} differing), "
                f"{len(c.extra)} spurious; cluster agreement {c.cluster_agreement:.2f}")
    return {"cov": c, "final": final, "same_process": same_process, "exit": code, "log": w.tail(),
            "feed": feed, "alive_during": alive_during}


def test_worker_survives_the_outage_and_finishes(run):
    assert run["alive_during"] and run["same_process"], run["log"]
    assert run["final"]["valid"] >= len(run["feed"])
    assert run["exit"] == 0, run["log"]


def test_no_account_keyed_decision_is_lost(run):
    c = run["cov"]
    assert c.want, "the feed must produce account-keyed decisions"
    assert not c.missing, f"{len(c.missing)} lost: {describe(c.missing)}"
    assert not c.dup_conflicts


def test_account_keyed_decisions_match_replay(run):
    c = run["cov"]
    assert not c.changed and not c.extra, c.line()
