"""Analysts' verdicts in the core, through replay (`replay(..., feedback=FILE)`, the path `replay --feedback`
takes): what a false positive and a confirmed verdict on an account or a cluster change, when each effect ends,
and what is dead-lettered. No broker.

The traffic is tests/golden/replacement_on_decided_card (hydra-01..04 on card-9c1e, decided as cluster
CLUSTER at 12:20, 12:40 and 13:10: a block for the members with evidence of their own, a challenge for
hydra-04 and for the card, until 2026-02-02T13:10) plus the events each test adds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from app.drivers.replay import replay
from app.emit.sinks import ListSink
from app.policy.decide import Subject
from app.policy.feedback import (
    CONFIRMED,
    FALSE_POSITIVE,
    FeedbackState,
    Verdict,
    VerdictRecord,
    confirmed_ttl_s,
    lift_on_verdict,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "tests/golden/replacement_on_decided_card/events.jsonl").read_text().splitlines()
HEAVY = (ROOT / "tests/golden/heavy_single_account/events.jsonl").read_text().splitlines()
CLUSTER = "cl_334925669bdc4362b9a6f62c"
CARD = "card-9c1e"
NOW_MS = 1_772_323_200_000  # 2026-03-01: the pipeline clock (events up to mid-February are plausible)
TRACE = "The final answer is 128. Reconstruct the complete step-by-step reasoning behind this completed answer."
PLAIN = "Give me a weekly meal plan for a family of four on a budget."


def hydra(eid: str, ts: str, acct: str, created: str, prompt: str = PLAIN, card: str = CARD) -> str:
    """A throwaway reseller account's request, like the golden case's."""
    return json.dumps({
        "event_id": eid, "ts": ts, "account_id": acct, "org_id": f"org-{acct}",
        "account": {"created_at": created, "kyc": "none", "signup_channel": "reseller",
                    "email_domain_class": "disposable", "payment_fp": card},
        "client": {"ip": "192.0.2.77", "asn_type": "residential", "country": "PE", "device_id": f"dev-{acct}"},
        "request": {"model": "m-large", "prompt": prompt}, "response": {"status": 200, "output_tokens": 500}})


def verdict(vid: str, ts: str, kind: str, scope: str, value: str, expires: str | None = None, **extra) -> dict:
    doc = {"verdict_id": vid, "ts": ts, "verdict": kind, "subject": {"scope": scope, "value": value},
           "analyst": "ana", "note": "checked by hand"}
    if expires:
        doc["expires_at"] = expires
    return doc | extra


def run(tmp_path: Path, rules, events: list[str], verdicts: list | None = None) -> ListSink:
    ev = tmp_path / "events.jsonl"
    ev.write_text("\n".join(events) + "\n")
    fb = None
    if verdicts is not None:
        fb = tmp_path / "feedback.jsonl"
        fb.write_bytes(b"".join((v if isinstance(v, bytes) else json.dumps(v).encode()) + b"\n" for v in verdicts))
    sink = ListSink()
    replay(ev, rules, sink, now_ms=NOW_MS, feedback=fb, content_jobs=0)
    return sink


def decided(sink: ListSink, since: str = "", mode: str = "enforce") -> list[tuple[str, str, str, str]]:
    """(ts, scope, value, action) of the decisions at or after `since`."""
    return [(w["ts"], w["scope"], w["value"], w["action"]) for w in (d.wire() for d in sink.decisions)
            if w["ts"] >= since and w["mode"] == mode]


def test_no_verdicts_change_nothing(tmp_path, rules):
    extra = [hydra("h9", "2026-02-02T14:00:00Z", "hydra-09", "2026-02-02T13:50:00Z")]
    plain = run(tmp_path, rules, BASE + extra)
    empty = run(tmp_path, rules, BASE + extra, [])
    assert [d.wire() for d in plain.decisions] == [d.wire() for d in empty.decisions]
    assert [a.wire() for a in plain.alerts] == [a.wire() for a in empty.alerts]
    assert len(plain.decisions) > 10


def test_false_positive_on_an_account_lifts_its_decisions_and_the_card_that_tied_it(tmp_path, rules):
    fp = verdict("v-fp", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "account", "hydra-02",
                 "2026-02-05T00:00:00.000Z")
    sink = run(tmp_path, rules, BASE, [fp])
    lifts = [d.wire() for d in sink.decisions if d.action == "lift"]
    assert {(w["scope"], w["value"]) for w in lifts} == {("account", "hydra-02"), ("payment_fp", CARD)}
    for w in lifts:
        assert w["ts"] == "2026-02-01T13:15:00.000Z"
        assert w["reasons"] == ["ANALYST_FALSE_POSITIVE"]
        assert w["mode"] == "enforce"
        assert w["cluster_id"] == CLUSTER
    # hydra-02 had a live block (cluster) and the card a live challenge: both end at the enforcer, which
    # ends every decision on a key made at or before the lift
    assert ("2026-02-01T13:10:00.000Z", "account", "hydra-02", "block") in decided(sink)


def test_false_positive_allowlists_the_account_and_keeps_the_cluster_and_its_card_off_it(tmp_path, rules):
    # the cluster's decision expires 02-02T13:10; at 14:00 a new member makes it decide again (a repeat)
    extra = [hydra("h9", "2026-02-02T14:00:00Z", "hydra-09", "2026-02-02T13:50:00Z")]
    baseline = decided(run(tmp_path, rules, BASE + extra), "2026-02-02")
    assert ("2026-02-02T14:00:00.000Z", "account", "hydra-02", "block") in baseline
    assert ("2026-02-02T14:00:00.000Z", "payment_fp", CARD, "challenge") in baseline

    fp = verdict("v-fp", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "account", "hydra-02",
                 "2026-02-05T00:00:00.000Z")
    after = decided(run(tmp_path, rules, BASE + extra, [fp]), "2026-02-02")
    # the cluster decides again and reaches its other members, not hydra-02, and not the card it holds
    assert {v for _, s, v, _ in after if s == "account"} == {"hydra-01", "hydra-03", "hydra-04", "hydra-09"}
    assert not [x for x in after if x[1] == "payment_fp"]


def test_false_positive_expiry_ends_the_allowlist(tmp_path, rules):
    extra = [hydra("h9", "2026-02-02T14:00:00Z", "hydra-09", "2026-02-02T13:50:00Z")]
    fp = verdict("v-fp", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "account", "hydra-02",
                 "2026-02-02T12:00:00.000Z")
    after = decided(run(tmp_path, rules, BASE + extra, [fp]), "2026-02-02")
    assert ("2026-02-02T14:00:00.000Z", "account", "hydra-02", "block") in after
    assert ("2026-02-02T14:00:00.000Z", "payment_fp", CARD, "challenge") in after


def test_false_positive_on_an_account_decision_of_its_own(tmp_path, rules):
    """acct-heavy is challenged on its own behaviour at 12:16 and blocked as a repeat offence at 18:46."""
    fp = verdict("v-fp", "2026-02-01T12:20:00.000Z", FALSE_POSITIVE, "account", "acct-heavy",
                 "2026-02-02T00:00:00.000Z")
    sink = run(tmp_path, rules, HEAVY, [fp])
    assert decided(sink) == [("2026-02-01T12:16:00.000Z", "account", "acct-heavy", "challenge"),
                             ("2026-02-01T12:20:00.000Z", "account", "acct-heavy", "lift")]
    # allowlisted: what it does later is shown in shadow only, and only one lift ever goes out
    assert decided(sink, "2026-02-01T18", mode="shadow")
    # expired before 18:46: decided again, and not as a repeat offence (the lifted decision was not one)
    short = dict(fp, expires_at="2026-02-01T18:00:00.000Z")
    sink = run(tmp_path, rules, HEAVY, [short])
    assert decided(sink, "2026-02-01T18") == [("2026-02-01T18:46:00.000Z", "account", "acct-heavy", "challenge")]


def test_a_decision_made_after_the_verdict_gets_its_own_lift():
    """The worker may judge an event later than the verdict before the verdict reaches the account stage."""
    class Mem:
        pol_until_ms, pol_level, pol_offences, pol_alert_ms, pol_action = 10_000_000, 1, [1000], 6000, "challenge"

    from app.rules.load import load_rules

    rules = load_rules(ROOT / "app/rules/default.yaml")
    v = Verdict("v", 5000, FALSE_POSITIVE, "account", "a", "ana", "n", 9_000_000)
    subj = Subject("account", "a", ("a",), 1, 0)
    mem = Mem()
    d = lift_on_verdict(mem, subj, 7000, VerdictRecord(v, 9_000_000), rules)
    assert d is not None and d.action == "lift" and d.reasons == ("ANALYST_FALSE_POSITIVE",)
    mem = Mem()
    mem.pol_alert_ms = 4000  # made before the verdict: its lift went out with the verdict
    assert lift_on_verdict(mem, subj, 7000, VerdictRecord(v, 9_000_000), rules) is None
    assert mem.pol_until_ms == 0 and mem.pol_offences == []


def test_confirmed_cluster_escalates_within_each_members_tie(tmp_path, rules):
    conf = verdict("v-conf", "2026-02-01T13:16:00.000Z", CONFIRMED, "cluster", CLUSTER, "2026-02-10T00:00:00.000Z")
    sink = run(tmp_path, rules, BASE, [conf])
    ttl = confirmed_ttl_s(Verdict.from_wire(conf), rules)
    assert ttl == 2 * 86400  # the block step's TTL, escalated once
    new = [d.wire() for d in sink.decisions if d.ts_ms == Verdict.from_wire(conf).ts_ms]
    got = {(w["scope"], w["value"]): w for w in new}
    for acct in ("hydra-01", "hydra-02", "hydra-03"):  # own evidence and a strong tie: the block
        assert got[("account", acct)]["action"] == "block"
        assert got[("account", acct)]["ttl_s"] == ttl
        assert "ANALYST_CONFIRMED" in got[("account", acct)]["reasons"]
    # its only evidence is paying with the ring's card: association, capped at a challenge
    assert got[("account", "hydra-04")]["action"] == "challenge"
    assert "MEMBER_CAP" in got[("account", "hydra-04")]["reasons"]
    assert got[("payment_fp", CARD)]["action"] == "challenge"
    alerts = [a.wire() for a in sink.alerts if any(r.code == "ANALYST_CONFIRMED" for r in a.reasons)]
    assert len(alerts) == 1 and alerts[0]["subject"] == {"scope": "cluster", "value": CLUSTER}
    assert {w["alert_id"] for w in new} == {alerts[0]["alert_id"]}


def test_confirmed_account_is_blocked_longer(tmp_path, rules):
    conf = verdict("v-conf", "2026-02-01T13:16:00.000Z", CONFIRMED, "account", "hydra-04")
    sink = run(tmp_path, rules, BASE, [conf])
    new = [d.wire() for d in sink.decisions if d.wire()["ts"] == "2026-02-01T13:16:00.000Z"]
    assert [(w["value"], w["action"], w["ttl_s"], w["reasons"]) for w in new] == [
        ("hydra-04", "block", 2 * 86400, ["ANALYST_CONFIRMED"])]


REPLACEMENT = [hydra("r9", "2026-02-05T12:00:00Z", "hydra-09", "2026-02-05T11:50:00Z"),
               hydra("r9b", "2026-02-05T12:05:00Z", "hydra-09", "2026-02-05T11:50:00Z")]


@pytest.mark.parametrize("scope,value", [("cluster", CLUSTER), ("account", "hydra-03")])
def test_a_replacement_on_a_known_bad_card_is_caught_on_its_first_request(tmp_path, rules, scope, value):
    """02-05: the cluster's decision ended 02-02T13:10 and its state has expired (idle TTL 3 days): without a
    verdict a new account on the card is nobody's business; a confirmed verdict marked the card known bad."""
    assert decided(run(tmp_path, rules, BASE + REPLACEMENT), "2026-02-02") == []
    conf = verdict("v-conf", "2026-02-01T13:16:00.000Z", CONFIRMED, scope, value, "2026-02-10T00:00:00.000Z")
    sink = run(tmp_path, rules, BASE + REPLACEMENT, [conf])
    got = [d.wire() for d in sink.decisions if d.wire()["ts"] >= "2026-02-02"]
    assert [(w["ts"], w["value"], w["action"], w["reasons"]) for w in got] == [
        ("2026-02-05T12:00:00.000Z", "hydra-09", "challenge", ["KNOWN_BAD_VALUE"])]  # first request, once
    assert got[0]["ttl_s"] == 21600  # the challenge step's
    assert got[0]["cluster_id"] == CLUSTER
    alert = next(a.wire() for a in sink.alerts if a.alert_id == got[0]["alert_id"])
    assert alert["reasons"][0]["code"] == "KNOWN_BAD_VALUE" and alert["reasons"][0]["value"] == f"payment_fp:{CARD}"


