"""`distill-guard demo` (what `make run` starts): creates the topics, starts the worker and the enforcer,
feeds the worker the `smoke` scenario at a multiple of real time, and prints decisions as they arrive; for
the first few enforced decisions of each action it asks the enforcer, as the gateway would, and prints its
answer. Ctrl-C stops the feeder, the worker and the enforcer cleanly."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

COLOURS = {"block": "\033[31m", "challenge": "\033[33m", "throttle": "\033[36m", "lift": "\033[32m"}
RESET = "\033[0m"
STRENGTH = {"allow": 0, "throttle": 1, "challenge": 2, "block": 3}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="worker + simulated traffic on the local broker, live decisions")
    p.add_argument("--scenario", default="smoke")
    p.add_argument("--speed", type=float, default=120.0, help="simulated seconds per real second")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--enforcer-listen", default="127.0.0.1:8181", metavar="HOST:PORT",
                   help="where the demo's enforcer serves (default 127.0.0.1:8181)")
    p.add_argument("--enforcer-answers", type=int, default=2, metavar="N",
                   help="enforcer answers printed for the first N decisions of each action (default 2)")
    p.add_argument("--keep", action="store_true",
                   help="keep this run's topics and state (named demo-<time>) instead of removing them on exit")
    p.set_defaults(func=run)


# decision scope -> the request header that names it (the enforcer's own table, read back)
def _scope_headers() -> dict[str, str]:
    from app.enforce.keys import SCOPE_HEADERS

    return {scope: name.decode() for name, scope in SCOPE_HEADERS.items()}


def _header_value(scope: str, value: str) -> str:
    """A header value that names (scope, value): for ip_prefix, an address inside the prefix."""
    if scope != "ip_prefix":
        return value
    import ipaddress

    net = ipaddress.ip_network(value, strict=False)
    return str(net[1] if net.num_addresses > 1 else net[0])


class Enforcer:
    """The demo's `distill-guard enforcer` process and a client asking it what the gateway would."""

    def __init__(self, listen: str, env: dict) -> None:
        self.url = "http://" + listen
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "enforcer", "--listen", listen,
                                      "--loglevel", "warning"], env=env, start_new_session=True)
        self.headers = _scope_headers()
        self.ready = False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _get(self, path: str, headers: dict | None = None) -> tuple[int, dict]:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}

    def check_ready(self) -> bool:
        if not self.ready and self.alive():
            with contextlib.suppress(OSError):
                self.ready = self._get("/healthz")[0] == 200
        return self.ready

    def answer(self, d: dict, timeout_s: float = 2.0) -> str:
        """Ask about the decision's subject until the answer carries its decision id (or a lift's subject
        is allowed again); the answer and how long after the demo saw the decision it took effect."""
        header = self.headers[d["scope"]]
        sent = {header: _header_value(d["scope"], d["value"])}
        t0 = time.monotonic()
        while True:
            try:
                status, h = self._get("/check/v1/messages", sent)
            except OSError as exc:
                return f"enforcer unreachable ({exc})"
            took = time.monotonic() - t0
            got = h.get("x-distill-guard-decision-id")
            action = h.get("x-distill-guard-action", "allow")
            stronger = got is not None and STRENGTH.get(action, 0) > STRENGTH.get(d["action"], 0)
            done = (status == 200 and not got) if d["action"] == "lift" else (got == d["decision_id"] or stronger)
            if done or took > timeout_s:
                extra = f" retry-after {h['retry-after']}s" if "retry-after" in h else ""
                if not done:
                    state = "not in effect yet"
                elif got != d["decision_id"] and d["action"] != "lift":
                    state = f"a stronger decision on the request wins: {got}"
                else:
                    state = f"in effect {took * 1000:.0f} ms after the demo saw it"
                return f"GET /check {header}: {sent[header]} -> {status} {action}{extra} ({state})"
            time.sleep(0.01)


def _line(d: dict, tty: bool) -> str:
    action = d["action"]
    colour, reset = (COLOURS.get(action, ""), RESET) if tty else ("", "")
    extra = f" {d['limit_rpm']} rpm" if "limit_rpm" in d else ""
    cluster = f" cluster={d['cluster_id']}" if d.get("cluster_id") else ""
    return (f"{d['ts'][11:19]}  {colour}{action:<9}{reset}{extra:<8} {d['scope']}:{d['value']:<28} "
            f"ttl={d['ttl_s']:>6}s {d['mode']:<7} {','.join(d['reasons'])[:90]}{cluster}")


