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
