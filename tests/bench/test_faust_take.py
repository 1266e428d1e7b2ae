"""The bench's framework ceiling (app/bench/faust_take.py) runs against the real broker and counts
exactly the records in the topic: `make bench` reports it next to the worker, so it must not rot."""

from __future__ import annotations

import orjson
import pytest

from app.bench import __main__ as bench

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


@pytest.mark.parametrize("worker_transport", [False, True], ids=["stock", "worker-transport"])
def test_the_take_only_agent_reads_every_record_of_the_topic(kafka_bootstrap, unique, tmp_path, monkeypatch,
                                                            worker_transport):
    events = tmp_path / "events.jsonl"
    n = 1500
    events.write_bytes(b"".join(orjson.dumps({"account_id": f"acct_{i % 37}", "i": i}) + b"\n" for i in range(n)))
    topic = f"t{unique}.take{int(worker_transport)}"
    assert bench.fill_topic(events, topic, n, kafka_bootstrap) == n
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    eps = bench._faust_take(kafka_bootstrap, topic, n, timeout_s=180, worker_transport=worker_transport)
    result = orjson.loads(next(tmp_path.glob("faust-take-*.json")).read_bytes())
    assert result["events"] == n  # the last batch ends exactly at the topic's end: nothing more to read
    assert eps == pytest.approx(n / result["seconds"]) and eps > 0


def test_broker_load_counts_the_records_and_bytes_of_the_runs_topics_only(kafka_bootstrap, unique, tmp_path):
    # the bench's broker-load table reads end offsets and the log directories' sizes of the run's topics
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"account_id": f"acct_{i % 7}", "pad": "x" * 200}) + b"\n"
                                for i in range(700)))
    prefix = f"t{unique}.load"
    assert bench.fill_topic(events, f"{prefix}.requests", 700, kafka_bootstrap) == 700
    assert bench.fill_topic(events, f"{prefix}-observations", 300, kafka_bootstrap, partitions=2) == 300
    assert bench.fill_topic(events, f"t{unique}.other", 50, kafka_bootstrap) == 50  # another run's
    load = bench.broker_load(kafka_bootstrap, prefix)
    assert set(load) == {f"{prefix}.requests", f"{prefix}-observations"}
    assert load[f"{prefix}.requests"]["records"] == 700 and load[f"{prefix}-observations"]["records"] == 300
    # at least the records' values, at most those with a generous batch overhead each
    assert 700 * 200 < load[f"{prefix}.requests"]["bytes"] < 700 * 400
    assert bench.broker_load(kafka_bootstrap, f"t{unique}.none") == {}


def test_a_runs_topics_are_deleted_once_measured_and_no_other(kafka_bootstrap, unique, tmp_path):
    # a bench run writes ~1 GB to the broker: its topics go once its broker load is measured
    import time

    from kafka import KafkaAdminClient

    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps({"account_id": f"acct_{i % 7}"}) + b"\n" for i in range(50)))
    prefix = f"t{unique}.drop"
    for name in (f"{prefix}.requests", f"{prefix}-accounts-changelog", f"t{unique}.keep"):
        assert bench.fill_topic(events, name, 50, kafka_bootstrap, partitions=2) == 50
    assert bench.drop_topics(kafka_bootstrap, prefix) == [f"{prefix}-accounts-changelog", f"{prefix}.requests"]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        deadline = time.monotonic() + 30
        while any(t.startswith(prefix) for t in admin.list_topics()) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = set(admin.list_topics())
    finally:
        admin.close()
    assert not any(t.startswith(prefix) for t in left)
    assert f"t{unique}.keep" in left
    assert bench.drop_topics(kafka_bootstrap, prefix) == []  # nothing left: nothing to do
