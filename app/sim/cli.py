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
    src = p.add_mutually_exclusive_group()
    src.add_argument("--scenario", metavar="NAME_OR_PATH",
                     help="packaged scenario name or a YAML file (default: default)")
    src.add_argument("--world", type=int, metavar="SEED",
                     help="a randomised world: every knob drawn from the documented ranges (docs/simulator.md); "
                          "also writes DIR/world.yaml, which --scenario reads back to the same bytes")
    p.add_argument("--world-size", choices=("small", "medium", "day"), default="small",
                   help="with --world: small (4-7 h, ~25-50k events), medium (12-18 h, ~100-165k) or day "
                        "(24 h, ~350-450k) (default: small)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed; same seed, same bytes (default: the scenario file's seed, the world's "
                        "seed with --world, else 0)")
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
    world_doc = None
    try:
        if args.world is not None:
            from app.sim import worlds

            if args.world < 0:
                print("simulate: --world must be >= 0", file=sys.stderr)
                return 2
            world_doc = worlds.draw_doc(args.world, args.world_size)
            if args.seed is not None:
                world_doc["seed"] = args.seed
            sc = scenario.from_dict(world_doc, f"world {args.world} ({args.world_size})", start=args.start)
        else:
            sc = scenario.load(args.scenario or "default", start=args.start)
    except ScenarioError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else (sc.seed if sc.seed is not None else 0)
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
    if world_doc is not None and args.out is not None:
        write_world(world_doc, args.out, args.start)
    sim = generator.build(sc, seed)
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
    print(f"simulate: scenario {sc.name} seed {seed}: {result['events']:,} events -> {where} "
          f"in {elapsed:.1f} s", file=sys.stderr)
    return 0


def write_world(doc: dict, out_dir: Path, start: str | None = None) -> Path:
    """DIR/world.yaml: the drawn scenario with its seed, loadable again with --scenario."""
    import yaml

    if start is not None:
        doc = {**doc, "start": start}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "world.yaml"
    head = f"# {doc['description']}\n# The same events again: distill-guard simulate --scenario <this file> --out DIR\n"
    path.write_text(head + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    return path
