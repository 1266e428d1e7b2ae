"""One replay's records -> each subject's outcome, and the alerts that explain it.

A subject's *outcome* is the strongest enforcing action it got (mode enforce; throttle < challenge < block)
and when: its earliest enforcing decision, and the earliest decision at that action, which *sets* the
outcome (its reason codes and its alert are the signals shown for it). A `lift` ends a decision: when the
subject's last enforcing decision was lifted, the outcome says when. Shadow decisions never make an
outcome; the strongest one is kept beside it, for the view."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.emit.records import iso_ms
from app.ingest.parse import BadField, parse_ts

ACTIONS = ("throttle", "challenge", "block")
RANK = {"throttle": 1, "challenge": 2, "block": 3}
NONE = "none"  # the outcome of a subject without an enforcing decision, in counts and tables


class RecordsError(ValueError):
    """A replay output file that cannot be read (names the file and line)."""


@dataclass(slots=True)
class Outcome:
    action: str | None = None        # strongest enforcing action, None without one
    first_ts: int | None = None      # earliest enforcing decision
    action_ts: int | None = None     # earliest decision at `action`: the one that sets the outcome
    decision: dict[str, Any] | None = None  # that decision, as replay wrote it
    first_decision: dict[str, Any] | None = None  # the earliest enforcing decision
    enforcing: int = 0               # enforcing decisions on the subject
    last_enforce_ts: int | None = None
    last_lift_ts: int | None = None
    shadow_action: str | None = None  # strongest shadow decision, for the view
    shadow_decision: dict[str, Any] | None = None

    @property
    def lifted_ts(self) -> int | None:
        """When the subject's last enforcing decision was lifted (nothing enforced after it), else None."""
        if self.last_lift_ts is None or self.last_enforce_ts is None:
            return None
        return self.last_lift_ts if self.last_lift_ts >= self.last_enforce_ts else None

    @property
    def label(self) -> str:
        return self.action or NONE

    @property
    def rank(self) -> int:
        return RANK.get(self.action or "", 0)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "first_enforced": _iso(self.first_ts), "action_at": _iso(self.action_ts),
                "enforcing_decisions": self.enforcing, "lifted_at": _iso(self.lifted_ts),
                "shadow_action": self.shadow_action}


def _iso(ts: int | None) -> str | None:
    return None if ts is None else iso_ms(ts)


def jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb", buffering=1 << 20) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise RecordsError(f"{path}:{n}: not JSON: {exc}") from None
            if not isinstance(rec, dict):
                raise RecordsError(f"{path}:{n}: not a JSON object")
            yield n, rec


@dataclass(slots=True)
class Replayed:
    """Outcomes of one replay: accounts by id, other subjects (payment_fp, device_id) by `scope:value`, and
    the decisions by (scope, action, mode)."""
    accounts: dict[str, Outcome] = field(default_factory=dict)
    others: dict[str, Outcome] = field(default_factory=dict)
    decisions: Counter = field(default_factory=Counter)


def read_decisions(path: Path) -> Replayed:
    out = Replayed()
    for n, d in jsonl(path):
        try:
            scope, value, action, mode = d["scope"], d["value"], d["action"], d["mode"]
            ts = parse_ts(d["ts"], "ts")
        except (KeyError, BadField) as exc:
            raise RecordsError(f"{path}:{n}: not a decision: {exc}") from None
        out.decisions[(scope, action, mode)] += 1
        table = out.accounts if scope == "account" else out.others
        key = value if scope == "account" else f"{scope}:{value}"
        o = table.get(key)
        if o is None:
            o = table[key] = Outcome()
        if action == "lift":
            if o.last_lift_ts is None or ts >= o.last_lift_ts:
                o.last_lift_ts = ts
            continue
        if action not in RANK:
            raise RecordsError(f"{path}:{n}: unknown action {action!r}")
        if mode != "enforce":
            if o.shadow_action is None or RANK[action] > RANK[o.shadow_action]:
                o.shadow_action, o.shadow_decision = action, d
            continue
        o.enforcing += 1
        if o.first_ts is None or ts < o.first_ts:
            o.first_ts, o.first_decision = ts, d
        if o.last_enforce_ts is None or ts > o.last_enforce_ts:
            o.last_enforce_ts = ts
        r = RANK[action]
        if r > o.rank or (r == o.rank and o.action_ts is not None and ts < o.action_ts):
            o.action, o.action_ts, o.decision = action, ts, d
    return out


