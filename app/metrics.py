"""Prometheus metrics: one object created against an injected registry, shared by both drivers."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Processing lag = wall clock at processing minus the event's own time. Gateway events are produced
# after the response finished, so a healthy pipeline sits between ~10 ms and a few seconds; the tail
# buckets show backlog after an outage (minutes to an hour).
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Per-batch handling time inside the worker: micro- to milliseconds per event, up to a slow batch.
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        p = "distill_guard_"
        self.consumed = Counter(p + "events_consumed_total", "Gateway records consumed", ["source"],
                                registry=registry)
        self.valid = Counter(p + "events_valid_total", "Records that passed validation", registry=registry)
        self.dead_lettered = Counter(p + "events_dead_lettered_total", "Records sent to the DLQ",
                                     ["reason"], registry=registry)
        self.alerts = Counter(p + "alerts_total", "Alerts emitted", ["scope", "severity", "mode"],
                              registry=registry)
        self.decisions = Counter(p + "decisions_total", "Decisions emitted", ["scope", "action", "mode"],
                                 registry=registry)
        self.lag = Histogram(p + "processing_lag_seconds", "Wall clock at processing minus event time",
                             buckets=LAG_BUCKETS, registry=registry)
        self.batch_seconds = Histogram(p + "stage_seconds", "Time spent in a core stage per message",
                                       ["stage"], buckets=BATCH_BUCKETS, registry=registry)
        self.state_keys = Gauge(p + "state_keys", "Keys held in a state table (this worker)", ["table"],
                                registry=registry)
        self.internal = Counter(p + "internal_messages_total", "Messages between stages", ["topic"],
                                registry=registry)
        self.rules_reloads = Counter(p + "rules_reloads_total", "Rules file reloads", ["result"],
                                     registry=registry)

    def record_outputs(self, alerts, decisions) -> None:
        for a in alerts:
            self.alerts.labels(a.scope, a.severity, a.mode).inc()
        for d in decisions:
            self.decisions.labels(d.scope, d.action, d.mode).inc()
