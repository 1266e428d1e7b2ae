"""Figures of `distill-guard enforcer` (issue 20), each printed beside its target.

  1. A/B of the HTTP server: the enforcer's own asyncio HTTP/1.1 server against the same checks served by
     aiohttp (the venv has it), one core each, same map, same wrk load: checks/s and p99.
  2. Checks/s on one core and p99 latency, measured by wrk (Debian's package; installed with apt-get when
     missing and running as root): the server process pinned to CPU 0 and wrk to CPU 1, Envoy-like check
     requests (the headers Envoy's ext_authz HTTP client sends plus the gateway's x-* identity headers) over
     a map of --map-decisions live decisions, ~10% of requests naming a decided subject. Two loads: as many
     as wrk can push through --connections keep-alive connections (the ceiling), and paced at --rate checks/s
     (wrk's per-connection delay; the p99 a gateway sending that rate would see). Target >= 5,000/s, p99 <= 5 ms.
  3. Publish to enforcement, on the real broker: the real `distill-guard enforcer` process, after rebuilding
     from --rebuild-records decisions (rebuild rate printed too), gets --latency-samples blocks published one
     at a time by a producer; a client polls /check for the blocked account on a keep-alive connection from
     just before send() until it answers 403. Target p99 <= 100 ms. The enforcer's own apply-delay histogram
     (record timestamp to applied) is printed beside it.
  4. Memory per 1M live decisions: RSS of a fresh process before and after applying --memory-decisions
     decisions (contract-shaped records: 27-character ids, 13-character values, 90% account scope), scaled
     to 1M; and the same for ids only remembered (lifted) entries are counted within the cap the same way.

The server under test and the memory measurement run in child processes (`python -m app.bench.enforcer
serve|memory ...`), so the figures are of a process that does nothing else.

Usage: python -m app.bench.enforcer [--seconds S] [--connections C] [--rate R] [--map-decisions N]
       [--skip-kafka] [--skip-ab] [--rebuild-records N] [--latency-samples N] [--memory-decisions N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_CHECKS_PER_S = 5000
TARGET_P99_MS = 5.0
TARGET_ENFORCE_P99_MS = 100.0
DECIDED_SHARE = 10  # one request in DECIDED_SHARE names a decided account
SERVER_CPU, LOAD_CPU = 0, 1


# ---------------------------------------------------------------------------------------------- helpers


def _pin(cpu: int):
    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and os.cpu_count() and os.cpu_count() > cpu:
            os.sched_setaffinity(0, {cpu})
    return pin


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"bench: nothing listening on {port} after {timeout_s}s")


def _get(port: int, path: str, headers: dict | None = None, conn=None) -> tuple[int, bytes]:
    import http.client

    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, body


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk with apt-get (Debian's package)", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        if shutil.which("wrk") is None:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        wrk = shutil.which("wrk")
        if wrk:
            return wrk
    raise SystemExit("bench: wrk is missing and cannot be installed here (needs root and apt-get): "
                     "`sudo apt-get install wrk`")


def _row(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("meets target" if ok else "MISSES target")
    print(f"  {name:<58} {value:>16}   {target:<16} {verdict}", flush=True)


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


# ------------------------------------------------------------------------------ the map for the server


def bench_decisions(n: int, now_ms: int, seed: int = 7) -> list[dict]:
    """n live enforce-mode decisions: accounts acct-0..acct-(n-1) (a third each block, challenge, throttle at
    60 rpm), as contract records."""
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    exp = datetime.fromtimestamp(now_ms / 1000 + 86400, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    out = []
    for i in range(n):
        action = ("block", "challenge", "throttle")[i % 3]
        rec = {"decision_id": f"dc_{seed:04x}{i:020x}", "ts": ts, "scope": "account", "value": f"acct-{i}",
               "action": action, "ttl_s": 86400, "expires_at": exp, "reasons": ["BENCH"],
               "alert_id": "al_bench", "mode": "enforce"}
        if action == "throttle":
            rec["limit_rpm"] = 60
        out.append(rec)
    return out


def _service(n: int):
    from app.enforce.service import EnforcerService

    service = EnforcerService("unused:9092", "unused")
    now = int(time.time() * 1000)
    for rec in bench_decisions(n, now):
        service.table.apply(rec, now)
    service.ready = True
    return service


async def _serve_own(port: int, n: int) -> None:
    service = _service(n)
    await service.start_server("127.0.0.1", port)
    await asyncio.Event().wait()


async def _serve_aiohttp(port: int, n: int) -> None:
    from aiohttp import web

    from app.enforce.http import answer_headers
    from app.enforce.keys import keys_from_headers

    service = _service(n)
    table, checks = service.table, service.checks

    async def check(request: web.Request) -> web.Response:
        started = time.perf_counter()
        verdict = table.check(keys_from_headers(request.headers.get))
        checks[verdict.action] += 1
        status, headers, body = answer_headers(verdict)
        service.check_latency.observe(time.perf_counter() - started)
        return web.Response(status=status, headers=headers, body=body)

    app = web.Application()
    app.router.add_route("*", "/check{tail:.*}", check)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


# ------------------------------------------------------------------------------------------------ wrk

WRK_SCRIPT = """
-- Envoy-like ext_authz check requests: the headers Envoy's HTTP ext_authz client sends (the original
-- request's host, x-forwarded-*, x-request-id, x-envoy-*) and the gateway's identity headers
math.randomseed(7)
local reqs = {}
local n = 0
local decided, space = %(decided)d, %(space)d
init = function(args)
  for i = 1, 4000 do
    local a = math.random(0, space - 1)
    local headers = {
      ["x-account-id"] = "acct-" .. a, ["x-api-key-id"] = "key-" .. a, ["x-org-id"] = "org-" .. (a %% 5000),
      ["x-client-ip"] = "198.51." .. (a %% 200) .. "." .. (a %% 250),
      ["x-ja4"] = "t13d1516h2_8daaf6152771_e5627efa2ab1",
      ["x-forwarded-for"] = "198.51." .. (a %% 200) .. "." .. (a %% 250), ["x-forwarded-proto"] = "https",
      ["x-request-id"] = string.format("%%08x-0000-4000-8000-%%012x", i, a),
      ["x-envoy-expected-rq-timeout-ms"] = "250", ["x-envoy-internal"] = "true",
      ["user-agent"] = "anthropic-python/0.40.0", ["content-length"] = "0",
    }
    reqs[i] = wrk.format("POST", "/check/v1/messages", headers)
  end
