"""Two replays of the same events -> the backtest: every account whose outcome changed (newly enforced,
released, stronger, weaker) with its signals under both rule sets, counts by action, by org and, with labels,
by population and campaign, with recall and benign FPR from `app.evaluate.metrics`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.backtest.outcome import (
    ACTIONS,
    NONE,
    Outcome,
    Replayed,
    alert_ids_needed,
    collect_alerts,
    read_decisions,
    signals,
)
from app.backtest.run import Run
from app.emit.records import iso_ms
from app.evaluate.metrics import DEFINITIONS as EVAL_DEFINITIONS
from app.evaluate.metrics import UNLABELLED, Evaluation

NEWLY_ENFORCED = "newly enforced"
RELEASED = "released"
STRONGER = "stronger"
WEAKER = "weaker"
KINDS = (NEWLY_ENFORCED, RELEASED, STRONGER, WEAKER)
EARLIER = "enforced earlier"
LATER = "enforced later"
TIMING = (EARLIER, LATER)  # the same outcome, its first enforcing decision at another time
NO_ORG = "(no org)"
SIDES = ("base", "new")

DEFINITIONS = {
    "outcome": "an account's strongest enforcing account-scoped decision (mode enforce; throttle < challenge < "
               "block) over the whole replay, and when: its earliest enforcing decision and the earliest at that "
               "action, whose reason codes and alert are its signals; a lift that ends its last enforcing decision "
               "is shown, it does not undo the outcome",
    "newly enforced": "no enforcing decision under the base rules, one under the new rules",
    "released": "enforced under the base rules, not under the new rules",
    "stronger": "enforced under both, a stronger action under the new rules",
    "weaker": "enforced under both, a weaker action under the new rules",
    "enforced earlier / later": "the same outcome under both rule sets, but the earliest enforcing decision "
                                "comes earlier or later (what moves evaluate's catch time); not counted as a "
                                "change, shown with the signals of each rule set's earliest decision",
    "newly blocked": "blocked under the new rules, not blocked under the base rules (newly enforced or stronger "
                     "to block); --fail-on-new-blocks N exits 3 when more than N",
    "signals": "for an account with a decision: the reason codes of the decision that set its outcome and its "
               "alert's score and reasons with figures; otherwise its strongest shadow decision, else its "
               "strongest alert (about the account, else a cluster alert naming it)",
    "caught (labels)": "as `distill-guard evaluate` defines it: " + EVAL_DEFINITIONS["caught"],
    "recall / benign FPR": "app.evaluate.metrics.evaluate on each replay's decisions",
}


def change_kind(base: Outcome | None, new: Outcome | None) -> str | None:
    b = base.rank if base is not None else 0
    n = new.rank if new is not None else 0
    if b == n:
        return None
    if b == 0:
        return NEWLY_ENFORCED
    if n == 0:
        return RELEASED
    return STRONGER if n > b else WEAKER


def timing_kind(base: Outcome | None, new: Outcome | None) -> str | None:
    """For the same enforcing outcome: whether its earliest enforcing decision moved."""
    if base is None or new is None or base.action is None or base.rank != new.rank:
        return None
    if base.first_ts == new.first_ts or base.first_ts is None or new.first_ts is None:
        return None
    return EARLIER if new.first_ts < base.first_ts else LATER


def _label(o: Outcome | None) -> str:
    return o.label if o is not None else NONE


@dataclass(slots=True)
class Change:
    account: str
    kind: str
    base: Outcome | None
    new: Outcome | None
    org: str
    events: int
    first_ts: int | None
    last_ts: int | None
    label: dict[str, Any] | None = None
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)  # side -> signals view

    @property
    def newly_blocked(self) -> bool:
        return _label(self.new) == "block" and _label(self.base) != "block"

    @property
    def shift_s(self) -> float | None:
        """New first enforcing decision minus the base's, in seconds (negative: earlier)."""
        if self.base is None or self.new is None or self.base.first_ts is None or self.new.first_ts is None:
            return None
        return (self.new.first_ts - self.base.first_ts) / 1000

    def as_dict(self) -> dict[str, Any]:
        out = {"account": self.account, "change": self.kind, "base": _label(self.base), "new": _label(self.new),
               "newly_blocked": self.newly_blocked, "first_enforced_shift_s": self.shift_s, "org": self.org,
               "events": self.events,
               "first_event": None if self.first_ts is None else iso_ms(self.first_ts),
               "last_event": None if self.last_ts is None else iso_ms(self.last_ts),
               "outcome": {"base": None if self.base is None else self.base.as_dict(),
                           "new": None if self.new is None else self.new.as_dict()},
               "signals": self.signals}
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclass(slots=True)
class SubjectChange:
    """A payment method or device whose outcome changed (the rate limiter applies it to every request on it)."""
    subject: str
    kind: str
    base: str
    new: str


