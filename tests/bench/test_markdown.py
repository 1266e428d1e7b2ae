"""`python -m app.bench --markdown PATH` (app/bench/markdown.py): the run's figures as tables, each beside
its same-run baseline and ratio, under a header naming machine, Python, date and commit; what follows the
keep marker survives the next run. Fed hand-made results: no broker."""

from __future__ import annotations

import copy
import os
import re
import subprocess

import pytest

from app.bench import __main__ as bench
from app.bench import markdown
from tests.traffic import build

META = {"cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cores": 2, "python": "3.11.7", "date": "2026-12-05 14:03 UTC",
        "commit": "abc1234", "dirty": False, "changed_files": 0}


def _kafka(worker_eps: float, plain_eps: float, **extra) -> dict:
    return {"events": 100_000, "workers": 1, "plain_eps": plain_eps, "worker_eps": worker_eps,
            "ratio": worker_eps / plain_eps, "take_eps": None, "take_worker_transport_eps": None,
            "cpu_s_per_1k": 0.5, "peak_rss_mb": 425.4, "seconds": 54.5, "stages": {}, **extra}


@pytest.fixture
def results() -> dict:
    stage = {"accounts": {"batches": 504.0, "records": 99_792.0, "core_s": 27.8, "deliver_s": 17.5},
             "clusters": {"batches": 167.0, "records": 70_000.0, "core_s": 4.6, "deliver_s": 3.0}}
    lat = {"accounts": {"decisions": 51.0, "p50_ms": 34.2, "p99_ms": 72.0},
           "clusters": {"decisions": 824.0, "p50_ms": 88.0, "p99_ms": 218.0}}
    return {
        "meta": dict(META),
        "run": {"events_file": ".bench/default/events.jsonl", "default_day": True, "kafka_events": 100_000,
                "latency_seconds": 60.0, "cost_events": 100_000, "env": {}},
        "replay": {"events": 485_566, "parse_eps": 250_000.0, "replay_eps": 3_000.0, "ratio": 0.012,
                   "accounts": 22_630, "bytes_per_account": 470.2, "fingerprints": 254_533,
                   "bytes_per_fingerprint": 252.4, "outputs": 9, "pooled": {"jobs": 1, "eps": 4_500.0, "outputs": 9}},
        "costs": {"records": 100_000, "events": 100_000, "observations": 522_000, "links": 70_000,
                  "new_edges": 40_000, "us_per_link": 20.0 / 0.7, "parse_only_us": 3.0, "core_us": 300.0,
                  "us": {"parse": 30.0, "content": 150.0, "accounts": 60.0, "fingerprints": 40.0, "clusters": 20.0}},
        "kafka": _kafka(2_000.0, 100_000.0, take_eps=6_000.0, take_worker_transport_eps=16_000.0, stages=stage),
        "content": _kafka(2_100.0, 105_000.0),
        "scale_out": _kafka(3_580.0, 100_000.0, workers=2),
        "latency": [
            {"rate": 1000, "offered_eps": 999.1, "events": 60_000, "decisions": 1_700.0, "p50_ms": 90.0,
             "p99_ms": 310.0, "backlog_end": 40.0, "half_capacity": True, "capacity_eps": 2_000.0, **lat},
            {"rate": 500, "offered_eps": 499.6, "events": 30_000, "decisions": 875.0, "p50_ms": 86.0,
             "p99_ms": 213.4, "backlog_end": 10.0, **lat},
            {"rate": 5000, "offered_eps": 4_990.0, "events": 100_000, "decisions": 3_000.0, "p50_ms": 17_000.0,
             "p99_ms": 30_000.0, "backlog_end": 58_978.0, **lat},
        ],
    }


