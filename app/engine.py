"""The detection core: three stages that both drivers run.

    event ─► AccountStage ─► alerts/decisions (account scope)
                  │ observations (one per fingerprint value on the event)
                  ▼
             FingerprintStage ─► links (accounts sharing a rare value)
                  ▼
             ClusterStage ─► alerts (cluster scope), decisions for the members the cluster's
                             evidence reaches (app.policy.attribution) and the cluster's payment
                             methods and devices

Replay runs the stages in-process, event by event (`Engine`); the Faust worker runs each stage as an
agent over its own topic and table. Nothing here imports Faust or Kafka or reads the wall clock."""

from __future__ import annotations

from app.features.content import ContentFeatures
from app.ingest.event import Event
from app.policy.feedback import FeedbackState, Verdict
from app.rules.model import Rules
from app.stages.account import AccountStage
from app.stages.base import Output
from app.stages.cluster import ClusterStage, IndexEntry
from app.stages.fingerprint import FingerprintStage

__all__ = ["AccountStage", "ClusterStage", "Engine", "FingerprintStage", "IndexEntry", "Output"]


class Engine:
    """All three stages in one process, run to completion per event (replay, tests, explain)."""

    def __init__(self, rules: Rules) -> None:
        self.accounts = AccountStage(rules)
        self.fingerprints = FingerprintStage(rules)
        self.clusters = ClusterStage(rules)
        self.feedback = FeedbackState()  # analysts' verdicts in force, consulted by every stage
        for stage in (self.accounts, self.fingerprints, self.clusters):
            stage.use_feedback(self.feedback)

    def set_rules(self, rules: Rules) -> None:
        for stage in (self.accounts, self.fingerprints, self.clusters):
            stage.set_rules(rules)

    def process(self, ev: Event, cf: ContentFeatures | None = None) -> Output:
        out = Output()
        self.accounts.process(ev, out, cf)
        for obs in out.observations:
            self.fingerprints.process(obs, out)
        for link in out.links:
            self.clusters.process(link, out)
        return out

    def apply_verdict(self, v: Verdict) -> tuple[Output, str | None]:
        """An analyst's verdict on an account or a cluster, at its own time (app.policy.feedback): its outputs,
        and why it could not be applied (None when it was)."""
        out = Output()
        return out, self.clusters.apply_verdict(v, out)

    def state_sizes(self) -> dict[str, int]:
        return {"accounts": len(self.accounts.store), "fingerprints": len(self.fingerprints.store),
                "clusters": len(self.clusters.clusters), "cluster_index": len(self.clusters.index)}