end
request = function()
  n = n %% #reqs + 1
  return reqs[n]
end
%(delay)s
"""


def run_wrk(wrk: str, port: int, seconds: float, connections: int, decided: int, delay_ms: float | None = None
            ) -> dict:
    delay = ""
    if delay_ms is not None:
        # each connection waits delay_ms between an answer and its next request (wrk's timers are whole ms)
        delay = f"delay = function() return {delay_ms:.3f} end"
    script = WRK_SCRIPT % {"decided": decided, "space": decided * DECIDED_SHARE, "delay": delay}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        proc = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", path,
                               f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                              preexec_fn=_pin(LOAD_CPU), timeout=seconds + 60, check=False)
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise SystemExit(f"bench: wrk failed: {proc.stderr or proc.stdout}")
    return parse_wrk(proc.stdout)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict:
    res: dict = {"raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        res[f"p{pct}_ms"] = _ms(*m.groups()) if m else float("nan")
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(map(int, m.groups())) if m else 0
    return res


def start_server(impl: str, n: int) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.bench.enforcer", "serve", "--impl", impl, "--port",
                             str(port), "--map-decisions", str(n)], preexec_fn=_pin(SERVER_CPU))
    _wait_port(port, proc, timeout_s=120)
    return proc, port


def _server_p99_ms(port: int) -> float:
    """The bucket bound under which 99% of the server's own check latencies fell (ms)."""
    from prometheus_client.parser import text_string_to_metric_families

    _, body = _get(port, "/metrics")
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name == "distill_guard_enforcer_check_seconds":
            buckets = [(float(s.labels["le"]), s.value) for s in fam.samples if s.name.endswith("_bucket")]
            total = buckets[-1][1]
            for le, count in buckets:
                if count >= 0.99 * total:
                    return le * 1000
    return float("nan")


