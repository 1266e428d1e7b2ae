"""`distill-guard feedback` without a broker: the verdict it builds (--dry-run prints it), its checks, and how a
decision id resolves to the subject a verdict is about."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from app.feedback.cli import find_decision
from app.feedback.wire import decision_subject, parse_verdict
from app.policy.feedback import Verdict
from tests.conftest import ROOT


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "USER": "ana", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    return subprocess.run([sys.executable, "-m", "app.cli", "feedback", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_dry_run_prints_a_valid_verdict_and_publishes_nothing(schemas):
    r = cli("--account", "acct-7", "--false-positive", "--note", "a lab's eval harness", "--ts",
            "2026-02-01T13:15:00Z", "--expires", "7d", "--dry-run")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert Draft202012Validator(schemas["feedback"]).is_valid(doc)
    assert doc["subject"] == {"scope": "account", "value": "acct-7"}
    assert doc["verdict"] == "false_positive" and doc["analyst"] == "ana"
    assert doc["ts"] == "2026-02-01T13:15:00.000Z" and doc["expires_at"] == "2026-02-08T13:15:00.000Z"
    assert "dry run" in r.stderr
    # the same arguments name the same verdict (a re-run after a failed publish is applied once)
    again = cli("--account", "acct-7", "--false-positive", "--note", "a lab's eval harness", "--ts",
                "2026-02-01T13:15:00Z", "--expires", "7d", "--dry-run")
    assert json.loads(again.stdout)["verdict_id"] == doc["verdict_id"]
    assert isinstance(parse_verdict(r.stdout.strip().encode()), Verdict)


def test_confirmed_cluster_with_an_absolute_expiry_and_analyst():
    r = cli("--cluster", "cl_abc", "--confirmed", "--note", "one operator", "--analyst", "bo", "--ts",
            "1769951700000", "--expires", "2026-03-01T00:00:00Z", "--dry-run")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["verdict"], doc["subject"]["scope"], doc["analyst"], doc["expires_at"]) == (
        "confirmed", "cluster", "bo", "2026-03-01T00:00:00.000Z")


@pytest.mark.parametrize("args,needle", [
    (("--account", "a", "--confirmed", "--note", "x", "--expires", "2020-01-01T00:00:00Z", "--ts",
      "2026-02-01T00:00:00Z"), "expires_at: must be after ts"),
    (("--account", "a", "--confirmed", "--note", "x", "--expires", "soon"), "--expires"),
    (("--account", "a", "--confirmed", "--note", ""), "note"),
    (("--account", "a", "--cluster", "c", "--confirmed", "--note", "x"), "not allowed with"),
    (("--account", "a", "--note", "x"), "one of the arguments"),
])
def test_bad_arguments_are_refused_before_anything_is_published(args, needle):
    r = cli(*args, "--dry-run")
    assert r.returncode == 2
    assert needle in r.stderr


def test_a_decision_resolves_to_its_account_or_its_values_cluster():
    topic = [{"decision_id": "dc_1", "scope": "account", "value": "a1", "action": "block", "cluster_id": "cl_9"},
             {"decision_id": "dc_2", "scope": "payment_fp", "value": "card", "action": "challenge",
              "cluster_id": "cl_9"},
             {"decision_id": "dc_3", "scope": "payment_fp", "value": "card", "action": "challenge"},
             {"decision_id": "dc_l", "scope": "account", "value": "a1", "action": "lift"}]
    rec = find_decision(topic, "dc_1")
    assert decision_subject(rec["scope"], rec["value"], rec.get("cluster_id")) == ("account", "a1")
    rec = find_decision(topic, "dc_2")
    assert decision_subject(rec["scope"], rec["value"], rec.get("cluster_id")) == ("cluster", "cl_9")
    rec = find_decision(topic, "dc_3")
    assert decision_subject(rec["scope"], rec["value"], rec.get("cluster_id")) is None
    assert find_decision(topic, "dc_l") is None  # a lift is not a decision anyone gives a verdict on
    assert find_decision(topic, "dc_nope") is None
