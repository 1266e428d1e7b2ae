"""Creates the project's topics with explicit partition counts (the broker does not auto-create)."""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: tuple[tuple[str, str], ...] = ()


def project_topics(s: Settings) -> list[TopicSpec]:
    week_ms = str(7 * 24 * 3600 * 1000)
    day_ms = str(24 * 3600 * 1000)
    return [
        TopicSpec(s.requests_topic, s.requests_partitions,
                  # oversized records must reach the worker to be dead-lettered, not bounce off the broker
                  (("retention.ms", week_ms), ("max.message.bytes", str(4 * 1024 * 1024)))),
        TopicSpec(s.alerts_topic, 3, (("retention.ms", week_ms),)),
        TopicSpec(s.decisions_topic, 3, (("retention.ms", week_ms),)),
        TopicSpec(s.dlq_topic, 1, (("retention.ms", week_ms),)),
        # analysts' verdicts: one partition (few records, one order); kept 90 days, longer than a verdict's
        # default life (30 days), so a worker under a new DG_APP_ID reads again every verdict still in force
        TopicSpec(s.feedback_topic, 1, (("retention.ms", str(90 * 24 * 3600 * 1000)),)),
        # the worker's own topics between stages (Faust declares only its table changelogs itself)
        # re-keyed copies of gateway records carry prompts: kept one day, long enough to ride out an
        # outage of the worker, not as a second copy of the gateway's own week
        TopicSpec(f"{s.app_id}-requests-rekeyed", s.requests_partitions,
                  (("retention.ms", day_ms), ("max.message.bytes", str(4 * 1024 * 1024)))),
        TopicSpec(f"{s.app_id}-observations", s.requests_partitions, (("retention.ms", week_ms),)),
        TopicSpec(f"{s.app_id}-links", 1, (("retention.ms", week_ms),)),
    ]


def ensure_topics(s: Settings, specs: list[TopicSpec] | None = None, timeout_ms: int = 15000) -> list[str]:
    """Create whichever of `specs` (default: the project's topics) are missing; return the names created."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    specs = project_topics(s) if specs is None else specs
    admin = KafkaAdminClient(bootstrap_servers=s.bootstrap_servers, client_id=f"{s.app_id}-admin",
                             request_timeout_ms=timeout_ms)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in specs if t.name not in existing]
        created: list[str] = []
        for t in missing:
            try:
                spec = NewTopic(t.name, t.partitions, s.replication_factor, topic_configs=dict(t.config))
                admin.create_topics([spec], timeout_ms=timeout_ms)
                created.append(t.name)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topic is there, which is all we need
        return created
    finally:
        admin.close()
