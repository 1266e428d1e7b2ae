"""One self-contained HTML report of a many-world sweep: spread cards, plots across worlds as inline PNGs,
the per-world, archetype and targets tables, and the definitions."""

from __future__ import annotations

import html
import random
from pathlib import Path

from matplotlib.figure import Figure

from app.evaluate.page import CSS, SCRIPT, png
from app.evaluate.sweep import BUCKETS, MEASURES, SWEEP_DEFINITIONS, Sweep, worst_benign_group
from app.evaluate.sweep_table import fmt
from app.evaluate.table import duration_text

_EXTRA_CSS = """
td.PASS { color: #1e7b34; font-weight: 600; } td.FAIL { color: #a61b1b; font-weight: 600; }
td.NA { color: #5b6475; }
#targets td:nth-child(2), #targets th:nth-child(2), #targets td:last-child, #targets th:last-child { text-align: left; }
"""


# the target drawn on each figure's panel (dashed); recall shows its worst-world floor
_PANEL_TARGET = {"campaign_recall": "recall_worst_min", "benign_fpr": "benign_fpr_max",
                 "benign_blocked": "benign_blocked_max", "leak_ratio": "leak_ratio_max",
                 "median_ttd_s": "median_ttd_s_max"}


def _spread_plot(sw: Sweep) -> str:
    """One panel per figure: a box over the worlds, every world as a point, the worst one labelled, the target
    dashed."""
    fig = Figure(figsize=(11, 3.4))
    axes = fig.subplots(1, len(MEASURES))
    jitter = random.Random(0)  # fixed: the same sweep draws the same picture
    for ax, m in zip(axes, MEASURES, strict=True):
        pts = [(w.seed, getattr(w.totals, m.key)) for w in sw.worlds]
        vals = [v / 60 if m.key == "median_ttd_s" else float(v) for _, v in pts if v is not None]
        if vals:
            ax.boxplot(vals, widths=0.5, showfliers=False)
            xs = [1 + jitter.uniform(-0.15, 0.15) for _ in vals]
            ax.scatter(xs, vals, s=16, color="#2471a3", zorder=3)
        s = sw.spreads[m.key]
        if s.worst is not None and s.worst_seed is not None:
            y = s.worst / 60 if m.key == "median_ttd_s" else s.worst
            ax.annotate(f"seed {s.worst_seed}", (1, y), xytext=(8, 0), textcoords="offset points", fontsize=7,
                        va="center")
        target = sw.target_values.get(_PANEL_TARGET[m.key])
        if target is not None:
            ax.axhline(target / 60 if m.key == "median_ttd_s" else target, color="#a61b1b", lw=0.9, ls="--")
        lo, hi = ax.get_ylim()
        if m.key == "campaign_recall":
            ax.set_ylim(max(lo, 0.0), min(hi, 1.02))
        else:
            ax.set_ylim(0.0, max(hi, 1e-3))
        ax.set_xticks([])
        ax.set_title(m.label + (" (min)" if m.key == "median_ttd_s" else ""), fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return png(fig)


def _size_plot(sw: Sweep) -> str:
    """Recall of every campaign group in every world against its size, one colour per archetype."""
    fig = Figure(figsize=(9, 4.2))
    ax = fig.add_subplot()
    by_arch: dict[str, list[tuple[int, float]]] = {}
    for w in sw.worlds:
        for g in w.campaigns():
            if g["accounts"]:
                by_arch.setdefault(g["archetype"], []).append((g["accounts"], g["rate"]))
    for arch in sorted(by_arch):
        xs, ys = zip(*by_arch[arch], strict=True)
        ax.scatter(xs, ys, s=22, alpha=0.8, label=arch)
    if by_arch:
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    for lo, _, _ in BUCKETS[1:]:
        ax.axvline(lo, color="#8a93a5", lw=0.8, ls=":")
    t = sw.target_values.get("archetype_bucket_recall_min")
    if t is not None:
        ax.axhline(t, color="#a61b1b", lw=0.8, ls="--")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("campaign size (accounts that sent requests, log scale; dotted: bucket edges 10, 30, 100, 300)")
    ax.set_ylabel("recall of the group")
    ax.grid(alpha=0.3)
    return png(fig)


def _benign_plot(sw: Sweep) -> str:
    """Caught benign accounts, benign group by world, as a grid of counts."""
    groups = sorted({g["group"] for w in sw.worlds for g in w.benign()})
    seeds = [w.seed for w in sw.worlds]
    grid = [[0] * len(seeds) for _ in groups]
    row = {g: i for i, g in enumerate(groups)}
    for j, w in enumerate(sw.worlds):
        for g in w.benign():
            grid[row[g["group"]]][j] = g["caught"]
    fig = Figure(figsize=(min(11, 3 + 0.5 * len(seeds)), 0.34 * len(groups) + 1.4))
    ax = fig.add_subplot()
    if groups:
        top = max(max(r) for r in grid)
        ax.imshow(grid, aspect="auto", cmap="Reds", vmin=0, vmax=max(1, top))
        for i, r in enumerate(grid):
            for j, v in enumerate(r):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if top and v > top / 2 else "#1d2330")
        ax.set_yticks(range(len(groups)), groups, fontsize=8)
        ax.set_xticks(range(len(seeds)), [str(s) for s in seeds], fontsize=8)
    else:
        ax.text(0.5, 0.5, "no benign group", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("world seed")
    return png(fig)


def _card(key: str, value: str, test_id: str) -> str:
    return (f'<div class="card" data-metric="{test_id}"><div class="v">{html.escape(value)}</div>'
            f'<div class="k">{html.escape(key)}</div></div>')


def render(sw: Sweep, title: str = "distill-guard evaluation over worlds") -> str:
    cards = []
    for m in MEASURES:
        s = sw.spreads[m.key]
        worst = ("-" if s.worst_seed is None else
                 f"nothing caught, seed {s.worst_seed}" if s.worst is None else
                 f"{fmt(m.key, s.worst)}, seed {s.worst_seed}")
        cards.append(_card(f"{m.label}: mean over {s.worlds} worlds (worst: {worst})", fmt(m.key, s.mean), m.key))
    wb = sw.worst_benign
    cards.append(_card("worst benign group across worlds" + ("" if wb is None else
                       f" ({wb['caught']} of {wb['accounts']} accounts caught)"),
                       "none caught" if wb is None else wb["group"], "worst_benign_group"))
    world_rows = []
    for w in sw.worlds:
        t, g = w.totals, worst_benign_group(w.benign())
        world_rows.append(
            f"<tr><td>{w.seed}</td><td>{html.escape(w.scenario)}</td><td>{w.events}</td><td>{w.accounts}</td>"
            f"<td>{t.campaign_recall:.4f}</td><td>{t.benign_fpr:.4f}</td><td>{t.benign_blocked}</td>"
            f"<td>{t.leak_ratio:.4f}</td><td>{duration_text(t.median_ttd_s)}</td><td>"
            + ("none caught" if g is None else html.escape(f"{g['group']} {g['caught']}/{g['accounts']}"))
            + "</td></tr>")
    cell_rows = "".join(
        f"<tr><td>{html.escape(c.archetype)}</td>"
        f"<td>{html.escape(c.bucket + ('' if c.targeted else ' (not targeted)'))}</td>"
        f"<td>{c.mean:.4f}</td><td>{c.min:.4f}</td><td>{c.min_seed}</td><td>{c.groups}</td><td>{c.accounts}</td></tr>"
        for c in sw.cells)
    miss_rows = "".join(
        f"<tr><td>{html.escape(r.archetype)}</td><td>{r.accounts}</td><td>{r.missed}</td><td>{r.undetected}</td>"
        f"<td>{r.before_detection}</td><td>{r.not_reached}</td></tr>" for r in sw.misses)
    target_rows = "".join(
        f'<tr><td class="{t.status.replace("/", "")}">{t.status}</td><td>{html.escape(t.text)}</td>'
        f"<td>{html.escape(t.observed)}</td></tr>" for t in sw.targets)
    defs = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in SWEEP_DEFINITIONS.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}{_EXTRA_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">{len(sw.worlds)} worlds of size {html.escape(sw.size)}: {html.escape(sw.convention)}.<br>
Worlds from {html.escape(sw.source)}; rules {html.escape(sw.rules)}. {sw.verdict}.</p>
<div class="cards" id="headline">{"".join(cards)}</div>
<h2>Targets</h2>
<table id="targets"><thead><tr><th>result</th><th>target</th><th>observed</th></tr></thead>
<tbody>{target_rows}</tbody></table>
<h2>Each figure across the worlds</h2>
<img alt="spread of each figure across worlds" src="{_spread_plot(sw)}">
<h2>Recall against campaign size, per archetype</h2>
<img alt="recall against campaign size per archetype" src="{_size_plot(sw)}">
<h2>Recall per archetype and size bucket</h2>
<table id="archetypes"><thead><tr><th>archetype</th><th>size (accounts)</th><th>mean recall</th>
<th>min recall</th><th>seed of min</th><th>samples</th><th>accounts</th></tr></thead><tbody>{cell_rows}</tbody></table>
<h2>Campaign accounts missed, by why</h2>
<p>Over all worlds. A campaign group is detected at its first enforcing decision on any of its accounts:
<em>before detection</em> accounts had sent their last request by then, <em>not reached</em> accounts were
still active after it, <em>undetected</em> groups were never decided.</p>
<table id="misses"><thead><tr><th>archetype</th><th>accounts</th><th>missed</th><th>undetected</th>
<th>before detection</th><th>not reached</th></tr></thead><tbody>{miss_rows}</tbody></table>
<h2>Caught benign accounts per benign group and world</h2>
<img alt="caught benign accounts per benign group and world" src="{_benign_plot(sw)}">
<h2>Per world</h2>
<table id="worlds"><thead><tr><th>seed</th><th>scenario</th><th>events</th><th>accounts</th><th>recall</th>
<th>benign FPR</th><th>benign blocked</th><th>leak ratio</th><th>median TTD</th>
<th>worst benign group (caught/accounts)</th></tr></thead><tbody>{"".join(world_rows)}</tbody></table>
<h2>Definitions</h2><dl>{defs}</dl>
<script>{SCRIPT}</script>
</body></html>
"""


def write(sw: Sweep, path: Path, title: str = "distill-guard evaluation over worlds") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(sw, title), encoding="utf-8")