def _alert_view(a: dict[str, Any]) -> dict[str, Any]:
    subject = a.get("subject") or {}
    return {"alert_id": a.get("alert_id"), "ts": a.get("ts"), "scope": subject.get("scope"),
            "value": subject.get("value"), "score": a.get("score"), "severity": a.get("severity"),
            "mode": a.get("mode"), "account_count": a.get("account_count"),
            "reasons": [{"code": r.get("code"), "value": r.get("value"), "threshold": r.get("threshold"),
                         "detail": r.get("detail")} for r in a.get("reasons") or ()]}


@dataclass(slots=True)
class AlertIndex:
    """The alerts one replay wrote that the view needs: by id, and for accounts without a decision, the
    strongest alert about the account itself, else the strongest cluster alert that names it."""
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    own: dict[str, dict[str, Any]] = field(default_factory=dict)
    cluster: dict[str, dict[str, Any]] = field(default_factory=dict)

    def strongest(self, account: str) -> dict[str, Any] | None:
        return self.own.get(account) or self.cluster.get(account)


def _stronger(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    return old is None or (new.get("score") or 0) > (old.get("score") or 0)


def collect_alerts(path: Path, ids: set[str], accounts: set[str]) -> AlertIndex:
    idx = AlertIndex()
    for _, a in jsonl(path):
        aid = a.get("alert_id")
        if aid in ids:
            idx.by_id[aid] = _alert_view(a)
        if not accounts:
            continue
        subject = a.get("subject") or {}
        if subject.get("scope") == "account":
            acct = subject.get("value")
            if acct in accounts and _stronger(a, idx.own.get(acct)):
                idx.own[acct] = _alert_view(a)
        else:
            for acct in a.get("accounts") or ():
                if acct in accounts and _stronger(a, idx.cluster.get(acct)):
                    idx.cluster[acct] = _alert_view(a)
    return idx


def decision_view(d: dict[str, Any]) -> dict[str, Any]:
    out = {k: d.get(k) for k in ("decision_id", "ts", "scope", "value", "action", "mode", "ttl_s", "reasons",
                                 "alert_id")}
    for k in ("limit_rpm", "cluster_id"):
        if d.get(k) is not None:
            out[k] = d[k]
    return out


def signals(o: Outcome | None, alerts: AlertIndex, account: str, first: bool = False) -> dict[str, Any]:
    """What the view shows for one account under one rule set: the decision that set its outcome (`first`:
    its earliest enforcing decision), or its strongest shadow decision, with its alert; else the strongest
    alert that names it (evidence below the action steps, or a cluster not decided)."""
    d = None
    basis = "none"
    if o is not None and first and o.first_decision is not None:
        d, basis = o.first_decision, "first decision"
    elif o is not None and o.decision is not None:
        d, basis = o.decision, "decision"
    elif o is not None and o.shadow_decision is not None:
        d, basis = o.shadow_decision, "shadow decision"
    if d is not None:
        return {"basis": basis, "decision": decision_view(d), "alert": alerts.by_id.get(d.get("alert_id"))}
    a = alerts.strongest(account)
    return {"basis": "strongest alert" if a is not None else "none", "decision": None, "alert": a}


def alert_ids_needed(outcomes: list[Outcome | None]) -> set[str]:
    ids: set[str] = set()
    for o in outcomes:
        if o is None:
            continue
        for d in (o.decision, o.first_decision, o.shadow_decision):
            if d is not None and d.get("alert_id"):
                ids.add(d["alert_id"])
    return ids
