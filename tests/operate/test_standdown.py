"""`distill-guard stand-down` without a broker: the fold of a decisions topic into the live enforcing
decisions (the enforcer's map), the match, the lifts (contract v1 plus `operator` and `note`, stable ids,
the lifted decision's time), what else a lift ends on its key, and the command line's checks."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from app.cli import main
from app.drivers.replay import replay
from app.emit.records import iso_ms
from app.emit.sinks import ListSink
from app.enforce.table import DecisionTable, parse_ts_ms
from app.operate.standdown import LIFT_REASON, Match, fold, lift_for, plan
from app.rules.load import load_rules
from app.settings import DEFAULT_RULES
from tests.brakes import DAY, build, lines
from tests.enforce.records import decision

T = 1_780_000_000_000
MIN = 60_000


@pytest.fixture(scope="module")
def topic(tmp_path_factory) -> list[dict]:
    """The brakes scenario's decisions under the default rules, in the order the worker publishes them."""
    rules = load_rules(DEFAULT_RULES)
    sc = build(T, rules)
    path = tmp_path_factory.mktemp("sd") / "events.jsonl"
    path.write_bytes(b"\n".join(lines(sc.events)) + b"\n")
    sink = ListSink()
    replay(path, rules, sink, now_ms=T + DAY)
    return [d.wire() for d in sink.decisions]


NOW = T + 30 * MIN  # every scenario decision made; the 1 h throttles of the harvesters partly over


def live_by_table(records: list[dict], now_ms: int) -> set[tuple[str, str, str]]:
    """What the enforcer holds: (scope, value, action) of every live decision, straight from its map."""
    table = DecisionTable(10**6, clock=lambda: now_ms / 1000)
    for r in records:
        table.apply(r, now_ms)
    keys = {(r["scope"], r["value"]) for r in records}
    return {(s, v, a) for s, v in keys for a in table.get(s, v, now_ms)}


def test_fold_is_the_enforcers_map(topic):
    live, n = fold(topic, NOW)
    assert n == len(topic)
    assert {(r["scope"], r["value"], r["action"]) for r in live} == live_by_table(topic, NOW)
    assert all(r["mode"] == "enforce" and r["action"] != "lift" for r in live)
    assert len({r["decision_id"] for r in live}) == len(live)


def test_fold_dedupes_applies_lifts_expiry_and_ignores_shadow():
    a = decision("account", "a", "block", T, 3600)
    recs = [a, dict(a), decision("account", "b", "challenge", T, 60),
            decision("account", "c", "block", T, 3600, mode="shadow"),
            decision("account", "d", "block", T, 3600), decision("account", "d", "lift", T + 1000, 1),
            decision("account", "e", "throttle", T, 3600), decision("account", "e", "throttle", T + 5000, 3600)]
    live, n = fold(recs, T + 120_000)
    assert n == len(recs)
    assert [(r["value"], r["action"], r["ts"]) for r in live] == [
        ("a", "block", iso_ms(T)), ("e", "throttle", iso_ms(T + 5000))]


def test_match_criteria():
    rec = decision("account", "a", "block", T) | {"cluster_id": "cl_1", "reasons": ["CL_YOUNG", "CLUSTER_MEMBER"]}
    assert Match(everything=True)(rec)
    assert Match(cluster="cl_1")(rec) and not Match(cluster="cl_2")(rec)
    assert Match(signal="CL_YOUNG")(rec) and not Match(signal="CL_SIZE")(rec)
    assert Match(since_ms=T)(rec) and not Match(since_ms=T + 1)(rec)
    assert Match(cluster="cl_1", signal="CL_YOUNG", since_ms=T)(rec)
    assert not Match(cluster="cl_1", signal="CL_SIZE")(rec)
    assert not Match(cluster="cl_1")(decision("account", "a", "block", T))


