"""`distill-guard explain ACCOUNT_ID --events FILE`: replays FILE through the core and explains, for one
account, its signals over time, its fingerprints, its cluster, and every decision and alert naming it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from app.drivers.inputs import load_inputs

PROG = "distill-guard explain"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain", help="why the detector acted (or not) on one account",
        description="Replays EVENTS through the same core as `replay` and prints, for one account: its "
                    "attributes, a timeline of its firing signals with figures, thresholds and weights, "
                    "its fingerprint values and who else is behind them, its cluster, and every decision "
                    "and alert naming it with the rule that produced it. The prompt text is never shown. "
                    "Exit 0 explained, 1 unknown account, 2 bad input.")
    p.add_argument("account_id", metavar="ACCOUNT_ID")
    p.add_argument("--events", type=Path, required=True, metavar="FILE", help="JSONL file of gateway events")
    p.add_argument("--rules", type=Path, help="rules file (default: $DG_RULES or the packaged default)")
    p.add_argument("--allowlist", type=Path, help="allowlist file (default: $DG_ALLOWLIST)")
    p.add_argument("--json", action="store_true", help="print a structured JSON document instead of text")
    p.add_argument("--now", help="pipeline clock for plausibility checks (RFC 3339 or epoch ms; "
                                 "default: wall clock), as for replay")
    p.set_defaults(func=run)


def _progress(lines: int, seconds: float) -> None:
    rate = lines / seconds if seconds else 0.0
    print(f"{PROG}: {lines:,} records in {seconds:.0f}s ({rate:,.0f}/s)", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    inputs = load_inputs(args, PROG)
    if inputs is None:
        return 2
    rules, now_ms = inputs.rules, inputs.now_ms
    from app.explain.runner import UnknownAccount, explain_file

    try:
        doc = explain_file(args.events, args.account_id, rules, now_ms=now_ms, progress=_progress)
    except UnknownAccount as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{PROG}: {args.events}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        from app.explain.text import render

        sys.stdout.write(render(doc))
    return 0
