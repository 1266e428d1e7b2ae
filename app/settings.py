"""Process settings: one frozen object, read from the environment once (documented in README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.yaml"
# record-batch compression of everything the worker produces (Kafka's compression.type); "none" sends
# batches as they are. lz4 and zstd come from cramjam (a dependency), gzip from the standard library
COMPRESSION_TYPES = ("none", "gzip", "lz4", "zstd")


def compression_type(value: str) -> str | None:
    """A `DG_COMPRESSION` value as the producer takes it (None for none). Raises ValueError otherwise."""
    v = value.strip().lower()
    if v not in COMPRESSION_TYPES:
        raise ValueError(f"must be one of {', '.join(COMPRESSION_TYPES)}, got {value!r}")
    return None if v == "none" else v


def _secret_repr(value: str) -> str:
    return "'***'" if value else "''"


@dataclass(frozen=True, slots=True)
class Settings:
    bootstrap_servers: str = "localhost:9092"
    app_id: str = "distill-guard"
    requests_topic: str = "gateway.requests"
    alerts_topic: str = "distill.alerts"
    decisions_topic: str = "ratelimit.decisions"
    dlq_topic: str = "distill.dlq"
    feedback_topic: str = "distill.feedback"  # analysts' verdicts (schemas/feedback.schema.json)
    requests_partitions: int = 6
    # replication of every topic the worker creates (its own, and Faust's changelogs): 1 for the
    # single-node development broker, 3 on a production cluster
    replication_factor: int = 1
    metrics_port: int = 9108
    rules_path: Path = DEFAULT_RULES
    allowlist_path: Path | None = None
    data_dir: Path = Path(".data/worker")
    store: str = "rocksdb://"
    rules_reload_s: float = 5.0
    # each stage takes up to batch_max records, or what arrived within batch_within_ms
    batch_max: int = 2000
    batch_within_ms: int = 20
    # longest a consumer fetch waits at the broker for data (Faust's own is 1,500 ms, which held records
    # the worker writes to its internal topics for up to that long per hop: app/drivers/transport.py)
    fetch_max_wait_ms: int = 50
    # how long a stage keeps changed state in memory before it writes it (RocksDB and changelog) and
    # acknowledges the inputs behind it; a key changed by many inputs meanwhile is written once. Outputs
    # are not held back. 0 writes after every batch
    state_flush_ms: int = 1000
    # decoded state objects kept in memory per table (the tables themselves live in RocksDB)
    state_cache: int = 50_000
    # processes analysing prompts beside the worker's event loop: "auto" is one per usable CPU beyond
    # the first (a container's CPU limit counts), 0 (the default) analyses in the worker's own process
    # (no gain measured on 2 cores shared with the broker); replay (no consumer group) uses "auto".
    content_jobs: str = "0"
    # record-batch compression of everything the worker produces: its outputs, the messages between its
    # stages and its tables' changelogs (COMPRESSION_TYPES; docs/benchmarks.md has the A/B)
    compression: str = "zstd"
    # static consumer-group membership (Kafka's group.instance.id): a worker restarted after a crash takes
    # its partitions back at once instead of waiting for the broker to expire the dead member (Faust's
    # broker_session_timeout, 60 s). "" derives one from the host name and the data directory (stable
    # across restarts of one worker, distinct between workers); "off" joins as a dynamic member
    group_instance_id: str = ""
    # SASL credentials for managed clusters; masked in repr so they never reach a log line
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)

    def __repr__(self) -> str:
        shown = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name != "sasl_password"
        }
        body = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"Settings({body}, sasl_password={_secret_repr(self.sasl_password)})"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        d = cls()
        allow = e.get("DG_ALLOWLIST")
        return cls(
            bootstrap_servers=e.get("KAFKA_BOOTSTRAP_SERVERS", d.bootstrap_servers),
            app_id=e.get("DG_APP_ID", d.app_id),
            requests_topic=e.get("DG_REQUESTS_TOPIC", d.requests_topic),
            alerts_topic=e.get("DG_ALERTS_TOPIC", d.alerts_topic),
            decisions_topic=e.get("DG_DECISIONS_TOPIC", d.decisions_topic),
            dlq_topic=e.get("DG_DLQ_TOPIC", d.dlq_topic),
            feedback_topic=e.get("DG_FEEDBACK_TOPIC", d.feedback_topic),
            requests_partitions=int(e.get("DG_REQUESTS_PARTITIONS", d.requests_partitions)),
            replication_factor=int(e.get("DG_REPLICATION_FACTOR", d.replication_factor)),
            metrics_port=int(e.get("DG_METRICS_PORT", d.metrics_port)),
            rules_path=Path(e.get("DG_RULES", str(d.rules_path))),
            allowlist_path=Path(allow) if allow else None,
            data_dir=Path(e.get("DG_DATA_DIR", str(d.data_dir))),
            store=e.get("DG_STORE", d.store),
            rules_reload_s=float(e.get("DG_RULES_RELOAD_S", d.rules_reload_s)),
            batch_max=int(e.get("DG_BATCH_MAX", d.batch_max)),
            batch_within_ms=int(e.get("DG_BATCH_WITHIN_MS", d.batch_within_ms)),
            fetch_max_wait_ms=int(e.get("DG_FETCH_MAX_WAIT_MS", d.fetch_max_wait_ms)),
            state_flush_ms=int(e.get("DG_STATE_FLUSH_MS", d.state_flush_ms)),
            state_cache=int(e.get("DG_STATE_CACHE", d.state_cache)),
            content_jobs=e.get("DG_CONTENT_JOBS", d.content_jobs),
            compression=e.get("DG_COMPRESSION", d.compression),
            group_instance_id=e.get("DG_GROUP_INSTANCE_ID", d.group_instance_id),
            sasl_username=e.get("KAFKA_SASL_USERNAME", ""),
            sasl_password=e.get("KAFKA_SASL_PASSWORD", ""),
        )
