"""The prompt text is input only (contracts.md): a canary string written into the prompts of valid records
must not come out anywhere: alerts, decisions, the DLQ, the worker's internal and changelog topics, its
RocksDB state (files and decoded contents), its metrics page or its log (run at info level).

The only places it may be are the input topic and `<app>-requests-rekeyed`, the worker's copy of input
records that arrive keyed by something other than their account (the same bytes as the input topic, kept
one day): the test checks that it is there for exactly the keyless canary records, so a change
that starts copying prompts into another internal topic is caught."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.faults.harness import (
    FaultWorker,
    add_summary,
    heavy_feed,
    keyed,
    list_topics,
    new_uid,
    produce_all,
    read_all,
    release,
    smoke_events,
    start_worker,
    wait_group_done,
)
from tests.integration.workerproc import free_port
from tests.traffic import BAD_RECORDS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SMOKE_N = 600
KEYLESS = 25


def _with_canary(raw: bytes, canary: str, i: int) -> bytes:
    e = orjson.loads(raw)
    req = e.setdefault("request", {})
    p = req.get("prompt") or ""
    req["prompt"] = (f"{canary} {p}", f"{p} {canary}", f"{p[: len(p) // 2]}{canary}{p[len(p) // 2:]}")[i % 3]
    return orjson.dumps(e)


def _rocksdb_contents(state: Path) -> list[bytes]:
    """Keys and values of every table partition, decoded by RocksDB itself (SST blocks may be compressed,
    so a byte grep of the files alone would not be proof)."""
    from rocksdict import AccessType, Options, Rdict

    out: list[bytes] = []
    for db_path in sorted(state.rglob("*.db")):
        db = Rdict(str(db_path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for k, v in db.items():
                out.append(k + b"\x00" + v)
        finally:
            db.close()
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    tmp = tmp_path_factory.mktemp("privacy")
    uid = new_uid()
    canary = f"CANARY{uid}QZX"
    cb = canary.encode()
    now_ms = int(time.time() * 1000)
    smoke = [(k, _with_canary(v, canary, i)) for i, (k, v) in enumerate(keyed(smoke_events(tmp, SMOKE_N)))]
    heavy = heavy_feed(now_ms - 6 * 3_600_000, prefix="pv", events=100, canary=canary)
    keyless = [(None, v) for _, v in smoke[:KEYLESS]]
    bad = [(b"bad", r) for r in BAD_RECORDS]  # dead-lettered; they carry no canary
    feed = smoke + heavy + keyless + bad
    assert sum(cb in v for _, v in feed) == len(smoke) + len(heavy) + KEYLESS
    assert not any(cb in v for _, v in bad)

    w = FaultWorker(uid, tmp / "state", tmp / "worker.log", free_port(), loglevel="info")
    try:
        start_worker(w)
        produce_all(w.topic("requests"), feed)
        wait_group_done(w, [w.topic("requests"), *w.internal_topics()], timeout_s=180)
        time.sleep(2)
        metrics = w.metrics()
        counters = w.counters()
        code = w.stop()
        topics = {t: read_all(t) for t in [w.topic(n) for n in ("alerts", "decisions", "dlq", "requests")]
                  + list_topics(f"{w.app_id}-")}
    finally:
        release(w)
    files = {p: p.read_bytes() for p in (tmp / "state").rglob("*") if p.is_file()}
    return {"canary": cb, "topics": topics, "files": files, "rocks": _rocksdb_contents(tmp / "state"),
            "log": (tmp / "worker.log").read_bytes(), "metrics": metrics.encode(), "app_id": w.app_id,
            "w": w, "feed": feed, "exit": code, "counters": counters}


def _hits(recs, cb: bytes) -> int:
    return sum(1 for r in recs if cb in (r.value or b"") or cb in (r.key or b""))


def test_the_run_produced_outputs_and_state(run):
    t = run["topics"]
    w = run["w"]
    assert t[w.topic("decisions")] and t[w.topic("alerts")] and len(t[w.topic("dlq")]) == len(BAD_RECORDS)
    changelogs = [n for n in t if n.endswith("-changelog")]
    # the cluster tables fill only when links come, the feedback table only with analysts' verdicts (none here)
    assert len(changelogs) >= 4 and all(t[n] for n in changelogs if "cluster" not in n and "feedback" not in n), \
        changelogs
    assert run["rocks"] and run["files"]
    assert run["exit"] == 0


def test_canary_is_in_no_topic_but_the_input_and_its_rekeyed_copy(run):
    cb = run["canary"]
    w = run["w"]
    found = {name: _hits(recs, cb) for name, recs in run["topics"].items()}
    rekeyed = f"{run['app_id']}-requests-rekeyed"
    inputs = {w.topic("requests"), rekeyed}
    leaks = {n: c for n, c in found.items() if c and n not in inputs}
    canary_in = sum(cb in v for _, v in run["feed"])
    c = run["counters"]
    lost = len(run["feed"]) - int(c["valid"]) - int(sum(c["dead"].values()))
    add_summary("privacy canary", f"{len(run['feed'])} records, {canary_in} with a canary prompt",
                "none (inspection of every output)", len(run["feed"]), lost,
                f"{len(run['topics'])} topics, {len(run['files'])} state files, {len(run['rocks'])} table rows, "
                f"log and /metrics read: canary outside the input in {sum(leaks.values())} records")
    print(f"canary hits per topic: {found}")
    assert not leaks, leaks
    assert found[w.topic("requests")] == canary_in
    assert found[rekeyed] == KEYLESS, "keyless records are copied to the rekeyed topic, nothing else is"


def test_canary_is_not_in_state_files_or_table_contents(run):
    cb = run["canary"]
    assert not [str(p) for p, data in run["files"].items() if cb in data]
    assert not [r[:80] for r in run["rocks"] if cb in r]


def test_canary_is_not_in_the_log_or_metrics(run):
    assert run["log"], "the worker log is empty: nothing was checked"
    assert run["canary"] not in run["log"]
    assert run["canary"] not in run["metrics"]
