"""Consumer-group rebalances under load: two workers of one app started together on a topic that already
holds a backlog, so the group rebalances (the second member joins) while the first is mid-batch, with
prompts analysed in a content process (DG_CONTENT_JOBS=1, the setting that made the batches long).

Faust (0.11-0.15) can lose records it has already fetched in such a rebalance, or deliver one twice: a
lost record is never acknowledged, the partition's committed offset stops at it for good while the worker
goes on, and the group never drains; or Faust commits past it and the account's state diverges. Before
the worker's input order guard (app/drivers/order.py) 4 of 9 such runs stalled, and the others lost
decisions. Each round here must drain completely (every input partition committed to its end), and what
the two workers published must cover every account-keyed decision replay makes, unchanged."""

from __future__ import annotations

import time

import pytest

from app.settings import Settings
from app.topics import TopicSpec, ensure_topics
from tests.conftest import BOOTSTRAP
from tests.faults.harness import (
    FaultWorker,
    add_summary,
    coverage,
    describe,
    keyed,
    new_uid,
    oracle,
    read_json,
    release,
    smoke_events,
    wait_group_done,
)
from tests.integration.workerproc import free_port, produce

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROUNDS = 2
EVENTS = 15000  # of the smoke day: several seconds of work for two workers


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, kafka_bootstrap, rules):
    tmp = tmp_path_factory.mktemp("rebalance")
    feed = keyed(smoke_events(tmp, EVENTS))
    want = oracle(tmp, feed, rules, int(time.time() * 1000))
    out = []
    for r in range(ROUNDS):
        uid = new_uid()
        ws = [FaultWorker(uid, tmp / f"state-{r}-{i}", tmp / f"worker-{r}-{i}.log", free_port(),
                          extra_env={"DG_CONTENT_JOBS": "1"}) for i in range(2)]
        try:
            # the backlog first, then both members at once: the group rebalances as the second one joins,
            # while the first is already working through the backlog
            ensure_topics(Settings(bootstrap_servers=BOOTSTRAP), [TopicSpec(ws[0].topic("requests"), 6)])
            produce(ws[0].topic("requests"), feed)
            for w in ws:
                w.start()
            for w in ws:
                w.wait_metrics(90)
            took = wait_group_done(ws[0], [ws[0].topic("requests"), *ws[0].internal_topics()], timeout_s=240)
            repairs = [_repairs(w) for w in ws]
            got = read_json(ws[0].topic("decisions"))
            codes = [w.stop() for w in ws]
        finally:
            for w in ws[1:]:
                if w.proc is not None and w.proc.poll() is None:
                    w.stop()
            release(ws[0])
        print(f"round {r}: drained in {took:.1f}s; input repairs {repairs}")
        out.append({"got": got, "took": took, "repairs": repairs, "codes": codes,
                    "logs": [w.tail() for w in ws]})
    return {"want": want, "feed": feed, "rounds": out}


def _repairs(w: FaultWorker) -> dict[str, float]:
    fam = w.families().get("distill_guard_input_repairs")
    out: dict[str, float] = {}
    for s in fam.samples if fam else []:
        if s.name.endswith("_total"):
            out[s.labels["kind"]] = out.get(s.labels["kind"], 0.0) + s.value
    return out


def test_every_round_drains_and_loses_no_account_keyed_decision(rounds):
    lost_total = 0
    for i, r in enumerate(rounds["rounds"]):
        c = coverage(rounds["want"].decisions, r["got"])
        print(f"round {i}: {c.line()}")
        assert r["codes"] == [0, 0], r["logs"]
        assert c.want, "the feed must produce account-keyed decisions"
        assert not c.missing, f"round {i}: {len(c.missing)} lost: {describe(c.missing)}"
        assert not c.changed, f"round {i}: {len(c.changed)} changed"
        assert not c.dup_conflicts, c.dup_conflicts[:5]
        lost_total += len(c.missing)
    filled = sum(rep.get("filled", 0) + rep.get("filled_overdue", 0) for r in rounds["rounds"] for rep in r["repairs"])
    add_summary("rebalance under load x2", f"{EVENTS} smoke events in the topic, 2 workers started together",
                f"{ROUNDS} x group rebalance (2 workers, content processes on)", EVENTS * ROUNDS,
                f"{lost_total} account decisions",
                f"every round drained; {filled:.0f} records Faust lost read back from the broker")
