"""`distill-guard replay EVENTS.jsonl --out DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.drivers.inputs import load_inputs
from app.emit.sinks import JsonlSink


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="run recorded gateway events through the detector",
                       description="Writes DIR/alerts.jsonl, DIR/decisions.jsonl and DIR/dlq.jsonl: "
                                   "exactly the records the worker would publish for the same input.")
    p.add_argument("events", type=Path, help="JSONL file of gateway request events")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--rules", type=Path, help="rules file (default: $DG_RULES or the packaged default)")
    p.add_argument("--allowlist", type=Path, help="allowlist file (default: $DG_ALLOWLIST)")
    p.add_argument("--now", help="pipeline clock for plausibility checks (RFC 3339 or epoch ms; "
                                 "default: wall clock)")
    p.add_argument("--content-jobs", default="auto", metavar="N|auto",
                   help="processes analysing prompts beside the stateful stages (default auto: one per usable "
                        "CPU beyond the first; 0 analyses in this process). Outputs do not depend on it.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    inputs = load_inputs(args, "distill-guard replay")
    if inputs is None:
        return 2
    rules, now_ms = inputs.rules, inputs.now_ms
    from app.drivers.content_pool import resolve_jobs
    from app.drivers.replay import replay

    try:
        jobs = resolve_jobs(args.content_jobs)
    except ValueError as exc:
        print(f"distill-guard replay: --content-jobs: {exc}", file=sys.stderr)
        return 2
    with JsonlSink(args.out) as sink:
        stats = replay(args.events, rules, sink, now_ms=now_ms, content_jobs=jobs)
    rate = stats.events / stats.seconds if stats.seconds else 0.0
    print(f"replayed {stats.lines} records: {stats.events} events, {stats.dead_letters} dead letters, "
          f"{stats.alerts} alerts, {stats.decisions} decisions in {stats.seconds:.1f}s "
          f"({rate:,.0f} events/s) -> {args.out}", file=sys.stderr)
    return 0