def run(args: argparse.Namespace) -> int:
    import orjson
    from kafka import KafkaConsumer

    from app.settings import Settings
    from app.topics import ensure_topics

    # Each run has its own topics, consumer group and state: the simulated day starts now (see below), and a
    # previous run's state and decisions, hours ahead in event time, would overlap this one's. --keep leaves
    # them on the broker for a look afterwards; otherwise they are removed on exit.
    run_id = f"demo-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    env = dict(os.environ)
    env.update({
        "DG_APP_ID": f"distill-guard-{run_id}",
        "DG_REQUESTS_TOPIC": f"{run_id}.gateway.requests",
        "DG_ALERTS_TOPIC": f"{run_id}.distill.alerts",
        "DG_DECISIONS_TOPIC": f"{run_id}.ratelimit.decisions",
        "DG_DLQ_TOPIC": f"{run_id}.distill.dlq",
        "DG_DATA_DIR": str(Path(".data/demo", run_id).resolve()),
    })
    s = Settings.from_env(env)
    ensure_topics(s)
    py = sys.executable
    worker = subprocess.Popen([py, "-m", "app.cli", "worker"], env=env, start_new_session=True)
    enforcer = Enforcer(args.enforcer_listen, env)
    asked: dict[str, int] = {}
    enforcer_gone = False
    feeder = None
    consumer = KafkaConsumer(s.decisions_topic, bootstrap_servers=s.bootstrap_servers,
                             auto_offset_reset="latest", enable_auto_commit=False, consumer_timeout_ms=1000)
    tty = sys.stdout.isatty()
    counts: dict[str, int] = {}
    try:
        time.sleep(3)  # let the worker join its group before traffic arrives
        # the simulated day starts now: decisions carry the event time of their traffic and the enforcer
        # expires them against the wall clock, so a day in the past would be over before it is enforced
        start = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime())
        feeder = subprocess.Popen([py, "-m", "app.cli", "simulate", "--scenario", args.scenario,
                                   "--seed", str(args.seed), "--kafka", "--speed", str(args.speed),
                                   "--start", start], env=env, start_new_session=True)
        print(f"demo: worker pid {worker.pid}, enforcer pid {enforcer.proc.pid} on {enforcer.url}, feeding "
              f"scenario '{args.scenario}' at x{args.speed:g}; decisions from {s.decisions_topic} below, with "
              "the enforcer's answer for the first few of each action (Ctrl-C stops everything)", flush=True)
        while True:
            if worker.poll() is not None:
                print(f"demo: the worker exited with {worker.returncode}", file=sys.stderr)
                return 1
            if not enforcer.alive() and not enforcer_gone:
                enforcer_gone = True
                print(f"demo: the enforcer exited with {enforcer.proc.returncode} (is {args.enforcer_listen} "
                      "taken? --enforcer-listen picks another address); going on without its answers",
                      file=sys.stderr)
            for batch in consumer.poll(timeout_ms=1000).values():
                for r in batch:
                    d = orjson.loads(r.value)
                    counts[d["action"]] = counts.get(d["action"], 0) + 1
                    print(_line(d, tty), flush=True)
                    if (d["mode"] == "enforce" and asked.get(d["action"], 0) < args.enforcer_answers
                            and enforcer.check_ready()):
                        asked[d["action"]] = asked.get(d["action"], 0) + 1
                        print(f"          enforcer: {enforcer.answer(d)}", flush=True)
            if feeder is not None and feeder.poll() is not None:
                print(f"demo: traffic finished; decisions so far {counts}; still listening "
                      "(Ctrl-C to stop)", flush=True)
                feeder = None
    except KeyboardInterrupt:
        print(f"\ndemo: stopping; decisions seen {counts}", flush=True)
        return 0
    finally:
        # the processes first: nothing below may keep them from being stopped
        for p in (feeder, worker, enforcer.proc):
            if p is not None and p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        with contextlib.suppress(Exception):  # a poll cut short by Ctrl-C can leave the client mid-request
            consumer.close()
        for p in (feeder, worker, enforcer.proc):
            if p is not None:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        if args.keep:
            print(f"demo: kept this run's topics ({run_id}.*, {s.app_id}-*) and state ({env['DG_DATA_DIR']})")
        else:
            _remove_run(s, run_id, Path(env["DG_DATA_DIR"]))


def _remove_run(s, run_id: str, data_dir: Path) -> None:
    """Delete the run's topics (its own, the worker's between stages and Faust's changelogs) and state."""
    import shutil

    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=s.bootstrap_servers, request_timeout_ms=10_000)
        try:
            mine = [t for t in admin.list_topics() if t.startswith((run_id + ".", s.app_id + "-"))]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()
    except Exception as exc:  # the broker may be gone already (Ctrl-C of make run stops it too)
        print(f"demo: could not remove this run's topics ({exc}); they expire with their retention",
              file=sys.stderr)
    shutil.rmtree(data_dir, ignore_errors=True)
