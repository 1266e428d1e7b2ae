"""The bench's per-stage cost pass does the work replay does: same alerts and decisions, every record
counted, and a time for every stage."""

from __future__ import annotations

import orjson
import pytest

from app.bench.costs import STAGES, Costs, cluster_line, describe, stage_costs
from app.drivers.replay import replay
from app.emit.sinks import ListSink
from tests.traffic import BAD_RECORDS, build

START_MS = 1_780_000_000_000


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    records, _ = build(START_MS)
    path = tmp_path_factory.mktemp("costs") / "events.jsonl"
    path.write_bytes(b"\n".join([v for _, v in records] + list(BAD_RECORDS)) + b"\n")
    return path, len(records), len(BAD_RECORDS)


def _wire(records) -> list[bytes]:
    return sorted(orjson.dumps(r.wire()) for r in records)


def test_the_stage_passes_give_what_replay_gives(events, rules):
    path, n_valid, n_bad = events
    clock = START_MS + 86_400_000
    sink = ListSink()
    replay(path, rules, sink, now_ms=clock)
    costs = stage_costs(path, rules, limit=10**9, clock_ms=clock, keep=True)

    assert costs.records == n_valid + n_bad
    assert costs.events == n_valid
    # the file links accounts and decides clusters: the comparison covers all three stages
    assert costs.links > 0
    assert any(d.cluster_id for d in sink.decisions)
    assert sink.alerts and sink.decisions
    # chunk by chunk the account decisions of a chunk come before its cluster decisions: compare as sets
    assert _wire(costs.out.alerts) == _wire(sink.alerts)
    assert _wire(costs.out.decisions) == _wire(sink.decisions)


def test_every_stage_is_timed_and_the_limit_holds(events, rules):
    path, n_valid, _ = events
    costs = stage_costs(path, rules, limit=200, clock_ms=START_MS + 86_400_000)
    assert costs.records == 200
    assert costs.events == min(200, n_valid)
    assert costs.out.decisions == []  # not kept unless asked for
    for stage in STAGES:
        assert costs.seconds[stage] > 0, stage
    assert costs.parse_only_s > 0


def test_a_file_without_a_valid_event_is_said_so_not_divided_by(tmp_path, rules):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(BAD_RECORDS[:4]) + b"\n")
    costs = stage_costs(path, rules, limit=10, clock_ms=START_MS)
    assert costs.records == 4 and costs.events == 0
    assert describe(costs, 0.25) == ["cost      no valid event in the first 4 records: nothing to cost"]
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert describe(stage_costs(empty, rules, limit=10, clock_ms=START_MS), 0.25) == [
        "cost      no valid event in the first 0 records: nothing to cost"]


def test_the_budget_line_is_the_arithmetic_of_the_figures():
    c = Costs(records=1000, events=1000, observations=5000, links=400, parse_only_s=0.004)
    for stage, s in zip(STAGES, (0.04, 0.16, 0.06, 0.05, 0.03), strict=True):
        c.seconds[stage] = s
    assert c.parse_only_us == pytest.approx(4.0)
    assert c.core_us == pytest.approx(340.0)
    assert c.budget_us(0.25) == pytest.approx(16.0)
    lines = describe(c, 0.25)
    assert "content 160.0 us" in lines[0] and "(5.00 observations)" in lines[0] and "(0.40 links)" in lines[0]
    assert "all 340.0 us" in lines[0]
    assert "x85 of it (ratio 0.012)" in lines[1]
    assert "leaves 16.0 us per event" in lines[1] and "x21.2 less than now" in lines[1]
    assert "target" not in lines[0]
    assert describe(c, 0.25, 120.0)[0].endswith("all 340.0 us; target <= 120 us per event: not met, x2.83 over")
    c.seconds["content"] = 0.0  # 180 us: within a ratio of 0.02's 200 us budget
    lines = describe(c, 0.02, 180.0)
    assert lines[0].endswith("all 180.0 us; target <= 180 us per event: met")
    assert "leaves 200.0 us per event for all five stages, more than they take" in lines[1]


def test_the_cluster_line_sizes_the_stage_from_its_cost_per_link():
    c = Costs(records=1000, events=1000, observations=5150, links=400, new_edges=240)
    c.seconds["clusters"] = 0.04
    assert c.us_per_link == pytest.approx(100.0)
    # 0.4 links per event at 100 us a link: 40 us per gateway event, 25,000 events/s
    assert c.cluster_ceiling_eps == pytest.approx(25_000.0)
    assert c.cluster_ceiling_eps == pytest.approx(1e6 / c.us_per_event("clusters"))
    line = cluster_line(c)
    assert "5.150 observations to the fingerprint stage, 0.400 links to the cluster stage" in line
    assert "(0.240 of them a new (account, value) edge)" in line
    assert "100.0 us per link" in line and "at most ~25,000 gateway events/s" in line
    assert c.as_dict()["cluster_ceiling_eps"] == pytest.approx(25_000.0)
    assert "no link" in cluster_line(Costs(records=10, events=10, observations=3))
    assert Costs(records=10, events=10).as_dict()["cluster_ceiling_eps"] is None


def test_links_and_new_edges_are_counted(events, rules):
    path, _, _ = events
    costs = stage_costs(path, rules, limit=10**9, clock_ms=START_MS + 86_400_000)
    assert 0 < costs.new_edges <= costs.links
    assert costs.observations >= costs.links
    assert cluster_line(costs) in describe(costs, 0.25)
