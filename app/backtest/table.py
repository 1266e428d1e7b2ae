"""The backtest in a terminal: plain-text tables, the changed accounts with their signals under both rule sets."""

from __future__ import annotations

import textwrap
from typing import Any

from app.backtest.diff import KINDS, TIMING, Backtest, Change, GroupRow
from app.backtest.outcome import ACTIONS, NONE
from app.emit.records import iso_ms

WIDTH = 120


def _fmt_num(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(v)


def reason_text(r: dict[str, Any]) -> str:
    """`CODE value [threshold]`; a reason without a figure is its code."""
    code, value, thr = r.get("code"), r.get("value"), r.get("threshold")
    if value is None:
        return str(code)
    t = "" if thr is None else f" [{_fmt_num(thr)}]"
    return f"{code} {_fmt_num(value)}{t}"


def signals_text(view: dict[str, Any]) -> str:
    parts = []
    d = view.get("decision")
    if d is not None:
        shadow = " (shadow)" if d.get("mode") == "shadow" else ""
        parts.append(f"{d.get('action')}{shadow} for {' '.join(d.get('reasons') or ())}")
    a = view.get("alert")
    if a is not None:
        about = "account alert" if a.get("scope") == "account" else f"{a.get('scope')} alert {a.get('value')}"
        lead = "" if d is not None else "no decision; strongest "
        reasons = ", ".join(reason_text(r) for r in a.get("reasons") or ())
        parts.append(f"{lead}{about} score {_fmt_num(a.get('score'))} {a.get('severity')}: {reasons}")
    if not parts:
        return "no decision, no alert names it"
    return "; ".join(parts)


def _when(ts: int | None) -> str:
    return "" if ts is None else iso_ms(ts)[:19].replace("T", " ")


def outcome_text(ch: Change, side: str) -> str:
    o = ch.base if side == "base" else ch.new
    if o is None or o.action is None:
        return NONE
    text = f"{o.action} at {_when(o.action_ts)}"
    if o.first_ts is not None and o.first_ts != o.action_ts:
        text += f" (enforced from {_when(o.first_ts)})"
    if o.lifted_ts is not None:
        text += f", lifted {_when(o.lifted_ts)}"
    return text


def change_block(ch: Change) -> list[str]:
    lab = ""
    if ch.label:
        k = ch.label.get("kind") or ch.label.get("archetype")
        lab = f"  [{ch.label['cls']} {ch.label['group']}{'' if not k or k == ch.label['group'] else ' / ' + k}]"
    flag = "  NEWLY BLOCKED" if ch.newly_blocked else ""
    if ch.kind in TIMING:
        what = f"{ch.kind} by {_shift(ch.shift_s)}: {ch.new.label if ch.new else NONE}"
    else:
        what = f"{ch.kind}: {ch.base.label if ch.base else NONE} -> {ch.new.label if ch.new else NONE}"
    lines = [f"{ch.account}  org {ch.org}  {what}{flag}{lab}"]
    for side in ("base", "new"):
        head = f"    {side:<4} {outcome_text(ch, side)}: "
        body = signals_text(ch.signals.get(side, {}))
        lines += textwrap.wrap(head + body, WIDTH, subsequent_indent=" " * 9, break_on_hyphens=False)
    return lines


def _shift(seconds: float | None) -> str:
    s = abs(seconds or 0.0)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.1f}h"