@dataclass(slots=True)
class OrgRow:
    org: str
    accounts: int = 0
    enforced: dict[str, int] = field(default_factory=lambda: {"base": 0, "new": 0})
    blocked: dict[str, int] = field(default_factory=lambda: {"base": 0, "new": 0})
    changes: Counter = field(default_factory=Counter)
    newly_blocked: int = 0

    @property
    def changed(self) -> int:
        return sum(self.changes.values())

    def as_dict(self) -> dict[str, Any]:
        return {"org": self.org, "accounts": self.accounts, "enforced": self.enforced, "blocked": self.blocked,
                "changed": self.changed, "changes": {k: self.changes.get(k, 0) for k in KINDS},
                "newly_blocked": self.newly_blocked}


@dataclass(slots=True)
class GroupRow:
    """One labelled population or campaign: evaluate's figures under both rule sets, and the changes in it."""
    group: str
    cls: str
    kind: str | None          # benign populations' kind, campaigns' archetype (from the labels)
    accounts: int
    caught: dict[str, int]
    rate: dict[str, float]    # recall for a campaign, FPR for a benign population
    blocked: dict[str, int]
    changes: Counter = field(default_factory=Counter)  # outcome changes, then timing (TIMING) apart
    newly_blocked: int = 0

    @property
    def changed(self) -> int:
        return sum(self.changes.get(k, 0) for k in KINDS)

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "cls": self.cls, "kind": self.kind, "accounts": self.accounts,
                "caught": self.caught, "rate": self.rate, "blocked": self.blocked, "changed": self.changed,
                "changes": {k: self.changes.get(k, 0) for k in (*KINDS, *TIMING)},
                "newly_blocked": self.newly_blocked}


@dataclass(slots=True)
class Labelled:
    groups: list[GroupRow]
    kinds: list[GroupRow]     # the groups rolled up by kind / archetype
    totals: dict[str, dict[str, Any]]  # side -> evaluate's totals
    unlabelled_accounts: int

    def as_dict(self) -> dict[str, Any]:
        return {"totals": self.totals, "groups": [g.as_dict() for g in self.groups],
                "by_kind": [g.as_dict() for g in self.kinds], "unlabelled_accounts": self.unlabelled_accounts,
                "definitions": EVAL_DEFINITIONS}


