"""`distill-guard evaluate`: recall, false positives, leakage and time to detect of a detector's decisions,
on given files or over N simulated worlds (`--worlds N --seed S`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from app.evaluate.metrics import EvaluateError, evaluate
from app.sim.worlds import SIZES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate", help="score decisions against simulated ground truth",
        description="Score rate-limit decisions (contract v1, JSONL) against simulated traffic and its labels "
                    "(--events/--labels/--decisions), or simulate, replay and score N worlds and report the "
                    "spread (--worlds N --seed S). An account is caught at its earliest enforcing "
                    "account-scoped decision (mode enforce, action throttle|challenge|block) if that comes no "
                    "later than its last event.")
    files = p.add_argument_group("one set of files (all three required without --worlds)")
    files.add_argument("--events", type=Path, metavar="EVENTS.jsonl")
    files.add_argument("--labels", type=Path, metavar="LABELS.json")
    files.add_argument("--decisions", type=Path, metavar="DECISIONS.jsonl")
    worlds = p.add_argument_group("many simulated worlds")
    worlds.add_argument("--worlds", type=int, metavar="N", help="simulate, replay and score N worlds")
    worlds.add_argument("--seed", type=int, metavar="S",
                        help="first world seed; worlds use S, S+2, S+4, ... (odd seeds tune, even seeds report)")
    worlds.add_argument("--world-size", choices=SIZES, help="size of each world (default: small)")
    worlds.add_argument("--rules", type=Path, metavar="FILE",
                        help="rules file to replay with (default: $DG_RULES or the packaged default)")
    worlds.add_argument("--out", type=Path, metavar="DIR", help="keep each world's files in DIR/world-<seed>/")
    worlds.add_argument("--jobs", type=int, metavar="J", help="worlds run in parallel processes (default: 1)")
    worlds.add_argument("--fail-on-targets", action="store_true", help="exit 1 when any target is missed")
    p.add_argument("--report", type=Path, metavar="REPORT.html", help="write a self-contained HTML report")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write the figures as JSON")
    p.add_argument("--bin-minutes", type=float, default=15.0, help="time bin of the leak plot (default: 15)")
    p.add_argument("--title", help="title of the HTML report (default: distill-guard evaluation)")
    p.set_defaults(func=run)


_SWEEP_ONLY = ("seed", "world_size", "rules", "out", "jobs")


def run(args: argparse.Namespace) -> int:
    files = [f"--{k}" for k in ("events", "labels", "decisions") if getattr(args, k) is not None]
    if args.worlds is not None:
        if files:
            print(f"evaluate: --worlds cannot be combined with {', '.join(files)}: either score one set of "
                  "files or simulate worlds", file=sys.stderr)
            return 2
        return run_worlds(args)
    extra = [f"--{k.replace('_', '-')}" for k in _SWEEP_ONLY if getattr(args, k) is not None]
    if args.fail_on_targets:
        extra.append("--fail-on-targets")
    if extra:
        print(f"evaluate: {', '.join(extra)} only apply with --worlds N", file=sys.stderr)
        return 2
    if len(files) < 3:
        print("evaluate: --events, --labels and --decisions are all required (or --worlds N --seed S to "
              "simulate worlds)", file=sys.stderr)
        return 2
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

        write(ev, args.report, args.title or "distill-guard evaluation")
        print(f"report: {args.report}", file=sys.stderr)
    return 0


def run_worlds(args: argparse.Namespace) -> int:
    from app.errors import RulesError
    from app.evaluate import sweep
    from app.evaluate.sweep_table import render
    from app.settings import Settings
    from app.sim.scenario import ScenarioError

    if args.worlds < 1:
        print(f"evaluate: --worlds must be at least 1, not {args.worlds}", file=sys.stderr)
        return 2
    if args.seed is None:
        print("evaluate: --worlds needs --seed S (worlds use S, S+2, ...; odd seeds tune, even seeds report)",
              file=sys.stderr)
        return 2
    jobs = 1 if args.jobs is None else args.jobs
    if jobs < 1:
        print(f"evaluate: --jobs must be at least 1, not {jobs}", file=sys.stderr)
        return 2
    size = args.world_size or "small"
    settings = Settings.from_env()
    rules_path = args.rules or settings.rules_path
    seeds = sweep.world_seeds(args.seed, args.worlds)
    source = sweep.world_source(size)
    print(f"evaluate: {len(seeds)} worlds of size {size}, seeds {seeds[0]}..{seeds[-1]} step 2, "
          f"{jobs} at a time", file=sys.stderr)
    try:
        worlds = sweep.run_worlds(seeds, lambda s: sweep.scenario_for(s, size), rules_path,
                                  settings.allowlist_path, args.out, jobs)
    except RulesError as exc:
        print(f"evaluate: invalid rules: {exc}", file=sys.stderr)
        return 2
    except (EvaluateError, ScenarioError) as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    result = sweep.score(worlds, seeds, size, source, str(rules_path))
    print(render(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2))
    if args.report is not None:
        from app.evaluate.sweep_report import write

        write(result, args.report, args.title or f"distill-guard evaluation over {len(seeds)} worlds")
        print(f"report: {args.report}", file=sys.stderr)
    return 1 if args.fail_on_targets and result.failed else 0
