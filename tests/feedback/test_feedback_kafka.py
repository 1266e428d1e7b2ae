"""Analysts' verdicts on the real broker: `distill-guard feedback` publishes, the worker applies (lifts,
escalation, known bad values), bad verdicts are dead-lettered, and the verdicts in force survive a restart
(the feedback table's changelog): after it the allowlist still holds, a replacement on the confirmed
campaign's card is still caught on its first request, and the same verdict published again changes nothing.

Traffic: tests/golden/replacement_on_decided_card (event times in February 2026: plausible for the worker's
clock), then events of 2026-02-02 and 2026-02-05 after the restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import orjson
import pytest
from jsonschema import Draft202012Validator

from tests.conftest import BOOTSTRAP, ROOT
from tests.feedback.test_feedback_core import BASE, CARD, TRACE, hydra
from tests.integration.workerproc import WorkerProc, free_port, produce, read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def feedback_cli(w: WorkerProc, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ) | {k: v for k, v in w.env.items() if k.startswith(("KAFKA_", "DG_"))} | {"USER": "ana"}
    r = subprocess.run([sys.executable, "-m", "app.cli", "feedback", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    return r


def wait_for(topic: str, pred, timeout_s: float = 90) -> list[dict]:
    """Records of `topic` once `pred(records)` holds (polling), else fail with what was there."""
    deadline = time.monotonic() + timeout_s
    recs: list[dict] = []
    while time.monotonic() < deadline:
        recs = read_topic(topic, 0, timeout_s=10, settle_s=1.0)
        if pred(recs):
            return recs
        time.sleep(1.0)
    raise AssertionError(f"{topic}: condition not met in {timeout_s}s; {len(recs)} records: "
                         f"{[(r.get('scope'), r.get('value'), r.get('action')) for r in recs][-20:]}")


def keyed(lines: list[str]) -> list[tuple[bytes, bytes]]:
    return [(json.loads(x)["account_id"].encode(), x.encode()) for x in lines]


def paced(topic: str, lines: list[str], gap_s: float = 0.4) -> None:
    """One event at a time, so that each has crossed the three stages before the next (the cluster then
    grows in the order replay sees; all at once, six partitions interleave its links differently)."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
    try:
        for key, value in keyed(lines):
            p.send(topic, key=key, value=value).get(timeout=30)
            time.sleep(gap_s)
    finally:
        p.close(10)