def test_lift_record(schemas):
    rec = decision("account", "a", "block", T) | {"cluster_id": "cl_1"}
    lift = lift_for(rec, "bad wave of CL_YOUNG blocks", "alice")
    Draft202012Validator(schemas["decision"]).validate(lift)
    assert lift == {
        "decision_id": lift["decision_id"], "ts": rec["ts"], "scope": "account", "value": "a", "action": "lift",
        "ttl_s": 1, "expires_at": iso_ms(T + 1000), "reasons": [LIFT_REASON], "alert_id": rec["alert_id"],
        "mode": "enforce", "operator": "alice", "note": "bad wave of CL_YOUNG blocks", "cluster_id": "cl_1"}
    # the id depends on the decision it lifts only: another run, another operator or reason, the same id
    assert lift_for(rec, "other", "bob")["decision_id"] == lift["decision_id"]
    assert lift_for(decision("account", "a", "block", T), "x", "y")["decision_id"] != lift["decision_id"]
    # the schema keeps rejecting what it rejected: unknown fields, an empty operator
    assert not Draft202012Validator(schemas["decision"]).is_valid(lift | {"operator": ""})
    assert not Draft202012Validator(schemas["decision"]).is_valid(lift | {"who": "alice"})


def cluster_of(topic: list[dict], acct: str) -> str:
    return next(r["cluster_id"] for r in topic if r["value"] == acct and r.get("cluster_id"))


def test_stand_down_a_cluster_lifts_exactly_its_live_enforcing_decisions(topic, schemas):
    cid = cluster_of(topic, "lr-0")
    p = plan(topic, Match(cluster=cid), "late joiners wrongly blocked", "oncall", NOW)
    live, _ = fold(topic, NOW)
    mine = [r for r in live if r.get("cluster_id") == cid]
    assert mine and [r for _, r in p.lifts] == mine
    validator = Draft202012Validator(schemas["decision"])
    for lift, rec in p.lifts:
        validator.validate(lift)
        assert (lift["scope"], lift["value"], lift["ts"], lift["cluster_id"]) == (
            rec["scope"], rec["value"], rec["ts"], cid)
    # the enforcer after the lifts: the cluster's decisions are gone, every other live one is still there
    # (less the decisions on a lifted key made before it, which the plan names)
    after = live_by_table([*topic, *(lift for lift, _ in p.lifts)], NOW)
    gone = {(r["scope"], r["value"], r["action"]) for r in [*mine, *p.also_ended]}
    assert after == live_by_table(topic, NOW) - gone
    # a re-run finds nothing live to lift
    again = plan([*topic, *(lift for lift, _ in p.lifts)], Match(cluster=cid), "again", "oncall", NOW)
    assert again.lifts == []


def test_a_lift_names_the_earlier_decisions_it_also_ends():
    own = decision("account", "a", "throttle", T) | {"reasons": ["ACCT_TRACE_ELICIT"]}
    member = decision("account", "a", "block", T + MIN) | {"cluster_id": "cl_1"}
    later = decision("account", "a", "challenge", T + 2 * MIN)
    other = decision("account", "b", "block", T) | {"cluster_id": "cl_1"}
    p = plan([own, member, later, other], Match(cluster="cl_1"), "r", "o", T + 5 * MIN)
    assert [r["decision_id"] for _, r in p.lifts] == [other["decision_id"], member["decision_id"]]
    assert [r["decision_id"] for r in p.also_ended] == [own["decision_id"]]  # not `later`: made after
    after = live_by_table([own, member, later, other, *(lift for lift, _ in p.lifts)], T + 5 * MIN)
    assert after == {("account", "a", "challenge")}


def test_stand_down_by_signal_and_since(topic):
    live, _ = fold(topic, NOW)
    by_signal = plan(topic, Match(signal="CL_YOUNG"), "r", "o", NOW)
    assert [r for _, r in by_signal.lifts] == [r for r in live if "CL_YOUNG" in r["reasons"]]
    since = plan(topic, Match(since_ms=T), "r", "o", NOW)
    assert [r for _, r in since.lifts] == [r for r in live if parse_ts_ms(r["ts"]) >= T]
    everything = plan(topic, Match(everything=True), "r", "o", NOW)
    assert [r for _, r in everything.lifts] == live and everything.also_ended == []
    assert live_by_table([*topic, *(lift for lift, _ in everything.lifts)], NOW) == set()


@pytest.mark.parametrize("argv, message", [
    (["--reason", "x"], "say what to lift"),
    (["--reason", "x", "--all", "--cluster", "cl_1"], "--all takes every live decision"),
    (["--reason", "  ", "--all"], "--reason must say why"),
    (["--reason", "x", "--all", "--operator", "o" * 129], "at most 128"),
])
def test_command_line_checks(capsys, argv, message):
    assert main(["stand-down", *argv]) == 2
    assert message in capsys.readouterr().err


def test_command_line_bad_time(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stand-down", "--reason", "x", "--since", "last tuesday"])
    assert "--since" in str(exc.value)
