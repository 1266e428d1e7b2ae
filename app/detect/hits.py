"""A fired signal: the evidence unit every detector returns and every alert reason is made from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.emit.records import Reason
from app.rules.model import Signal


@dataclass(frozen=True, slots=True)
class Hit:
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