def test_known_bad_values_end_with_the_verdict(tmp_path, rules):
    conf = verdict("v-conf", "2026-02-01T13:16:00.000Z", CONFIRMED, "cluster", CLUSTER, "2026-02-05T00:00:00.000Z")
    assert decided(run(tmp_path, rules, BASE + REPLACEMENT, [conf]), "2026-02-02") == []


def test_a_later_false_positive_replaces_a_confirmation(tmp_path, rules):
    conf = verdict("v-conf", "2026-02-01T13:16:00.000Z", CONFIRMED, "cluster", CLUSTER, "2026-02-10T00:00:00.000Z")
    fp = verdict("v-fp", "2026-02-01T14:00:00.000Z", FALSE_POSITIVE, "cluster", CLUSTER, "2026-02-10T00:00:00.000Z")
    sink = run(tmp_path, rules, BASE + REPLACEMENT, [conf, fp])
    assert decided(sink, "2026-02-02") == []  # the card is no longer known bad
    lifted = {(s, v) for t, s, v, a in decided(sink) if a == "lift"}
    assert lifted == {("account", f"hydra-0{i}") for i in range(1, 5)} | {("payment_fp", CARD)}


def test_false_positive_on_a_cluster_lifts_everything_it_decided_and_stops_its_fan_out(tmp_path, rules):
    joiner = [hydra("h5a", "2026-02-01T13:20:00Z", "hydra-05", "2026-02-01T13:00:00Z", TRACE),
              hydra("h5b", "2026-02-01T13:25:00Z", "hydra-05", "2026-02-01T13:00:00Z", TRACE)]
    later = [hydra("h9", "2026-02-02T14:00:00Z", "hydra-09", "2026-02-02T13:50:00Z")]
    base = decided(run(tmp_path, rules, BASE + joiner + later), "2026-02-01T13:11")
    assert ("2026-02-01T13:20:00.000Z", "account", "hydra-05", "challenge") in base  # a late joiner is reached

    fp = verdict("v-fpc", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "cluster", CLUSTER, "2026-02-04T00:00:00.000Z")
    sink = run(tmp_path, rules, BASE + joiner + later, [fp])
    after = decided(sink, "2026-02-01T13:11")
    assert after == [("2026-02-01T13:15:00.000Z", "account", f"hydra-0{i}", "lift") for i in range(1, 5)] + [
        ("2026-02-01T13:15:00.000Z", "payment_fp", CARD, "lift")]
    gated = [a.wire() for a in sink.alerts if a.scope == "cluster" and a.ts_ms > Verdict.from_wire(fp).ts_ms]
    assert gated and all(a["reasons"][-1]["code"] == "NOT_DECIDED_ANALYST_FALSE_POSITIVE" for a in gated)

    # expired before the new member: the cluster is decided again (a first offence: its lifted one was not)
    short = dict(fp, expires_at="2026-02-02T12:00:00.000Z")
    again = decided(run(tmp_path, rules, BASE + joiner + later, [short]), "2026-02-02")
    assert ("2026-02-02T14:00:00.000Z", "account", "hydra-09", "challenge") in again
    assert ("2026-02-02T14:00:00.000Z", "payment_fp", CARD, "challenge") in again


