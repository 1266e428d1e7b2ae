"""`distill-guard evaluate`: recall, false positives, leakage and time to detect of a detector's decisions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from app.evaluate.metrics import EvaluateError, evaluate


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score decisions against simulated ground truth",
        description="Score rate-limit decisions (contract v1, JSONL) against simulated traffic and its labels. "
                    "An account is caught at its earliest enforcing account-scoped decision (mode enforce, "
                    "action throttle|challenge|block) if that comes no later than its last event.")
    p.add_argument("--events", type=Path, required=True, metavar="EVENTS.jsonl")
    p.add_argument("--labels", type=Path, required=True, metavar="LABELS.json")
    p.add_argument("--decisions", type=Path, required=True, metavar="DECISIONS.jsonl")
    p.add_argument("--report", type=Path, metavar="REPORT.html", help="write a self-contained HTML report")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the figures as JSON")
    p.add_argument("--bin-minutes", type=float, default=15.0, help="time bin of the leak plot (default: 15)")
    p.add_argument("--title", default="distill-guard evaluation", help="title of the HTML report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in (args.events, args.labels, args.decisions):
        if not path.is_file():
            print(f"evaluate: {path}: no such file", file=sys.stderr)
            return 2
    try:
        ev = evaluate(args.events, args.labels, args.decisions, args.bin_minutes)
    except EvaluateError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    from app.evaluate.table import render

    print(render(ev))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(ev.as_dict(), option=orjson.OPT_INDENT_2))
    if args.report is not None:
        from app.evaluate.report import write

        write(ev, args.report, args.title)
        print(f"report: {args.report}", file=sys.stderr)
    return 0
