"""What every stage shares: the output record and the event-time watermark that drives expiry sweeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.allowlist import Allowlist
from app.detect.messages import Link, Observation
from app.emit.records import Alert, Decision
from app.rules.model import Rules


@dataclass(slots=True)
class Output:
    alerts: list[Alert] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


class Stage:
    def __init__(self, rules: Rules) -> None:
        self.watermark_ms = 0
        self.seen = 0
        self.set_rules(rules)

    def set_rules(self, rules: Rules) -> None:
        self.rules = rules
        self.allow = Allowlist(rules.allowlist)

    def _tick(self, ts_ms: int) -> bool:
        """Advance the stage's event-time watermark; True when a sweep is due."""
        if ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms
        self.seen += 1
        return self.seen % self.rules.sweep_every_events == 0