@dataclass(slots=True)
class Backtest:
    meta: dict[str, Any]
    accounts: int                              # accounts in the events
    outcomes: dict[str, dict[str, int]]        # side -> action (or none) -> accounts
    transitions: dict[str, dict[str, int]]     # base action -> new action -> accounts
    decisions: dict[str, dict[str, int]]       # side -> "scope action mode" -> decisions
    changes: list[Change]
    subject_changes: list[SubjectChange]
    orgs: list[OrgRow]                         # orgs with a change, most changes first
    labelled: Labelled | None
    timing: list[Change] = field(default_factory=list)  # the same outcome, enforced earlier or later
    fail_on_new_blocks: int | None = None

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(ch.kind for ch in self.changes)
        return {k: c.get(k, 0) for k in KINDS}

    @property
    def timing_counts(self) -> dict[str, int]:
        c = Counter(ch.kind for ch in self.timing)
        return {k: c.get(k, 0) for k in TIMING}

    @property
    def newly_blocked(self) -> int:
        return sum(1 for ch in self.changes if ch.newly_blocked)

    @property
    def failed(self) -> bool:
        return self.fail_on_new_blocks is not None and self.newly_blocked > self.fail_on_new_blocks

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta, "accounts": self.accounts, "changed": len(self.changes), "counts": self.counts,
            "newly_blocked": self.newly_blocked,
            "gate": {"fail_on_new_blocks": self.fail_on_new_blocks, "failed": self.failed},
            "outcomes": self.outcomes, "transitions": self.transitions, "decisions": self.decisions,
            "changes": [c.as_dict() for c in self.changes],
            "timing_counts": self.timing_counts, "timing_changes": [c.as_dict() for c in self.timing],
            "subject_changes": [{"subject": s.subject, "change": s.kind, "base": s.base, "new": s.new}
                                for s in self.subject_changes],
            "orgs": [o.as_dict() for o in self.orgs],
            "labels": None if self.labelled is None else self.labelled.as_dict(),
            "definitions": DEFINITIONS,
        }


def _order(ch: Change) -> tuple:
    # newly blocked first, then by kind, the strongest new action, then the earliest
    return (not ch.newly_blocked, KINDS.index(ch.kind), -(ch.new.rank if ch.new else 0),
            -(ch.base.rank if ch.base else 0), ch.first_ts or 0, ch.account)


def compare(base_run: Run, new_run: Run, meta: dict[str, Any], labels: dict[str, dict[str, Any]] | None,
            fail_on_new_blocks: int | None = None) -> Backtest:
    base = read_decisions(base_run.out_dir / "decisions.jsonl")
    new = read_decisions(new_run.out_dir / "decisions.jsonl")
    seen = base_run.accounts or {}
    universe = set(seen) | set(base.accounts) | set(new.accounts)

    changes: list[Change] = []
    timing: list[Change] = []
    transitions: dict[str, dict[str, int]] = {a: {b: 0 for b in (NONE, *ACTIONS)} for a in (NONE, *ACTIONS)}
    outcomes = {s: {a: 0 for a in (NONE, *ACTIONS)} for s in SIDES}
    orgs: dict[str, OrgRow] = {}
    for acct in universe:
        b, n = base.accounts.get(acct), new.accounts.get(acct)
        bl, nl = _label(b), _label(n)
        transitions[bl][nl] += 1
        outcomes["base"][bl] += 1
        outcomes["new"][nl] += 1
        info = seen.get(acct) or [None, 0, None, None]
        org = info[0] or NO_ORG
        row = orgs.get(org)
        if row is None:
            row = orgs[org] = OrgRow(org)
        row.accounts += 1
        for side, lab in (("base", bl), ("new", nl)):
            row.enforced[side] += lab != NONE
            row.blocked[side] += lab == "block"
        kind = change_kind(b, n)
        if kind is None:
            kind = timing_kind(b, n)
            if kind is not None:
                timing.append(Change(acct, kind, b, n, org, info[1], info[2], info[3],
                                     None if labels is None else labels.get(acct)))
            continue
        ch = Change(acct, kind, b, n, org, info[1], info[2], info[3],
                    None if labels is None else labels.get(acct))
        changes.append(ch)
        row.changes[kind] += 1
        row.newly_blocked += ch.newly_blocked
    changes.sort(key=_order)
    timing.sort(key=lambda c: (TIMING.index(c.kind), -abs(c.shift_s or 0), c.account))

    _attach_signals(changes, timing, base_run.out_dir, new_run.out_dir, base, new)
    subject_changes = _subject_changes(base, new)
    org_rows = sorted((o for o in orgs.values() if o.changed),
                      key=lambda o: (-o.changed, -o.newly_blocked, o.org))
    labelled = None
    if labels is not None and base_run.evaluation is not None and new_run.evaluation is not None:
        labelled = _labelled(base_run.evaluation, new_run.evaluation, labels, changes + timing)
    return Backtest(meta, len(universe), outcomes, transitions,
                    {"base": _decision_counts(base), "new": _decision_counts(new)}, changes, subject_changes,
                    org_rows, labelled, timing, fail_on_new_blocks)