def test_verdicts_are_applied_by_the_worker_and_survive_a_restart(tmp_path, kafka_bootstrap, schemas):
    uid = uuid.uuid4().hex[:8]
    w = WorkerProc(uid, tmp_path / "state", tmp_path / "worker.log", free_port(),
                   extra={"DG_FEEDBACK_TOPIC": f"t{uid}.feedback", "DG_STATE_FLUSH_MS": "200"})
    dec_topic, fb_topic = w.topic("decisions"), w.topic("feedback")
    w.start()
    try:
        w.wait_metrics()
        paced(w.topic("requests"), BASE)
        before = wait_for(dec_topic, lambda rs: any(r["value"] == "hydra-04" and r["action"] == "challenge"
                                                    and r["ts"].startswith("2026-02-01T13:10") for r in rs), 120)
        h03_block = next(r for r in before if r["value"] == "hydra-03" and r["action"] == "block")

        # a false positive on hydra-02: its decisions and the card's lifted
        feedback_cli(w, "--account", "hydra-02", "--false-positive", "--note", "a customer we know",
                     "--ts", "2026-02-01T13:15:00Z", "--expires", "2026-03-01T00:00:00Z")
        lifts = wait_for(dec_topic, lambda rs: len([r for r in rs if r["action"] == "lift"]) >= 2)
        lifts = [r for r in lifts if r["action"] == "lift"]
        assert {(r["scope"], r["value"]) for r in lifts} == {("account", "hydra-02"), ("payment_fp", CARD)}
        assert all(r["reasons"] == ["ANALYST_FALSE_POSITIVE"] and r["ts"] == "2026-02-01T13:15:00.000Z"
                   and r["_key"] == f"{r['scope']}:{r['value']}" for r in lifts)

        # hydra-03 confirmed by naming its block decision: resolved from the decisions topic by the CLI
        r = feedback_cli(w, "--decision", h03_block["decision_id"], "--confirmed", "--note", "the operator",
                         "--ts", "2026-02-01T13:16:00Z", "--expires", "2026-03-01T00:00:00Z")
        published = json.loads(r.stdout)
        assert published["subject"] == {"scope": "account", "value": "hydra-03"}
        assert published["decision_id"] == h03_block["decision_id"]
        wait_for(dec_topic, lambda rs: any(r["value"] == "hydra-03" and r["reasons"] == ["ANALYST_CONFIRMED"]
                                           and r["action"] == "block" and r["ttl_s"] == 172800 for r in rs))

        # bad verdicts: dead-lettered with their reason, from the feedback topic
        produce(fb_topic, [(b"x", b"not json"),
                           (b"x", orjson.dumps({**published, "verdict_id": "v-bad", "verdict": "maybe"})),
                           (b"x", orjson.dumps({**published, "verdict_id": "v-nocl",
                                                "subject": {"scope": "cluster", "value": "cl_nope"}}))])
        dlq = wait_for(w.topic("dlq"), lambda rs: len(rs) >= 3)
        assert sorted(d["error"]["code"] for d in dlq) == ["bad_value", "not_json", "unknown_subject"]
        for d in dlq:
            assert d["source"]["topic"] == fb_topic
            assert Draft202012Validator(schemas["dlq"]).is_valid({k: v for k, v in d.items() if k != "_key"})
        n_before_restart = len(read_topic(dec_topic, 0, timeout_s=10, settle_s=2.0))
        assert w.stop() == 0

        # restart: same app id, data dir and topics
        w.start()
        w.wait_metrics()
        # the same verdict again: already applied (its record came back from the changelog)
        feedback_cli(w, "--account", "hydra-02", "--false-positive", "--note", "a customer we know",
                     "--ts", "2026-02-01T13:15:00Z", "--expires", "2026-03-01T00:00:00Z")
        later = [
            # the cluster's decision ended 02-02T13:10; a new member makes it decide again (a repeat)
            hydra("h9", "2026-02-02T14:00:00Z", "hydra-09", "2026-02-02T13:50:00Z"),
            # hydra-02 keeps going: allowlisted, nothing is enforced on it
            hydra("h2x", "2026-02-02T14:05:00Z", "hydra-02", "2026-02-01T09:05:00Z", TRACE),
            # 02-06: the cluster's state has expired (idle 3 days); a new account on the confirmed campaign's card
            hydra("r7", "2026-02-06T15:00:00Z", "hydra-07", "2026-02-06T14:50:00Z"),
            hydra("r7b", "2026-02-06T15:05:00Z", "hydra-07", "2026-02-06T14:50:00Z"),
        ]
        paced(w.topic("requests"), later)
        wait_for(dec_topic, lambda rs: any(r["value"] == "hydra-07" for r in rs), 120)
        after = read_topic(dec_topic, 0, timeout_s=10, settle_s=3.0)
        new = after[n_before_restart:]
        h07 = [r for r in new if r["value"] == "hydra-07"]
        assert [(r["action"], r["reasons"], r["ts"]) for r in h07] == [
            ("challenge", ["KNOWN_BAD_VALUE"], "2026-02-06T15:00:00.000Z")]
        assert any(r["value"] == "hydra-09" and r["mode"] == "enforce" for r in new), "the cluster decided again"
        assert not [r for r in new if r["value"] == "hydra-02" and r["mode"] == "enforce"]
        assert not [r for r in new if r["scope"] == "payment_fp"]
        assert not [r for r in new if r["action"] == "lift"]  # the verdict was not applied twice
        for r in after:
            assert Draft202012Validator(schemas["decision"]).is_valid({k: v for k, v in r.items() if k != "_key"})
    finally:
        w.stop()
        print(w.tail(400))
    assert kafka_bootstrap == BOOTSTRAP