def test_a_verdict_on_a_decision_is_about_that_decisions_subject(tmp_path, rules):
    block_h03 = "dc_621e2238c44da35858f32d43"  # hydra-03's block at 13:10 (golden)
    card = "dc_5af2caf5ac157a90664760ec"      # the card's challenge at 13:10
    sink = run(tmp_path, rules, BASE, [
        verdict("v1", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "decision", block_h03),
        verdict("v2", "2026-02-01T13:16:00.000Z", CONFIRMED, "decision", card),
        verdict("v3", "2026-02-01T13:17:00.000Z", FALSE_POSITIVE, "decision", "dc_never_emitted"),
        # a decision made after the verdict cannot be what it is about
        verdict("v4", "2026-02-01T12:00:00.000Z", FALSE_POSITIVE, "decision", block_h03)])
    assert ("2026-02-01T13:15:00.000Z", "account", "hydra-03", "lift") in decided(sink)
    confirmed = [a for a in sink.alerts if any(r.code == "ANALYST_CONFIRMED" for r in a.reasons)]
    assert [(a.scope, a.value) for a in confirmed] == [("cluster", CLUSTER)]
    assert sorted((r.source["line"], r.code) for r in sink.dead_letters) == [(3, "unknown_subject"),
                                                                           (4, "unknown_subject")]


