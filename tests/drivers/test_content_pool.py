"""Content analysis in other processes (app.drivers.content_pool): the same records out, children that
die are replaced without loss, children do not outlive a killed parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

import app.drivers.replay as replay_module
from app.drivers.content_pool import ContentPool, resolve_jobs, usable_cpus
from app.drivers.replay import replay
from app.emit.sinks import JsonlSink
from app.features.content import ContentConfig, analyse_batch
from tests.traffic import BENIGN_PROMPTS, TRACE_PROMPTS, build

ROOT = Path(__file__).resolve().parents[2]
NOW_MS = 1_769_904_000_000 + 30 * 86_400_000


def _traffic(tmp: Path) -> Path:
    """The hand-made abuse traffic, with malformed lines in between, over several pooled chunks."""
    records, _ = build(1_769_904_000_000, seed=3)
    lines = [v for _, v in records]
    assert len(lines) > 500
    bad = [b"{not json", b'{"event_id": 5}', b"[]", "{\"prompt\": \"\udcff\"}".encode("utf-8", "surrogatepass")]
    for i, b in enumerate(bad):
        lines.insert(100 + i * 397, b)
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_replay_with_content_processes_writes_the_same_records(tmp_path, rules, monkeypatch) -> None:
    events = _traffic(tmp_path)
    monkeypatch.setattr(replay_module, "POOLED_CHUNK", 64)  # many chunks in flight, a partial last one
    outs = {}
    for jobs in (0, 2):
        out = tmp_path / f"out-{jobs}"
        with JsonlSink(out) as sink:
            stats = replay(events, rules, sink, now_ms=NOW_MS, content_jobs=jobs)
        outs[jobs] = {n: (out / f"{n}.jsonl").read_bytes() for n in ("alerts", "decisions", "dlq")}
        assert stats.dead_letters == 4
    assert outs[0]["decisions"].count(b"\n") > 10 and outs[0]["alerts"].count(b"\n") > 10
    assert outs[2] == outs[0]


def _inputs(n: int) -> list:
    prompts = TRACE_PROMPTS + BENIGN_PROMPTS
    return [(prompts[i % len(prompts)].format(n=i, c="DE"), None, i % 3, 0) for i in range(n)]


def test_a_killed_child_is_replaced_and_its_batch_analysed_here() -> None:
    cfg = ContentConfig()
    items = _inputs(300)
    want = analyse_batch(items, cfg)
    with ContentPool(1) as pool:
        assert pool.submit(items, cfg).result() == want
        (pid,) = list(pool._ex._processes)  # the one child
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        got = None
        while got is None and time.monotonic() < deadline:  # the pool notices the death on its own
            got = pool.submit(items, cfg).result()
        assert got == want
        assert pool.restarts == 1
        assert pool.submit(items, cfg).result() == want  # the new child serves
        assert pool.restarts == 1
        assert pid not in pool._ex._processes


async def _wait(pool: ContentPool, items: list, cfg: ContentConfig) -> list:
    return await pool.submit(items, cfg).wait()


def test_wait_gives_the_features_in_order() -> None:
    import asyncio

    cfg = ContentConfig()
    items = _inputs(200)
    with ContentPool(2) as pool:
        assert asyncio.run(_wait(pool, items, cfg)) == analyse_batch(items, cfg)
    assert asyncio.run(_wait(ContentPool(0), items, cfg)) == analyse_batch(items, cfg)


CHILD_SCRIPT = """
import sys, time
from app.drivers.content_pool import ContentPool
from app.features.content import ContentConfig
pool = ContentPool(2)
pool.submit([("hello there, how are you", None, 0, 0)] * 100, ContentConfig()).result()
print(" ".join(str(p) for p in pool._ex._processes), flush=True)
time.sleep(600)
"""


def test_children_leave_with_a_killed_parent() -> None:
    with subprocess.Popen([sys.executable, "-c", CHILD_SCRIPT], cwd=ROOT, stdout=subprocess.PIPE) as proc:
        _kill_and_watch(proc)


def _kill_and_watch(proc: subprocess.Popen) -> None:
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        proc.kill()  # SIGKILL: the pool is never closed
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids)
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_resolve_jobs() -> None:
    assert resolve_jobs(0) == 0 and resolve_jobs("3") == 3
    auto = resolve_jobs("auto")
    assert auto == max(0, min(8, int(usable_cpus()) - 1))
    assert resolve_jobs(" AUTO ") == auto
    for bad in ("-1", "x", "", "1.5"):
        with pytest.raises(ValueError, match="content jobs"):
            resolve_jobs(bad)


def test_worker_refuses_bad_content_jobs(tmp_path) -> None:
    env = dict(os.environ, DG_CONTENT_JOBS="lots", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    r = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                       timeout=60)
    assert r.returncode == 2
    assert b"DG_CONTENT_JOBS" in r.stderr


def test_replay_cli_refuses_bad_content_jobs(tmp_path) -> None:
    events = tmp_path / "e.jsonl"
    events.write_bytes(orjson.dumps({"x": 1}) + b"\n")
    r = subprocess.run([sys.executable, "-m", "app.cli", "replay", str(events), "--out", str(tmp_path / "o"),
                        "--content-jobs", "-2"], cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 2
    assert b"--content-jobs" in r.stderr


def test_a_pool_that_cannot_start_analyses_here(monkeypatch, caplog) -> None:
    import app.drivers.content_pool as cp

    def no_semaphores(*a, **k):
        raise OSError(38, "Function not implemented: no /dev/shm")

    monkeypatch.setattr(cp, "ProcessPoolExecutor", no_semaphores)
    cfg = ContentConfig()
    items = _inputs(50)
    with caplog.at_level("WARNING", logger="distill_guard.content_pool"), ContentPool(2) as pool:
        assert pool.submit(items, cfg).result() == analyse_batch(items, cfg)
    assert "cannot start 2 content processes" in caplog.text
