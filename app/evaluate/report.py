"""One self-contained HTML report: headline numbers as text, plots as inline base64 PNGs (matplotlib Agg)."""

from __future__ import annotations

import html
from pathlib import Path

from matplotlib.figure import Figure

from app.evaluate.metrics import DEFINITIONS, Evaluation
from app.evaluate.page import CSS, SCRIPT, png
from app.evaluate.table import duration_text
from app.sim.timing import format_ts


def _rates_plot(ev: Evaluation) -> str:
    rows = [r for r in ev.groups if r.cls in ("benign", "campaign")]
    fig = Figure(figsize=(9, 0.38 * len(rows) + 1.4))
    ax = fig.add_subplot()
    names = [r.group for r in rows]
    vals = [r.rate for r in rows]
    colors = ["#c0392b" if r.cls == "campaign" else "#2471a3" for r in rows]
    y = range(len(rows))
    ax.barh(list(y), vals, color=colors)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel("share of accounts caught (campaigns: recall, red; benign: false-positive rate, blue)")
    for i, v in enumerate(vals):
        ax.text(min(v, 1.0) + 0.01, i, f"{v:.4f}", va="center", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def _ttd_plot(ev: Evaluation) -> str:
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    camp = [r for r in ev.groups if r.cls == "campaign" and r.ttd_s]
    if camp:
        data = [[max(t, 1.0) / 60 for t in r.ttd_s] for r in camp]
        lo = min(min(d) for d in data)
        hi = max(max(d) for d in data)
        hi = max(hi, lo * 1.5)
        edges = [lo * (hi / lo) ** (i / 30) for i in range(31)]
        ax.hist(data, bins=edges, stacked=True, label=[r.group for r in camp])
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no campaign account was caught", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("time to detect (minutes from the account's first request, log scale; < 1 s shown as 1 s)")
    ax.set_ylabel("accounts")
    ax.grid(alpha=0.3)
    return png(fig)


def _leak_plot(ev: Evaluation) -> str:
    fig = Figure(figsize=(9, 3.8))
    ax = fig.add_subplot()
    t0 = ev.first_ts or 0
    any_line = False
    for group in sorted(ev.events_series):
        leaked = ev.leaked_series.get(group, {})
        bins = sorted(ev.events_series[group])
        xs, ys, run = [], [], 0
        for b in bins:
            run += leaked.get(b, 0)
            xs.append((b + ev.bin_ms - t0) / 3_600_000)
            ys.append(run)
        ax.step(xs, ys, where="post", label=group)
        any_line = True
    if any_line:
        ax.legend(fontsize=8)
    ax.set_xlabel(f"hours since {format_ts(t0)[:16]}Z")
    ax.set_ylabel("leaked exchanges (cumulative)")
    ax.grid(alpha=0.3)
    return png(fig)


def _card(key: str, value: str, test_id: str) -> str:
    return (f'<div class="card" data-metric="{test_id}"><div class="v">{html.escape(value)}</div>'
            f'<div class="k">{html.escape(key)}</div></div>')


def render(ev: Evaluation, title: str = "distill-guard evaluation") -> str:
    t = ev.totals
    ttd = "-" if t.median_ttd_s is None else f"{t.median_ttd_s:.4f} s"
    cards = "".join([
        _card(f"campaign recall ({t.campaign_caught}/{t.campaign_accounts} accounts)", f"{t.campaign_recall:.4f}",
              "campaign_recall"),
        _card(f"benign false-positive rate ({t.benign_caught}/{t.benign_accounts})", f"{t.benign_fpr:.4f}",
              "benign_fpr"),
        _card("benign accounts blocked", str(t.benign_blocked), "benign_blocked"),
        _card(f"leak ratio ({t.leaked}/{t.campaign_events} campaign exchanges)", f"{t.leak_ratio:.4f}",
              "leak_ratio"),
        _card(f"median time to detect ({duration_text(t.median_ttd_s)})", ttd, "median_ttd"),
        _card(f"replacements caught on first request ({t.replacements_first}/{t.replacements})",
              f"{t.replacement_first_rate:.4f}", "replacement_first"),
    ])
    rows = "".join(
        f'<tr class="{r.cls}"><td>{html.escape(r.group)}</td><td>{r.cls}</td><td>{r.accounts}</td>'
        f"<td>{r.caught}</td><td>{r.rate:.4f}</td><td>{r.blocked}</td><td>{r.events}</td><td>{r.leaked}</td>"
        f"<td>{duration_text(r.median_ttd_s)}</td></tr>" for r in ev.groups)
    span = ""
    if ev.first_ts is not None and ev.last_ts is not None:
        span = f"traffic {format_ts(ev.first_ts)} to {format_ts(ev.last_ts)}; "
    defs = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in DEFINITIONS.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">{span}{ev.decisions_total} decisions read, {ev.decisions_used} enforcing account-scoped.</p>
<div class="cards" id="headline">{cards}</div>
<h2>By population and campaign</h2>
<table id="groups"><thead><tr><th>group</th><th>class</th><th>accounts</th><th>caught</th><th>rate</th>
<th>blocked</th><th>events</th><th>leaked</th><th>median time to detect</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Recall and false-positive rate by group</h2>
<img alt="recall and false-positive rate by group" src="{_rates_plot(ev)}">
<h2>Time to detect</h2>
<img alt="time-to-detect distribution" src="{_ttd_plot(ev)}">
<h2>Leaked exchanges over time</h2>
<img alt="leaked exchanges over time per campaign" src="{_leak_plot(ev)}">
<h2>Definitions</h2><dl>{defs}</dl>
<script>{SCRIPT}</script>
</body></html>
"""


def write(ev: Evaluation, path: Path, title: str = "distill-guard evaluation") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(ev, title), encoding="utf-8")
