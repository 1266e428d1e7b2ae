"""A/B of the account, fingerprint and cluster stages against an earlier commit, in one process (not a test).

    .venv/bin/python tests/features/ab_core.py --base HEAD~1 [--records 100000] [--reps 3]
        [--events .bench/default/events.jsonl]

The first N records of the default day are parsed and their content analysed once, by the work tree's code
(neither side's figures include it), in chunks of 512 records as the bench's cost pass hands them over. The
base commit's whole `app` package is read with `git show` into `app_base` (ab_stages.py). Each repetition
makes a fresh base Engine and a fresh work-tree one and feeds both every chunk, alternating chunk by chunk
(which goes first alternates too), each stage over the whole chunk before the next as the cost pass does,
timed per stage in this thread's CPU time. Outputs are compared first: every alert and decision in wire
form and in order, and every observation and link (their wire form) the stages passed on; any difference is
printed and the run fails."""

from __future__ import annotations

import gc
import importlib
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import orjson
from ab_stages import CHUNK, GC_THRESHOLD, NOW_MS, ab_parser, copy_base

STAGES = ("accounts", "fingerprints", "clusters")


def prepare(events: Path, records: int) -> list[tuple[list, list]]:
    """(events, content features) per chunk of records, made by the work tree's parse and content code."""
    from app.features.content import ContentConfig, analyse_batch, warm_up
    from app.ingest.parse import Rejection, parse_record
    from app.rules.load import load_rules
    from app.settings import DEFAULT_RULES

    rules = load_rules(DEFAULT_RULES)
    cfg = ContentConfig(lsh_bands=rules.content_lsh_bands, max_chars=rules.content_max_chars)
    with events.open("rb") as f:
        raws = [line.rstrip(b"\r\n") for line in islice((x for x in f if x.strip()), records)]
    warm_up(compile_all=True)
    chunks = []
    for start in range(0, len(raws), CHUNK):
        evs = [ev for ev in (parse_record(r, NOW_MS) for r in raws[start:start + CHUNK])
               if not isinstance(ev, Rejection)]
        chunks.append((evs, analyse_batch([(ev.prompt, ev.system_prompt_hash, ev.tools, ev.images) for ev in evs],
                                          cfg)))
    return chunks


def engine_maker(pkg: str):
    """A function making a fresh Engine of package `pkg` (app or app_base) and its Output class."""
    engine = importlib.import_module(f"{pkg}.engine")
    rules = importlib.import_module(f"{pkg}.rules.load").load_rules(importlib.import_module(f"{pkg}.settings")
                                                                     .DEFAULT_RULES)
    return lambda: (engine.Engine(rules), engine.Output)


class Side:
    """One engine fed chunk by chunk, its CPU seconds per stage summed, its outputs kept when asked."""

    def __init__(self, fresh, keep: bool = False) -> None:
        self.engine, self.output = fresh()
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self.keep = keep
        self.records: list[bytes] = []

    def feed(self, chunk: tuple[list, list]) -> None:
        evs, features = chunk
        e = self.engine
        accounts, fingerprints, clusters = e.accounts, e.fingerprints, e.clusters
        pc = time.thread_time
        out = self.output()
        t0 = pc()
        for ev, cf in zip(evs, features, strict=True):
            accounts.process(ev, out, cf)
        t1 = pc()
        for obs in out.observations:
            fingerprints.process(obs, out)
        t2 = pc()
        for link in out.links:
            clusters.process(link, out)
        t3 = pc()
        s = self.seconds
        s["accounts"] += t1 - t0
        s["fingerprints"] += t2 - t1
        s["clusters"] += t3 - t2
        if self.keep:
            self.records += [orjson.dumps(x.wire()) for x in (*out.observations, *out.links, *out.alerts,
                                                               *out.decisions)]


def main(argv: list[str] | None = None) -> int:
    ap = ab_parser(reps=3)
    args = ap.parse_args(argv)
    chunks = prepare(args.events, args.records)
    n = sum(len(evs) for evs, _ in chunks)
    with tempfile.TemporaryDirectory() as tmp:
        copy_base(args.base, Path(tmp), ("",), data=True)
        old, new = engine_maker("app_base"), engine_maker("app")
        gc.set_threshold(*GC_THRESHOLD)
        a, b = Side(old, keep=True), Side(new, keep=True)
        for chunk in chunks:
            a.feed(chunk)
            b.feed(chunk)
        bad = [i for i, (x, y) in enumerate(zip(a.records, b.records, strict=False)) if x != y]
        if len(a.records) != len(b.records):
            print(f"DIFF record counts {len(a.records)} vs {len(b.records)}")
            bad.append(min(len(a.records), len(b.records)))
        for i in bad[:5]:
            print("DIFF", i, a.records[i] if i < len(a.records) else None,
                  b.records[i] if i < len(b.records) else None, sep="\n  ")
        compared = len(a.records)
        del a, b
        per: dict[str, list[list[float]]] = {s: [[], []] for s in STAGES}
        for rep in range(args.reps):
            a, b = Side(old), Side(new)
            for i, chunk in enumerate(chunks):
                for side in ((a, b) if (i + rep) % 2 == 0 else (b, a)):
                    side.feed(chunk)
            for s in STAGES:
                per[s][0].append(1e6 * a.seconds[s] / n)
                per[s][1].append(1e6 * b.seconds[s] / n)
            del a, b
    import os
    print(f"core stages: {args.records:,} records, {n:,} events, {compared:,} records compared (observations, "
          f"links, alerts, decisions), {args.reps} reps, load average {os.getloadavg()[0]:.2f}; CPU µs per event")
    tot_a = tot_b = 0.0
    for s in STAGES:
        xa, xb = per[s]
        ma, mb = statistics.median(xa), statistics.median(xb)
        tot_a, tot_b = tot_a + ma, tot_b + mb
        print(f"  {s:<13} base {args.base}: " + " ".join(f"{x:.1f}" for x in xa) + f"  median {ma:.1f}; "
              "work tree: " + " ".join(f"{x:.1f}" for x in xb) + f"  median {mb:.1f}  (new/old {mb / ma:.3f})")
    print(f"  all three     {tot_a:.1f} -> {tot_b:.1f}; outputs differing: {len(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