def _table(header: list[str], rows: list[list[Any]], left: int = 1, last_left: bool = False) -> list[str]:
    cells = [header] + [[_fmt_num(c) if not isinstance(c, str) else c for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lefts = set(range(left)) | ({len(header) - 1} if last_left else set())
    out = []
    for j, r in enumerate(cells):
        out.append("  ".join(c.ljust(widths[i]) if i in lefts else c.rjust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return ["  " + line.rstrip() for line in out]


def _delta(a: float, b: float, fmt: str = "{:+d}") -> str:
    d = b - a
    return "0" if d == 0 else fmt.format(d)


def render(bt: Backtest, listed: int = 50, top_orgs: int = 10) -> str:
    m = bt.meta
    c = bt.counts
    lines = [
        f"backtest of {m['events']} ({m['records']:,} records, {bt.accounts:,} accounts)",
        f"  base rules  {m['base_rules']}",
        f"  new rules   {m['new_rules']}",
        f"  pipeline clock {m['now']}; replays: {m['processes']} process(es), {m['content_jobs']} content "
        f"job(s) each, {m['seconds']:.1f}s",
        "",
        f"{len(bt.changes)} accounts change outcome: {c['newly enforced']} newly enforced, {c['released']} "
        f"released, {c['stronger']} stronger, {c['weaker']} weaker; {bt.newly_blocked} newly blocked",
        *([f"{len(bt.timing)} more keep their outcome but are first enforced at another time: "
           f"{bt.timing_counts['enforced earlier']} earlier, {bt.timing_counts['enforced later']} later"]
          if bt.timing else []),
        "",
        "accounts by outcome (strongest enforcing account decision)",
    ]
    rows = [[a, bt.outcomes["base"][a], bt.outcomes["new"][a], _delta(bt.outcomes["base"][a], bt.outcomes["new"][a])]
            for a in (NONE, *ACTIONS)]
    lines += _table(["outcome", "base", "new", "change"], rows)
    lines += ["", "base outcome (rows) -> new outcome (columns)"]
    lines += _table(["base \\ new", *(NONE, *ACTIONS)],
                    [[a, *(bt.transitions[a][b] for b in (NONE, *ACTIONS))] for a in (NONE, *ACTIONS)])
    keys = sorted(set(bt.decisions["base"]) | set(bt.decisions["new"]))
    if keys:
        lines += ["", "decisions by scope, action and mode"]
        lines += _table(["scope action mode", "base", "new", "change"],
                        [[k, bt.decisions["base"].get(k, 0), bt.decisions["new"].get(k, 0),
                          _delta(bt.decisions["base"].get(k, 0), bt.decisions["new"].get(k, 0))] for k in keys])
    if bt.labelled is not None:
        lines += ["", *_labelled(bt)]
    if bt.orgs:
        shown = bt.orgs[:top_orgs]
        lines += ["", f"orgs by changed accounts (top {len(shown)} of {len(bt.orgs)} with a change)"]
        lines += _table(["org", "accounts", "enforced base -> new", "blocked base -> new", "changed accounts"],
                        [[o.org, o.accounts, f"{o.enforced['base']} -> {o.enforced['new']}",
                          f"{o.blocked['base']} -> {o.blocked['new']}", changes_text(o.changes)] for o in shown],
                        last_left=True)
    if bt.subject_changes:
        lines += ["", f"payment methods and devices whose outcome changes: {len(bt.subject_changes)}"]
        for s in bt.subject_changes[:10]:
            lines.append(f"  {s.subject}  {s.kind}: {s.base} -> {s.new}")
        if len(bt.subject_changes) > 10:
            lines.append(f"  ... and {len(bt.subject_changes) - 10} more (--json)")
    if bt.changes:
        shown_changes = bt.changes if listed <= 0 else bt.changes[:listed]
        lines += ["", f"changed accounts ({len(shown_changes)} of {len(bt.changes)}; newly blocked first; reasons as "
                      "CODE value [threshold])"]
        for ch in shown_changes:
            lines += ["  " + x for x in change_block(ch)]
        if len(shown_changes) < len(bt.changes):
            lines.append(f"  ... and {len(bt.changes) - len(shown_changes)} more (--list 0, --json or --report)")
    if bt.timing:
        shown_timing = bt.timing if listed <= 0 else bt.timing[:listed]
        lines += ["", f"same outcome, first enforced at another time ({len(shown_timing)} of {len(bt.timing)}; "
                      "the signals of each side's earliest enforcing decision)"]
        for ch in shown_timing:
            lines += ["  " + x for x in change_block(ch)]
        if len(shown_timing) < len(bt.timing):
            lines.append(f"  ... and {len(bt.timing) - len(shown_timing)} more (--list 0, --json or --report)")
    if bt.fail_on_new_blocks is not None:
        verdict = "FAIL" if bt.failed else "ok"
        lines += ["", f"gate: {bt.newly_blocked} newly blocked, at most {bt.fail_on_new_blocks} allowed: {verdict}"]
    return "\n".join(lines)


def _rate(v: float) -> str:
    return f"{v:.4f}"


def changes_text(changes: dict[str, int]) -> str:
    return ", ".join(f"{changes[k]} {k}" for k in (*KINDS, *TIMING) if changes.get(k)) or "-"


def _group_rows(rows: list[GroupRow], with_kind: bool = True) -> list[list[Any]]:
    return [[r.group, r.cls, *([r.kind or ""] if with_kind else []), r.accounts,
             f"{r.caught['base']} -> {r.caught['new']}", f"{_rate(r.rate['base'])} -> {_rate(r.rate['new'])}",
             f"{r.blocked['base']} -> {r.blocked['new']}", changes_text(r.changes)] for r in rows]


def _labelled(bt: Backtest) -> list[str]:
    lab = bt.labelled
    assert lab is not None
    tb, tn = lab.totals["base"], lab.totals["new"]
    lines = ["with labels (caught as `evaluate` defines it: an enforcing account decision no later than the "
             "account's last event)"]
    rows = [
        ["campaign recall", f"{tb['campaign_recall']:.4f} ({tb['campaign_caught']}/{tb['campaign_accounts']})",
         f"{tn['campaign_recall']:.4f} ({tn['campaign_caught']}/{tn['campaign_accounts']})"],
        ["benign FPR", f"{tb['benign_fpr']:.4f} ({tb['benign_caught']}/{tb['benign_accounts']})",
         f"{tn['benign_fpr']:.4f} ({tn['benign_caught']}/{tn['benign_accounts']})"],
        ["benign blocked", str(tb["benign_blocked"]), str(tn["benign_blocked"])],
        ["leak ratio", f"{tb['leak_ratio']:.4f}", f"{tn['leak_ratio']:.4f}"],
    ]
    lines += _table(["figure", "base", "new"], rows)
    tail = ["accounts", "caught base -> new", "rate base -> new", "blocked base -> new", "changed accounts"]
    lines += ["", "by population and campaign (rate: recall for a campaign, FPR for a benign population)"]
    lines += _table(["group", "cls", "kind", *tail], _group_rows(lab.groups), left=3, last_left=True)
    lines += ["", "by kind / archetype"]
    lines += _table(["kind", "cls", *tail], _group_rows(lab.kinds, with_kind=False), left=2, last_left=True)
    if lab.unlabelled_accounts:
        lines.append(f"  {lab.unlabelled_accounts} accounts in the events have no label")
    return lines
