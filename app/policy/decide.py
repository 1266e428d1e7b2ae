"""Maps an assessment of one subject to an alert and a decision, using the rules file's policy:
action steps by score, a block only with several independent signal families, cooldown while a
decision is live, escalation on repeat offences, shadow mode (global and per signal), allowlists.

Per-subject policy memory lives on the subject's own state object (attributes `pol_*`), so it is
stored, expired and recovered with that state."""

from __future__ import annotations

import heapq
from collections.abc import Collection
from typing import Protocol

from msgspec import Struct

from app.emit.records import Alert, Decision, Reason, stable_id
from app.rules.model import ActionStep, Rules
from app.score.assess import Assessment

LEVELS = ("throttle", "challenge", "block")
MAX_OFFENCES_KEPT = 8


class PolicyMemory(Protocol):
    pol_until_ms: int
    pol_level: int
    pol_offences: list[int]
    pol_alert_ms: int
    pol_action: str


class Subject(Struct, frozen=True):
    """Who a decision is about. A frozen msgspec Struct, not a frozen dataclass: the account stage makes one
    on most events (every event some signal fires on), and a frozen dataclass sets each field through
    `object.__setattr__` (0.63 us to make one of these six fields, 0.08 us as a Struct). Tracked by the collector: a
    cluster's subject holds its member dict."""
    scope: str
    value: str
    accounts: Collection[str]  # any collection (a cluster passes its member dict): sorted only for an alert
    account_count: int
    window_start_ms: int
    cluster_id: str | None = None


def step_for(score: float, rules: Rules) -> ActionStep | None:
    """The highest action step whose min_score the score reaches (None below the lowest), before caps."""
    chosen = None
    for step in rules.policy.actions:  # ascending by min_score
        if score >= step.min_score:
            chosen = step
    return chosen


def _step_at_level(level: int, rules: Rules) -> ActionStep | None:
    for step in rules.policy.actions:
        if LEVELS.index(step.action) == level:
            return step
    return None


def _capped(step: ActionStep, families: frozenset[str], rules: Rules) -> ActionStep:
    """A block needs `block_min_families` independent kinds of evidence; otherwise one step lower."""
    if step.action != "block" or len(families) >= rules.policy.block_min_families:
        return step
    lower = [s for s in rules.policy.actions if s.action != "block"]
    return lower[-1] if lower else step


def lift(mem: PolicyMemory, subj: Subject, ts_ms: int, reason: str, rules: Rules) -> Decision | None:
    """A `lift` for a live decision on an allowlisted subject; None when nothing is live. A lift is always
    `mode: enforce`, in shadow mode too: what it ends is an enforced decision (only those are live in the
    policy memory), and the rate limiter ignores shadow records, so a shadow lift would leave it enforced."""
    if ts_ms >= mem.pol_until_ms or not mem.pol_action:
        return None
    mem.pol_until_ms = 0
    mem.pol_action = ""
    mem.pol_offences = []  # an allowlisted subject's lifted decision is not a prior offence
    alert_id = stable_id("al", subj.scope, subj.value, "lift", ts_ms)
    return Decision(
        decision_id=stable_id("dc", alert_id, subj.scope, subj.value, "lift"), ts_ms=ts_ms,
        scope=subj.scope, value=subj.value, action="lift", ttl_s=1, reasons=(reason,),
        alert_id=alert_id, mode="enforce", cluster_id=subj.cluster_id,
    )


def step_plan(a: Assessment, rules: Rules) -> tuple[ActionStep | None, bool]:
    """The action step `decide` takes for assessment `a` before a gate and the cooldown (None: evidence only),
    and whether the assessment alone makes it shadow (only shadow signals reach the step, or lift the score
    to the alert level). A function of `a` and the rules only, so a caller that keeps an assessment may keep
    this too (`decide`'s `plan`)."""
    enforce_step = step_for(a.score_enforce, rules)
    all_step = step_for(a.score_all, rules)
    enforce_step = _capped(enforce_step, a.families_enforce, rules) if enforce_step else None
    if all_step is not None:
        all_fams = frozenset(h.signal.family for h in a.hits)
        all_step = _capped(all_step, all_fams, rules)
    if enforce_step is not None:
        return enforce_step, False
    if all_step is not None:  # only shadow signals reach an action: show what the rule would do
        return all_step, True
    # evidence only: a shadow alert when only shadow signals lift the score to the alert level
    return None, a.score_enforce < rules.policy.alert_min_score


def settled(mem: PolicyMemory, a: Assessment, plan: tuple[ActionStep | None, bool], ts_ms: int, rules: Rules,
            allowlisted: bool = False, max_action: str | None = None, gate: Reason | None = None) -> bool:
    """True when `decide` with these arguments (`plan`: `step_plan(a, rules)`) returns (None, None) and leaves
    `mem` as it is: below the alert level, an alert inside the cooldown, a live decision that already covers
    the step or is inside the cooldown, a shadow decision not stronger than the last inside its cooldown.
    Lets a caller skip making the subject (tests/core/test_decide_settled.py checks the two agree)."""
    p = rules.policy
    if a.score_all < p.alert_min_score:
        return True
    cooling = ts_ms < mem.pol_alert_ms + p.cooldown_ms
    step, shadow = plan
    if step is None or gate is not None:
        return cooling
    level = LEVELS.index(step.action)
    if max_action:
        level = min(level, LEVELS.index(max_action))
    if ts_ms < mem.pol_until_ms:
        return level <= mem.pol_level or cooling
    return ((shadow or rules.mode == "shadow" or allowlisted) and cooling and level <= mem.pol_level)


