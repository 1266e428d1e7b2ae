"""The backtest as one self-contained HTML file (the style of `evaluate --report`: matplotlib Agg, plots as
inline base64 PNGs): headline cards, outcomes by action before and after, the transitions, changes by
population (with labels) or by org, recall and FPR by group under both rule sets, and every changed account
with its signals under both."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from app.backtest.diff import DEFINITIONS, KINDS, TIMING, Backtest, Change, GroupRow
from app.backtest.outcome import ACTIONS, NONE
from app.backtest.table import changes_text, outcome_text, reason_text
from app.evaluate.page import CSS, SCRIPT, png

MAX_ROWS = 2000  # changed accounts listed in the report; the JSON has them all

_EXTRA_CSS = """
td, th { vertical-align: top; }
table.left td, table.left th { text-align: left; }
table.groups td:last-child, table.groups th:last-child, #orgs td:last-child, #orgs th:last-child { text-align: left; }
td.sig { text-align: left; font-size: .82rem; }
td.sig .codes { color: #3c4454; } td.sig ul { margin: .2rem 0 0 1rem; padding: 0; }
.kind-newly-enforced { color: #a61b1b; } .kind-released { color: #1e7b34; }
.kind-stronger { color: #b35900; } .kind-weaker { color: #1c5b8a; }
.kind-enforced-earlier, .kind-enforced-later { color: #5b6475; }
tr.blocked td:first-child { font-weight: 600; }
td.hot { background: #fde7e4; } td.cool { background: #e3f1e6; } td.same { background: #f1f3f7; }
.PASS { color: #1e7b34; font-weight: 600; } .FAIL { color: #a61b1b; font-weight: 600; }
"""

_KIND_COLORS = {"newly enforced": "#c0392b", "released": "#27ae60", "stronger": "#e67e22", "weaker": "#2471a3"}
_SIDE_COLORS = {"base": "#8a93a5", "new": "#c0392b"}


def _e(v: Any) -> str:
    return html.escape(str(v))


def _outcome_plot(bt: Backtest) -> str:
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.add_subplot()
    xs = range(len(ACTIONS))
    for i, side in enumerate(("base", "new")):
        vals = [bt.outcomes[side][a] for a in ACTIONS]
        pos = [x + (i - 0.5) * 0.38 for x in xs]
        bars = ax.bar(pos, vals, width=0.38, color=_SIDE_COLORS[side], label=f"{side} rules")
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(list(xs), list(ACTIONS))
    ax.set_ylabel("accounts")
    ax.set_title("accounts by outcome (strongest enforcing decision)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def _changes_plot(names: list[str], counts: list[dict[str, int]], what: str) -> str:
    fig = Figure(figsize=(9, 0.36 * len(names) + 1.5))
    ax = fig.add_subplot()
    y = list(range(len(names)))
    left = [0] * len(names)
    for kind in KINDS:
        vals = [c.get(kind, 0) for c in counts]
        if any(vals):
            ax.barh(y, vals, left=left, color=_KIND_COLORS[kind], label=kind)
            left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(f"accounts whose outcome changes, by {what}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def _rates_plot(rows: list[GroupRow]) -> str:
    fig = Figure(figsize=(9, 0.42 * len(rows) + 1.5))
    ax = fig.add_subplot()
    y = list(range(len(rows)))
    for i, side in enumerate(("base", "new")):
        vals = [r.rate[side] for r in rows]
        ax.barh([v + (i - 0.5) * 0.38 for v in y], vals, height=0.38, color=_SIDE_COLORS[side], label=f"{side} rules")
    ax.set_yticks(y, [f"{r.group} ({r.cls})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("share of accounts caught: recall for a campaign, false-positive rate for a benign population")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def _card(key: str, value: str, test_id: str, cls: str = "") -> str:
    c = f' {cls}' if cls else ""
    return (f'<div class="card{c}" data-metric="{test_id}"><div class="v">{_e(value)}</div>'
            f'<div class="k">{_e(key)}</div></div>')


def _signals_html(view: dict[str, Any]) -> str:
    parts = []
    d = view.get("decision")
    if d is not None:
        shadow = " (shadow)" if d.get("mode") == "shadow" else ""
        parts.append(f'<div class="codes">{_e(d.get("action"))}{shadow} for '
                     f'{_e(" ".join(d.get("reasons") or ()))}</div>')
    a = view.get("alert")
    if a is not None:
        about = "account alert" if a.get("scope") == "account" else f"{a.get('scope')} alert {a.get('value')}"
        lead = "" if d is not None else "no decision; strongest "
        items = "".join(f'<li title="{_e(r.get("detail") or "")}">{_e(reason_text(r))}'
                        f'{" — " + _e(r["detail"]) if r.get("detail") else ""}</li>' for r in a.get("reasons") or ())
        parts.append(f"<div>{_e(lead + about)}: score {_e(a.get('score'))} {_e(a.get('severity'))}</div>"
                     f"<ul>{items}</ul>")
    return "".join(parts) or "no decision, no alert names it"


def _change_row(ch: Change, labels: bool) -> str:
    kind_cls = "kind-" + ch.kind.replace(" ", "-")
    lab = ""
    if labels:
        lab = "<td>" + (_e(f"{ch.label['cls']} {ch.label['group']}") if ch.label else "(unlabelled)") + "</td>"
    flag = " <b>newly blocked</b>" if ch.newly_blocked else ""
    row_cls = "blocked" if ch.newly_blocked else "timing" if ch.kind in TIMING else ""
    return (f'<tr class="{row_cls}" data-account="{_e(ch.account)}" data-change="{_e(ch.kind)}">'
            f"<td>{_e(ch.account)}</td><td>{_e(ch.org)}</td>{lab}"
            f'<td class="{kind_cls}">{_e(ch.kind)}{flag}</td>'
            f'<td class="sig">{_e(outcome_text(ch, "base"))}{_signals_html(ch.signals.get("base", {}))}</td>'
            f'<td class="sig">{_e(outcome_text(ch, "new"))}{_signals_html(ch.signals.get("new", {}))}</td></tr>')


def _transitions(bt: Backtest) -> str:
    labels = (NONE, *ACTIONS)
    rank = {a: i for i, a in enumerate(labels)}
    head = "".join(f"<th>{_e(b)}</th>" for b in labels)
    rows = []
    for a in labels:
        cells = []
        for b in labels:
            n = bt.transitions[a][b]
            cls = "same" if a == b else ("hot" if rank[b] > rank[a] else "cool")
            cells.append(f'<td class="{cls if n else ""}">{n}</td>')
        rows.append(f"<tr><td>{_e(a)}</td>{''.join(cells)}</tr>")
    return (f'<table id="transitions"><thead><tr><th>base \\ new</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _group_table(rows: list[GroupRow], table_id: str, with_kind: bool = True) -> str:
    body = "".join(
        f'<tr class="{r.cls}"><td>{_e(r.group)}</td><td>{_e(r.cls)}</td>'
        + (f"<td>{_e(r.kind or '')}</td>" if with_kind else "")
        + f"<td>{r.accounts}</td><td>{r.caught['base']}</td><td>{r.caught['new']}</td>"
        f"<td>{r.rate['base']:.4f}</td><td>{r.rate['new']:.4f}</td><td>{r.blocked['base']}</td>"
        f"<td>{r.blocked['new']}</td><td>{_e(changes_text(r.changes))}</td></tr>" for r in rows)
    kind = "<th>kind</th>" if with_kind else ""
    return (f'<table id="{table_id}" class="groups"><thead><tr><th>group</th><th>class</th>{kind}<th>accounts</th>'
            f"<th>caught base</th><th>caught new</th><th>rate base</th><th>rate new</th><th>blocked base</th>"
            f"<th>blocked new</th><th>changed accounts</th></tr></thead><tbody>{body}</tbody></table>")


def render(bt: Backtest, title: str = "distill-guard backtest") -> str:
    m = bt.meta
    c = bt.counts
    gate = ""
    if bt.fail_on_new_blocks is not None:
        gate = "FAIL" if bt.failed else "PASS"
    cards = [
        _card(f"accounts whose outcome changes (of {bt.accounts:,})", f"{len(bt.changes):,}", "changed"),
        *(_card(k, f"{c[k]:,}", k.replace(" ", "_")) for k in KINDS),
        _card("newly blocked" + (f" (at most {bt.fail_on_new_blocks}: {gate})" if gate else ""),
              f"{bt.newly_blocked:,}", "newly_blocked", gate),
    ]
    lab = bt.labelled
    if lab is not None:
        tb, tn = lab.totals["base"], lab.totals["new"]
        cards += [_card("campaign recall, base → new", f"{tb['campaign_recall']:.4f} → {tn['campaign_recall']:.4f}",
                        "campaign_recall"),
                  _card("benign FPR, base → new", f"{tb['benign_fpr']:.4f} → {tn['benign_fpr']:.4f}", "benign_fpr"),
                  _card("benign blocked, base → new", f"{tb['benign_blocked']} → {tn['benign_blocked']}",
                        "benign_blocked")]
    outcome_rows = "".join(f"<tr><td>{_e(a)}</td><td>{bt.outcomes['base'][a]}</td><td>{bt.outcomes['new'][a]}</td>"
                           f"<td>{bt.outcomes['new'][a] - bt.outcomes['base'][a]:+d}</td></tr>"
                           for a in (NONE, *ACTIONS))
    keys = sorted(set(bt.decisions["base"]) | set(bt.decisions["new"]))
    decision_rows = "".join(f"<tr><td>{_e(k)}</td><td>{bt.decisions['base'].get(k, 0)}</td>"
                            f"<td>{bt.decisions['new'].get(k, 0)}</td>"
                            f"<td>{bt.decisions['new'].get(k, 0) - bt.decisions['base'].get(k, 0):+d}</td></tr>"
                            for k in keys)
    sections = [
        '<h2>Outcomes before and after</h2>',
        f'<img alt="accounts by outcome, base and new rules" src="{_outcome_plot(bt)}">',
        '<table id="outcomes"><thead><tr><th>outcome</th><th>base</th><th>new</th><th>change</th></tr></thead>'
        f"<tbody>{outcome_rows}</tbody></table>",
        "<h2>Base outcome (rows) → new outcome (columns)</h2>", _transitions(bt),
        "<h2>Decisions by scope, action and mode</h2>",
        '<table id="decisions"><thead><tr><th>scope action mode</th><th>base</th><th>new</th><th>change</th></tr>'
        f"</thead><tbody>{decision_rows}</tbody></table>",
    ]
    if lab is not None:
        tb, tn = lab.totals["base"], lab.totals["new"]
        def recall(t: dict[str, Any]) -> str:
            return f"{t['campaign_recall']:.4f} ({t['campaign_caught']}/{t['campaign_accounts']})"

        def fpr(t: dict[str, Any]) -> str:
            return f"{t['benign_fpr']:.4f} ({t['benign_caught']}/{t['benign_accounts']})"

        fig_rows = [("campaign recall", recall(tb), recall(tn)), ("benign FPR", fpr(tb), fpr(tn)),
                    ("benign blocked", tb["benign_blocked"], tn["benign_blocked"]),
                    ("leak ratio", f"{tb['leak_ratio']:.4f}", f"{tn['leak_ratio']:.4f}")]
        sections += [
            "<h2>By population and campaign</h2>",
            '<p class="sub">Caught as <code>distill-guard evaluate</code> defines it (an enforcing account '
            "decision no later than the account's last event), from each replay's decisions.</p>",
            '<table id="totals"><thead><tr><th>figure</th><th>base</th><th>new</th></tr></thead><tbody>'
            + "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td>{_e(n)}</td></tr>" for a, b, n in fig_rows)
            + "</tbody></table>",
            f'<img alt="recall and false-positive rate by group, base and new rules" src="{_rates_plot(lab.groups)}">',
        ]
        changed_groups = [g for g in lab.groups if g.changed]
        if changed_groups:
            plot = _changes_plot([g.group for g in changed_groups], [dict(g.changes) for g in changed_groups],
                                 "population and campaign")
            sections.append(f'<img alt="changes by population and campaign" src="{plot}">')
        sections += [_group_table(lab.groups, "groups"), "<h3>By kind / archetype</h3>",
                     _group_table(lab.kinds, "kinds", with_kind=False)]
    if bt.orgs:
        top = bt.orgs[:25]
        plot = _changes_plot([o.org for o in top], [dict(o.changes) for o in top], "org (top 25)")
        sections += ["<h2>Orgs by changed accounts</h2>", f'<img alt="changes by org" src="{plot}">']
        org_rows = "".join(
            f"<tr><td>{_e(o.org)}</td><td>{o.accounts}</td><td>{o.enforced['base']}</td><td>{o.enforced['new']}</td>"
            f"<td>{o.blocked['base']}</td><td>{o.blocked['new']}</td><td>{_e(changes_text(o.changes))}</td></tr>"
            for o in bt.orgs[:200])
        more = f"<p class=\"sub\">{len(bt.orgs) - 200} more orgs in the JSON.</p>" if len(bt.orgs) > 200 else ""
        sections.append('<table id="orgs"><thead><tr><th>org</th><th>accounts</th><th>enforced base</th>'
                        "<th>enforced new</th><th>blocked base</th><th>blocked new</th><th>changed accounts</th></tr>"
                        f"</thead><tbody>{org_rows}</tbody></table>{more}")
    labels = lab is not None
    shown = bt.changes[:MAX_ROWS]
    rows = "".join(_change_row(ch, labels) for ch in shown)
    more = (f'<p class="sub">{len(bt.changes) - len(shown)} more changed accounts in the JSON.</p>'
            if len(bt.changes) > len(shown) else "")
    sections += [f"<h2>Changed accounts ({len(bt.changes):,})</h2>",
                 '<p class="sub">Newly blocked first. Under each rule set: the outcome, the decision that set it '
                 "and its alert's score and reasons (CODE value [threshold]); without a decision, the strongest "
                 "alert that names the account.</p>",
                 '<table id="changes" class="left"><thead><tr><th>account</th><th>org</th>'
                 + ("<th>label</th>" if labels else "")
                 + "<th>change</th><th>base rules</th><th>new rules</th></tr></thead>"
                 f"<tbody>{rows}</tbody></table>{more}"]
    if bt.timing:
        shown_t = bt.timing[:MAX_ROWS]
        trows = "".join(_change_row(ch, labels) for ch in shown_t)
        more_t = (f'<p class="sub">{len(bt.timing) - len(shown_t)} more in the JSON.</p>'
                  if len(bt.timing) > len(shown_t) else "")
        sections += [f"<h2>Same outcome, first enforced at another time ({len(bt.timing):,})</h2>",
                     '<p class="sub">Not counted as changes; what moves <code>evaluate</code>\'s catch time. Under '
                     "each rule set: the outcome and the earliest enforcing decision with its alert.</p>",
                     '<table id="timing" class="left"><thead><tr><th>account</th><th>org</th>'
                     + ("<th>label</th>" if labels else "")
                     + "<th>change</th><th>base rules</th><th>new rules</th></tr></thead>"
                     f"<tbody>{trows}</tbody></table>{more_t}"]
    if bt.subject_changes:
        srows = "".join(f"<tr><td>{_e(s.subject)}</td><td>{_e(s.kind)}</td><td>{_e(s.base)}</td><td>{_e(s.new)}</td>"
                        "</tr>" for s in bt.subject_changes)
        sections += ["<h2>Payment methods and devices whose outcome changes</h2>",
                     '<table id="subjects" class="left"><thead><tr><th>subject</th><th>change</th><th>base</th>'
                     f"<th>new</th></tr></thead><tbody>{srows}</tbody></table>"]
    defs = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in DEFINITIONS.items())
    sub = (f"{_e(m['events'])}: {m['records']:,} records, {bt.accounts:,} accounts. Base rules "
           f"<code>{_e(m['base_rules'])}</code>, new rules <code>{_e(m['new_rules'])}</code>; pipeline clock "
           f"{_e(m['now'])}.")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}{_EXTRA_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="sub">{sub}</p>
<div class="cards" id="headline">{''.join(cards)}</div>
{''.join(sections)}
<h2>Definitions</h2><dl>{defs}</dl>
<script>{SCRIPT}</script>
</body></html>
"""


def write(bt: Backtest, path: Path, title: str = "distill-guard backtest") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(bt, title), encoding="utf-8")
