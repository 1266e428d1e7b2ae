"""The explain tests' traffic, replayed once the plain way for reference, and the explain command's output
per account, each run once per session (every run is a replay of the whole file)."""

from __future__ import annotations

import contextlib
import io

import orjson
import pytest

from tests.explain.case import NOW, NOW_MS, Traffic, write


@pytest.fixture(scope="session")
def traffic(tmp_path_factory: pytest.TempPathFactory, rules) -> Traffic:
    from app.drivers.replay import replay
    from app.emit.sinks import ListSink

    path = tmp_path_factory.mktemp("explain") / "events.jsonl"
    roles, lines = write(path)
    sink = ListSink()
    replay(path, rules, sink, now_ms=NOW_MS)
    return Traffic(path, roles, sink.alerts, sink.decisions, lines)


@pytest.fixture(scope="session")
def cli(traffic: Traffic):
    """`distill-guard explain ACCOUNT --events <traffic> --now NOW [flags]` -> (exit code, stdout, stderr)."""
    from app.cli import main

    cache: dict[tuple[str, ...], tuple[int, str, str]] = {}

    def run(account_id: str, *flags: str) -> tuple[int, str, str]:
        argv = ("explain", account_id, "--events", str(traffic.path), "--now", NOW, *flags)
        if argv not in cache:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(list(argv))
            cache[argv] = (code, out.getvalue(), err.getvalue())
        return cache[argv]

    return run


@pytest.fixture(scope="session")
def explained(cli):
    """The --json document for an account."""

    def get(account_id: str) -> dict:
        code, out, err = cli(account_id, "--json")
        assert code == 0, err
        return orjson.loads(out)

    return get
