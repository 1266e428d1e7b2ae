"""The enforcer's TTL map without Kafka or HTTP: de-duplication, lift, expiry, strongest action, the
throttle's limiter and the cap."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from app.enforce.table import DecisionTable, parse_ts_ms
from tests.enforce.records import decision, iso

T0 = 1_790_000_000_000  # event time of the first decision (ms)


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + 1000)


@pytest.fixture
def table(clock: Clock) -> DecisionTable:
    return DecisionTable(max_entries=1000, clock=clock)


def test_records_used_here_follow_the_contract(schemas) -> None:
    v = Draft202012Validator(schemas["decision"])
    for action in ("block", "challenge", "throttle", "lift"):
        v.validate(decision("account", "a1", action, T0))


def test_timestamps_parse_to_epoch_ms() -> None:
    for ms in (T0, T0 + 59_999, T0 + 123_456_789, 0):
        assert parse_ts_ms(iso(ms)) == ms
    assert parse_ts_ms("2026-02-01T12:00:00.123+01:00") == parse_ts_ms("2026-02-01T11:00:00.123Z")


def test_block_applies_and_answers(table: DecisionTable) -> None:
    d = decision("account", "a1", "block", T0)
    assert table.apply(d) == "applied"
    v = table.check(["account:a1"])
    assert (v.action, v.entry.decision_id) == ("block", d["decision_id"])
    assert table.check(["account:a2"]).action == "allow"
    assert table.check([]).action == "allow"
    assert table.live == 1


def test_duplicate_decision_id_is_applied_once(table: DecisionTable) -> None:
    d = decision("account", "a1", "throttle", T0, limit_rpm=1)
    assert table.apply(d) == "applied"
    assert table.check(["account:a1"]).action == "allow"  # the first request of the minute
    assert table.apply(dict(d)) == "duplicate"
    # a re-applied copy would have reset the limiter: the second request is still over it
    assert table.check(["account:a1"]).action == "throttle"
    assert table.live == 1 and table.outcomes["duplicate"] == 1


def test_lift_removes_the_decisions_on_its_subject(table: DecisionTable) -> None:
    table.apply(decision("account", "a1", "block", T0))
    table.apply(decision("account", "a1", "throttle", T0))
    table.apply(decision("org", "o1", "block", T0))
    assert table.apply(decision("account", "a1", "lift", T0 + 500, ttl_s=1)) == "lift"
    assert table.check(["account:a1"]).action == "allow"
    assert table.check(["org:o1"]).action == "block", "a lift names one subject"
    assert table.live == 1 and table.removed["lifted"] == 2


def test_lift_does_not_end_a_later_decision(table: DecisionTable) -> None:
    table.apply(decision("account", "a1", "block", T0 + 800))
    table.apply(decision("account", "a1", "lift", T0 + 500, ttl_s=1))
    assert table.check(["account:a1"]).action == "block"


def test_lifted_decision_redelivered_stays_lifted(table: DecisionTable) -> None:
    d = decision("account", "a1", "block", T0)
    table.apply(d)
    table.apply(decision("account", "a1", "lift", T0 + 1, ttl_s=1))
    assert table.apply(dict(d)) == "duplicate"
    assert table.check(["account:a1"]).action == "allow"


def test_shadow_decisions_are_counted_not_enforced(table: DecisionTable) -> None:
    assert table.apply(decision("account", "a1", "block", T0, mode="shadow")) == "shadow"
    assert table.check(["account:a1"]).action == "allow"
    table.apply(decision("account", "a1", "block", T0))
    # a shadow lift is what a rule would lift: the enforced block stays
    assert table.apply(decision("account", "a1", "lift", T0 + 5, ttl_s=1, mode="shadow")) == "shadow"
    assert table.check(["account:a1"]).action == "block"
    assert table.outcomes["shadow"] == 2


def test_expiry_against_the_wall_clock(table: DecisionTable, clock: Clock) -> None:
    table.apply(decision("account", "a1", "block", T0, ttl_s=60))
    clock.ms = T0 + 59_999
    assert table.check(["account:a1"]).action == "block"
    clock.ms = T0 + 60_000
    assert table.check(["account:a1"]).action == "allow"
    assert table.live == 0 and table.held == 0 and table.removed["expired"] == 1


def test_expire_sweep_frees_memory_without_checks(table: DecisionTable, clock: Clock) -> None:
    for i in range(10):
        table.apply(decision("account", f"a{i}", "block", T0, ttl_s=10 + i))
    clock.ms = T0 + 15_000
    table.expire()
    assert table.live == 4 and table.removed["expired"] == 6


def test_decision_expired_on_arrival_is_not_held(table: DecisionTable, clock: Clock) -> None:
    clock.ms = T0 + 7200_000
    assert table.apply(decision("account", "a1", "block", T0, ttl_s=3600)) == "stale"
    assert table.live == 0 and table.check(["account:a1"]).action == "allow"


def test_strongest_action_wins_across_scopes(table: DecisionTable) -> None:
    thr = decision("account", "a1", "throttle", T0, limit_rpm=100)
    chal = decision("org", "o1", "challenge", T0)
    blk = decision("ip_prefix", "10.1.2.0/24", "block", T0)
    for d in (thr, chal, blk):
        table.apply(d)
    assert table.check(["account:a1"]).action == "allow"  # within its limit
    assert table.check(["account:a1", "org:o1"]).entry.decision_id == chal["decision_id"]
    v = table.check(["account:a1", "org:o1", "ip_prefix:10.1.2.0/24"])
    assert (v.action, v.entry.decision_id) == ("block", blk["decision_id"])
    v = table.check(["ip_prefix:10.1.2.0/24", "account:a1", "org:o1"])
    assert v.action == "block", "header order does not matter"


def test_weaker_decision_does_not_hide_a_stronger_one_on_the_same_subject(table: DecisionTable,
                                                                          clock: Clock) -> None:
    # the cluster stage blocks a ring member, then the account stage's throttle of it arrives
    table.apply(decision("account", "a1", "block", T0, ttl_s=600))
    table.apply(decision("account", "a1", "throttle", T0 + 100, ttl_s=3600, limit_rpm=1))
    assert table.check(["account:a1"]).action == "block"
    clock.ms = T0 + 600_000  # the block is over: the throttle still is not
    assert table.check(["account:a1"]).action == "allow"
    assert table.check(["account:a1"]).action == "throttle"


def test_newer_decision_of_the_same_action_replaces(table: DecisionTable) -> None:
    old = decision("account", "a1", "throttle", T0, limit_rpm=1)
    new = decision("account", "a1", "throttle", T0 + 10, limit_rpm=60)
    table.apply(old)
    assert table.apply(new) == "applied"
    assert table.removed["replaced"] == 1 and table.live == 1
    assert table.check(["account:a1"]).entry.decision_id == new["decision_id"]
    assert table.apply(decision("account", "a1", "throttle", T0 + 5, limit_rpm=2)) == "superseded"
    assert table.check(["account:a1"]).entry.decision_id == new["decision_id"]


def test_throttle_limits_to_limit_rpm_with_a_minutes_burst(table: DecisionTable, clock: Clock) -> None:
    d = decision("account", "a1", "throttle", T0, ttl_s=3600, limit_rpm=3)
    table.apply(d)
    for _ in range(3):
        v = table.check(["account:a1"])
        assert (v.action, v.entry.decision_id) == ("allow", d["decision_id"])
    v = table.check(["account:a1"])
    assert (v.action, v.retry_after_s) == ("throttle", 20)  # one request every 60/3 s
    clock.ms += 19_000
    assert table.check(["account:a1"]).retry_after_s == 1
    clock.ms += 1_000
    assert table.check(["account:a1"]).action == "allow"
    assert table.check(["account:a1"]).action == "throttle"


def test_retry_after_never_outlasts_the_throttle(table: DecisionTable, clock: Clock) -> None:
    table.apply(decision("account", "a1", "throttle", T0, ttl_s=10, limit_rpm=1))
    assert table.check(["account:a1"]).action == "allow"
    clock.ms = T0 + 7_500
    v = table.check(["account:a1"])
    assert (v.action, v.retry_after_s) == ("throttle", 3)  # 2.5 s left of the decision, not 52.5 s


def test_every_live_throttle_must_allow(table: DecisionTable) -> None:
    loose = decision("account", "a1", "throttle", T0, limit_rpm=100)
    tight = decision("org", "o1", "throttle", T0, limit_rpm=1)
    table.apply(loose)
    table.apply(tight)
    v = table.check(["account:a1", "org:o1"])
    assert (v.action, v.entry.decision_id) == ("allow", tight["decision_id"])
    v = table.check(["account:a1", "org:o1"])
    assert (v.action, v.entry.decision_id) == ("throttle", tight["decision_id"])
    # a denied request does not use the others' allowance: a1 alone still has 99 of its 100
    assert all(table.check(["account:a1"]).action == "allow" for _ in range(99))
    assert table.check(["account:a1"]).action == "throttle"


def test_invalid_records_are_counted(table: DecisionTable) -> None:
    good = decision("account", "a1", "block", T0)
    bad = [{}, {**good, "ts": "yesterday"}, {**good, "action": "ban"}, {**good, "mode": "audit"},
           {k: v for k, v in decision("account", "a1", "throttle", T0).items() if k != "limit_rpm"},
           {**good, "ttl_s": "long"}, {**good, "decision_id": ""}]
    for rec in bad:
        assert table.apply(rec) == "invalid", rec
    assert table.live == 0 and table.outcomes["invalid"] == len(bad)


def test_cap_drops_the_decision_that_expires_first(clock: Clock) -> None:
    table = DecisionTable(max_entries=3, clock=clock)
    for i, ttl in enumerate((500, 100, 300, 400)):
        table.apply(decision("account", f"a{i}", "block", T0, ttl_s=ttl))
    assert table.held == 3 and table.live == 3 and table.removed["evicted"] == 1
    assert table.check(["account:a1"]).action == "allow", "the shortest-lived one went"
    assert all(table.check([f"account:a{i}"]).action == "block" for i in (0, 2, 3))
    # a new decision that would expire before everything held is the one dropped
    table.apply(decision("account", "a9", "block", T0, ttl_s=50))
    assert table.check(["account:a9"]).action == "allow" and table.held == 3


def test_cap_bounds_memory_held_for_deduplication(clock: Clock) -> None:
    table = DecisionTable(max_entries=100, clock=clock)
    for i in range(1000):
        table.apply(decision("account", f"a{i % 10}", "block", T0 + i, ttl_s=3600 + i))
        table.apply(decision("account", f"a{i % 10}", "lift", T0 + i, ttl_s=1))
    assert table.held <= 100 and table.live == 0
    assert sum(map(len, table._wheel.values())) <= 100 and not table._slots


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        DecisionTable(max_entries=0)
