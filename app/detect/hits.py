"""A fired signal: the evidence unit every detector returns and every alert reason is made from."""

from __future__ import annotations

from collections.abc import Callable

from msgspec import Struct

from app.emit.records import Reason
from app.rules.model import Signal


class Hit(Struct, frozen=True, gc=False):
    """A frozen msgspec Struct, not a frozen dataclass: made on every event some signal fires on, and a
    Struct is ~5x cheaper to make. It holds a Signal (rules), never a cycle (`gc=False`)."""
    signal: Signal
    value: float
    detail: str

    def reason(self) -> Reason:
        return Reason(self.signal.code, self.value, self.signal.threshold, self.detail)


def at_least(sig: Signal | None, value: float, detail: Callable[[], str], out: list[Hit]) -> None:
    """Append a hit when the signal is enabled and `value` reaches its threshold; `detail` makes the
    hit's text, and runs only then (signals are tested on every event, most of them do not fire)."""
    if sig is not None and value >= sig.threshold:
        out.append(Hit(sig, value, detail()))


def fired(sig: Signal | None, value: float, detail: Callable[[], str], out: list[Hit]) -> None:
    """`at_least` without the hit's text (an empty detail): what a score, its families and its action step
    are made from, for a caller that makes the texts only when something is emitted."""
    if sig is not None and value >= sig.threshold:
        out.append(Hit(sig, value, ""))
