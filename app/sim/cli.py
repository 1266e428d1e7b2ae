"""`distill-guard simulate`: labelled synthetic gateway traffic, to files or to Kafka."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.sim import generator, scenario
from app.sim.scenario import ScenarioError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "simulate", help="generate labelled gateway traffic from a scenario",
        description="Generate one scenario's gateway request events (contract v1) and their ground truth. "
                    f"Packaged scenarios: {', '.join(scenario.available())}.")
    p.add_argument("--scenario", default="default", metavar="NAME_OR_PATH",
                   help="packaged scenario name or a YAML file (default: default)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write DIR/events.jsonl and DIR/labels.json (with --kafka: only labels.json)")
    p.add_argument("--kafka", action="store_true", help="publish events to Kafka instead of events.jsonl")
    p.add_argument("--topic", help="topic for --kafka (default: settings' requests topic, gateway.requests)")
    p.add_argument("--speed", type=float, default=0.0, metavar="N",
                   help="with --kafka: replay at N x real time; 0 = as fast as possible (default)")
    p.add_argument("--limit", type=int, metavar="N", help="with --kafka: publish only the first N events")
    p.add_argument("--start", metavar="RFC3339", help="override the scenario's simulated day start")
    p.add_argument("--validate", action="store_true", help="only load and validate the scenario")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        sc = scenario.load(args.scenario, start=args.start)
    except ScenarioError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if args.validate:
        print(f"{sc.source}: ok ({len(sc.populations)} populations, {len(sc.campaigns)} campaigns)")
        return 0
    if not args.kafka and args.out is None:
        print("simulate: --out DIR is required unless --kafka is given", file=sys.stderr)
        return 2
    if args.speed < 0:
        print("simulate: --speed must be >= 0", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    sim = generator.build(sc, args.seed)
    if args.kafka:
        from app.settings import Settings
        from app.sim.publish import Progress, publish

        settings = Settings.from_env()
        topic = args.topic or settings.requests_topic
        sent, seen = publish(sim, settings, topic, args.speed, Progress("simulate -> " + topic), args.limit)
        result = {"events": sent}
        if args.out is not None:
            generator.write_labels(sim, args.out, seen)
        where = f"topic {topic} at {settings.bootstrap_servers}"
    else:
        from app.sim.publish import Progress

        result = generator.write(sim, args.out, Progress("simulate") if sys.stderr.isatty() else None)
        where = str(args.out)
    elapsed = time.perf_counter() - t0
    print(f"simulate: scenario {sc.name} seed {args.seed}: {result['events']:,} events -> {where} "
          f"in {elapsed:.1f} s", file=sys.stderr)
    return 0
