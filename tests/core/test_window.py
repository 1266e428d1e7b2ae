"""Bucketed windows: the sliced fast paths of `totals` and `active_buckets` agree with a plain scan."""

from __future__ import annotations

import random

import pytest

from app.state.window import Buckets


def _scan_totals(b: Buckets, now: int, span: int) -> tuple[int, int]:
    lo, hi = (now - span) // b.res_ms + 1, now // b.res_ms
    d = b.data
    return (sum(d[i + 1] for i in range(0, len(d), 3) if lo <= d[i] <= hi),
            sum(d[i + 2] for i in range(0, len(d), 3) if lo <= d[i] <= hi))


def _scan_active(b: Buckets, now: int, span: int) -> int:
    lo = (now - span) // b.res_ms + 1
    d = b.data
    return sum(1 for i in range(0, len(d), 3) if d[i] >= lo and d[i + 1] > 0)


@pytest.mark.parametrize("seed", range(5))
def test_fast_paths_match_a_scan(seed):
    rng = random.Random(seed)
    b = Buckets(300_000, 3_600_000)
    now = 1_769_947_200_000
    for _ in range(400):
        now += rng.randrange(0, 200_000)
        ts = now - rng.randrange(0, 900_000) if rng.random() < 0.2 else now  # some late events
        b.add(ts, rng.choice([0, 1, 1, 2]), rng.randrange(0, 5000))
        for query in (now, now - rng.randrange(0, 600_000), now + rng.randrange(0, 600_000)):
            for span in (3_600_000, 1_800_000, 86_400_000):
                assert b.totals(query, span) == _scan_totals(b, query, span)
                assert b.active_buckets(query, span) == _scan_active(b, query, span)
