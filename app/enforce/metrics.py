"""The enforcer's Prometheus metrics, served on its own /metrics (same port as the checks).

The hot path keeps plain ints (one event loop thread does everything; a prometheus_client Counter or
Histogram takes a lock per update), and this collector turns them into metric families at scrape time.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from app.enforce.table import OUTCOMES, REMOVALS, LatencyHistogram

P = "distill_guard_enforcer_"
ANSWERS = ("allow", "throttle", "challenge", "block")

# Check latency, measured inside the enforcer from the parsed request to the answer queued for writing
# (what a slow map or a scrape on the event loop adds; the network and Envoy are not in it). A check takes
# ~10-30 us here, so the buckets are fine below 1 ms, then reach the 5 ms p99 target (docs/enforcer.md)
# and a little past it: ext_authz's timeout in deploy/envoy/envoy.yaml is 250 ms, anything near that is
# an outage, not a distribution to resolve.
CHECK_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                 0.1, 0.25)
# Publish-to-enforce delay: wall clock when a decision is applied minus its record's Kafka timestamp (set
# by the worker's producer when it sends). Target p99 <= 100 ms, so the buckets are fine up to it; the tail
# shows an enforcer falling behind. Records read while rebuilding at start are not observed (they are
# hours old by design).
APPLY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 10, 60)


def _histogram(name: str, doc: str, h: LatencyHistogram) -> HistogramMetricFamily:
    cumulative = []
    running = 0
    for bound, count in zip((*h.buckets, float("inf")), h.counts, strict=True):
        running += count
        cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
    fam = HistogramMetricFamily(name, doc)
    fam.add_metric([], cumulative, h.total)
    return fam


class EnforcerCollector:
    def __init__(self, service) -> None:
        self.s = service

    def describe(self):
        return []  # collected at scrape time only (registering must not call collect)

    def collect(self):
        s = self.s
        t = s.table
        checks = CounterMetricFamily(P + "checks", "Checks answered, by answer (allow 200, throttle 429, "
                                     "challenge 403, block 403)", labels=["answer"])
        for a in ANSWERS:
            checks.add_metric([a], s.checks[a])
        yield checks
        yield _histogram(P + "check_seconds", "Time from a parsed check request to its answer queued "
                         "(inside the enforcer)", s.check_latency)
        dec = CounterMetricFamily(P + "decisions", "Decision records consumed, by outcome (applied, lift, "
                                  "duplicate, shadow: not enforced, stale: expired on arrival, superseded: "
                                  "older than the one held, invalid)", labels=["outcome"])
        for o in OUTCOMES:
            dec.add_metric([o], t.outcomes[o])
        yield dec
        rem = CounterMetricFamily(P + "entries_removed", "Live decisions that left the map, by reason "
                                  "(lifted, expired, evicted at the cap, replaced by a newer one)",
                                  labels=["reason"])
        for r in REMOVALS:
            rem.add_metric([r], t.removed[r])
        yield rem
        yield GaugeMetricFamily(P + "live_entries", "Live decisions in the map", value=t.live)
        yield GaugeMetricFamily(P + "held_entries", "Decisions held: live ones and lifted or replaced ones "
                                "remembered for de-duplication until they expire (bounded by the cap)",
                                value=t.held)
        yield GaugeMetricFamily(P + "max_entries", "The cap on held decisions (--max-entries)",
                                value=t.max_entries)
        yield GaugeMetricFamily(P + "consume_lag_records", "Records on the decisions topic not applied yet "
                                "(high watermark minus position, summed over partitions)", value=s.lag_records)
        yield GaugeMetricFamily(P + "ready", "1 once the decisions topic was read to the end offsets it had "
                                "at start (what /healthz answers)", value=1 if s.ready else 0)
        yield _histogram(P + "apply_delay_seconds", "Wall clock when a decision is applied minus its "
                         "record's Kafka timestamp (after the rebuild)", s.apply_delay)


def make_registry(service) -> CollectorRegistry:
    from prometheus_client import ProcessCollector

    registry = CollectorRegistry()
    registry.register(EnforcerCollector(service))
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, process_cpu_seconds_total, ...
    return registry
