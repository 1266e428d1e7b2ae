"""`distill-guard stand-down`: registers the subcommand (the work is in `standdown.py`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time

from app.emit.records import iso_ms


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stand-down", help="lift every live enforcing decision that matches (undo a bad wave)",
        description="Reads the decisions topic (DG_DECISIONS_TOPIC on KAFKA_BOOTSTRAP_SERVERS) from its earliest "
                    "retained record, folds it into the live decisions as the enforcer does, and publishes a "
                    "`lift` for every live enforcing decision that matches. Criteria combine (all must hold); "
                    "--all takes every live enforcing decision. Each lift carries the reason and the operator "
                    "and has an id derived from the decision it lifts, so a re-run publishes no duplicates. "
                    "Stops nothing new: switch the rules to shadow (or the signal, or allowlist) for that.")
    p.add_argument("--reason", required=True, help="why: carried by every lift (its `note`)")
    p.add_argument("--cluster", metavar="ID", help="decisions of this cluster (cluster_id)")
    p.add_argument("--signal", metavar="CODE", help="decisions with this reason code (e.g. CL_YOUNG)")
    p.add_argument("--since", metavar="TS", help="decisions made at or after this event time (RFC 3339 or epoch ms)")
    p.add_argument("--all", action="store_true", help="every live enforcing decision")
    p.add_argument("--dry-run", action="store_true", help="print what would be lifted, publish nothing")
    p.add_argument("--operator", metavar="NAME", help="who (default: $USER, else the login name)")
    p.add_argument("--now", metavar="TS", help="judge expiry at this time instead of the wall clock (RFC 3339 or "
                                               "epoch ms; for old traffic and tests)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="give up reading the topic after this many seconds (default 120)")
    p.set_defaults(func=run)


def _ts(value: str, option: str) -> int:
    from app.ingest.parse import BadField, parse_ts

    try:
        return parse_ts(int(value) if value.isdigit() else value, option)
    except BadField as bad:
        raise SystemExit(f"distill-guard stand-down: {option}: {bad.message}") from None


def _operator(args: argparse.Namespace) -> str:
    if args.operator:
        return args.operator
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _line(rec: dict) -> str:
    cluster = f" cluster {rec['cluster_id']}" if rec.get("cluster_id") else ""
    return (f"{rec['scope']}:{rec['value']} {rec['action']} @{rec['ts']} until {rec['expires_at']}{cluster} "
            f"[{','.join(rec['reasons'])}] {rec['decision_id']}")


def run(args: argparse.Namespace) -> int:
    from app.operate.standdown import Match, kafka_python_options, plan, publish, read_topic
    from app.settings import Settings

    prog = "distill-guard stand-down"
    if args.all and (args.cluster or args.signal or args.since):
        print(f"{prog}: --all takes every live decision; leave out --cluster, --signal and --since",
              file=sys.stderr)
        return 2
    if not (args.all or args.cluster or args.signal or args.since):
        print(f"{prog}: say what to lift: --cluster ID, --signal CODE, --since TS (combined: all must hold) "
              "or --all", file=sys.stderr)
        return 2
    if not args.reason.strip():
        print(f"{prog}: --reason must say why", file=sys.stderr)
        return 2
    operator = _operator(args)
    if len(operator) > 128 or len(args.reason) > 1000:
        print(f"{prog}: --operator is at most 128 characters, --reason at most 1000", file=sys.stderr)
        return 2
    match = Match(cluster=args.cluster, signal=args.signal,
                  since_ms=_ts(args.since, "--since") if args.since else None, everything=args.all)
    now_ms = _ts(args.now, "--now") if args.now else int(time.time() * 1000)
    s = Settings.from_env()
    options = kafka_python_options(s)
    try:
        p = plan(read_topic(s.bootstrap_servers, s.decisions_topic, options, args.timeout), match, args.reason,
                 operator, now_ms)
    except Exception as exc:  # the broker or the topic: say so, lift nothing
        print(f"{prog}: cannot read {s.decisions_topic} on {s.bootstrap_servers}: {exc}", file=sys.stderr)
        return 1
    verb = "would lift" if args.dry_run else "lifting"
    print(f"{s.decisions_topic}: {p.read} records read, {len(p.live)} live enforcing decisions at {iso_ms(now_ms)}; "
          f"{len(p.lifts)} match ({match.describe()})")
    for _, rec in p.lifts:
        print(f"  {verb} {_line(rec)}")
    for rec in p.also_ended:
        print(f"  also ends (an earlier decision on a lifted key) {_line(rec)}")
    if not p.lifts:
        print("nothing to lift")
        return 0
    if args.dry_run:
        print(f"dry run: {len(p.lifts)} lifts not published (operator {operator}, reason {args.reason!r})")
        return 0
    try:
        publish(s.bootstrap_servers, s.decisions_topic, options, [lift for lift, _ in p.lifts])
    except Exception as exc:
        print(f"{prog}: publishing the lifts failed ({exc}); run it again: lifts already published keep their "
              "ids and are not lifted twice", file=sys.stderr)
        return 1
    print(f"lifted {len(p.lifts)} decisions on {len({(r['scope'], r['value']) for _, r in p.lifts})} keys "
          f"(operator {operator}, reason {args.reason!r})" + (f"; {len(p.also_ended)} more decisions on those "
                                                               "keys ended with them" if p.also_ended else ""))
    return 0
