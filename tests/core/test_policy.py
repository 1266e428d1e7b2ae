"""Policy (app/policy/decide.py): action steps by score, the block family rule, cooldown, escalation of
repeat offences, global shadow mode, allowlists and lifts, deterministic ids, limit_rpm on throttles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from app.detect.hits import Hit
from app.engine import AccountStage, Output
from app.ingest.parse import Rejection, parse_record
from app.policy.decide import Subject, decide, lift
from app.rules.load import compile_rules
from app.rules.model import Rules, Signal
from app.score.assess import assess
from tests.helpers import T0, event, line

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
SUBJ = Subject("account", "acct-1", ("acct-1",), 1, T0)


@dataclass
class Mem:
    pol_until_ms: int = 0
    pol_level: int = -1
    pol_offences: list[int] = field(default_factory=list)
    pol_alert_ms: int = 0
    pol_action: str = ""


def hits(*weights_by_family: tuple[str, float], shadow: bool = False) -> list[Hit]:
    """One synthetic hit per (family, weight)."""
    return [Hit(Signal(f"SIG_{i}_{fam.upper()}", fam, w, 1.0, shadow=shadow), 1.0, f"{fam} evidence")
            for i, (fam, w) in enumerate(weights_by_family)]


def score(total: float, families: int = 1) -> list[Hit]:
    """Hits summing to `total` points over `families` families (the first family takes the remainder)."""
    names = ["volume", "content", "behaviour"][:families]
    each = total // families
    return hits(*[(f, each + (total - each * families if i == 0 else 0)) for i, f in enumerate(names)])


def rules_doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


def run(mem: Mem, h: list[Hit], ts: int, rules: Rules, **kw):
    return decide(mem, SUBJ, assess(h), ts, rules, **kw)


# ----------------------------------------------------------------------------------------------- steps
@pytest.mark.parametrize(("points", "families", "expected"), [
    (39, 1, None),
    (40, 1, ("low", None, None, None)),                  # evidence only
    (54, 2, ("low", None, None, None)),
    (55, 1, ("medium", "throttle", 3600, 6)),
    (69, 2, ("medium", "throttle", 3600, 6)),
    (70, 1, ("high", "challenge", 21600, None)),
    (84, 2, ("high", "challenge", 21600, None)),
    (85, 2, ("critical", "block", 86400, None)),
    (85, 1, ("critical", "challenge", 21600, None)),    # a block needs block_min_families (2)
    (100, 1, ("critical", "challenge", 21600, None)),
    (100, 3, ("critical", "block", 86400, None)),
])
def test_action_steps_by_score(rules, points, families, expected):
    alert, decision = run(Mem(), score(points, families), T0, rules)
    if expected is None:
        assert alert is None and decision is None
        return
    severity, action, ttl, rpm = expected
    assert alert is not None and alert.score == points and alert.severity == severity
    if action is None:
        assert decision is None
        return
    assert (decision.action, decision.ttl_s, decision.limit_rpm) == (action, ttl, rpm)
    assert decision.alert_id == alert.alert_id and decision.mode == alert.mode == "enforce"
    assert decision.reasons == tuple(h.signal.code for h in assess(score(points, families)).hits)


def test_block_min_families_counts_enforcing_families_only(rules):
    # two families, but the second is a shadow signal: the enforced action is a challenge
    h = hits(("volume", 85)) + hits(("content", 10), shadow=True)
    _, d = run(Mem(), h, T0, rules)
    assert (d.action, d.mode) == ("challenge", "enforce")


def test_evidence_only_alert_from_enforcing_signals_is_an_enforce_alert(rules):
    alert, decision = run(Mem(), score(45), T0, rules)
    assert decision is None
    assert alert.mode == "enforce"


def test_evidence_only_alert_from_a_shadow_signal_is_a_shadow_alert(rules):
    alert, decision = run(Mem(), hits(("volume", 30)) + hits(("content", 15), shadow=True), T0, rules)
    assert decision is None and alert.mode == "shadow" and alert.score == 45


# -------------------------------------------------------------------------------------------- cooldown
def test_no_re_emission_while_live_and_not_escalating(rules):
    mem = Mem()
    _, d = run(mem, score(60), T0, rules)
    assert d.action == "throttle" and mem.pol_until_ms == T0 + 3600 * 1000
    for dt in (1 * MIN, 14 * MIN, 16 * MIN, 59 * MIN):  # inside and past the 15-min cooldown, still live
        assert run(mem, score(60), T0 + dt, rules) == (None, None)
    assert run(mem, score(69, 2), T0 + 30 * MIN, rules) == (None, None)  # stronger, same step


def test_escalating_while_live_waits_for_the_cooldown(rules):
    mem = Mem()
    run(mem, score(60), T0, rules)
    assert run(mem, score(75), T0 + 5 * MIN, rules) == (None, None)  # challenge-worthy, inside cooldown
    alert, d = run(mem, score(75), T0 + 15 * MIN, rules)
    assert d.action == "challenge" and alert.severity == "high"
    assert mem.pol_action == "challenge" and mem.pol_offences == [T0]  # an upgrade, not a new offence
    assert run(mem, score(75), T0 + 40 * MIN, rules) == (None, None)


def test_upgrading_a_live_decision_is_not_a_repeat_offence(rules):
    mem = Mem()
    run(mem, score(60), T0, rules)
    _, d = run(mem, score(75), T0 + 20 * MIN, rules)
    assert (d.action, d.ttl_s) == ("challenge", 21600)


def test_evidence_alerts_are_rate_limited_by_the_cooldown(rules):
    mem = Mem()
    assert run(mem, score(45), T0, rules)[0] is not None
    assert run(mem, score(45), T0 + 14 * MIN, rules) == (None, None)
    assert run(mem, score(45), T0 + 15 * MIN, rules)[0] is not None


# ------------------------------------------------------------------------------------------ escalation
def test_repeat_offence_after_expiry_steps_up_and_multiplies_ttl(rules):
    mem = Mem()
    t1 = T0
    _, d1 = run(mem, score(60, 2), t1, rules)
    t2 = t1 + 2 * HOUR                        # throttle (1 h) is over
    _, d2 = run(mem, score(60, 2), t2, rules)
    t3 = t2 + 13 * HOUR                       # challenge (6 h x 2) is over
    _, d3 = run(mem, score(60, 2), t3, rules)
    t4 = t3 + 5 * DAY                         # block (1 d x 4) is over
    _, d4 = run(mem, score(60, 2), t4, rules)
    assert [(d.action, d.ttl_s) for d in (d1, d2, d3, d4)] == [
        ("throttle", 3600),
        ("challenge", 21600 * 2),
        ("block", 86400 * 4),
        ("block", 86400 * 8),                 # the top step stays, the TTL keeps growing
    ]
    assert d1.limit_rpm == 6 and d2.limit_rpm is None
    assert mem.pol_offences == [t1, t2, t3, t4]


def test_escalation_to_block_still_needs_two_families(rules):
    mem = Mem()
    run(mem, score(60), T0, rules)
    _, d2 = run(mem, score(60), T0 + 2 * HOUR, rules)
    _, d3 = run(mem, score(60), T0 + 15 * HOUR, rules)
    assert [(d2.action, d2.ttl_s), (d3.action, d3.ttl_s)] == [("challenge", 43200), ("challenge", 86400)]


def test_escalated_ttl_is_capped_at_max_ttl(rules):
    doc = rules_doc()
    doc["policy"]["escalation"]["max_ttl_s"] = 100_000
    capped = compile_rules(doc, "<test>")
    mem = Mem()
    ts = T0
    ttls = []
    for _ in range(4):
        _, d = run(mem, score(90, 2), ts, capped)
        ttls.append((d.action, d.ttl_s))
        ts += (d.ttl_s + 60) * 1000
    assert ttls == [("block", 86400), ("block", 100_000), ("block", 100_000), ("block", 100_000)]


def test_offences_outside_the_escalation_window_are_forgotten(rules):
    mem = Mem()
    run(mem, score(60), T0, rules)
    _, d = run(mem, score(60), T0 + 7 * DAY + MIN, rules)  # window_s is 7 days
    assert (d.action, d.ttl_s) == ("throttle", 3600)


def test_established_cap_holds_through_escalation(rules):
    mem = Mem()
    _, d1 = run(mem, score(100, 3), T0, rules, max_action="throttle")
    _, d2 = run(mem, score(100, 3), T0 + 2 * HOUR, rules, max_action="throttle")
    assert [(d.action, d.ttl_s, d.limit_rpm) for d in (d1, d2)] == [("throttle", 3600, 6), ("throttle", 7200, 6)]


# -------------------------------------------------------------------------------------------- shadow
def test_global_shadow_mode_emits_shadow_records_and_enforces_nothing(rules):
    doc = rules_doc()
    doc["mode"] = "shadow"
    shadow = compile_rules(doc, "<test>")
    mem = Mem()
    alert, d = run(mem, score(90, 2), T0, shadow)
    assert (alert.mode, d.mode, d.action) == ("shadow", "shadow", "block")
    assert (mem.pol_until_ms, mem.pol_offences, mem.pol_action) == (0, [], "")
    # not repeated on every event, but again after the cooldown, and never escalated
    assert run(mem, score(90, 2), T0 + 5 * MIN, shadow) == (None, None)
    _, again = run(mem, score(90, 2), T0 + 16 * MIN, shadow)
    assert (again.action, again.ttl_s, again.mode) == ("block", 86400, "shadow")
    assert again.decision_id != d.decision_id


def test_shadow_signal_reaching_an_action_alone_gives_a_shadow_decision(rules):
    mem = Mem()
    alert, d = run(mem, hits(("volume", 30)) + hits(("content", 35), shadow=True), T0, rules)
    assert (alert.mode, alert.score, d.mode, d.action) == ("shadow", 65, "shadow", "throttle")
    assert mem.pol_until_ms == 0


# ------------------------------------------------------------------------------------------ allowlist
NOW = T0 + 40 * DAY
NEW = {"created_at": "2026-01-30T12:00:00Z", "kyc": "email", "email_domain_class": "freemail",
       "billing_country": "US"}


def _heavy(i: int, ts: int, acct: str = "acct-1", org: str = "org-1"):
    # volume (35) + new and unverified (10) + through a VPN (10, from the third request): 55, a throttle
    e = parse_record(line(event(i, acct, ts_ms=ts, org_id=org, account=NEW, client={"asn_type": "vpn"},
                                response={"output_tokens": 250_000})), NOW)
    assert not isinstance(e, Rejection)
    return e


def _with_allowlist(entries: list[dict]) -> Rules:
    doc = rules_doc()
    doc["allowlist"] = entries
    return compile_rules(doc, "<test>")


def _decided_stage(rules: Rules) -> AccountStage:
    stage = AccountStage(rules)
    out = Output()
    for i in range(3):
        stage.process(_heavy(i, T0 + i * MIN), out)
    assert [d.action for d in out.decisions] == ["throttle"]
    return stage


@pytest.mark.parametrize("entry", [
    {"scope": "account", "value": "acct-1", "reason": "verified research partner"},
    {"scope": "org", "value": "org-1"},
    {"scope": "org", "value": "org-1", "expires_at": "2026-02-02T00:00:00Z"},
])
def test_allowlisting_lifts_a_live_decision(rules, entry):
    stage = _decided_stage(rules)
    stage.set_rules(_with_allowlist([entry]))
    out = Output()
    stage.process(_heavy(3, T0 + 20 * MIN), out)
    lifts = [d for d in out.decisions if d.action == "lift"]
    assert len(lifts) == 1
    w = lifts[0].wire()
    assert (w["scope"], w["value"], w["reasons"], w["ttl_s"], w["mode"]) == (
        "account", "acct-1", ["ALLOWLISTED"], 1, "enforce")
    assert "limit_rpm" not in w
    assert all(d.mode == "shadow" for d in out.decisions if d.action != "lift")
    # nothing is live any more: no second lift
    out2 = Output()
    stage.process(_heavy(4, T0 + 50 * MIN), out2)
    assert [d for d in out2.decisions if d.action == "lift"] == []
    assert all(d.mode == "shadow" for d in out2.decisions)


def test_expired_or_unrelated_allowlist_entry_lifts_nothing(rules):
    for entry in ({"scope": "org", "value": "org-1", "expires_at": "2026-02-01T12:10:00Z"},
                  {"scope": "account", "value": "acct-2"}, {"scope": "org", "value": "org-2"}):
        stage = _decided_stage(rules)
        stage.set_rules(_with_allowlist([entry]))
        out = Output()
        stage.process(_heavy(3, T0 + 20 * MIN), out)
        assert out.decisions == []  # still live, still enforced: nothing to add


def test_allowlisted_from_the_start_only_gets_shadow_records(rules):
    stage = AccountStage(_with_allowlist([{"scope": "account", "value": "acct-1"}]))
    out = Output()
    for i in range(3):
        stage.process(_heavy(i, T0 + i * 16 * MIN), out)
    assert [(d.action, d.mode) for d in out.decisions] == [("throttle", "shadow")]
    assert {a.mode for a in out.alerts} == {"shadow"}
    assert stage.store.get("acct-1").pol_until_ms == 0


def test_shadow_mode_decides_when_enforce_mode_would(rules):
    doc = rules_doc()
    doc["mode"] = "shadow"
    modes = {}
    for name, r in (("enforce", rules), ("shadow", compile_rules(doc, "<test>"))):
        stage, out = AccountStage(r), Output()
        for i in range(3):
            stage.process(_heavy(i, T0 + i * MIN), out)
        modes[name] = [(d.ts_ms, d.action) for d in out.decisions]
    assert modes["enforce"] == [(T0 + 2 * MIN, "throttle")]
    assert modes["shadow"] == modes["enforce"]


def test_shadow_decision_inside_the_cooldown_only_when_stronger(rules):
    # a shadow throttle is not repeated inside the cooldown, a stronger shadow step is shown at once,
    # and an evidence-only alert in between does not hold back the next shadow decision
    doc = rules_doc()
    doc["mode"] = "shadow"
    shadow = compile_rules(doc, "<test>")
    mem = Mem()
    assert run(mem, score(45), T0, shadow)[1] is None                     # evidence only
    _, d1 = run(mem, score(60), T0 + MIN, shadow)
    assert (d1.action, d1.mode) == ("throttle", "shadow")
    assert run(mem, score(60), T0 + 2 * MIN, shadow) == (None, None)       # same step, inside the cooldown
    _, d2 = run(mem, score(75, 2), T0 + 3 * MIN, shadow)
    assert (d2.action, d2.mode) == ("challenge", "shadow")
    assert run(mem, score(60), T0 + 4 * MIN, shadow) == (None, None)       # weaker, inside the cooldown
    assert run(mem, score(75, 2), T0 + 10 * MIN, shadow) == (None, None)
    _, d3 = run(mem, score(75, 2), T0 + 19 * MIN, shadow)                  # past the cooldown: shown again
    assert d3.action == "challenge" and (mem.pol_until_ms, mem.pol_offences) == (0, [])


def test_lift_is_none_without_a_live_decision(rules):
    mem = Mem()
    assert lift(mem, SUBJ, T0, "ALLOWLISTED", rules) is None
    run(mem, score(60), T0, rules)
    assert lift(mem, SUBJ, T0 + 2 * HOUR, "ALLOWLISTED", rules) is None  # expired on its own



def test_a_lifted_decision_is_not_a_prior_offence(rules):
    mem = Mem()
    _, first = run(mem, score(75, 2), T0, rules)
    assert first.action == "challenge"
    assert lift(mem, SUBJ, T0 + 20 * MIN, "ALLOWLISTED", rules) is not None
    _, d = run(mem, score(75, 2), T0 + 40 * MIN, rules, allowlisted=True)
    assert (d.action, d.ttl_s, d.mode) == ("challenge", 21600, "shadow")

# ------------------------------------------------------------------------------------------------- ids
def test_ids_are_deterministic_and_depend_on_subject_and_time(rules):
    a1, d1 = run(Mem(), score(90, 2), T0, rules)
    a2, d2 = run(Mem(), score(90, 2), T0, rules)
    assert (a1.alert_id, d1.decision_id) == (a2.alert_id, d2.decision_id)
    assert a1.wire() == a2.wire() and d1.wire() == d2.wire()
    a3, d3 = run(Mem(), score(90, 2), T0 + 1, rules)
    other = Subject("account", "acct-2", ("acct-2",), 1, T0)
    a4, d4 = decide(Mem(), other, assess(score(90, 2)), T0, rules)
    assert len({a1.alert_id, a3.alert_id, a4.alert_id}) == 3
    assert len({d1.decision_id, d3.decision_id, d4.decision_id}) == 3
    l1 = lift(Mem(pol_until_ms=T0 + HOUR, pol_action="block"), SUBJ, T0, "ALLOWLISTED", rules)
    l2 = lift(Mem(pol_until_ms=T0 + HOUR, pol_action="block"), SUBJ, T0, "ALLOWLISTED", rules)
    assert l1.decision_id == l2.decision_id


def test_same_events_through_two_stages_give_identical_records(rules):
    def records():
        stage, out = AccountStage(rules), Output()
        for i in range(6):
            stage.process(_heavy(i, T0 + i * 7 * MIN), out)
        return [a.wire() for a in out.alerts], [d.wire() for d in out.decisions]

    first, second = records(), records()
    assert first == second and first[1]


# ------------------------------------------------------------------------------------------- limit_rpm
def test_only_throttle_carries_limit_rpm(rules):
    wires = {}
    for points in (60, 75, 90):
        _, d = run(Mem(), score(points, 2), T0, rules)
        wires[d.action] = d.wire()
    wires["lift"] = lift(Mem(pol_until_ms=T0 + HOUR, pol_action="block"), SUBJ, T0, "ALLOWLISTED", rules).wire()
    assert wires["throttle"]["limit_rpm"] == 6
    for action in ("challenge", "block", "lift"):
        assert "limit_rpm" not in wires[action], action
    assert {w["expires_at"] for w in wires.values() if w["action"] == "throttle"} == {"2026-02-01T13:00:00.000Z"}