def _tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table of `text` as rows of cells (header and alignment rows included)."""
    tables, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith(" |"), line
            cur.append([c.strip() for c in line[2:-2].split(" | ")])
        elif cur:
            tables.append(cur)
            cur = []
    if cur:
        tables.append(cur)
    return tables


def _row(text: str, first_cell: str, exact: bool = False) -> list[str]:
    rows = [r for t in _tables(text) for r in t if (r[0] == first_cell if exact else r[0].startswith(first_cell))]
    assert len(rows) == 1, (first_cell, rows)
    return rows[0]


def test_the_header_names_machine_python_date_and_commit(results):
    text = markdown.render(results)
    assert text.startswith("# Benchmarks\n")
    assert _row(text, "machine")[1] == "Intel(R) Xeon(R) CPU @ 2.20GHz, 2 cores"
    assert _row(text, "Python")[1] == "3.11.7"
    assert _row(text, "date")[1] == "2026-12-05 14:03 UTC"
    assert _row(text, "commit")[1] == "abc1234"
    assert "dirty" not in text and "machine load" not in text
    results["meta"].update(load_start=2.95, load_end=1.5)
    assert _row(markdown.render(results), "machine load")[1].startswith(
        "1-minute load average 2.95 at the start, 1.50 at the end (2 cores)")
    results["meta"].update(dirty=True, changed_files=3)
    assert _row(markdown.render(results), "commit")[1] == "abc1234 (dirty: uncommitted changes in 3 files)"


def test_settings_set_for_the_run_are_named(results):
    assert "except" not in _row(markdown.render(results), "worker settings")[1]
    # the defaults are named from the settings themselves
    assert ("the defaults (`DG_CONTENT_JOBS=0`, `DG_STATE_FLUSH_MS=1000`, `DG_BATCH_WITHIN_MS=20`, "
            "`DG_COMPRESSION=zstd`, RocksDB tables)") in _row(markdown.render(results), "worker settings")[1]
    results["run"]["env"] = {"DG_STATE_FLUSH_MS": "0", "DG_BATCH_WITHIN_MS": "5"}
    cell = _row(markdown.render(results), "worker settings")[1]
    assert "except `DG_BATCH_WITHIN_MS=5`, `DG_STATE_FLUSH_MS=0` (set for the run)" in cell


def test_every_figure_stands_beside_its_baseline_and_ratio(results):
    text = markdown.render(results)
    assert _row(text, "replay, full engine, one process (485,566 events)")[1:] == [
        "3,000 events/s", "orjson parse-only 250,000 events/s", "0.012"]
    assert _row(text, "replay with 1 content process")[1:] == ["4,500 events/s", "same", "0.018"]
    assert _row(text, "the core's cost per event")[1:] == ["300.0 µs", "orjson parse-only 3.00 µs per record",
                                                           "x100 (0.010)"]
    assert _row(text, "worker through Kafka")[1:] == ["2,000 events/s",
                                                      "plain aiokafka consumer + parse 100,000 events/s", "0.020"]
    assert _row(text, "Faust agent that only takes")[1:] == ["6,000 events/s", "same consumer", "0.060"]
    assert _row(text, "the same agent through the worker's transport")[1:] == [
        "16,000 events/s", "same consumer", "0.160"]
    assert _row(text, "worker against that take-only agent")[1:] == [
        "2,000 events/s", "take-only 16,000 events/s", "0.125"]
    assert _row(text, "worker with one content process")[1:] == [
        "2,100 events/s", "plain consumer on its own topic 105,000 events/s; default worker 2,000 events/s",
        "0.020; x1.05"]
    assert _row(text, "two workers, same topic")[1:] == ["3,580 events/s", "one worker 2,000 events/s", "x1.79"]
    assert _row(text, "worker CPU", exact=True)[1] == "0.50 s per 1,000 events (2,000 events per CPU-second)"
    assert _row(text, "produce -> decision at 500 events/s")[1] == "p50 86 ms, p99 213 ms"
    assert _row(text, "state per active account")[1] == "470 B (22,630 accounts)"
    assert _row(text, "state per fingerprint value")[1] == "252 B (254,533 values)"


def test_the_detail_tables_and_targets(results):
    text = markdown.render(results)
    assert _row(text, "content (cues")[1:] == ["150.0", "50%"]
    assert _row(text, "all five")[1:] == ["300.0", "100%"]
    assert "would leave 100.0 µs per event for all five stages, x3.0 less than they take" in text
    assert "The target for the core is 120 µs per event." in text
    assert "5.22 observations, 0.70 links (0.40 of them a new (account, value) edge)" in text
    assert _row(text, "accounts")[1:] == ["504", "198", "27.8", "17.5"]
    assert _row(text, "5,000")[4:] == ["17.0 s", ">= 30 s (top bucket)", "51: 34 ms / 72 ms",
                                       "824: 88 ms / 218 ms", "58,978"]
    assert "## Targets (issue 18)" in text and "issue 5" not in text
    assert not any("0.25 of" in r[0] or "worker >= 0.5" in r[0] or "5,000" in r[1] for r in _target_rows(text))
    assert "~50 busy cores of workers; at 70% utilisation ~71 worker processes" in text
    assert ("(0.700 links per input event at 28.6 µs per link) its one consumer follows at most ~50,000 input "
            "events/s") in text


def _target_rows(text: str) -> list[list[str]]:
    table = [t for t in _tables(text) if t[0] == ["target", "this run", ""]]
    assert len(table) == 1
    return table[0][2:]


def test_the_targets_are_issue_18s_each_with_its_figure_and_verdict(results):
    """Every target of issue 18 the run measured, in order, with the figure it is held against; the fixture
    misses all of them but the state per account (x1.79 for two workers misses x1.8 by a hair)."""
    assert _target_rows(markdown.render(results)) == [
        ["core cost <= 120 µs per event (cost pass)", "300.0 µs", "not met"],
        ["replay in one process >= 0.03 of orjson parse-only", "0.012", "not met"],
        ["worker CPU <= 0.25 s per 1,000 events", "0.50 s", "not met"],
        ["two workers >= x1.8 one", "x1.79", "not met"],
        ["p99 <= 250 ms at half of one worker's measured capacity",
         "310 ms at 1,000 events/s offered of 2,000 events/s", "not met"],
        ["cluster stage input <= 0.05 links per gateway event", "0.700", "not met"],
        ["cluster stage ceiling >= 200,000 gateway events/s", "50,000 (28.6 µs per link)", "not met"],
        ["state <= 1,024 B per active account", "470 B", "met"],
    ]


def test_targets_reached_read_met_and_the_bounds_count_as_met(results):
    results["costs"].update(core_us=120.0, links=4_000, us_per_link=5.0)  # 0.04 links at 5 µs: 5,000,000/s
    results["replay"]["ratio"] = 0.03
    results["kafka"]["cpu_s_per_1k"] = 0.25
    results["scale_out"]["worker_eps"] = 3_600.0  # x1.80
    results["latency"][0]["p99_ms"] = 250.0
    results["replay"]["bytes_per_account"] = 1_100.0
    rows = {r[0]: r[1:] for r in _target_rows(markdown.render(results))}
    assert rows == {
        "core cost <= 120 µs per event (cost pass)": ["120.0 µs", "met"],
        "replay in one process >= 0.03 of orjson parse-only": ["0.030", "met"],
        "worker CPU <= 0.25 s per 1,000 events": ["0.25 s", "met"],
        "two workers >= x1.8 one": ["x1.80", "met"],
        "p99 <= 250 ms at half of one worker's measured capacity":
            ["250 ms at 1,000 events/s offered of 2,000 events/s", "met"],
        "cluster stage input <= 0.05 links per gateway event": ["0.040", "met"],
        "cluster stage ceiling >= 200,000 gateway events/s": ["5,000,000 (5.0 µs per link)", "met"],
        "state <= 1,024 B per active account": ["1100 B", "not met"],
    }


def test_the_p99_target_is_held_only_at_the_half_capacity_load(results):
    """A fixed load, even one at the same rate, is not the target's: without a half-capacity run the row
    is left out, not judged on another load."""
    results["latency"][0].pop("half_capacity")
    text = markdown.render(results)
    assert not any(r[0].startswith("p99 <=") for r in _target_rows(text))
    assert "(half of one worker's capacity)" not in text


def test_the_half_capacity_load_is_marked_in_the_latency_tables(results):
    text = markdown.render(results)
    assert _row(text, "produce -> decision at 1,000 events/s offered (half of one worker's capacity)")[1] == (
        "p50 90 ms, p99 310 ms")
    assert _row(text, "1,000 (half of one worker's capacity)")[1:3] == ["999", "60,000"]


def test_the_latency_loads_put_half_of_the_measured_capacity_where_asked():
    assert bench.latency_loads("half,500,5000", 2_347.0) == [(1_174, True), (500, False), (5_000, False)]
    assert bench.latency_loads("500, 1000,", 2_000.0) == [(500, False), (1_000, False)]
    assert bench.latency_loads("half", 1.0) == [(1, True)]  # never a load of 0 events/s


def test_every_table_is_well_formed(results):
    for table in _tables(markdown.render(results)):
        widths = {len(r) for r in table}
        assert len(widths) == 1, table  # a stray '|' in a cell would add a column
        assert all(re.fullmatch(r"-{3}:?", c) for c in table[1]), table[1]


def test_sections_of_a_partial_run_are_left_out(results):
    replay_only = {k: results[k] for k in ("meta", "run", "replay", "costs")}
    text = markdown.render(replay_only)
    assert "worker through Kafka" not in text and "two workers" not in text
    assert "## Produce -> decision latency" not in text and "## Sizing" not in text
    assert "## Where the worker's time goes" not in text
    assert _row(text, "replay in one process >= 0.03")[2] == "not met"
    assert _row(text, "core cost <= 120")[2] == "not met"
    assert not any(r[0].startswith(("worker CPU", "two workers", "p99")) for r in _target_rows(text))
    kafka_only = {k: copy.deepcopy(results[k]) for k in ("meta", "run", "kafka")}
    kafka_only["kafka"]["take_eps"] = kafka_only["kafka"]["take_worker_transport_eps"] = None
    text = markdown.render(kafka_only)
    assert "replay" not in text.split("## How to read")[0].lower()
    assert "Faust agent" not in text and "take-only agent" not in text.split("## How to read")[0]
    assert "cluster stage is one partition" not in text  # no cost pass to size it from
    bare = markdown.render({"meta": META})
    assert "## Figures" not in bare and "## Targets" not in bare


def test_a_file_without_a_valid_event_says_so(results):
    results["costs"] = {"records": 4, "events": 0}
    text = markdown.render(results)
    assert "No valid event in the first 4 records: nothing to cost." in text
    assert "the core's cost per event" not in text.split("## Targets")[0]


def test_write_replaces_the_last_run_and_keeps_what_follows_the_marker(results, tmp_path):
    path = tmp_path / "docs" / "benchmarks.md"
    markdown.write(results, path)
    first = path.read_text()
    assert first.endswith(markdown.KEEP_MARKER + "\n")
    notes = "## Earlier runs\n\nAn A/B at abc1234: 1,609 vs 1,300 events/s.\n"
    path.write_text(first + "\n" + notes)
    results["replay"]["replay_eps"] = 3_300.0
    markdown.write(results, path)
    second = path.read_text()
    assert "3,300 events/s" in second and "| 3,000 events/s" not in second
    assert second.endswith(markdown.KEEP_MARKER + "\n\n" + notes)
    assert second.count(markdown.KEEP_MARKER) == 1
    markdown.write(results, path)
    assert path.read_text() == second


def test_run_meta_reads_the_commit_and_marks_a_dirty_tree(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    monkeypatch.chdir(tmp_path)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = bench.run_meta()
    assert meta["commit"] == head and not meta["dirty"]
    assert meta["cores"] and meta["cpu"] and re.fullmatch(r"\d+\.\d+\.\d+", meta["python"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", meta["date"])
    assert meta["load_start"] == pytest.approx(os.getloadavg()[0], abs=5)
    (tmp_path / "untracked.txt").write_text("not part of any commit\n")
    assert not bench.run_meta()["dirty"]
    (tmp_path / "a.py").write_text("x = 2\n")
    meta = bench.run_meta()
    assert meta["dirty"] and meta["changed_files"] == 1
    assert "(dirty: uncommitted changes in 1 files)" in markdown.render({"meta": meta})


def test_the_cli_writes_what_it_prints(tmp_path, monkeypatch, capsys):
    """A replay-only run (no broker) on a small file: the markdown holds stdout's figures."""
    records, _ = build(1_780_000_000_000)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(v for _, v in records) + b"\n")
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path / ".bench")
    out = tmp_path / "benchmarks.md"
    assert bench.main(["--events", str(events), "--skip-kafka", "--cost-events", "300", "--markdown", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    m = re.search(r"full engine +([\d,]+) ev/s +ratio ([\d.]+) +\(one process\)", printed)
    assert m, printed
    row = _row(text, "replay, full engine, one process")
    assert (row[1], row[3]) == (f"{m[1]} events/s", m[2])
    per_account = re.search(r"(\d+) B/account", printed)[1]
    assert _row(text, "state per active account")[1].startswith(f"{per_account} B")
    content_us = re.search(r"content ([\d.]+) us", printed)[1]
    assert _row(text, "content (cues")[1] == content_us
    assert _row(text, "commit")[1].split()[0] == bench.run_meta()["commit"].split()[0]
    assert "## Produce -> decision latency" not in text
    assert _row(text, "machine load")[1].startswith("1-minute load average ")
    assert " at the end " in _row(text, "machine load")[1]


BROKER = {"bench-ab12.requests": {"records": 100_000, "bytes": 101_900_000},
          "bench-ab12-fingerprints-changelog": {"records": 245_400, "bytes": 97_800_000},
          "bench-ab12-observations": {"records": 3_000, "bytes": 85_700_000},
          "bench-ab12-links": {"records": 300, "bytes": 5_600_000},
          "bench-ab12.decisions": {"records": 5_400, "bytes": 2_400_000},
          "bench-ab12-__assignor-__leader": {"records": 0, "bytes": 0}}


def test_the_broker_load_table_gives_each_topic_per_event_and_at_the_sizing_rate(results):
    results["kafka"].update(broker=BROKER, topic_prefix="bench-ab12")
    text = markdown.render(results)
    table = next(t for t in _tables(text) if t[0][0] == "topic")
    assert table[0] == ["topic", "records per gateway event", "bytes per gateway event",
                        "MB/s at 100,000 requests/s"]
    body = {r[0]: r[1:] for r in table[2:]}
    # named by role, most bytes first, per gateway event of the run's 100,000
    assert [r[0] for r in table[2:]] == ["gateway events (the input)", "changelog of the fingerprints table",
                                        "observations (account -> fingerprint stage)",
                                        "links (fingerprint -> cluster stage)", "decisions", "__assignor-__leader",
                                        "all"]
    assert body["changelog of the fingerprints table"] == ["2.454", "978", "97.8"]
    assert body["links (fingerprint -> cluster stage)"] == ["0.003", "56", "5.6"]
    assert body["all"] == ["3.541", "2,934", "293.4"]  # the sums of the rows
    sizing = text.split("## Sizing")[1].split("##")[0]
    assert "~293 MB/s of writes (354,100 records/s)" in sizing
    assert "compressed with" not in text.split("## Broker load")[1].split("##")[0]  # a run that does not say


def test_the_broker_load_names_the_workers_compression(results):
    results["kafka"].update(broker=BROKER, topic_prefix="bench-ab12", compression="zstd")
    section = markdown.render(results).split("## Broker load")[1].split("##")[0]
    assert "the worker's batches compressed with zstd (`DG_COMPRESSION`)" in section


def test_a_run_without_broker_figures_has_no_broker_section(results):
    assert "## Broker load" not in markdown.render(results)
    assert "MB/s" not in markdown.render(results).split("## Sizing")[1].split("##")[0]


def test_topics_are_named_by_what_they_carry():
    assert markdown.topic_role("bench-x.requests", "bench-x") == "gateway events (the input)"
    assert markdown.topic_role("bench-x-cluster-index-changelog", "bench-x") == "changelog of the cluster-index table"
    assert markdown.topic_role("bench-x-links", "bench-x") == "links (fingerprint -> cluster stage)"
    assert markdown.topic_role("other", "bench-x") == "other"