def _decision_counts(r: Replayed) -> dict[str, int]:
    return {f"{s} {a} {m}": n for (s, a, m), n in sorted(r.decisions.items())}


def _attach_signals(changes: list[Change], timing: list[Change], base_dir: Path, new_dir: Path, base: Replayed,
                    new: Replayed) -> None:
    every = changes + timing
    for side, d, rep in (("base", base_dir, base), ("new", new_dir, new)):
        outs = [rep.accounts.get(c.account) for c in every]
        idx = collect_alerts(d / "alerts.jsonl", alert_ids_needed(outs), {c.account for c in changes})
        for c, o in zip(every, outs, strict=True):
            c.signals[side] = signals(o, idx, c.account, first=c.kind in TIMING)


def _subject_changes(base: Replayed, new: Replayed) -> list[SubjectChange]:
    out = []
    for key in sorted(set(base.others) | set(new.others)):
        b, n = base.others.get(key), new.others.get(key)
        kind = change_kind(b, n)
        if kind is not None:
            out.append(SubjectChange(key, kind, _label(b), _label(n)))
    return out


def _labelled(ev_base: Evaluation, ev_new: Evaluation, labels: dict[str, dict[str, Any]],
              changes: list[Change]) -> Labelled:
    kind_of: dict[str, str | None] = {}
    for lab in labels.values():
        g = lab["group"]
        if g not in kind_of:
            kind_of[g] = lab.get("kind") if lab["cls"] == "benign" else lab.get("archetype")
    new_rows = {r.group: r for r in ev_new.groups}
    rows: list[GroupRow] = []
    by_group: dict[str, GroupRow] = {}
    for rb in ev_base.groups:
        rn = new_rows[rb.group]
        row = GroupRow(rb.group, rb.cls, kind_of.get(rb.group), rb.accounts,
                       {"base": rb.caught, "new": rn.caught}, {"base": rb.rate, "new": rn.rate},
                       {"base": rb.blocked, "new": rn.blocked})
        rows.append(row)
        by_group[rb.group] = row
    for ch in changes:
        g = ch.label["group"] if ch.label else UNLABELLED
        row = by_group.get(g)
        if row is not None:
            row.changes[ch.kind] += 1
            row.newly_blocked += ch.newly_blocked
    kinds: dict[tuple[str, str], GroupRow] = {}
    for r in rows:
        key = (r.cls, r.kind or r.group)
        k = kinds.get(key)
        if k is None:
            k = kinds[key] = GroupRow(key[1], r.cls, key[1], 0, {"base": 0, "new": 0}, {"base": 0.0, "new": 0.0},
                                      {"base": 0, "new": 0})
        k.accounts += r.accounts
        for s in SIDES:
            k.caught[s] += r.caught[s]
            k.blocked[s] += r.blocked[s]
        k.changes.update(r.changes)
        k.newly_blocked += r.newly_blocked
    for k in kinds.values():
        k.rate = {s: k.caught[s] / k.accounts if k.accounts else 0.0 for s in SIDES}
    order = {"benign": 0, "campaign": 1}
    kind_rows = sorted(kinds.values(), key=lambda r: (order.get(r.cls, 2), r.group))
    return Labelled(rows, kind_rows, {"base": ev_base.totals.as_dict(), "new": ev_new.totals.as_dict()},
                    ev_base.unlabelled_accounts)
