"""python -m app.bench.enforcer's own parts that need no wrk and no broker: its wrk output parser, the
decisions it loads (contract-valid), the memory measurement on a small map, and the aiohttp variant of the
A/B answering as the enforcer's own server does."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from jsonschema import Draft202012Validator

from app.bench import enforcer as bench
from tests.conftest import ROOT

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:40123
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms    1.61ms  31.20ms   93.11%
    Req/Sec    20.98k     1.37k   22.80k    80.00%
  Latency Distribution
     50%  520.00us
     75%    0.94ms
     90%    2.21ms
     99%    7.73ms
  208756 requests in 10.00s, 20.24MB read
  Non-2xx or 3xx responses: 14196
Requests/sec:  20873.61
Transfer/sec:      2.02MB
"""


def test_parse_wrk() -> None:
    r = bench.parse_wrk(WRK_OUTPUT)
    assert r["rps"] == pytest.approx(20873.61)
    assert (r["p50_ms"], r["p90_ms"], r["p99_ms"]) == (pytest.approx(0.52), pytest.approx(2.21), pytest.approx(7.73))
    assert (r["requests"], r["non2xx"], r["socket_errors"]) == (208756, 14196, 0)
    r = bench.parse_wrk(WRK_OUTPUT + "  Socket errors: connect 0, read 3, write 1, timeout 2\n")
    assert r["socket_errors"] == 6


def test_bench_decisions_follow_the_contract(schemas) -> None:
    v = Draft202012Validator(schemas["decision"])
    recs = bench.bench_decisions(30, int(time.time() * 1000))
    for rec in recs:
        v.validate(rec)
    assert {r["action"] for r in recs} == {"block", "challenge", "throttle"}
    assert len({r["decision_id"] for r in recs}) == 30


def test_memory_measurement_on_a_small_map() -> None:
    out = subprocess.run([sys.executable, "-m", "app.bench.enforcer", "memory", "--memory-decisions", "50000"],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    import json

    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["live"] == res["held"] == 50_000
    assert 150 < res["bytes_per_decision"] < 2000, res


@pytest.mark.parametrize("impl", ["own", "aiohttp"])
def test_ab_servers_answer_alike(impl: str) -> None:
    proc, port = bench.start_server(impl, 30)
    try:
        answers = {}
        for acct in ("acct-0", "acct-1", "acct-2", "acct-999"):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/check/v1/messages",
                                         headers={"x-account-id": acct})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    answers[acct] = (r.status, r.headers.get("x-distill-guard-action"))
            except urllib.error.HTTPError as e:
                answers[acct] = (e.code, e.headers.get("x-distill-guard-action"))
    finally:
        bench._stop(proc)
    assert answers == {"acct-0": (403, "block"), "acct-1": (403, "challenge"), "acct-2": (200, "throttle"),
                       "acct-999": (200, None)}
