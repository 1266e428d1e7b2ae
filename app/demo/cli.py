"""`distill-guard demo` (what `make run` starts): creates the topics, starts the worker, feeds it the
`smoke` scenario at a multiple of real time, and prints decisions as they arrive. Ctrl-C stops the
feeder and the worker cleanly."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

COLOURS = {"block": "\033[31m", "challenge": "\033[33m", "throttle": "\033[36m", "lift": "\033[32m"}
RESET = "\033[0m"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="worker + simulated traffic on the local broker, live decisions")
    p.add_argument("--scenario", default="smoke")
    p.add_argument("--speed", type=float, default=120.0, help="simulated seconds per real second")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=run)


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

    s = Settings.from_env()
    ensure_topics(s)
    env = dict(os.environ)
    env.setdefault("DG_DATA_DIR", str(Path(".data/demo").resolve()))
    py = sys.executable
    worker = subprocess.Popen([py, "-m", "app.cli", "worker"], env=env, start_new_session=True)
    feeder = None
    consumer = KafkaConsumer(s.decisions_topic, bootstrap_servers=s.bootstrap_servers,
                             auto_offset_reset="latest", enable_auto_commit=False, consumer_timeout_ms=1000)
    tty = sys.stdout.isatty()
    counts: dict[str, int] = {}
    try:
        time.sleep(3)  # let the worker join its group before traffic arrives
        feeder = subprocess.Popen([py, "-m", "app.cli", "simulate", "--scenario", args.scenario,
                                   "--seed", str(args.seed), "--kafka", "--speed", str(args.speed)],
                                  env=env, start_new_session=True)
        print(f"demo: worker pid {worker.pid}, feeding scenario '{args.scenario}' at x{args.speed:g}; "
              f"decisions from {s.decisions_topic} below (Ctrl-C stops everything)", flush=True)
        while True:
            if worker.poll() is not None:
                print(f"demo: the worker exited with {worker.returncode}", file=sys.stderr)
                return 1
            for batch in consumer.poll(timeout_ms=1000).values():
                for r in batch:
                    d = orjson.loads(r.value)
                    counts[d["action"]] = counts.get(d["action"], 0) + 1
                    print(_line(d, tty), flush=True)
            if feeder is not None and feeder.poll() is not None:
                print(f"demo: traffic finished; decisions so far {counts}; still listening "
                      "(Ctrl-C to stop)", flush=True)
                feeder = None
    except KeyboardInterrupt:
        print(f"\ndemo: stopping; decisions seen {counts}", flush=True)
        return 0
    finally:
        consumer.close()
        for p in (feeder, worker):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in (feeder, worker):
            if p is not None:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
