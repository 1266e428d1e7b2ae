"""Event-time bucketed counters: a compact sliding window of (requests, output tokens) per bucket.

Stored as one flat list [bucket, count, tokens, bucket, count, tokens, ...] so it serialises small;
buckets older than the span are dropped on every add, so the list never exceeds span/resolution."""

from __future__ import annotations


class Buckets:
    __slots__ = ("data", "res_ms", "span_ms")

    def __init__(self, res_ms: int, span_ms: int, data: list[int] | None = None) -> None:
        self.res_ms = res_ms
        self.span_ms = span_ms
        self.data: list[int] = data if data is not None else []

    def add(self, ts_ms: int, count: int, tokens: int) -> None:
        res = self.res_ms
        b = ts_ms // res
        d = self.data
        oldest = b - self.span_ms // res + 1
        if d:
            if d[0] < oldest:
                i = 0
                while i < len(d) and d[i] < oldest:
                    i += 3
                del d[:i]
            if d and d[-3] == b:  # the usual case, answered before the loop below
                d[-2] += count
                d[-1] += tokens
                return
        # events arrive nearly in order: the bucket is almost always the last one or a new one
        for i in range(len(d) - 3, -1, -3):
            if d[i] == b:
                d[i + 1] += count
                d[i + 2] += tokens
                return
            if d[i] < b:
                d[i + 3:i + 3] = [b, count, tokens]
                return
        if b >= oldest:
            d[0:0] = [b, count, tokens]

    def totals(self, now_ms: int, span_ms: int) -> tuple[int, int]:
        """(requests, tokens) in the buckets that overlap (now - span, now]."""
        lo = (now_ms - span_ms) // self.res_ms + 1
        hi = now_ms // self.res_ms
        d = self.data
        if d and d[-3] <= hi:
            # buckets are kept in ascending order: skip the old ones, sum the rest with slices
            i, n = 0, len(d)
            while i < n and d[i] < lo:
                i += 3
            return sum(d[i + 1 :: 3]), sum(d[i + 2 :: 3])
        c = t = 0
        for i in range(0, len(d), 3):
            if lo <= d[i] <= hi:
                c += d[i + 1]
                t += d[i + 2]
        return c, t

    def active_buckets(self, now_ms: int, span_ms: int) -> int:
        lo = (now_ms - span_ms) // self.res_ms + 1
        d = self.data
        i, n = 0, len(d)
        while i < n and d[i] < lo:  # ascending buckets: skip the old ones
            i += 3
        return sum(map((0).__lt__, d[i + 1 :: 3]))  # buckets with a positive count
