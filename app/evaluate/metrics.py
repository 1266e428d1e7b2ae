"""Scores decisions against ground truth: who was caught, when, and how much traffic leaked before.

Definitions (also in the report and the JSON output):
- An account's *catch time* is the `ts` of its earliest decision with scope "account", action throttle,
  challenge or block, and mode "enforce". Shadow decisions, lifts and wider scopes (payment_fp, ja4, ...)
  are ignored: the contract has the detector emit an account-scoped decision for every account behind a
  wider one.
- It is *caught* if that catch time is <= the ts of its last event (it was still active). Later decisions do
  not count: if the earliest one came after the account's last event, every later one did too.
- *Leaked* events: the account's events with ts strictly before the catch time; all of them if not caught.
- *Time to detect*: catch time minus the account's first event ts (0 if the decision came earlier).
- A replacement account (labels `replacement: true`) is *caught on its first request* if caught with catch
  time <= the ts of its first event, i.e. it leaked nothing: the decision that named it was triggered by its
  very first request (decisions carry the triggering event's time) or was already standing.
- *Blocked*: caught the same way, counting only action "block".

Events are streamed (one pass, a few numbers per account); decisions and labels are loaded whole.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from app.sim.timing import parse_ts

ENFORCING = frozenset({"throttle", "challenge", "block"})
INF = float("inf")
UNLABELLED = "(unlabelled)"


class EvaluateError(ValueError):
    """An input file that cannot be scored; the message names the file and line."""


@dataclass(slots=True)
class GroupRow:
    group: str
    cls: str
    accounts: int = 0
    caught: int = 0
    blocked: int = 0
    events: int = 0
    leaked: int = 0
    replacements: int = 0
    replacements_first: int = 0
    ttd_s: list[float] = field(default_factory=list)
    # a campaign's accounts not caught, by why (MISSED): they add up to accounts - caught
    missed_undetected: int = 0
    missed_before_detection: int = 0
    missed_not_reached: int = 0

    @property
    def rate(self) -> float:
        return self.caught / self.accounts if self.accounts else 0.0

    @property
    def median_ttd_s(self) -> float | None:
        return statistics.median(self.ttd_s) if self.ttd_s else None

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "cls": self.cls, "accounts": self.accounts, "caught": self.caught,
                "rate": self.rate, "blocked": self.blocked, "events": self.events, "leaked": self.leaked,
                "median_ttd_s": self.median_ttd_s, "replacements": self.replacements,
                "replacements_caught_first_request": self.replacements_first,
                "missed": {"undetected": self.missed_undetected, "before_detection": self.missed_before_detection,
                           "not_reached": self.missed_not_reached}}


@dataclass(slots=True)
class Totals:
    campaign_accounts: int
    campaign_caught: int
    campaign_recall: float
    benign_accounts: int
    benign_caught: int
    benign_fpr: float
    benign_blocked: int
    campaign_events: int
    leaked: int
    leak_ratio: float
    median_ttd_s: float | None
    replacements: int
    replacements_first: int
    replacement_first_rate: float

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Evaluation:
    groups: list[GroupRow]
    totals: Totals
    bin_ms: int
    # campaign group -> {bin start ms: leaked events}, and all events of campaigns per bin
    leaked_series: dict[str, dict[int, int]]
    events_series: dict[str, dict[int, int]]
    decisions_used: int
    decisions_total: int
    first_ts: int | None
    last_ts: int | None
    unlabelled_accounts: int

    def as_dict(self) -> dict[str, Any]:
        return {"groups": [g.as_dict() for g in self.groups], "totals": self.totals.as_dict(),
                "decisions": {"total": self.decisions_total, "enforcing_account_scoped": self.decisions_used},
                "unlabelled_accounts": self.unlabelled_accounts, "definitions": DEFINITIONS}


DEFINITIONS = {
    "caught": "earliest decision with scope=account, action in throttle|challenge|block, mode=enforce, "
              "whose ts <= the account's last event ts",
    "leaked": "events with ts strictly before the catch time (all events if not caught)",
    "time_to_detect": "catch ts - first event ts, in seconds (clamped at 0)",
    "replacement_caught_first_request": "replacement account caught with catch ts <= its first event ts",
    "blocked": "like caught, counting only action=block",
    "benign_fpr": "benign accounts caught / benign accounts",
    "leak_ratio": "leaked campaign events / all campaign events",
    "detected": "a campaign group's detection time: its earliest enforcing account-scoped decision, on any of its "
                "accounts, whether or not that account was still active",
    "missed.undetected": "campaign accounts not caught, in a group no enforcing decision ever named",
    "missed.before_detection": "campaign accounts not caught whose last event came before their group was "
                               "detected: only a detector that decides earlier, or on that account's own "
                               "requests, catches them",
    "missed.not_reached": "campaign accounts not caught that were still active once their group was detected: "
                          "what the group's decisions did not reach in time",
}


# --- readers ----------------------------------------------------------------------------------------------
class _TsParser:
    """Fast path for the simulator's own format ('2026-02-01T12:00:00.123Z'), general parser otherwise."""

    __slots__ = ("_minutes",)

    def __init__(self) -> None:
        self._minutes: dict[str, int] = {}

    def __call__(self, value: Any) -> int:
        if type(value) is str and len(value) == 24 and value[23] == "Z" and value[19] == ".":
            base = self._minutes.get(value[:17])
            if base is None:
                base = self._minutes[value[:17]] = parse_ts(value[:17] + "00Z")
            return base + int(value[17:19]) * 1000 + int(value[20:23])
        return parse_ts(value)


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb", buffering=1 << 20) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise EvaluateError(f"{path}:{lineno}: not JSON: {exc}") from exc
            if not isinstance(rec, dict):
                raise EvaluateError(f"{path}:{lineno}: not a JSON object")
            yield lineno, rec


