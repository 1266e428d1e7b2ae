"""When requests happen: diurnal curves in local time, bursty sessions, shifts; plus RFC 3339 formatting."""

from __future__ import annotations

import bisect
import math
import random
from datetime import UTC, datetime

HOUR_MS = 3_600_000

# Relative activity by local hour (0..23). "human": people at home and work; "office": business hours;
# "batch": nightly jobs and office hours; "flat": machines that never sleep.
PROFILES: dict[str, tuple[float, ...]] = {
    "human": (0.35, 0.2, 0.12, 0.08, 0.07, 0.1, 0.25, 0.5, 0.8, 1.0, 1.1, 1.15, 1.2, 1.2, 1.15, 1.15, 1.2,
              1.3, 1.35, 1.4, 1.45, 1.35, 1.0, 0.65),
    "office": (0.05, 0.03, 0.03, 0.03, 0.04, 0.08, 0.2, 0.55, 1.3, 1.8, 1.9, 1.85, 1.4, 1.7, 1.9, 1.85, 1.6,
               1.1, 0.6, 0.4, 0.35, 0.3, 0.2, 0.1),
    "batch": (1.4, 1.6, 1.6, 1.5, 1.3, 1.0, 0.6, 0.6, 0.9, 1.0, 1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7,
              0.7, 0.8, 0.9, 1.1, 1.3),
    "flat": (1.0,) * 24,
}


class DiurnalSampler:
    """Samples event times over [start, end) with density following a local-time profile."""

    __slots__ = ("_cum", "_end", "_hours", "_start")

    def __init__(self, profile: str, tz_hours: float, start_ms: int, end_ms: int) -> None:
        self._start, self._end = start_ms, end_ms
        self._hours = max(1, math.ceil((end_ms - start_ms) / HOUR_MS))
        curve = PROFILES[profile]
        start_hour = datetime.fromtimestamp(start_ms / 1000, UTC).hour
        cum, total = [], 0.0
        for h in range(self._hours):
            local = int(start_hour + h + tz_hours + 0.5) % 24
            span = min(HOUR_MS, end_ms - start_ms - h * HOUR_MS) / HOUR_MS
            total += curve[local] * span
            cum.append(total)
        self._cum = cum

    def sample(self, rng: random.Random) -> int:
        u = rng.random() * self._cum[-1]
        h = bisect.bisect_right(self._cum, u)
        h = min(h, self._hours - 1)
        t = self._start + h * HOUR_MS + int(rng.random() * HOUR_MS)
        return min(t, self._end - 1)

    def weight_at(self, ts_ms: int) -> float:
        """Relative intensity at `ts_ms` (mean 1 over the window)."""
        h = min(max(0, (ts_ms - self._start) // HOUR_MS), self._hours - 1)
        prev = self._cum[h - 1] if h else 0.0
        return (self._cum[h] - prev) * self._hours / self._cum[-1]


def loguniform(rng: random.Random, lo: float, hi: float) -> float:
    if lo <= 0 or hi <= lo:
        return max(lo, 0.0)
    return math.exp(math.log(lo) + rng.random() * (math.log(hi) - math.log(lo)))


def stochastic_round(rng: random.Random, x: float) -> int:
    n = int(x)
    return n + (1 if rng.random() < x - n else 0)


def geometric(rng: random.Random, mean: float) -> int:
    """>= 1, mean `mean`: session lengths are heavy-ish tailed in practice, geometric is close enough."""
    if mean <= 1:
        return 1
    p = 1.0 / mean
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


def session_times(rng: random.Random, start: int, n: int, gap_lo_s: float, gap_hi_s: float, end: int) -> list[int]:
    """`n` request times starting at `start` with log-uniform gaps, cut at `end`."""
    out = [start]
    t = float(start)
    for _ in range(n - 1):
        t += loguniform(rng, gap_lo_s, gap_hi_s) * 1000
        if t >= end:
            break
        out.append(int(t))
    return out


def parse_ts(value: str | int | float) -> int:
    """RFC 3339 string (any offset) or epoch milliseconds -> epoch milliseconds."""
    if isinstance(value, int | float):
        return int(value)
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return round(dt.timestamp() * 1000)


class TsFormatter:
    """Epoch ms -> '2026-02-01T12:00:00.123Z', caching the minute prefix (the hot path of encoding)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def __call__(self, ts_ms: int) -> str:
        minute, rest = divmod(ts_ms, 60_000)
        prefix = self._cache.get(minute)
        if prefix is None:
            prefix = datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:")
            self._cache[minute] = prefix
        s, ms = divmod(rest, 1000)
        return f"{prefix}{s:02d}.{ms:03d}Z"


def format_ts(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ms % 1000:03d}Z"
