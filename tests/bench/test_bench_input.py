"""The bench's default day is cached in .bench/ and made again when the simulator or its scenarios change:
a day cached before the default scenario gained a population is not the default day the table names."""

from __future__ import annotations

from pathlib import Path

import pytest

import app.bench.__main__ as bench


@pytest.fixture
def made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def simulate(cmd: list[str], check: bool) -> None:
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True, exist_ok=True)
        (out / "events.jsonl").write_text("{}\n")

    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    monkeypatch.setattr(bench.subprocess, "run", simulate)
    return calls


def test_the_day_is_made_once_and_again_when_the_simulator_changes(made, monkeypatch, tmp_path):
    events = bench.ensure_events(None)
    assert events == tmp_path / "default" / "events.jsonl" and len(made) == 1
    assert "--scenario" in made[0] and made[0][made[0].index("--seed") + 1] == "7"
    assert bench.ensure_events(None) == events and len(made) == 1  # cached
    monkeypatch.setattr(bench, "simulator_digest", lambda: "another simulator")
    bench.ensure_events(None)
    assert len(made) == 2  # the simulator changed: made again
    (tmp_path / "default" / "simulator.sha256").unlink()
    bench.ensure_events(None)
    assert len(made) == 3  # a day without its stamp (cached before stamps existed) is made again


def test_the_digest_follows_the_simulators_files():
    d = bench.simulator_digest()
    assert len(d) == 64 and d == bench.simulator_digest()


def test_a_given_file_is_used_as_it_is(made, tmp_path):
    f = tmp_path / "mine.jsonl"
    assert bench.ensure_events(f) == f and made == []
