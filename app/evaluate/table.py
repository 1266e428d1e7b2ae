"""Plain-text tables of an evaluation, for the terminal."""

from __future__ import annotations

from app.evaluate.metrics import Evaluation


def duration_text(seconds: float | None) -> str:
    """A duration for a table or a report: seconds under two minutes, minutes under two hours, else hours."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.2f}h"


def render(ev: Evaluation) -> str:
    head = (f"{'group':<28} {'cls':<8} {'accounts':>8} {'caught':>7} {'rate':>7} {'blocked':>7} {'events':>9} "
            f"{'leaked':>9} {'ttd_median':>10}")
    lines = [head, "-" * len(head)]
    for r in ev.groups:
        lines.append(f"{r.group:<28} {r.cls:<8} {r.accounts:>8} {r.caught:>7} {r.rate:>7.4f} {r.blocked:>7} "
                     f"{r.events:>9} {r.leaked:>9} {duration_text(r.median_ttd_s):>10}")
    camp = [r for r in ev.groups if r.cls == "campaign" and r.caught < r.accounts]
    if camp:
        head = (f"{'campaign group':<28} {'missed':>7} {'undetected':>10} {'before_detection':>16} "
                f"{'not_reached':>11}")
        lines += ["", "campaign accounts missed, by why (a group is detected at its first enforcing decision on any "
                  "of its accounts)", head, "-" * len(head)]
        for r in camp:
            lines.append(f"{r.group:<28} {r.accounts - r.caught:>7} {r.missed_undetected:>10} "
                         f"{r.missed_before_detection:>16} {r.missed_not_reached:>11}")
    t = ev.totals
    ttd = "-" if t.median_ttd_s is None else f"{t.median_ttd_s:.4f} s ({duration_text(t.median_ttd_s)})"
    lines += [
        "",
        "totals",
        f"  campaign recall                        {t.campaign_recall:.4f}  "
        f"({t.campaign_caught}/{t.campaign_accounts})",
        f"  benign false-positive rate             {t.benign_fpr:.4f}  ({t.benign_caught}/{t.benign_accounts})",
        f"  benign accounts blocked                {t.benign_blocked}",
        f"  leak ratio                             {t.leak_ratio:.4f}  ({t.leaked}/{t.campaign_events})",
        f"  median time to detect                  {ttd}",
        f"  replacements caught on first request   {t.replacement_first_rate:.4f}  "
        f"({t.replacements_first}/{t.replacements})",
        "",
        f"decisions: {ev.decisions_total} read, {ev.decisions_used} enforcing account-scoped"
        + (f"; {ev.unlabelled_accounts} accounts in events have no label" if ev.unlabelled_accounts else ""),
    ]
    return "\n".join(lines)
