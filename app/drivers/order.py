"""Input order guard for the worker's stages: every input partition is processed in offset order, with
no record skipped and none twice, whatever the consumer library delivers.

Why: around a consumer-group rebalance, Faust (0.11-0.15) can drop records it has already fetched (its
flow control clears the stream queues after the fetcher has moved past them) and deliver a record twice;
docs/design.md ("Input order guard") says what that did to the worker before this guard.

How: per partition the guard knows the next offset it expects (from the consumer's committed offset at
the first record after an assignment). A record behind it is a duplicate and is dropped. A record ahead
of it means offsets [expected, record) never arrived: the guard puts a `Fill` for them in front of the
record, and the driver reads exactly those offsets from the broker itself and processes them first
(offsets the broker does not have, transaction markers or compacted records, simply come back empty).
A record lost with nothing after it yet shows as a partition whose consumer has read past the expected
offset without delivering it (`overdue`).

Pure bookkeeping: the driver reads the records and owns them; nothing here imports Faust."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Fill:
    """Offsets [start, end) of `tp` that were never delivered: read them from the broker, in order."""
    tp: Hashable
    start: int
    end: int


@dataclass(slots=True)
class Admitted:
    """One batch through the guard: records and `Fill`s in the order they are to be processed, and the
    records dropped as duplicates (the driver acknowledges those once the batch is done: a copy Faust
    tracks stays pending otherwise, and its next rebalance waits for it)."""
    items: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    fills: int = 0

    @property
    def duplicates(self) -> int:
        return len(self.dropped)


class InputOrder:
    def __init__(self, committed: Callable[[Hashable], int | None]) -> None:
        """`committed(tp)`: the partition's committed offset (the next to read), or None when unknown.

        Offsets missing for real (transaction markers, compaction) cost one read each that returns
        nothing. Faust's own record of offsets it did not see from the broker cannot tell those from the
        records it lost itself (it marks both the same way), so only the broker is asked."""
        self._committed = committed
        self._next: dict[Hashable, int] = {}
        self._seen: dict[Hashable, int] = {}  # tp -> next expected offset at the previous `overdue` call

    def reset(self) -> None:
        """Forget every partition (on a rebalance: the next record of each is checked against the
        committed offset again)."""
        self._next.clear()
        self._seen.clear()

    def admit(self, records: list, key: Callable[[object], tuple[Hashable, int]]) -> Admitted:
        """`records` in delivery order; `key(record)` gives its (partition, offset)."""
        out = Admitted()
        nxt = self._next
        items = out.items
        for rec in records:
            tp, off = key(rec)
            want = nxt.get(tp)
            if want is None:
                want = self._committed(tp)
            if want is None or off == want:
                items.append(rec)
            elif off < want:
                out.dropped.append(rec)
                continue
            else:
                items.append(Fill(tp, want, off))
                items.append(rec)
                out.fills += 1
            nxt[tp] = off + 1
        return out

    def remaining(self, fill: Fill) -> Fill | None:
        """What of `fill` is still to be read now: an `overdue` fill waits for its stage, which may have
        processed some or all of those records meanwhile (they were slow, not lost)."""
        want = self._next.get(fill.tp)
        if want is None or want <= fill.start:
            return fill
        return Fill(fill.tp, want, fill.end) if want < fill.end else None

    def filled(self, tp: Hashable, end: int) -> None:
        """The driver has processed everything of `tp` before `end` (an `overdue` fill)."""
        if self._next.get(tp, -1) < end:
            self._next[tp] = end

    def overdue(self, partitions: Iterable[Hashable],
                read_offset: Callable[[Hashable], int | None]) -> list[Fill]:
        """Fills for `partitions` that have not moved since the previous call although the consumer
        has read past the next expected offset (`read_offset(tp)`: the last offset it handed to the
        streams): records lost with nothing after them yet. Call it every few seconds with the
        partitions whose stage is idle (a busy stage's records are slow, not lost: leaving a partition
        out starts its count again); a fill of records that were merely slow only makes the guard drop
        them as duplicates when they come."""
        fills = []
        seen = {}
        for tp in partitions:
            want = self._next.get(tp)
            if want is None:
                want = self._committed(tp)
                if want is None:
                    continue
            read = read_offset(tp)
            if read is not None and read >= want and self._seen.get(tp) == want:
                fills.append(Fill(tp, want, read + 1))
            seen[tp] = want
        self._seen = seen
        return fills