def _answers(port: int) -> dict[str, int]:
    from prometheus_client.parser import text_string_to_metric_families

    status, body = _get(port, "/metrics")
    if status != 200:
        return {}
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name == "distill_guard_enforcer_checks":
            out = {s.labels["answer"]: int(s.value) for s in fam.samples if s.name.endswith("_total")}
    return out


def bench_http(args, wrk: str) -> None:
    n = args.map_decisions
    if not args.skip_ab:
        print(f"\n1. HTTP server A/B: {args.ab_seconds:g} s of wrk -c{args.connections} each, server on one "
              f"core, {n:,} live decisions", flush=True)
        results = {}
        for impl in ("aiohttp", "own"):
            proc, port = start_server(impl, n)
            try:
                run_wrk(wrk, port, 1, args.connections, n)  # warm-up
                results[impl] = r = run_wrk(wrk, port, args.ab_seconds, args.connections, n)
            finally:
                _stop(proc)
            _row(f"{impl}: checks/s", f"{r['rps']:,.0f}")
            _row(f"{impl}: p50 / p99", f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} ms")
        _row("own / aiohttp checks/s", f"{results['own']['rps'] / results['aiohttp']['rps']:.2f}x")

    print(f"\n2. The enforcer's server on one core (CPU {SERVER_CPU}; wrk on CPU {LOAD_CPU}), {n:,} live "
          f"decisions, 1 request in {DECIDED_SHARE} names a decided account", flush=True)
    proc, port = start_server("own", n)
    try:
        run_wrk(wrk, port, 1, args.connections, n)
        sat = run_wrk(wrk, port, args.seconds, args.connections, n)
        server_sat = _server_p99_ms(port)
        # paced: c connections each waiting d ms after an answer give c / (d + latency) requests/s; one short
        # run measures what the latency adds, and d is set so that the total is --rate
        c = max(args.connections, int(args.rate / 200))  # d >= 5 ms: wrk's whole-ms timers distort less
        d0 = c / args.rate * 1000
        probe = run_wrk(wrk, port, 2, c, n, delay_ms=d0)
        d1 = max(0.0, d0 - max(0.0, c / max(probe["rps"], 1) * 1000 - d0))
        paced = run_wrk(wrk, port, args.seconds, c, n, delay_ms=d1)
        server_paced = _server_p99_ms(port)
        answers = _answers(port)
    finally:
        _stop(proc)
    _row(f"checks/s, as fast as wrk -c{args.connections} pushes", f"{sat['rps']:,.0f}",
         f">= {TARGET_CHECKS_PER_S:,}", sat["rps"] >= TARGET_CHECKS_PER_S)
    _row("  p50 / p99 at that rate", f"{sat['p50_ms']:.2f} / {sat['p99_ms']:.2f} ms",
         f"p99 <= {TARGET_P99_MS:g} ms", sat["p99_ms"] <= TARGET_P99_MS)
    _row("  the server's own p99 (parsed request to answer queued), <=", f"{server_sat:g} ms")
    _row(f"checks/s paced at {args.rate:,.0f}/s (wrk -c{c}, {d1:.1f} ms between requests)", f"{paced['rps']:,.0f}")
    _row("  p50 / p99 at that rate", f"{paced['p50_ms']:.2f} / {paced['p99_ms']:.2f} ms",
         f"p99 <= {TARGET_P99_MS:g} ms", paced["p99_ms"] <= TARGET_P99_MS)
    _row("  the server's own p99 (all runs so far), <=", f"{server_paced:g} ms")
    _row("load average after the runs (1 min)", f"{os.getloadavg()[0]:.2f}")
    errors = sat["socket_errors"] + paced["socket_errors"]
    _row("socket errors (both runs)", f"{errors}", "0", errors == 0)
    total = sum(answers.values()) or 1
    _row("answers (all runs)", ", ".join(f"{k} {v / total:.1%}" for k, v in answers.items()))


