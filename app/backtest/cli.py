"""`distill-guard backtest EVENTS --rules NEW.yaml [--base-rules OLD.yaml] ...`: what a rules change would
change, before it ships. Exit codes: 0, 3 when more accounts are newly blocked than --fail-on-new-blocks
allows, 2 on bad arguments or files, 1 when a replay fails."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

PROG = "distill-guard backtest"
EXIT_GATE = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest", help="replay events under a base and a new rules file and show what changes",
        description="Replays EVENTS under the base rules (default: the packaged rules) and under NEW, through "
                    "the same core as `replay`, with one pipeline clock, and prints which accounts' outcomes "
                    "change (newly enforced, released, a stronger or weaker action) with their signals under "
                    "both, counts by action and by org, and with --labels recall and benign FPR under both. "
                    "Exit 3 when more than --fail-on-new-blocks accounts are newly blocked, 2 on bad arguments.")
    p.add_argument("events", type=Path, help="JSONL file of gateway request events")
    p.add_argument("--rules", type=Path, required=True, metavar="NEW.yaml", help="the rules file to try")
    p.add_argument("--base-rules", type=Path, metavar="OLD.yaml",
                   help="the rules to compare against (default: the packaged app/rules/default.yaml)")
    p.add_argument("--allowlist", type=Path, metavar="F",
                   help="allowlist file merged into both rule sets (default: $DG_ALLOWLIST)")
    p.add_argument("--labels", type=Path, metavar="LABELS.json",
                   help="ground truth (simulate's labels.json): counts, recall and FPR by population and campaign")
    p.add_argument("--report", type=Path, metavar="R.html", help="write a self-contained HTML report")
    p.add_argument("--json", type=Path, metavar="OUT.json", help="write everything as JSON")
    p.add_argument("--fail-on-new-blocks", type=int, metavar="N",
                   help="exit 3 when more than N accounts are blocked under the new rules and not under the base")
    p.add_argument("--content-jobs", default="auto", metavar="N|auto",
                   help="processes analysing prompts beside each replay (default auto: the cores the replays "
                        "leave). Outputs do not depend on it")
    p.add_argument("--processes", default="auto", metavar="1|2|auto",
                   help="2 runs the two replays at once in two processes; auto: 2 with two or more usable cores "
                        "and an input of 16 MiB or more (default auto)")
    p.add_argument("--now", help="pipeline clock for plausibility checks, the same for both replays (RFC 3339 or "
                                 "epoch ms; default: the wall clock at start)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="keep both replays' records in DIR/base/ and DIR/new/ (default: a temporary directory)")
    p.add_argument("--list", type=int, default=50, metavar="N",
                   help="changed accounts printed (default 50; 0: all). --json and --report have all")
    p.add_argument("--title", help="title of the HTML report")
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"{PROG}: {msg}", file=sys.stderr)
    return 2


def _output_path(path: Path | None, option: str) -> str | None:
    if path is not None and path.is_dir():
        return f"{option} {path}: is a directory"
    return None


def run(args: argparse.Namespace) -> int:
    from app.backtest.run import Job, Progress, ReplayFailed, count_records, plan, run_both
    from app.errors import RulesError
    from app.evaluate.metrics import EvaluateError, load_labels
    from app.ingest.parse import BadField, parse_ts
    from app.rules.load import load_rules
    from app.settings import DEFAULT_RULES, Settings

    settings = Settings.from_env()
    if not args.events.is_file():
        return _fail(f"{args.events}: no such file")
    if args.fail_on_new_blocks is not None and args.fail_on_new_blocks < 0:
        return _fail(f"--fail-on-new-blocks must be 0 or more, not {args.fail_on_new_blocks}")
    for path, option in ((args.report, "--report"), (args.json, "--json")):
        if (msg := _output_path(path, option)) is not None:
            return _fail(msg)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        return _fail(f"--out {args.out}: not a directory")
    allowlist = args.allowlist or settings.allowlist_path
    base_path: Path = args.base_rules or DEFAULT_RULES
    rule_sets = {}
    for name, path in (("base", base_path), ("new", args.rules)):
        try:
            rule_sets[name] = load_rules(path, allowlist)
        except RulesError as exc:
            return _fail(f"invalid {name} rules: {exc}")
    labels = None
    if args.labels is not None:
        if not args.labels.is_file():
            return _fail(f"--labels {args.labels}: no such file")
        try:
            labels = load_labels(args.labels)
        except EvaluateError as exc:
            return _fail(f"--labels: {exc}")
    try:
        processes, content_jobs = plan(args.processes, args.content_jobs, args.events.stat().st_size)
    except ValueError as exc:
        return _fail(str(exc))
    if args.now:
        try:
            now_ms = parse_ts(int(args.now) if args.now.isdigit() else args.now, "--now")
        except BadField as bad:
            return _fail(bad.message)
    else:
        now_ms = int(time.time() * 1000)

    from app.backtest.diff import compare
    from app.backtest.outcome import RecordsError
    from app.emit.records import iso_ms

    total = count_records(args.events)
    progress = Progress(total)
    tmp = None
    if args.out is None:
        tmp = out_root = Path(tempfile.mkdtemp(prefix="dg-backtest-"))
    else:
        out_root = args.out
    started = time.perf_counter()
    try:
        jobs = [Job(name, args.events, rule_sets[name], out_root / name, now_ms, content_jobs, args.labels,
                    accounts=name == "base") for name in ("base", "new")]
        progress.say(f"replaying {total:,} records under the base and the new rules "
                     f"({'at once, in two processes' if processes == 2 else 'one after the other'})")
        try:
            base_run, new_run = run_both(jobs, processes, progress)
        except ReplayFailed as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
        except EvaluateError as exc:
            return _fail(f"--labels: {exc}")
        meta = {"events": str(args.events), "records": base_run.lines, "base_rules": str(base_path),
                "new_rules": str(args.rules), "allowlist": None if allowlist is None else str(allowlist),
                "labels": None if args.labels is None else str(args.labels), "now": iso_ms(now_ms),
                "processes": processes, "content_jobs": content_jobs,
                "seconds": round(time.perf_counter() - started, 3),
                "replays": {"base": base_run.as_dict(), "new": new_run.as_dict()},
                "out": None if tmp is not None else str(out_root)}
        if tmp is not None:  # removed below: no path to show
            for r in meta["replays"].values():
                r.pop("out_dir")
        try:
            bt = compare(base_run, new_run, meta, labels, args.fail_on_new_blocks)
        except RecordsError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    from app.backtest.table import render

    print(render(bt, listed=args.list))
    try:
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_bytes(orjson.dumps(bt.as_dict(), option=orjson.OPT_INDENT_2))
            print(f"json: {args.json}", file=sys.stderr)
        if args.report is not None:
            from app.backtest.report import write

            write(bt, args.report, args.title or "distill-guard backtest")
            print(f"report: {args.report}", file=sys.stderr)
    except OSError as exc:
        return _fail(f"cannot write: {exc}")
    return EXIT_GATE if bt.failed else 0
