"""Combines hits into an assessment. Shadow signals count toward `score_all` only, so a rule under
evaluation produces shadow alerts and decisions without changing what is enforced."""

from __future__ import annotations

from dataclasses import dataclass

from app.detect.hits import Hit


@dataclass(frozen=True, slots=True)
class Assessment:
    score_enforce: float
    score_all: float
    families_enforce: frozenset[str]
    hits: tuple[Hit, ...]


def assess(hits: list[Hit]) -> Assessment:
    enforce = sum(h.signal.weight for h in hits if not h.signal.shadow)
    total = sum(h.signal.weight for h in hits)
    fams = frozenset(h.signal.family for h in hits if not h.signal.shadow)
    ordered = tuple(sorted(hits, key=lambda h: (-h.signal.weight, h.signal.code)))
    return Assessment(min(100.0, enforce), min(100.0, total), fams, ordered)