# ----------------------------------------------------------------------------------- on the broker


def bench_kafka(args) -> None:
    from kafka import KafkaProducer

    from app.settings import Settings
    from app.topics import TopicSpec, ensure_topics

    s = Settings.from_env()
    topic = f"bench-enforcer-{uuid.uuid4().hex[:8]}.decisions"
    ensure_topics(s, [TopicSpec(topic, 3, (("retention.ms", str(3600_000)),))])
    n = args.rebuild_records
    print(f"\n3. On the broker {s.bootstrap_servers}: rebuild from {n:,} decisions, then publish to "
          f"enforcement ({args.latency_samples} blocks, one at a time)", flush=True)
    producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=20,
                             batch_size=256 * 1024)
    import orjson

    for rec in bench_decisions(n, int(time.time() * 1000), seed=11):
        producer.send(topic, key=f"account:{rec['value']}".encode(), value=orjson.dumps(rec))
    producer.flush(120)
    producer.close()
    fast = KafkaProducer(bootstrap_servers=s.bootstrap_servers, acks="all", linger_ms=0)

    port = _free_port()
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=s.bootstrap_servers, DG_DECISIONS_TOPIC=topic)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "enforcer", "--listen", f"127.0.0.1:{port}",
                             "--loglevel", "warning"], env=env, preexec_fn=_pin(SERVER_CPU))
    try:
        _wait_port(port, proc)
        while _get(port, "/healthz")[0] != 200:
            if proc.poll() is not None or time.monotonic() - t0 > 600:
                raise SystemExit("bench: the enforcer did not become ready")
            time.sleep(0.05)
        rebuild_s = time.monotonic() - t0
        _row(f"rebuild: start to /healthz 200 over {n:,} records", f"{rebuild_s:.1f} s")
        _row("  records/s", f"{n / rebuild_s:,.0f}")
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        took: list[float] = []
        polls = 0
        for i in range(args.latency_samples):
            now = int(time.time() * 1000)
            rec = bench_decisions(1, now, seed=0xB00)[0] | {"decision_id": f"dc_lat{uuid.uuid4().hex[:20]}",
                                                            "value": f"lat-{i}", "action": "block"}
            headers = {"x-account-id": rec["value"]}
            start = time.perf_counter()
            fast.send(topic, key=f"account:{rec['value']}".encode(), value=orjson.dumps(rec))
            while True:
                polls += 1
                if _get(port, "/check/v1/messages", headers, conn)[0] == 403:
                    break
                if time.perf_counter() - start > 10:
                    raise SystemExit(f"bench: decision {i} not enforced within 10 s")
            took.append((time.perf_counter() - start) * 1000)
            time.sleep(0.02)
        conn.close()
        p50, p99, worst = _pct(took, 50), _pct(took, 99), max(took)
        _row("publish (producer.send) to a 403 answered, p50", f"{p50:.1f} ms")
        _row("  p99", f"{p99:.1f} ms", f"<= {TARGET_ENFORCE_P99_MS:g} ms", p99 <= TARGET_ENFORCE_P99_MS)
        _row("  max", f"{worst:.1f} ms")
        _row("  checks polled per sample", f"{polls / len(took):.0f}")
        delay = _apply_delay_quantiles(port)
        if delay:
            _row("enforcer's apply delay (record timestamp to applied) p99 <=", f"{delay:g} s bucket")
    finally:
        fast.close()
        _stop(proc)
        try:
            from kafka.admin import KafkaAdminClient

            admin = KafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
            admin.delete_topics([topic])
            admin.close()
        except Exception as exc:  # a left-over bench topic expires in an hour anyway
            print(f"bench: could not delete {topic}: {exc}", file=sys.stderr)


