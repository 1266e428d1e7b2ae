"""A/B of the cluster stage against an earlier commit, in one process (not a test).

    .venv/bin/python tests/features/ab_cluster.py --base HEAD~1 [--records 100000] [--reps 3]
        [--events .bench/default/events.jsonl] [--links FILE] [--profile FILE]

The links the cluster stage takes in are made once, by the work tree's engine, from the first N records of
the default day as the bench's cost pass makes them (chunks of 512 records, each stage over the whole
chunk); `--links FILE` keeps them in FILE (pickled) and reads them from there when it exists. The base
commit's whole `app` package is read with `git show` into `app_base` (ab_stages.py), and each repetition
feeds the same links to a fresh base ClusterStage and a fresh work-tree one, link chunk by link chunk,
alternating (which goes first alternates too), timed in this thread's CPU time. Outputs are compared
first: every alert and decision (their wire form, in order), and every cluster's snapshot at the end; any
difference is printed and the run fails. `--profile FILE`: also cProfile one pass of the work tree's
stage into FILE (pstats).
"""

from __future__ import annotations

import gc
import importlib
import pickle
import sys
import tempfile
from itertools import islice
from pathlib import Path

import orjson
from ab_stages import CHUNK, GC_THRESHOLD, NOW_MS, ab_parser, copy_base, interleaved, report


def make_links(events: Path, records: int) -> list[list]:
    """The cluster stage's input, one list of links per chunk of records (the cost pass's order)."""
    from app.engine import Engine
    from app.features.content import analyse_batch, warm_up
    from app.ingest.parse import Rejection, parse_record
    from app.rules.load import load_rules
    from app.settings import DEFAULT_RULES
    from app.stages.base import Output

    with events.open("rb") as f:
        raws = [line.rstrip(b"\r\n") for line in islice((x for x in f if x.strip()), records)]
    warm_up(compile_all=True)
    engine = Engine(load_rules(DEFAULT_RULES))
    accounts, fingerprints = engine.accounts, engine.fingerprints
    chunks = []
    for start in range(0, len(raws), CHUNK):
        evs = [ev for ev in (parse_record(r, NOW_MS) for r in raws[start:start + CHUNK])
               if not isinstance(ev, Rejection)]
        features = analyse_batch([accounts.content_input(ev) for ev in evs], accounts.content_cfg)
        out = Output()
        for ev, cf in zip(evs, features, strict=True):
            accounts.process(ev, out, cf)
        for obs in out.observations:
            fingerprints.process(obs, out)
        chunks.append(out.links)
    return chunks


def stage_maker(pkg: str):
    """A function making a fresh ClusterStage of package `pkg` (app or app_base) as `Engine` sets it up."""
    stages = importlib.import_module(f"{pkg}.stages.cluster")
    base = importlib.import_module(f"{pkg}.stages.base")
    fb = importlib.import_module(f"{pkg}.policy.feedback")
    rules = importlib.import_module(f"{pkg}.rules.load").load_rules(importlib.import_module(f"{pkg}.settings")
                                                                     .DEFAULT_RULES)

    def fresh():
        stage = stages.ClusterStage(rules)
        stage.use_feedback(fb.FeedbackState())
        return stage, base.Output
    return fresh


def run_all(fresh, chunks: list[list]) -> tuple[list[bytes], dict]:
    """Every alert and decision of one pass, in wire form, and the clusters' snapshots at the end."""
    stage, output = fresh()
    records = []
    for links in chunks:
        out = output()
        for link in links:
            stage.process(link, out)
        records += [orjson.dumps(r.wire()) for r in (*out.alerts, *out.decisions)]
    snaps = {k: orjson.dumps(v.snapshot()) for k, v in stage.clusters.items()}
    return records, snaps


def main(argv: list[str] | None = None) -> int:
    ap = ab_parser(reps=3)
    ap.add_argument("--links", type=Path, help="pickle of the links: read when it exists, else written")
    ap.add_argument("--profile", type=Path, help="cProfile one pass of the work tree's stage into this file")
    args = ap.parse_args(argv)
    if args.links is not None and args.links.exists():
        chunks = pickle.loads(args.links.read_bytes())
    else:
        chunks = make_links(args.events, args.records)
        if args.links is not None:
            args.links.write_bytes(pickle.dumps(chunks, protocol=pickle.HIGHEST_PROTOCOL))
    n = sum(map(len, chunks))
    with tempfile.TemporaryDirectory() as tmp:
        copy_base(args.base, Path(tmp), ("",), data=True)
        old, new = stage_maker("app_base"), stage_maker("app")
        gc.set_threshold(*GC_THRESHOLD)
        (ra, sa), (rb, sb) = run_all(old, chunks), run_all(new, chunks)
        bad = [i for i, (x, y) in enumerate(zip(ra, rb, strict=False)) if x != y]
        if len(ra) != len(rb):
            print(f"DIFF record counts {len(ra)} vs {len(rb)}")
            bad.append(min(len(ra), len(rb)))
        for i in bad[:5]:
            print("DIFF", i, ra[i] if i < len(ra) else None, rb[i] if i < len(rb) else None, sep="\n  ")
        bad_state = sorted(k for k in sa.keys() | sb.keys() if sa.get(k) != sb.get(k))
        for k in bad_state[:5]:
            print("DIFF cluster", k, sa.get(k), sb.get(k), sep="\n  ")
        if args.profile:
            import cProfile
            cProfile.runctx("run_all(new, chunks)", globals(), {"run_all": run_all, "new": new, "chunks": chunks},
                            str(args.profile))
        # each side's state lives across the chunks of one repetition: a stage per side, made afresh per rep
        sides: dict[str, object] = {}

        def side(name):
            def feed(links):
                stage, out = sides[name]
                for link in links:
                    stage.process(link, out)
            return feed

        def reset():
            for name, fresh in (("a", old), ("b", new)):
                stage, output = fresh()
                sides[name] = (stage, output())
        ta, tb = interleaved(chunks, side("a"), side("b"), args.reps, fresh=reset)
    report(f"cluster: {args.records:,} records, {n:,} links, {len(ra):,} alerts and decisions, {len(sb):,} "
           f"clusters, {args.reps} reps", args.base, ta, tb, n, "link",
           f"outputs differing: {len(bad)}, cluster states differing: {len(bad_state)}")
    return 1 if bad or bad_state else 0


if __name__ == "__main__":
    sys.exit(main())
