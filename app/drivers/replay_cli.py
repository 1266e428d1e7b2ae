"""`distill-guard replay EVENTS.jsonl --out DIR`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.drivers.inputs import load_inputs
from app.emit.sinks import JsonlSink
from app.errors import RulesError
from app.ingest.parse import BadField, parse_ts
from app.rules.load import load_rules
from app.rules.model import Rules
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
    p.add_argument("--rules-at", action="append", default=[], metavar="TS=FILE",
                   help="switch to rules file FILE at event time TS (RFC 3339 or epoch ms), as a worker's hot "
                        "reload would: before the first event whose time reaches TS. Repeatable; the allowlist "
                        "in force is merged into each")
    p.add_argument("--allowlist-at", action="append", default=[], metavar="TS=FILE",
                   help="switch to allowlist file FILE at event time TS (an empty list: none). Repeatable")
    p.add_argument("--feedback", type=Path, metavar="FILE",
                   help="JSONL of analysts' verdicts (schemas/feedback.schema.json), each applied at its time: before "
                        "the first event whose time reaches it; a verdict naming a decision is resolved from the "
                        "decisions emitted before it; bad lines go to dlq.jsonl")
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
    try:
        switches = rule_switches(args)
    except (ValueError, RulesError) as exc:
        print(f"distill-guard replay: {exc}", file=sys.stderr)
        return 2
    if args.feedback is not None and not args.feedback.is_file():
        print(f"distill-guard replay: --feedback: {args.feedback}: no such file", file=sys.stderr)
        return 2
    with JsonlSink(args.out) as sink:
        stats = replay(args.events, rules, sink, now_ms=now_ms, content_jobs=jobs, switches=switches,
                       feedback=args.feedback)
    rate = stats.events / stats.seconds if stats.seconds else 0.0
    switched = f", rules switched {stats.switches} of {len(switches)} times" if switches else ""
    verdicts = f", {stats.verdicts} verdicts applied" if args.feedback is not None else ""
    print(f"replayed {stats.lines} records: {stats.events} events, {stats.dead_letters} dead letters, "
          f"{stats.alerts} alerts, {stats.decisions} decisions{switched}{verdicts} in {stats.seconds:.1f}s "
          f"({rate:,.0f} events/s) -> {args.out}", file=sys.stderr)
    return 0


def _at(value: str, option: str) -> tuple[int, Path]:
    ts, sep, file = value.partition("=")
    if not sep or not ts or not file:
        raise ValueError(f"{option} wants TS=FILE, got {value!r}")
    try:
        ms = parse_ts(int(ts) if ts.isdigit() else ts, option)
    except BadField as bad:
        raise ValueError(f"{option} {value!r}: {bad.message}") from None
    path = Path(file)
    if not path.is_file():
        raise ValueError(f"{option} {value!r}: {file}: no such file")
    return ms, path


def rule_switches(args: argparse.Namespace) -> list[tuple[int, Rules]]:
    """(event time, rules) for each time at which --rules-at or --allowlist-at changes a file: the rules file
    and the allowlist file in force from then on, loaded and validated together as the worker's reload does."""
    s = Settings.from_env()
    rules_at = sorted(_at(v, "--rules-at") for v in args.rules_at)
    allow_at = sorted(_at(v, "--allowlist-at") for v in args.allowlist_at)
    if not rules_at and not allow_at:
        return []
    rules_file: Path = args.rules or s.rules_path
    allow_file: Path | None = args.allowlist or s.allowlist_path
    out: list[tuple[int, Rules]] = []
    for ts in sorted({t for t, _ in rules_at} | {t for t, _ in allow_at}):
        for t, f in rules_at:
            if t == ts:
                rules_file = f
        for t, f in allow_at:
            if t == ts:
                allow_file = f
        out.append((ts, load_rules(rules_file, allow_file)))
    return out