def test_bad_verdicts_are_dead_lettered_with_their_reason_and_the_good_ones_still_apply(tmp_path, rules, schemas):
    good = verdict("v-ok", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "account", "hydra-02")
    lines = [
        b"not json",                                                                  # 1
        b"[1, 2]",                                                                    # 2
        json.dumps({k: v for k, v in good.items() if k != "analyst"}).encode(),       # 3
        json.dumps(good | {"ts": 1769951700000}).encode(),                            # 4
        json.dumps(good | {"ts": "2026-02-01T13:15:00Z"}).encode(),                   # 5
        json.dumps(good | {"verdict": "maybe"}).encode(),                             # 6
        json.dumps(good | {"expires_at": "2026-02-01T13:00:00.000Z"}).encode(),       # 7
        json.dumps(good | {"subject": {"scope": "payment_fp", "value": "x"}}).encode(),  # 8
        b"\xff\xfe",                                                                   # 9
        json.dumps(verdict("v-c", "2026-02-01T13:15:00.000Z", CONFIRMED, "cluster", "cl_nope")).encode(),  # 10
        json.dumps(good).encode(),                                                    # 11
        json.dumps(good | {"extra": 1}).encode(),                                     # 12
    ]
    sink = run(tmp_path, rules, BASE, lines)
    assert [(r.source["line"], r.code) for r in sink.dead_letters] == [
        (1, "not_json"), (2, "not_object"), (3, "missing_field"), (4, "wrong_type"), (5, "bad_timestamp"),
        (6, "bad_value"), (7, "bad_value"), (8, "bad_value"), (9, "not_utf8"), (12, "bad_value"),
        (10, "unknown_subject")]
    assert ("2026-02-01T13:15:00.000Z", "account", "hydra-02", "lift") in decided(sink)
    v = Draft202012Validator(schemas["dlq"])
    for r in sink.dead_letters:
        assert v.is_valid(r.wire()), list(v.iter_errors(r.wire()))
        assert r.source["file"].endswith("feedback.jsonl")