def load_labels(path: Path) -> dict[str, dict[str, Any]]:
    try:
        labels = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise EvaluateError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(labels, dict):
        raise EvaluateError(f"{path}: expected an object keyed by account id")
    for acct, lab in labels.items():
        if not isinstance(lab, dict) or lab.get("cls") not in ("benign", "campaign") or not lab.get("group"):
            raise EvaluateError(f"{path}: {acct}: needs cls benign|campaign and a group")
    return labels


def load_catches(path: Path) -> tuple[dict[str, int], dict[str, int], int, int]:
    """Earliest enforcing account-scoped decision ts per account, the same for blocks, and counts."""
    parse = _TsParser()
    catch: dict[str, int] = {}
    block: dict[str, int] = {}
    used = total = 0
    for lineno, d in _jsonl(path):
        total += 1
        if d.get("scope") != "account" or d.get("action") not in ENFORCING or d.get("mode") != "enforce":
            continue
        acct = d.get("value")
        if not isinstance(acct, str):
            raise EvaluateError(f"{path}:{lineno}: account decision without a string value")
        try:
            ts = parse(d["ts"])
        except (KeyError, ValueError, TypeError) as exc:
            raise EvaluateError(f"{path}:{lineno}: bad or missing ts") from exc
        used += 1
        if ts < catch.get(acct, INF):
            catch[acct] = ts
        if d["action"] == "block" and ts < block.get(acct, INF):
            block[acct] = ts
    return catch, block, used, total


