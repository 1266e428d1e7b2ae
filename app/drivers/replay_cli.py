"""`distill-guard replay EVENTS.jsonl --out DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.emit.sinks import JsonlSink
from app.errors import RulesError
from app.ingest.parse import _Bad, parse_ts
from app.rules.load import load_rules
from app.settings import Settings


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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    s = Settings.from_env()
    if not args.events.is_file():
        print(f"distill-guard replay: {args.events}: no such file", file=sys.stderr)
        return 2
    try:
        rules = load_rules(args.rules or s.rules_path, args.allowlist or s.allowlist_path)
    except RulesError as exc:
        print(f"distill-guard replay: invalid rules: {exc}", file=sys.stderr)
        return 2
    now_ms = None
    if args.now:
        try:
            now_ms = parse_ts(int(args.now) if args.now.isdigit() else args.now, "--now")
        except _Bad as bad:
            print(f"distill-guard replay: {bad.message}", file=sys.stderr)
            return 2
    from app.drivers.replay import replay

    with JsonlSink(args.out) as sink:
        stats = replay(args.events, rules, sink, now_ms=now_ms)
    rate = stats.events / stats.seconds if stats.seconds else 0.0
    print(f"replayed {stats.lines} records: {stats.events} events, {stats.dead_letters} dead letters, "
          f"{stats.alerts} alerts, {stats.decisions} decisions in {stats.seconds:.1f}s "
          f"({rate:,.0f} events/s) -> {args.out}", file=sys.stderr)
    return 0
