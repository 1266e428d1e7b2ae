"""What every stage shares: the output record and the event-time watermark that drives expiry sweeps."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.allowlist import Allowlist
from app.detect.messages import Link, Observation
from app.emit.records import Alert, Decision
from app.policy.feedback import FeedbackState
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
        self.feedback: FeedbackState | None = None  # analysts' verdicts in force (shared by the stages)
        self._feedback_seen = -1
        self.set_rules(rules)

    def set_rules(self, rules: Rules) -> None:
        self.rules = rules
        self._merge_allow()

    def use_feedback(self, fb: FeedbackState) -> None:
        """Consult `fb` (shared by the stages of a process) from now on."""
        self.feedback = fb
        self._merge_allow()

    def _merge_allow(self) -> None:
        """The allowlist the stage checks: the rules' entries and the accounts analysts called false
        positives (each until its verdict expires)."""
        fb = self.feedback
        extra = fb.allow_entries() if fb is not None else ()
        self.allow = Allowlist(self.rules.allowlist + extra)
        self._feedback_seen = fb.version if fb is not None else -1

    def _sync_feedback(self) -> None:
        """Take in verdicts that changed since the last input (a version check when none did)."""
        fb = self.feedback
        if fb is not None and fb.version != self._feedback_seen:
            self._merge_allow()

    def _tick(self, ts_ms: int) -> bool:
        """Advance the stage's event-time watermark; True when a sweep is due."""
        if ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms
        self.seen += 1
        return self.seen % self.rules.sweep_every_events == 0