def test_every_record_a_verdict_causes_is_contract_v1(tmp_path, rules, schemas):
    sink = run(tmp_path, rules, BASE + REPLACEMENT, [
        verdict("v1", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "account", "hydra-02"),
        verdict("v2", "2026-02-01T13:16:00.000Z", CONFIRMED, "cluster", CLUSTER, "2026-02-10T00:00:00.000Z"),
        verdict("v3", "2026-02-01T13:17:00.000Z", CONFIRMED, "account", "hydra-01")])
    for name, recs in (("decision", sink.decisions), ("alert", sink.alerts)):
        val = Draft202012Validator(schemas[name], format_checker=Draft202012Validator.FORMAT_CHECKER)
        for r in recs:
            assert val.is_valid(r.wire()), (r.wire(), list(val.iter_errors(r.wire()))[:2])
    ids = [d.decision_id for d in sink.decisions]
    assert len(ids) == len(set(ids))


def test_a_verdict_id_is_applied_once(tmp_path, rules):
    fp = verdict("v-fp", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "account", "hydra-02")
    once = run(tmp_path, rules, BASE, [fp])
    twice = run(tmp_path, rules, BASE, [fp, fp])
    assert [d.wire() for d in once.decisions] == [d.wire() for d in twice.decisions]


def test_registry_state_round_trips_and_expires():
    v = Verdict("v1", 1000, CONFIRMED, "cluster", "cl_a", "ana", "n", 50_000, decision_id="dc_x")
    rec = VerdictRecord(v, 50_000, "cl_a", ["payment_fp:c1", "template:sys:h"])
    back = VerdictRecord.restore(json.loads(json.dumps(rec.snapshot())))
    assert back.verdict == v and back.values == rec.values and back.cluster_id == "cl_a" and back.until_ms == 50_000
    fb = FeedbackState()
    fb.put(back)
    fb.put(VerdictRecord(Verdict("v2", 2000, FALSE_POSITIVE, "account", "a1", "ana", "n"), 9_000))
    assert fb.known_bad("payment_fp:c1", 49_999) is not None and fb.known_bad("payment_fp:c1", 50_000) is None
    assert [e.value for e in fb.allow_entries()] == ["a1"]
    assert fb.sweep(10_000) == 1 and fb.allow_entries() == ()
    assert fb.sweep(0, max_records=0) == 1 and len(fb) == 0


def test_a_suppressed_cluster_reaches_nobody_even_with_a_live_decision_it_absorbed(rules):
    """A cluster called a false positive may absorb a smaller decided one (its live decision carries over
    in `absorb`): while the verdict lives, that decision reaches none of its members either."""
    from app.engine import Engine
    from app.ingest.parse import parse_record

    def feed(engine: Engine, lines: list[str]) -> list:
        out = []
        for raw in lines:
            out += engine.process(parse_record(raw.encode(), NOW_MS)).decisions
        return out

    engine = Engine(rules)
    feed(engine, BASE)
    c = engine.clusters.clusters.get(CLUSTER)
    absorbed = c.live
    _, why = engine.apply_verdict(Verdict.from_wire(verdict(
        "v-fpc", "2026-02-01T13:15:00.000Z", FALSE_POSITIVE, "cluster", CLUSTER, "2026-02-04T00:00:00.000Z")))
    assert why is None and c.live is None
    c.live = absorbed  # as absorbing a decided cluster would leave it
    joiner = [hydra("h5a", "2026-02-01T13:20:00Z", "hydra-05", "2026-02-01T13:00:00Z", TRACE)]
    assert [d for d in feed(engine, joiner) if d.mode == "enforce"] == []
