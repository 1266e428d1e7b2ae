"""`distill-guard stand-down`: lift every live enforcing decision that matches, at once.

When a wave of decisions is hurting customers, switching the rules to shadow stops new enforcement but
leaves what was already published in force until it expires (hours to days). Stand-down ends it: it reads
the decisions topic from its earliest retained record, folds it into the live state exactly as the enforcer
does (`app.enforce.table.DecisionTable`: de-duplicated on decision_id, lifts by event time, expiry at
ts + ttl_s against this machine's clock, shadow records never held, the newest decision per action per key),
picks the live decisions that match, and publishes one `lift` for each.

A lift (contract v1) carries:
- `ts`: the lifted decision's own event time. The enforcer ends the decisions on the lift's key made at or
  before the lift's time, so this ends the chosen decision and nothing the core decided after it. Another
  live decision on the same key made earlier ends too (the contract lifts a key, not one decision): the
  command names each such decision (`also_ended`) before it publishes, and --dry-run shows them;
- `decision_id`: derived from the lifted decision's id alone, so a re-run, or two operators at once,
  publish the same id (and a re-run finds nothing live to lift anyway);
- `reasons: ["STAND_DOWN"]`, `note` (the operator's --reason) and `operator`;
- `alert_id` and `cluster_id` of the lifted decision, `mode: enforce` (the enforcer ignores shadow records);
- the Kafka key "<scope>:<value>", like the decision it lifts: same partition, so the lift follows it in
  the topic and an enforcer rebuilding from the earliest record applies them in that order.

The worker is not told: its state still holds the lifted decisions as made, so it does not publish them
again (it decides again on new evidence once they would have expired, or sooner at a higher level). Switch
the rules to shadow, put the signal in shadow or allowlist the subjects to keep it from deciding anew.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.emit.records import iso_ms, stable_id
from app.enforce.table import DecisionTable, parse_ts_ms

LIFT_REASON = "STAND_DOWN"
# the fold must not evict: lifting a decision the enforcer dropped at its own cap is harmless, missing one is not
FOLD_MAX_ENTRIES = 50_000_000


@dataclass(frozen=True, slots=True)
class Match:
    """Which live decisions to lift: all given criteria must hold; `everything` matches every one."""

    cluster: str | None = None
    signal: str | None = None
    since_ms: int | None = None
    everything: bool = False

    def __call__(self, rec: dict) -> bool:
        if self.everything:
            return True
        if self.cluster is not None and rec.get("cluster_id") != self.cluster:
            return False
        if self.signal is not None and self.signal not in rec.get("reasons", ()):
            return False
        return self.since_ms is None or parse_ts_ms(rec["ts"]) >= self.since_ms

    def describe(self) -> str:
        if self.everything:
            return "all"
        parts = []
        if self.cluster is not None:
            parts.append(f"cluster {self.cluster}")
        if self.signal is not None:
            parts.append(f"signal {self.signal}")
        if self.since_ms is not None:
            parts.append(f"since {iso_ms(self.since_ms)}")
        return ", ".join(parts)


@dataclass
class Plan:
    live: list[dict]                      # every live enforcing decision, oldest first
    lifts: list[tuple[dict, dict]]        # (lift record, the decision it lifts)
    also_ended: list[dict] = field(default_factory=list)  # other live decisions the lifts' keys end too
    read: int = 0                         # records read from the topic


def fold(records: Iterable[dict], now_ms: int) -> tuple[list[dict], int]:
    """The live enforcing decisions after `records` (a decisions topic from its earliest retained record, in
    topic order), as the enforcer's map holds them at `now_ms`; and how many records were read."""
    table = DecisionTable(FOLD_MAX_ENTRIES, clock=lambda: now_ms / 1000)
    applied: dict[str, dict] = {}
    keys: set[tuple[str, str]] = set()
    n = 0
    for rec in records:
        n += 1
        if not isinstance(rec, dict):
            continue
        if table.apply(rec, now_ms) == "applied":
            applied[rec["decision_id"]] = rec
            keys.add((rec["scope"], rec["value"]))
    live = [applied[e.decision_id] for scope, value in keys for e in table.get(scope, value, now_ms).values()]
    live.sort(key=lambda r: (parse_ts_ms(r["ts"]), r["decision_id"]))
    return live, n