def _apply_delay_quantiles(port: int) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    _, body = _get(port, "/metrics")
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name == "distill_guard_enforcer_apply_delay_seconds":
            buckets = [(float(s.labels["le"]), s.value) for s in fam.samples if s.name.endswith("_bucket")]
            total = buckets[-1][1]
            if not total:
                return None
            for le, count in buckets:
                if count >= 0.99 * total:
                    return le
    return None


# ------------------------------------------------------------------------------------------- memory


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memory_child(n: int) -> dict:
    """RSS growth of applying n decisions as the follower does (a batch of serialized records, each parsed
    and applied, the batch dropped), per decision."""
    import orjson

    from app.enforce.service import BATCH
    from app.enforce.table import DecisionTable

    now = int(time.time() * 1000)
    table = DecisionTable(max_entries=n + 1)
    template = bench_decisions(1, now)[0]
    gc.collect()
    before = _rss_bytes()
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(n, start + BATCH)):
            rec = dict(template, decision_id=f"dc_{i:024x}", action=("block", "challenge")[i % 2])
            if i % 10:
                rec["value"] = f"acct-{i:08d}"
            else:  # one in ten on a wider scope, as the core's fan-out has it
                rec["scope"], rec["value"] = "ip_prefix", f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32"
            batch.append(orjson.dumps(rec))
        for raw in batch:
            table.apply(orjson.loads(raw), now)
    gc.collect()
    after = _rss_bytes()
    return {"decisions": n, "live": table.live, "held": table.held, "rss_before": before, "rss_after": after,
            "bytes_per_decision": (after - before) / n}


def bench_memory(args) -> None:
    n = args.memory_decisions
    print(f"\n4. Memory: {n:,} live decisions applied in a fresh process", flush=True)
    proc = subprocess.run([sys.executable, "-m", "app.bench.enforcer", "memory", "--memory-decisions", str(n)],
                          capture_output=True, text=True, check=True, timeout=1200)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    per = res["bytes_per_decision"]
    _row("RSS per live decision", f"{per:,.0f} B")
    _row("RSS per 1M live decisions", f"{per * 1e6 / 2**20:,.0f} MiB")
    _row(f"process RSS with {res['live']:,} live", f"{res['rss_after'] / 2**20:,.0f} MiB")


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.bench.enforcer", description=__doc__.split("\n\n")[0])
    p.add_argument("mode", nargs="?", default="all", choices=["all", "serve", "memory"],
                   help=argparse.SUPPRESS)
    p.add_argument("--impl", default="own", choices=["own", "aiohttp"], help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10, help="each wrk run of figure 2 (default 10)")
    p.add_argument("--ab-seconds", type=float, default=5, help="each wrk run of the A/B (default 5)")
    p.add_argument("--connections", type=int, default=16,
                   help="wrk's keep-alive connections (default 16, an Envoy's pool to its authz cluster)")
    p.add_argument("--rate", type=float, default=TARGET_CHECKS_PER_S, help="paced load, checks/s offered")
    p.add_argument("--map-decisions", type=int, default=100_000, help="live decisions in the map under load")
    p.add_argument("--skip-ab", action="store_true")
    p.add_argument("--skip-http", action="store_true")
    p.add_argument("--skip-kafka", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--rebuild-records", type=int, default=200_000)
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--memory-decisions", type=int, default=1_000_000)
    args = p.parse_args(argv)

    if args.mode == "serve":
        asyncio.run(_serve_own(args.port, args.map_decisions) if args.impl == "own"
                    else _serve_aiohttp(args.port, args.map_decisions))
        return 0
    if args.mode == "memory":
        print(json.dumps(memory_child(args.memory_decisions)))
        return 0

    print(f"enforcer bench: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
          f"{os.getloadavg()[0]:.2f} at start (other processes on these cores lengthen the tails)", flush=True)
    if not args.skip_http:
        bench_http(args, ensure_wrk())
    if not args.skip_kafka:
        bench_kafka(args)
    if not args.skip_memory:
        bench_memory(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
