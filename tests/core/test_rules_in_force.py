"""Every decision is made under the rules in force when it is made (issue 21), on every path: account,
upgrade, escalation, a cluster's decision and fan-out, late joiners, a member that gains own evidence,
weak rings, payment rings, cluster escalation, the value (payment_fp, device_id) decisions and lifts.

Each path's trigger comes before a rule switch at T and its decision after it (tests/brakes.py places
them), replayed with `replay(..., switches=...)` (what `replay --rules-at` runs):
- global shadow: after T nothing is enforced, and every path still decides (as shadow);
- every signal in shadow (per-signal shadow): after T nothing is enforced;
- the allowlist: after T nothing is enforced on an allowlisted account, org or value, nor on a value an
  allowlisted account holds; lifts are enforced.
Then the pieces: `live_now`, value decisions and the allowlist, lifts in shadow mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.detect.cluster import Live
from app.drivers.replay import replay
from app.emit.records import Decision
from app.emit.sinks import ListSink
from app.policy.attribution import live_now
from app.rules.load import compile_rules
from app.rules.model import Rules
from app.settings import DEFAULT_RULES
from tests.brakes import DAY, Scenario, build, lines

T = 1_780_000_000_000  # 2026-05-28T20:26:40Z
PATHS = ["account", "upgrade", "escalation", "cluster", "late_joiner", "reach_again", "weak_ring", "payment_ring",
         "cluster_escalation"]


def doc() -> dict:
    return yaml.safe_load(DEFAULT_RULES.read_text())


def rules_with(change) -> Rules:
    d = doc()
    change(d)
    return compile_rules(d, "<test>")


def shadow_mode(d: dict) -> None:
    d["mode"] = "shadow"


def every_signal_shadow(d: dict) -> None:
    for s in d["signals"].values():
        s["shadow"] = True


@pytest.fixture(scope="module")
def default_rules() -> Rules:
    return compile_rules(doc(), "<default>")


@pytest.fixture(scope="module")
def scenario(default_rules) -> Scenario:
    return build(T, default_rules)


def run(tmp: Path, sc: Scenario, rules: Rules, switches: list[tuple[int, Rules]]) -> list[Decision]:
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(lines(sc.events)) + b"\n")
    sink = ListSink()
    stats = replay(path, rules, sink, now_ms=T + DAY, switches=switches)
    assert stats.switches == len([s for s in switches if s[0] <= T + DAY])
    return sink.decisions


@pytest.fixture(scope="module")
def runs(tmp_path_factory, scenario, default_rules) -> dict[str, list[Decision]]:
    tmp = tmp_path_factory.mktemp("inforce")
    allow = rules_with(lambda d: d.update(allowlist=scenario.allowlist()))
    return {
        "none": run(tmp, scenario, default_rules, []),
        "shadow": run(tmp, scenario, default_rules, [(T, rules_with(shadow_mode))]),
        "signals": run(tmp, scenario, default_rules, [(T, rules_with(every_signal_shadow))]),
        "allowlist": run(tmp, scenario, default_rules, [(T, allow)]),
    }


def of_path(decisions: list[Decision], sc: Scenario, path: str) -> list[Decision]:
    subjects = sc.paths[path].subjects()
    return [d for d in decisions if (d.scope, d.value) in subjects]


@pytest.mark.parametrize("path", PATHS)
def test_without_a_switch_the_path_enforces_at_its_target(runs, scenario, path):
    """The scenario tests something: with the rules unchanged, each path enforces a decision at T+."""
    at = scenario.target_ms[path]
    mine = [d for d in of_path(runs["none"], scenario, path) if d.ts_ms == at]
    assert mine and {d.mode for d in mine} == {"enforce"}, mine
    before = [d for d in of_path(runs["none"], scenario, path) if d.ts_ms < T]
    if path not in ("account", "cluster", "weak_ring", "payment_ring"):
        assert any(d.mode == "enforce" for d in before), f"{path}: its trigger is a decision before T"


@pytest.mark.parametrize("path", PATHS)
def test_switch_to_shadow_between_trigger_and_decision(runs, scenario, path):
    at = scenario.target_ms[path]
    assert [d for d in of_path(runs["shadow"], scenario, path) if d.ts_ms < T] == [
        d for d in of_path(runs["none"], scenario, path) if d.ts_ms < T]  # the same until the switch
    after = [d for d in of_path(runs["shadow"], scenario, path) if d.ts_ms >= T]
    assert [d for d in after if d.mode == "enforce"] == []
    decided = {(d.scope, d.value, d.action) for d in after if d.ts_ms == at}
    expected = {(d.scope, d.value, d.action) for d in of_path(runs["none"], scenario, path) if d.ts_ms == at}
    assert decided == expected  # the same decisions, shown as shadow


@pytest.mark.parametrize("path", PATHS)
def test_every_signal_switched_to_shadow_between_trigger_and_decision(runs, scenario, path):
    after = [d for d in of_path(runs["signals"], scenario, path) if d.ts_ms >= T]
    assert [d for d in after if d.mode == "enforce"] == []


def test_every_signal_in_shadow_still_shows_the_decisions(runs, scenario):
    after = [d for d in runs["signals"] if d.ts_ms >= T]
    assert len(after) >= len([d for d in runs["none"] if d.ts_ms >= T])
    # the path that carried a live cluster decision made before the switch to new members
    reach = {(d.value, d.action, d.mode) for d in of_path(after, scenario, "reach_again")}
    assert {("rr-3", "block", "shadow"), ("rr-out", "challenge", "shadow"), ("rr-dev", "challenge", "shadow")} <= reach


def allowlisted(sc: Scenario, d: Decision) -> bool:
    entries = {(a["scope"], a["value"]) for a in sc.allowlist()}
    orgs = sc.orgs()
    if d.scope == "account":
        return ("account", d.value) in entries or ("org", orgs.get(d.value, "")) in entries
    holders = sc.holders(d.ts_ms).get((d.scope, d.value), set())
    return (d.scope, d.value) in entries or any(
        ("account", a) in entries or ("org", orgs[a]) in entries for a in holders)


@pytest.mark.parametrize("path", PATHS)
def test_allowlist_entry_arriving_between_trigger_and_decision(runs, scenario, path):
    after = [d for d in of_path(runs["allowlist"], scenario, path) if d.ts_ms >= T]
    named = [d for d in after if allowlisted(scenario, d)]
    assert [d for d in named if d.mode == "enforce" and d.action != "lift"] == []
    assert all(d.mode == "enforce" for d in after if d.action == "lift")
    # the same subjects without the allowlist were enforced after T: the entries took effect on this path
    assert [d for d in of_path(runs["none"], scenario, path) if d.ts_ms >= T and allowlisted(scenario, d)
            and d.mode == "enforce"]


def test_allowlist_keeps_the_other_subjects_decided(runs, scenario):
    after = [d for d in runs["allowlist"] if d.ts_ms >= T and d.mode == "enforce" and d.action != "lift"]
    assert {("account", "cr-1"), ("account", "pr-1")} <= {(d.scope, d.value) for d in after}


def test_allowlisted_values_and_values_of_allowlisted_holders_are_not_decided(runs, scenario):
    values = {(d.scope, d.value) for d in runs["allowlist"] if d.ts_ms >= T and d.scope != "account"}
    before = {(d.scope, d.value) for d in runs["none"] if d.ts_ms >= T and d.scope != "account"}
    # cr-dev is allowlisted; cr-card and pr-card are held by allowlisted orgs; rr-dev is allowlisted
    assert {("device_id", "cr-dev"), ("payment_fp", "cr-card"), ("payment_fp", "pr-card"),
            ("device_id", "rr-dev")} <= before
    assert not values & {("device_id", "cr-dev"), ("payment_fp", "cr-card"), ("payment_fp", "pr-card"),
                         ("device_id", "rr-dev")}


def test_a_lift_made_in_shadow_mode_is_enforced(tmp_path, scenario, default_rules):
    """A switch to shadow together with an allowlist entry: the lift of a decision enforced before the switch
    must reach the rate limiter, which ignores shadow records."""
    both = rules_with(lambda d: (shadow_mode(d), d.update(allowlist=scenario.allowlist())))
    out = run(tmp_path, scenario, default_rules, [(T, both)])
    lifts = [d for d in out if d.action == "lift"]
    assert {d.value for d in lifts} >= {"rr-3", "uh-0"}  # an account decision and a cluster member's
    assert {d.mode for d in lifts} == {"enforce"}
    assert [d for d in out if d.ts_ms >= T and d.mode == "enforce" and d.action != "lift"] == []


# ------------------------------------------------------------------------------------------- live_now
LIVE = Live("dc_1", "block", 86_400, ("CL_YOUNG", "CL_SIZE", "FP_PAYMENT_SHARED", "CL_CONTENT"), "al_1", "enforce",
            T)


def test_live_now_is_the_live_decision_under_unchanged_rules(default_rules):
    assert live_now(LIVE, default_rules) == ("block", "enforce")
    shadow_live = Live("dc_2", "challenge", 3600, LIVE.reasons, "al_2", "shadow", T)
    assert live_now(shadow_live, default_rules) == ("challenge", "shadow")


def test_live_now_memo_is_made_again_under_other_rules(default_rules):
    """`live_now` keeps its answer on the live decision (`Live.judged`) for the rules it was made under only:
    one live decision judged under rules switching back and forth follows them."""
    live = Live("dc_3", "block", 86_400, LIVE.reasons, "al_3", "enforce", T)
    shadow = rules_with(shadow_mode)
    assert live_now(live, default_rules) == ("block", "enforce")
    assert live.judged is not None and live.judged[0] is default_rules
    assert live_now(live, shadow) == ("block", "shadow")
    assert live.judged[0] is shadow
    assert live_now(live, default_rules) == ("block", "enforce")
    assert live_now(Live.restore(live.snapshot()), shadow) == ("block", "shadow")  # not stored


def test_live_now_follows_global_and_per_signal_shadow():
    assert live_now(LIVE, rules_with(shadow_mode)) == ("block", "shadow")
    assert live_now(LIVE, rules_with(every_signal_shadow))[1] == "shadow"

    def some_shadow(d: dict) -> None:
        for code in ("CL_CONTENT", "FP_PAYMENT_SHARED"):
            d["signals"][code]["shadow"] = True
    # what still enforces (CL_YOUNG and CL_SIZE, 40 points) reaches no action step (55)
    assert live_now(LIVE, rules_with(some_shadow))[1] == "shadow"

    def one_shadow(d: dict) -> None:
        d["signals"]["CL_SIZE"]["shadow"] = True
    assert live_now(LIVE, rules_with(one_shadow))[1] == "enforce"


def test_live_now_follows_the_policy_steps_in_force():
    def no_block(d: dict) -> None:
        d["policy"]["actions"] = [a for a in d["policy"]["actions"] if a["action"] != "block"]
    assert live_now(LIVE, rules_with(no_block)) == ("challenge", "enforce")

    def more_families(d: dict) -> None:
        d["policy"]["block_min_families"] = 9
    assert live_now(LIVE, rules_with(more_families)) == ("challenge", "enforce")

    def lighter(d: dict) -> None:
        for code in LIVE.reasons:
            d["signals"][code]["weight"] = 10
    # its evidence at the weights in force reaches no step any more: shown, not enforced
    assert live_now(LIVE, rules_with(lighter))[1] == "shadow"


def test_live_now_leaves_a_decision_not_made_by_the_score_to_global_shadow():
    """A live decision with a reason that is no signal (an analyst's verdict, say) is not re-judged on signal
    weights and steps: only global shadow changes it."""
    confirmed = Live("dc_3", "block", 86_400, ("CL_YOUNG", "ANALYST_CONFIRMED"), "al_3", "enforce", T)
    assert live_now(confirmed, rules_with(every_signal_shadow)) == ("block", "enforce")
    assert live_now(confirmed, rules_with(shadow_mode)) == ("block", "shadow")