def lift_for(rec: dict, reason: str, operator: str) -> dict:
    """The lift that ends live decision `rec` (contract v1, with the optional `note` and `operator`)."""
    ts_ms = parse_ts_ms(rec["ts"])
    out: dict[str, Any] = {
        "decision_id": stable_id("dc", "stand-down", rec["decision_id"]),
        "ts": iso_ms(ts_ms),
        "scope": rec["scope"],
        "value": rec["value"],
        "action": "lift",
        "ttl_s": 1,
        "expires_at": iso_ms(ts_ms + 1000),
        "reasons": [LIFT_REASON],
        "alert_id": rec["alert_id"],
        "mode": "enforce",
        "operator": operator,
        "note": reason,
    }
    if rec.get("cluster_id"):
        out["cluster_id"] = rec["cluster_id"]
    return out


def plan(records: Iterable[dict], match: Match, reason: str, operator: str, now_ms: int) -> Plan:
    live, n = fold(records, now_ms)
    chosen = [r for r in live if match(r)]
    lifts = [(lift_for(r, reason, operator), r) for r in chosen]
    # a lift ends every decision on its key made at or before its time: name the others it ends
    until: dict[tuple[str, str], int] = {}
    for r in chosen:
        k = (r["scope"], r["value"])
        until[k] = max(until.get(k, 0), parse_ts_ms(r["ts"]))
    ids = {r["decision_id"] for r in chosen}
    also = [r for r in live if r["decision_id"] not in ids and (r["scope"], r["value"]) in until
            and parse_ts_ms(r["ts"]) <= until[(r["scope"], r["value"])]]
    return Plan(live, lifts, also, n)


# ------------------------------------------------------------------------------------------ the broker


def kafka_python_options(settings) -> dict:
    """kafka-python's security options from the settings (SASL over TLS when a username is set)."""
    if not settings.sasl_username:
        return {}
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": settings.sasl_username, "sasl_plain_password": settings.sasl_password}


def read_topic(bootstrap: str, topic: str, options: dict, timeout_s: float = 120.0) -> Iterable[dict]:
    """Every record of `topic` from the earliest retained one up to the end offsets it had when reading
    began, partition by partition in offset order (the fold needs each key's records in order; a key lives
    in one partition). Raises RuntimeError when the topic does not exist or cannot be read in time."""
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                      client_id="distill-guard-stand-down", consumer_timeout_ms=1000,
                      max_partition_fetch_bytes=8 * 1024 * 1024, **options)
    try:
        parts = c.partitions_for_topic(topic)
        if not parts:
            raise RuntimeError(f"topic {topic} does not exist on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = c.end_offsets(tps)
        c.assign(tps)
        c.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while not all(c.position(tp) >= ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not read {topic} to its end within {timeout_s:.0f} s")
            for recs in c.poll(timeout_ms=500, max_records=5000).values():
                for r in recs:
                    if r.offset < ends[TopicPartition(r.topic, r.partition)]:
                        try:
                            yield orjson.loads(r.value)
                        except orjson.JSONDecodeError:
                            continue
    finally:
        c.close()


def publish(bootstrap: str, topic: str, options: dict, lifts: list[dict]) -> None:
    """Send every lift, keyed "<scope>:<value>", and wait until the broker acknowledged all of them."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, client_id="distill-guard-stand-down",
                      **options)
    try:
        futures = [p.send(topic, key=f"{d['scope']}:{d['value']}".encode(), value=orjson.dumps(d)) for d in lifts]
        p.flush(60)
        for f in futures:
            f.get(timeout=30)  # raises if the broker refused one
    finally:
        p.close(10)
