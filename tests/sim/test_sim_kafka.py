"""`simulate --kafka` publishes to the real broker, keyed by account id."""

from __future__ import annotations

import os
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from app.cli import main
from app.settings import Settings


@pytest.mark.kafka
def test_publishes_smoke_to_a_fresh_topic(smoke_dir: Path, smoke_seed: int, tmp_path: Path, monkeypatch) -> None:
    from kafka import KafkaConsumer, TopicPartition

    topic = f"test.sim.{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    settings = Settings.from_env()
    rc = main(["simulate", "--scenario", "smoke", "--seed", str(smoke_seed), "--kafka", "--topic", topic,
               "--out", str(tmp_path)])
    assert rc == 0
    # the same seed as the file run: the broker must hold exactly those events, keyed by their account
    expected = Counter()
    with (smoke_dir / "events.jsonl").open("rb") as f:
        for line in f:
            expected[orjson.loads(line)["account_id"]] += 1
    assert orjson.loads((tmp_path / "labels.json").read_bytes()).keys() == expected.keys()

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=10_000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert len(parts) == settings.requests_partitions
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        total = sum(end.values())
        assert total == sum(expected.values())
        got: Counter[str] = Counter()
        while sum(got.values()) < total:
            batch = consumer.poll(timeout_ms=5000, max_records=5000)
            assert batch, "timed out reading back the published events"
            for records in batch.values():
                for r in records:
                    key = r.key.decode()
                    assert orjson.loads(r.value)["account_id"] == key
                    got[key] += 1
        assert got == expected
    finally:
        consumer.close()
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()


@pytest.mark.kafka
def test_speed_paces_sends_by_event_time() -> None:
    import time

    from kafka.admin import KafkaAdminClient

    from app.sim import generator, scenario
    from app.sim.publish import publish

    settings = Settings.from_env()
    topic = f"test.sim.{uuid.uuid4().hex[:10]}"
    sim = generator.build(scenario.load("smoke"), 11)
    first_ts = [ts for ts, _, _ in generator.build(scenario.load("smoke"), 11).events()][:100]
    span_s = (first_ts[-1] - first_ts[0]) / 1000
    speed = span_s / 1.5  # the first 100 events' stretch of simulated time should take ~1.5 s
    t0 = time.monotonic()
    sent, seen = publish(sim, settings, topic, speed=speed, limit=100)
    elapsed = time.monotonic() - t0
    try:
        assert sent == 100 and seen
        assert 1.4 <= elapsed < 15, elapsed
    finally:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        try:
            admin.delete_topics([topic])
        finally:
            admin.close()
