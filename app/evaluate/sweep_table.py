"""Plain-text tables of a many-world sweep, for the terminal: per world, the spread, archetypes by size, targets."""

from __future__ import annotations

from app.evaluate.sweep import BUCKETS, MEASURES, Spread, Sweep, WorldResult, worst_benign_group
from app.evaluate.table import duration_text

_CELL = 19  # "0.9000/0.8500 n=12"


def fmt(key: str, v: float | None) -> str:
    if v is None:
        return "-"
    if key == "median_ttd_s":
        return duration_text(v)
    if key == "benign_blocked":
        return f"{v:g}"
    return f"{v:.4f}"


def _worst_text(s: Spread) -> str:
    if s.worst_seed is None:
        return "-"
    if s.worst is None:
        return f"nothing caught (seed {s.worst_seed})"
    return f"{fmt(s.key, s.worst)} (seed {s.worst_seed})"


def _benign_text(w: WorldResult) -> str:
    g = worst_benign_group(w.benign())
    return "none caught" if g is None else f"{g['group']} {g['caught']}/{g['accounts']}"


def header(sw: Sweep) -> str:
    return "\n".join([
        f"evaluate: {len(sw.seeds)} worlds, size {sw.size}, {sw.convention}",
        f"worlds from {sw.source}",
        f"rules {sw.rules}",
    ])


def render(sw: Sweep) -> str:
    head = (f"{'seed':>6} {'events':>9} {'accounts':>8} {'recall':>7} {'ben_fpr':>7} {'ben_blk':>7} "
            f"{'leak':>7} {'ttd_med':>8}  worst benign group (caught/accounts)")
    lines = [header(sw), "", head, "-" * len(head)]
    for w in sw.worlds:
        t = w.totals
        lines.append(f"{w.seed:>6} {w.events:>9} {w.accounts:>8} {t.campaign_recall:>7.4f} {t.benign_fpr:>7.4f} "
                     f"{t.benign_blocked:>7} {t.leak_ratio:>7.4f} {duration_text(t.median_ttd_s):>8}  "
                     f"{_benign_text(w)}")

    lines += ["", f"{'figure':<16} {'mean':>10}  worst world", "-" * 52]
    for m in MEASURES:
        s = sw.spreads[m.key]
        lines.append(f"{m.label:<16} {fmt(m.key, s.mean):>10}  {_worst_text(s)}")
    wb = sw.worst_benign
    lines.append("worst benign group across worlds: " + (
        "none (no benign account caught)" if wb is None else
        f"{wb['group']} ({wb['caught']} of {wb['accounts']} accounts caught over {wb['worlds']} worlds, "
        f"rate {wb['rate']:.4f})"))

    lines += ["", "recall per campaign archetype by size (its accounts that sent requests): mean/min over n samples "
              "(world x group)"]
    names = [b[2] for b in BUCKETS]
    arch_w = max([len("archetype")] + [len(c.archetype) for c in sw.cells])
    head = f"{'archetype':<{arch_w}} " + " ".join(f"{n:>{_CELL}}" for n in names)
    lines += [head, "-" * len(head)]
    by = {(c.archetype, c.bucket): c for c in sw.cells}
    for arch in sorted({c.archetype for c in sw.cells}):
        cells = []
        for n in names:
            c = by.get((arch, n))
            text = "-" if c is None else f"{c.mean:.4f}/{c.min:.4f} n={c.groups}"
            cells.append(f"{text:>{_CELL}}")
        lines.append(f"{arch:<{arch_w}} " + " ".join(cells))
    lines.append("(groups under 10 accounts are shown, not targeted)")

    if any(r.missed for r in sw.misses):
        lines += ["", "campaign accounts missed, by why, over all worlds (a group is detected at its first enforcing "
                  "decision on any of its accounts)"]
        arch_w = max([len("archetype")] + [len(r.archetype) for r in sw.misses])
        head = (f"{'archetype':<{arch_w}} {'accounts':>8} {'missed':>7} {'undetected':>10} {'before_detection':>16} "
                f"{'not_reached':>11}")
        lines += [head, "-" * len(head)]
        for r in sw.misses:
            lines.append(f"{r.archetype:<{arch_w}} {r.accounts:>8} {r.missed:>7} {r.undetected:>10} "
                         f"{r.before_detection:>16} {r.not_reached:>11}")

    lines += ["", "targets"]
    for t in sw.targets:
        lines.append(f"  {t.status:<4}  {t.text:<72} {t.observed}")
    lines.append(sw.verdict)
    return "\n".join(lines)