# --- the computation ------------------------------------------------------------------------------------------
def evaluate(events: Path, labels_path: Path, decisions: Path, bin_minutes: float = 15.0) -> Evaluation:
    labels = load_labels(labels_path)
    catch, block, used, total = load_catches(decisions)
    bin_ms = max(1, int(bin_minutes * 60_000))
    parse = _TsParser()

    # per account: [first ts, last ts, events, leaked]; leaked counts ts < earliest enforcing decision, which
    # equals "all events" for an account whose earliest decision came after its last event (not caught)
    stats: dict[str, list[float]] = {}
    leaked_series: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    events_series: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    first_ts = last_ts = None
    for lineno, ev in _jsonl(events):
        acct = ev.get("account_id")
        if not isinstance(acct, str):
            raise EvaluateError(f"{events}:{lineno}: event without account_id")
        try:
            ts = parse(ev["ts"])
        except (KeyError, ValueError, TypeError) as exc:
            raise EvaluateError(f"{events}:{lineno}: bad or missing ts") from exc
        st = stats.get(acct)
        c = catch.get(acct, INF)
        leaked = ts < c
        if st is None:
            stats[acct] = [ts, ts, 1, 1 if leaked else 0]
        else:
            if ts < st[0]:
                st[0] = ts
            if ts > st[1]:
                st[1] = ts
            st[2] += 1
            if leaked:
                st[3] += 1
        first_ts = ts if first_ts is None or ts < first_ts else first_ts
        last_ts = ts if last_ts is None or ts > last_ts else last_ts
        lab = labels.get(acct)
        if lab is not None and lab["cls"] == "campaign":
            b = ts - ts % bin_ms
            events_series[lab["group"]][b] += 1
            if leaked:
                leaked_series[lab["group"]][b] += 1

    # a campaign group is detected at its earliest enforcing decision on any of its accounts (MISSED)
    detected: dict[str, int] = {}
    for acct, c in catch.items():
        lab = labels.get(acct)
        if lab is not None and lab["cls"] == "campaign" and acct in stats and c < detected.get(lab["group"], INF):
            detected[lab["group"]] = c

    rows: dict[str, GroupRow] = {}
    unlabelled = 0
    for acct, (first, last, n, leaked) in stats.items():
        lab = labels.get(acct)
        if lab is None:
            unlabelled += 1
            group, cls = UNLABELLED, "unknown"
        else:
            group, cls = lab["group"], lab["cls"]
        row = rows.get(group)
        if row is None:
            row = rows[group] = GroupRow(group, cls)
        row.accounts += 1
        row.events += int(n)
        row.leaked += int(leaked)
        c = catch.get(acct, INF)
        caught = c <= last
        if caught:
            row.caught += 1
            row.ttd_s.append(max(0.0, (c - first) / 1000))
        elif cls == "campaign":
            at = detected.get(group)
            if at is None:
                row.missed_undetected += 1
            elif last < at:
                row.missed_before_detection += 1
            else:
                row.missed_not_reached += 1
        if block.get(acct, INF) <= last:
            row.blocked += 1
        if lab is not None and lab.get("replacement"):
            row.replacements += 1
            if caught and c <= first:
                row.replacements_first += 1

    ordered = sorted(rows.values(), key=lambda r: ({"benign": 0, "campaign": 1}.get(r.cls, 2), r.group))
    return Evaluation(ordered, _totals(ordered), bin_ms, {k: dict(v) for k, v in leaked_series.items()},
                      {k: dict(v) for k, v in events_series.items()}, used, total, first_ts, last_ts, unlabelled)


def _ratio(a: int, b: int) -> float:
    return a / b if b else 0.0


def _totals(rows: list[GroupRow]) -> Totals:
    camp = [r for r in rows if r.cls == "campaign"]
    ben = [r for r in rows if r.cls == "benign"]
    ca, cc = sum(r.accounts for r in camp), sum(r.caught for r in camp)
    ba, bc = sum(r.accounts for r in ben), sum(r.caught for r in ben)
    ce, cl = sum(r.events for r in camp), sum(r.leaked for r in camp)
    ttd = [t for r in camp for t in r.ttd_s]
    rep, rep1 = sum(r.replacements for r in camp), sum(r.replacements_first for r in camp)
    return Totals(ca, cc, _ratio(cc, ca), ba, bc, _ratio(bc, ba), sum(r.blocked for r in ben), ce, cl,
                  _ratio(cl, ce), statistics.median(ttd) if ttd else None, rep, rep1, _ratio(rep1, rep))
