"""When the fingerprint stage sends the cluster stage a link (app/detect/fingerprint.py, `link_due`): on a new
(account, value) edge, on a new level of the member's summary (each of its parts), and once per half the
cluster stage's idle TTL as a refresh; never for an observation that brings nothing new. The refresh keeps an
active member in its cluster past the TTL; replay's outputs equal those of a fingerprint stage that links on
every observation (the oracle) on the test traffic. (Not on every input: on the first 100,000 records of the
default day the oracle's decisions are the same but 16 cluster alerts of evidence only move, each link being
a moment the cluster is assessed again, with its members' exact request counts instead of powers of two.)"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

import app.detect.fingerprint as fingerprint
from app.detect.fingerprint import link_due, refresh_ms
from app.detect.messages import OWN_CONTENT, OWN_VOLUME, Observation, Summary
from app.drivers.replay import replay
from app.emit.sinks import ListSink
from app.rules.load import compile_rules
from app.rules.model import Rules
from app.stages.base import Output
from app.stages.cluster import ClusterStage
from app.stages.fingerprint import FingerprintStage
from tests.helpers import T0
from tests.traffic import build

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
HOUR = 3_600_000


@pytest.fixture
def rules() -> Rules:
    return compile_rules(yaml.safe_load(DEFAULT_YAML.read_text()), "default.yaml")


def summ(acct: str, org: str, n: int = 1, flagged: int = 0, own: int = 0, pivot: bool = False,
         first_ms: int = T0) -> Summary:
    return Summary(acct, org, first_ms, True, True, n, flagged, pivot, risky=True, own=own, throwaway=True)


class Feed:
    """One payment method (a strong value: every holder is linkable) seen by hand-made observations."""

    def __init__(self, rules: Rules, value: str = "pf-1") -> None:
        self.stage = FingerprintStage(rules)
        self.value = value
        self.k = 0

    def see(self, s: Summary, ts_ms: int) -> list:
        self.k += 1
        out = Output()
        self.stage.process(Observation("payment_fp", self.value, ts_ms, f"ev-{self.k}", s), out)
        return out.links

    def linked(self) -> Feed:
        """a (org-a) and b (org-b) on the value at T0: it links both."""
        assert self.see(summ("a", "org-a"), T0) == []  # one org: nothing to link yet
        links = self.see(summ("b", "org-b"), T0 + 1)
        assert sorted(lk.summary.account_id for lk in links) == ["a", "b"]
        # a was linked with what the value knew of it (a stub): its own next observation brings its summary
        assert [lk.summary for lk in self.see(summ("a", "org-a"), T0 + 1)] == [summ("a", "org-a")]
        return self


# ------------------------------------------------------------------------------------------ the rule
def test_the_rule_itself():
    period = 10
    assert link_due(5, -1, 3, 3, 0, period)  # never linked through this value: a new edge
    assert link_due(6, 5, 3, 2, 0, period)  # a new level
    assert not link_due(5, 5, 9, 2, 0, period)  # same level, same period
    assert link_due(5, 5, 10, 9, 0, period)  # first observation of the next period: a refresh
    assert not link_due(5, 5, 11, 10, 0, period)  # ... once
    assert link_due(5, 5, 35, 12, 0, period)  # back after a silence across periods: once
    assert not link_due(5, 5, 8, 12, 0, period)  # an observation out of order never refreshes
    assert not link_due(5, 5, 14, 12, 5, period)  # periods count from the account's first request
    assert link_due(5, 5, 15, 14, 5, period)


def test_the_refresh_is_half_the_cluster_ttl(rules):
    assert refresh_ms(rules) == rules.cluster.ttl_ms // 2 == 36 * HOUR


# --------------------------------------------------------------------- what the stage sends, and when
def test_a_new_edge_is_linked(rules):
    f = Feed(rules).linked()
    links = f.see(summ("c", "org-c"), T0 + 2)
    assert [lk.summary.account_id for lk in links] == ["c"]
    assert links[0].fp == "payment_fp:pf-1" and links[0].anchor == "a" and links[0].strong


def test_nothing_new_is_not_linked(rules):
    f = Feed(rules).linked()
    for k in range(1, 50):  # the same summary, again and again within the period
        assert f.see(summ("a", "org-a"), T0 + k * 60_000) == []
    # more requests within the same power of two: the level (all the cluster keeps of n) is the same
    assert f.see(summ("a", "org-a", n=2), T0 + HOUR) != []
    assert f.see(summ("a", "org-a", n=3), T0 + HOUR + 1) == []


@pytest.mark.parametrize(("before", "after"), [
    (dict(n=2), dict(n=4)),                       # requests cross a power of two
    (dict(n=4, flagged=1), dict(n=4, flagged=2)),  # flagged requests cross a power of two
    (dict(n=4), dict(n=4, own=OWN_CONTENT)),       # own evidence appears ...
    (dict(n=4, own=OWN_CONTENT), dict(n=4, own=OWN_CONTENT | OWN_VOLUME)),  # ... grows
    (dict(n=4, own=OWN_CONTENT), dict(n=4)),       # ... or goes (content evidence is judged afresh)
    (dict(n=4), dict(n=4, pivot=True)),            # the pivot flag flips on ...
    (dict(n=4, pivot=True), dict(n=4)),            # ... and off
])
def test_each_part_of_the_level_is_linked_when_it_changes(rules, before, after):
    f = Feed(rules).linked()
    assert [lk.summary.account_id for lk in f.see(summ("a", "org-a", **before), T0 + 10)] == ["a"]
    assert f.see(summ("a", "org-a", **before), T0 + 20) == []
    links = f.see(summ("a", "org-a", **after), T0 + 30)
    assert [lk.summary for lk in links] == [summ("a", "org-a", **after)]
    assert f.see(summ("a", "org-a", **after), T0 + 40) == []


def test_an_unchanged_member_is_refreshed_once_per_period(rules):
    period = refresh_ms(rules)
    f = Feed(rules).linked()
    sent = []
    for ts in range(T0 + HOUR, T0 + 4 * period, HOUR):  # one observation an hour for four periods
        sent += [ts for lk in f.see(summ("a", "org-a"), ts) if lk.summary.account_id == "a"]
    # the first observation of each period since a's first request (T0), and nothing else
    assert sent == [T0 + period, T0 + 2 * period, T0 + 3 * period]


def test_the_refresh_keeps_an_active_member_in_its_cluster(rules, monkeypatch):
    """An account at one level for longer than the cluster TTL (a slow campaign's account: from 128 to 255
    requests at one an hour takes five days) stays in its cluster; without the refresh the cluster forgot
    it after the TTL, though it was active all along."""

    def run() -> tuple[ClusterStage, int]:
        f, clusters = Feed(rules), ClusterStage(rules)
        for lk in f.linked().see(summ("c", "org-c"), T0 + 2):
            clusters.process(lk, Output())
        ts = T0
        for ts in range(T0 + HOUR, T0 + 5 * 24 * HOUR, HOUR):
            for lk in f.see(summ("a", "org-a"), ts):
                clusters.process(lk, Output())
        return clusters, ts

    clusters, end = run()
    assert end - T0 > rules.cluster.ttl_ms
    kept = clusters.cluster_of_account("a", end)
    assert kept is not None and "a" in kept.members
    monkeypatch.setattr(fingerprint, "link_due", lambda level, linked, *_: level != linked)
    clusters, end = run()
    assert clusters.cluster_of_account("a", end) is None


# ------------------------------------------------------------------ outputs against the every-link oracle
def _replay(path: Path, rules: Rules, now_ms: int) -> tuple[list[bytes], list[bytes]]:
    sink = ListSink()
    replay(path, rules, sink, now_ms=now_ms)
    return [orjson.dumps(a.wire()) for a in sink.alerts], [orjson.dumps(d.wire()) for d in sink.decisions]


def test_replay_equals_linking_on_every_observation(rules, tmp_path, monkeypatch):
    start = 1_780_000_000_000
    records, _ = build(start)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(v for _, v in records) + b"\n")
    now = start + 86_400_000
    alerts, decisions = _replay(path, rules, now)
    assert any(orjson.loads(d).get("cluster_id") for d in decisions)  # the traffic reaches the cluster stage
    sent = []
    monkeypatch.setattr(fingerprint, "link_due", lambda *a: sent.append(a) or True)
    assert _replay(path, rules, now) == (alerts, decisions)
    assert len(sent) > len(decisions)  # the oracle linked on every observation of a linked member
