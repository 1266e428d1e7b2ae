"""Combines hits into an assessment. Shadow signals count toward `score_all` only, so a rule under
evaluation produces shadow alerts and decisions without changing what is enforced."""

from __future__ import annotations

from msgspec import Struct

from app.detect.hits import Hit


class Assessment(Struct, frozen=True, gc=False):
    """Made on every event with a hit: a frozen msgspec Struct costs a fraction of a frozen dataclass."""
    score_enforce: float
    score_all: float
    families_enforce: frozenset[str]
    hits: tuple[Hit, ...]


def assess(hits: list[Hit], ordered: bool = True) -> Assessment:
    """`ordered` False: the hits are kept in the order given, not by weight (for a caller that reads only the
    scores and families)."""
    # one pass; the sums add the same weights in the same order as sum() would, from the same int 0
    enforce = total = 0
    fams = set()
    for h in hits:
        sig = h.signal
        w = sig.weight
        total += w
        if not sig.shadow:
            enforce += w
            fams.add(sig.family)
    kept = tuple(sorted(hits, key=lambda h: (-h.signal.weight, h.signal.code))) if ordered else tuple(hits)
    return Assessment(min(100.0, enforce), min(100.0, total), frozenset(fams), kept)
