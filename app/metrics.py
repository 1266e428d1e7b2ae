"""The worker's Prometheus metrics, which it serves on DG_METRICS_PORT (replay keeps none): one object
created against the registry the worker passes in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Processing lag = wall clock at processing minus the event's own time. Gateway events are produced
# after the response finished, so a healthy pipeline sits between ~10 ms and a few seconds; the tail
# buckets show backlog after an outage (minutes to an hour).
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# Produce-to-decision latency: the target is p99 <= 250 ms, so the buckets are fine around it.
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3, 0.4, 0.5,
                   0.75, 1, 2, 5, 10, 30)
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
        self.batch_seconds = Histogram(p + "stage_seconds", "Time spent in a core stage per batch",
                                       ["stage"], buckets=BATCH_BUCKETS, registry=registry)
        self.batch_records = Histogram(p + "batch_records", "Records per batch a stage took",
                                       ["stage"], buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
                                       registry=registry)
        self.deliver_seconds = Histogram(p + "deliver_seconds", "Time a stage waited for the broker to "
                                         "acknowledge a batch's outputs", ["stage"], buckets=BATCH_BUCKETS,
                                         registry=registry)
        self.state_keys = Gauge(p + "state_keys", "Keys held in a state table (this worker)", ["table"],
                                registry=registry)
        self.internal = Counter(p + "internal_messages_total", "Messages between stages", ["topic"],
                                registry=registry)
        self.stage_items = Counter(p + "stage_items_total", "Items a stage has finished (events, observations, "
                                   "links)", ["stage"], registry=registry)
        self.state_flushes = Counter(p + "state_flushes_total", "Times a stage wrote its changed state (RocksDB "
                                     "and changelog) and acknowledged the inputs behind it", ["stage"],
                                     registry=registry)
        self.redelivered_skipped = Counter(p + "redelivered_skipped_total", "Inputs re-delivered after a "
                                           "crash that their state had already applied", registry=registry)
        self.decision_latency = Histogram(p + "decision_latency_seconds", "Broker timestamp of the source "
                                          "record behind the decision to the decision acknowledged by the "
                                          "broker, by the stage that decided (accounts, clusters)", ["stage"],
                                          buckets=LATENCY_BUCKETS, registry=registry)
        self.content_restarts = Counter(p + "content_pool_restarts_total", "Times a content process died "
                                        "and its batch was analysed in the worker itself", registry=registry)
        self.input_repairs = Counter(p + "input_repairs_total", "Records the worker's input order guard "
                                     "dropped or re-read (Faust can lose or repeat records around a rebalance)",
                                     ["stage", "kind"], registry=registry)
        self.rules_reloads = Counter(p + "rules_reloads_total", "Rules file reloads", ["result"],
                                     registry=registry)
        self.startup = Gauge(p + "startup_seconds", "Seconds from the worker's start to a start-up phase done: "
                             "cues (every language's cue sets derived; the first batch waits for it), regexes "
                             "(every cue regex compiled, between the first batches)", ["phase"], registry=registry)
        self.rules_reload_failing = Gauge(p + "rules_reload_failing", "1 while the rules or allowlist file on disk "
                                          "fails validation and the worker keeps the rules it had (0 otherwise)",
                                          registry=registry)

    def record_outputs(self, alerts, decisions) -> None:
        for a in alerts:
            self.alerts.labels(a.scope, a.severity, a.mode).inc()
        for d in decisions:
            self.decisions.labels(d.scope, d.action, d.mode).inc()
