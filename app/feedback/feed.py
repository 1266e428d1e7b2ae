"""`replay --feedback FILE`: a JSONL file of verdicts applied at their own times, interleaved with the events.

A verdict at time T is applied before the first event, in file order, whose time reaches T (the event-time
watermark, as `--rules-at` switches rules), and those later than every event after the last one; verdicts of
equal time in file order. So a replay with the same files gives the same records. A verdict naming a
decision is resolved from the decisions this replay has emitted before it. Bad lines (not JSON, schema
violations) and verdicts about an unknown cluster or decision are dead-lettered with the feedback file and
line as their source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.emit.records import DeadLetter, Decision
from app.feedback.wire import UNKNOWN_SUBJECT, DecisionIndex, parse_verdict
from app.ingest.parse import Rejection
from app.policy.feedback import Verdict


class VerdictFeed:
    def __init__(self, path: Path, clock_ms: int, dead_letter: Callable[[DeadLetter], None]) -> None:
        """Reads and checks the whole file now (bad lines go to `dead_letter` at once); `clock_ms` is the
        pipeline clock of the dead letters, as for events."""
        self.name = str(path)
        self._clock_ms = clock_ms
        self._dead = dead_letter
        self.index = DecisionIndex()
        self.applied = 0
        self.rejected = 0
        self._watermark: int | None = None
        pending: list[tuple[int, int, bytes, Verdict]] = []
        with path.open("rb") as f:
            for n, raw in enumerate(f, start=1):
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                v = parse_verdict(raw)
                if isinstance(v, Rejection):
                    self._reject(n, raw, v.code, v.message)
                else:
                    pending.append((v.ts_ms, n, raw, v))
        pending.sort(key=lambda p: (p[0], p[1]))
        self._pending = pending
        self._next = 0

    def __len__(self) -> int:
        return len(self._pending)

    def _reject(self, line: int, raw: bytes, code: str, message: str) -> None:
        self.rejected += 1
        self._dead(DeadLetter(self._clock_ms, {"file": self.name, "line": line}, code, message, raw))

    def seen(self, decisions: list[Decision]) -> None:
        """Remember emitted decisions: a later verdict may name one."""
        for d in decisions:
            self.index.add(d.decision_id, d.scope, d.value, d.cluster_id, d.action)

    def before(self, ts_ms: int, apply: Callable[[Verdict], str | None]) -> None:
        """Apply every verdict the watermark reaches once it takes in an event at `ts_ms` (before that event)."""
        if self._watermark is None or ts_ms > self._watermark:
            self._watermark = ts_ms
        self._apply_upto(self._watermark, apply)

    def rest(self, apply: Callable[[Verdict], str | None]) -> None:
        """Apply the verdicts later than every event."""
        self._apply_upto(None, apply)

    def _apply_upto(self, upto: int | None, apply: Callable[[Verdict], str | None]) -> None:
        pending = self._pending
        while self._next < len(pending) and (upto is None or pending[self._next][0] <= upto):
            _, line, raw, v = pending[self._next]
            self._next += 1
            resolved = self.index.resolve(v)
            if resolved is None:
                self._reject(line, raw, UNKNOWN_SUBJECT, f"no decision {v.value!r} was emitted before the verdict")
                continue
            why = apply(resolved)
            if why is not None:
                self._reject(line, raw, UNKNOWN_SUBJECT, why)
            else:
                self.applied += 1
