"""Shared by the backtest tests: the hand-made traffic file, rules variants on disk, the command run in this
process, and outcomes computed from plain replays (the reference the backtest is checked against)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from app.ingest.parse import parse_ts
from tests.backtest.case import NOW, variant, write_events, write_rules

NOW_MS = parse_ts(NOW, "now")


@dataclass(frozen=True)
class Hand:
    events: Path
    lines: int
    dir: Path

    def rules(self, name: str) -> Path:
        path = self.dir / f"{name}.yaml"
        if not path.exists():
            write_rules(path, variant(name))
        return path


@pytest.fixture(scope="session")
def hand(tmp_path_factory: pytest.TempPathFactory) -> Hand:
    d = tmp_path_factory.mktemp("backtest-hand")
    events = d / "events.jsonl"
    return Hand(events, write_events(events), d)


def run_cli(*argv: str) -> tuple[int, str, str]:
    """`distill-guard ARGV` in this process -> (exit code, stdout, stderr); argparse's own exit is an exit code."""
    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def backtest(events: Path, *flags: str, fast: bool = True) -> tuple[int, str, str]:
    extra = ("--processes", "1", "--content-jobs", "0") if fast else ()
    return run_cli("backtest", str(events), *flags, *extra)


STRENGTH = ("throttle", "challenge", "block")


def plain_outcomes(decisions: list[dict]) -> dict[str, str]:
    """Each account's strongest enforcing account decision, from decision records as replay writes them
    (computed here on purpose, not with app.backtest's code)."""
    out: dict[str, str] = {}
    for d in decisions:
        if d["scope"] != "account" or d["mode"] != "enforce" or d["action"] not in STRENGTH:
            continue
        cur = out.get(d["value"])
        if cur is None or STRENGTH.index(d["action"]) > STRENGTH.index(cur):
            out[d["value"]] = d["action"]
    return out


def plain_first_enforced(decisions: list[dict]) -> dict[str, str]:
    """Each account's earliest enforcing account decision time (RFC 3339 as written; replay writes one format)."""
    out: dict[str, str] = {}
    for d in decisions:
        enforcing = d["scope"] == "account" and d["mode"] == "enforce" and d["action"] in STRENGTH
        if enforcing and (d["value"] not in out or d["ts"] < out[d["value"]]):
            out[d["value"]] = d["ts"]
    return out


def plain_replay(events: Path, rules_path: Path, out_dir: Path, now_ms: int = NOW_MS) -> list[dict]:
    """`replay` the plain way into out_dir; its decisions as written."""
    from app.drivers.replay import replay
    from app.emit.sinks import JsonlSink
    from app.rules.load import load_rules

    with JsonlSink(out_dir) as sink:
        replay(events, load_rules(rules_path), sink, now_ms=now_ms)
    with (out_dir / "decisions.jsonl").open("rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def expected_changes(base: dict[str, str], new: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {a: (base.get(a, "none"), new.get(a, "none")) for a in set(base) | set(new)
            if base.get(a) != new.get(a)}