def decide(mem: PolicyMemory, subj: Subject, a: Assessment, ts_ms: int, rules: Rules,
           allowlisted: bool = False, max_action: str | None = None,
           gate: Reason | None = None,
           plan: tuple[ActionStep | None, bool] | None = None) -> tuple[Alert | None, Decision | None]:
    """`max_action` caps the action (an established, verified customer is never blocked automatically
    on behaviour alone: `policy.established_max_action`). `gate`: why the subject may not be acted on
    whatever its score (a cluster without members of its own evidence): the alert is evidence only and
    carries that reason. `plan`: `step_plan(a, rules)` when the caller keeps it."""
    p = rules.policy
    if a.score_all < p.alert_min_score:
        return None, None
    step, shadow = plan if plan is not None else step_plan(a, rules)
    shadow = shadow or rules.mode == "shadow" or allowlisted
    if gate is not None:
        step = None
    live = ts_ms < mem.pol_until_ms
    if step is None:  # alert-worthy but below every action step: evidence only
        if ts_ms < mem.pol_alert_ms + p.cooldown_ms:
            return None, None
        mem.pol_alert_ms = ts_ms
        if not live:
            # no decision of this level is behind this alert: a shadow decision that follows inside the
            # cooldown is a first decision, not a repeat (pol_level is only read for a live decision or
            # for the last shadow decision)
            mem.pol_level = -1
        return _alert(subj, a, ts_ms, rules, "none", shadow, gate), None

    # escalation: offences whose decisions are over but fall inside the escalation window
    recent = [t for t in mem.pol_offences if t > ts_ms - p.escalation_window_ms]
    level = LEVELS.index(step.action)
    cap = LEVELS.index(max_action) if max_action else len(LEVELS) - 1
    level = min(level, cap)
    if live:
        if level <= mem.pol_level or ts_ms < mem.pol_alert_ms + p.cooldown_ms:
            return None, None  # cooldown: the live decision already covers this
    elif shadow and ts_ms < mem.pol_alert_ms + p.cooldown_ms and level <= mem.pol_level:
        # shadow decisions are not enforced, but not repeated on every event either: inside the cooldown
        # of the last shadow decision only a stronger one is shown (as a live decision is upgraded)
        return None, None
    else:
        level = min(level + len(recent), LEVELS.index(p.actions[-1].action))
        if LEVELS[level] == "block" and len(a.families_enforce) < p.block_min_families:
            level = min(level, LEVELS.index("challenge"))
        level = min(level, cap)
    chosen = _step_at_level(level, rules) or step
    # upgrading a live decision is the same offence, not a repeat: its own entry is not counted
    repeats = len(recent) - 1 if live and recent else len(recent)
    ttl = min(p.max_ttl_s, int(chosen.ttl_s * (p.ttl_multiplier ** repeats)))
    mode = "shadow" if shadow else "enforce"
    alert = _alert(subj, a, ts_ms, rules, chosen.action, shadow)
    decision = Decision(
        decision_id=stable_id("dc", alert.alert_id, subj.scope, subj.value, chosen.action),
        ts_ms=ts_ms, scope=subj.scope, value=subj.value, action=chosen.action, ttl_s=ttl,
        reasons=tuple(h.signal.code for h in a.hits), alert_id=alert.alert_id, mode=mode,
        limit_rpm=chosen.limit_rpm if chosen.action == "throttle" else None, cluster_id=subj.cluster_id,
    )
    mem.pol_alert_ms = ts_ms
    if mode == "enforce":
        if not live:
            mem.pol_offences = ([*recent, ts_ms])[-MAX_OFFENCES_KEPT:]
        mem.pol_until_ms = ts_ms + ttl * 1000
        mem.pol_level = level
        mem.pol_action = chosen.action
    elif not live:
        mem.pol_level = level  # the last shadow decision's level, for the shadow cooldown above
    return alert, decision


def _alert(subj: Subject, a: Assessment, ts_ms: int, rules: Rules, action: str, shadow: bool,
           gate: Reason | None = None) -> Alert:
    score = a.score_all if shadow else a.score_enforce
    alert_id = stable_id("al", subj.scope, subj.value, action, "shadow" if shadow else "enforce", ts_ms)
    reasons = tuple(h.reason() for h in a.hits)
    # an alert nobody may be acted on for is evidence for analysts, not an incident
    severity = "low" if gate is not None else rules.severity(score)
    return Alert(
        alert_id=alert_id, ts_ms=ts_ms, scope=subj.scope, value=subj.value,
        severity=severity, score=score, reasons=(*reasons, gate) if gate is not None else reasons,
        accounts=tuple(heapq.nsmallest(100, subj.accounts)), account_count=subj.account_count,
        window_start_ms=min(subj.window_start_ms, ts_ms), window_end_ms=ts_ms,
        mode="shadow" if shadow else "enforce", cluster_id=subj.cluster_id,
    )
