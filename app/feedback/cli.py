"""`distill-guard feedback`: publish an analyst's verdict on an account, a cluster or a decision."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import time

PROG = "distill-guard feedback"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "feedback", help="publish an analyst's verdict: a false positive or a confirmed campaign",
        description="Publishes one verdict (schemas/feedback.schema.json) to DG_FEEDBACK_TOPIC on "
                    "KAFKA_BOOTSTRAP_SERVERS and prints it. The worker applies it: a false positive lifts what is "
                    "live on the subject and keeps the detector off it until the verdict expires; a confirmed "
                    "verdict escalates the subject to a block and marks its cluster's payment methods, devices and "
                    "harness prompts known bad, so that a replacement account on one is caught on its first "
                    "request. --decision ID resolves the decision to its account (or, for a payment method or "
                    "device decision, its cluster) from the decisions topic first. docs/operations.md, "
                    "'Analyst feedback', has the details.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--account", metavar="ID", help="the account the verdict is about")
    who.add_argument("--cluster", metavar="ID", help="the cluster (cluster_id of its alerts and decisions)")
    who.add_argument("--decision", metavar="ID", help="a decision id: the verdict is about its subject")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--false-positive", action="store_true", help="the detector was wrong about it")
    what.add_argument("--confirmed", action="store_true", help="it is a distillation campaign")
    p.add_argument("--note", required=True, help="why (carried by the verdict and the alerts it causes)")
    p.add_argument("--analyst", metavar="NAME", help="who (default: $USER, else the login name)")
    p.add_argument("--expires", metavar="TS|DURATION",
                   help="when every effect ends: RFC 3339, epoch ms, or a duration after the verdict such as 7d, "
                        "12h (default: the rules' policy.escalation.max_ttl_s, 30 days)")
    p.add_argument("--ts", metavar="TS", help="the verdict's time (default: now; RFC 3339 or epoch ms)")
    p.add_argument("--dry-run", action="store_true", help="print the verdict, publish nothing")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="give up reading the decisions topic for --decision after this many seconds (default 120)")
    p.set_defaults(func=run)


def _ts(value: str, option: str) -> int:
    from app.ingest.parse import BadField, parse_ts

    try:
        return parse_ts(int(value) if value.isdigit() else value, option)
    except BadField as bad:
        raise ValueError(f"{option}: {bad.message}") from None


def _expires(value: str | None, ts_ms: int) -> int | None:
    if not value:
        return None
    m = _DURATION.match(value)
    if m:
        return ts_ms + int(m.group(1)) * _UNIT_S[m.group(2)] * 1000
    return _ts(value, "--expires")


def _analyst(args: argparse.Namespace) -> str:
    if args.analyst:
        return args.analyst
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def find_decision(records, decision_id: str) -> dict | None:
    """The decision record with `decision_id` among `records` (a decisions topic, read in order)."""
    for rec in records:
        if isinstance(rec, dict) and rec.get("decision_id") == decision_id and rec.get("action") != "lift":
            return rec
    return None


def build(args: argparse.Namespace, now_ms: int) -> dict:
    """The verdict record the arguments ask for, before a decision id is resolved (checked by `run`)."""
    from app.emit.records import iso_ms, stable_id

    ts_ms = _ts(args.ts, "--ts") if args.ts else now_ms
    scope, value = (("account", args.account) if args.account else ("cluster", args.cluster) if args.cluster
                    else ("decision", args.decision))
    verdict = "false_positive" if args.false_positive else "confirmed"
    analyst = _analyst(args)
    doc = {"verdict_id": stable_id("vd", scope, value, verdict, ts_ms, analyst, args.note), "ts": iso_ms(ts_ms),
           "verdict": verdict, "subject": {"scope": scope, "value": value}, "analyst": analyst, "note": args.note}
    exp = _expires(args.expires, ts_ms)
    if exp is not None:
        doc["expires_at"] = iso_ms(exp)
    return doc


def run(args: argparse.Namespace) -> int:
    import orjson

    from app.feedback.wire import check, decision_subject
    from app.settings import Settings

    try:
        doc = build(args, int(time.time() * 1000))
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    bad = check(doc)
    if bad is not None:
        print(f"{PROG}: not a valid verdict: {bad.message}", file=sys.stderr)
        return 2
    s = Settings.from_env()
    from app.operate.standdown import kafka_python_options, read_topic

    options = kafka_python_options(s)
    if args.decision:
        try:
            rec = find_decision(read_topic(s.bootstrap_servers, s.decisions_topic, options, args.timeout),
                                args.decision)
        except Exception as exc:
            print(f"{PROG}: cannot read {s.decisions_topic} on {s.bootstrap_servers}: {exc}", file=sys.stderr)
            return 1
        if rec is None:
            print(f"{PROG}: no decision {args.decision} in {s.decisions_topic} (expired from the topic, or never "
                  "published)", file=sys.stderr)
            return 1
        subject = decision_subject(rec["scope"], rec["value"], rec.get("cluster_id"))
        if subject is None:
            print(f"{PROG}: decision {args.decision} is on {rec['scope']}:{rec['value']} and names no cluster: "
                  "give --account or --cluster", file=sys.stderr)
            return 1
        doc["subject"] = {"scope": subject[0], "value": subject[1]}
        doc["decision_id"] = args.decision
        print(f"decision {args.decision} ({rec['scope']}:{rec['value']} {rec['action']} @{rec['ts']}) is about "
              f"{subject[0]} {subject[1]}", file=sys.stderr)
    line = orjson.dumps(doc).decode()
    print(line)
    if args.dry_run:
        print(f"dry run: not published to {s.feedback_topic}", file=sys.stderr)
        return 0
    try:
        publish(s, doc, options)
    except Exception as exc:
        print(f"{PROG}: publishing to {s.feedback_topic} on {s.bootstrap_servers} failed ({exc}); run it again "
              "with the same --ts: the verdict keeps its id and is applied once", file=sys.stderr)
        return 1
    print(f"published verdict {doc['verdict_id']} to {s.feedback_topic}", file=sys.stderr)
    return 0


def publish(settings, doc: dict, options: dict) -> None:
    """Send the verdict keyed "<scope>:<value>" of its subject (creating the topic if it is missing) and wait
    for the broker's acknowledgement."""
    import orjson
    from kafka import KafkaProducer

    from app.topics import ensure_topics, project_topics

    ensure_topics(settings, [t for t in project_topics(settings) if t.name == settings.feedback_topic])
    p = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", client_id="distill-guard-feedback",
                      **options)
    try:
        key = f"{doc['subject']['scope']}:{doc['subject']['value']}".encode()
        p.send(settings.feedback_topic, key=key, value=orjson.dumps(doc)).get(timeout=60)
    finally:
        p.close(10)
