"""One replay of a file (`app.drivers.replay.replay`, the same loop and engine) with an account traced,
turned into the explain document."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.emit.records import Alert, DeadLetter, Decision
from app.explain.document import build
from app.explain.trace import TracingEngine
from app.rules.model import Rules

PROGRESS_EVERY = 100_000


class UnknownAccount(LookupError):
    """No valid event of the account in the file; the message says what was found instead."""

    def __init__(self, account_id: str, detail: str) -> None:
        self.account_id = account_id
        super().__init__(f"account {account_id!r} has no valid event in the file ({detail})")


class _Sink:
    """Replay's sink: the records are read from the engine's output by the trace, so only dead letters
    are looked at here (counted, and matched to the account by id without keeping the payload)."""

    def __init__(self, account_id: str, tick: Callable[[], None]) -> None:
        self._needle = account_id.encode("utf-8")
        self._tick = tick
        self.dead_letters = 0
        self.account_dead_letters: list[dict[str, Any]] = []

    def alert(self, a: Alert) -> None:
        pass

    def decision(self, d: Decision) -> None:
        pass

    def dead_letter(self, r: DeadLetter) -> None:
        self.dead_letters += 1
        if self._needle in r.payload and len(self.account_dead_letters) < 1000:
            self.account_dead_letters.append({"line": r.source.get("line"), "code": r.code})
        self._tick()


@dataclass(slots=True)
class _Progress:
    report: Callable[[int, float], None] | None
    every: int
    lines: int = 0
    started: float = 0.0

    def __call__(self) -> None:
        self.lines += 1
        if self.report is not None and self.lines % self.every == 0:
            self.report(self.lines, time.perf_counter() - self.started)


def _absent_for_sure(path: Path, account_id: str) -> bool:
    """True when no line can hold an event of the account: a fast scan that saves a replay on a typo.
    Only for ids a JSON encoder writes verbatim (printable ASCII without quote, backslash or slash)."""
    if not account_id.isascii() or not account_id.isprintable() or any(c in account_id for c in '"\\/'):
        return False
    needle = account_id.encode("ascii")
    with path.open("rb") as f:
        return not any(needle in line for line in f)


def explain_file(path: Path, account_id: str, rules: Rules, *, now_ms: int | None = None,
                 progress: Callable[[int, float], None] | None = None,
                 every: int = PROGRESS_EVERY) -> dict[str, Any]:
    """Replay `path` and explain `account_id`; raises UnknownAccount when it has no valid event."""
    from app.drivers.replay import replay

    if _absent_for_sure(path, account_id):
        raise UnknownAccount(account_id, "the id does not occur in it")
    tick = _Progress(progress, every, started=time.perf_counter())
    sink = _Sink(account_id, tick)
    engine = TracingEngine(rules, account_id, tick=tick)
    stats = replay(path, rules, sink, now_ms=now_ms, engine=engine)
    t = engine.trace
    if t.requests == 0:
        import difflib

        detail = f"{stats.events} events of {len(t.accounts_seen)} accounts replayed"
        dead = sink.account_dead_letters
        if dead:
            detail += (f"; {len(dead)} dead-lettered record(s) mention it: "
                       + ", ".join(f"line {d['line']} {d['code']}" for d in dead[:5]))
        similar = difflib.get_close_matches(account_id, sorted(t.accounts_seen), n=3, cutoff=0.7)
        if similar:
            detail += f"; similar ids: {', '.join(similar)}"
        raise UnknownAccount(account_id, detail)
    return build(t, events_file=str(path), lines=stats.lines, events=stats.events,
                 dead_letters=stats.dead_letters, account_dead_letters=sink.account_dead_letters)
