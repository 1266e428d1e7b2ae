"""A/B of the parse and content stages against an earlier commit, in one process (not a test).

    .venv/bin/python tests/features/ab_stages.py --base HEAD~1 [--stage content|parse] [--records 100000]
        [--reps 5] [--events .bench/default/events.jsonl]

The base commit's app/features and app/ingest are read with `git show` into a temporary package
(`app_base`), so the old and the new code run side by side on the same records: the first N records of
the default day, in chunks of 512 as the bench's cost pass hands them over, old and new alternating per
chunk (which goes first alternates too) so that load on a shared machine falls on both alike, timed in
this thread's CPU time. Each repetition gives a total per side; the medians are printed with the load
average. Outputs are compared
record by record first: the content features the core reads (skeleton hash, MinHash template keys, the
three scores, family, language, length bucket, token count), and Events (every field) or Rejections
(code, message, event id); any difference is printed and the run fails.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CHUNK = 512
GC_THRESHOLD = (50_000, 20, 100)  # app.drivers.replay.GC_THRESHOLD (not imported: it pulls in the drivers)
NOW_MS = 1_770_076_800_000  # 2026-02-03T00:00:00Z, as the byte-identity replays use


def copy_base(rev: str, into: Path, dirs: tuple[str, ...], data: bool = False) -> None:
    """The base commit's modules under app/`dirs` as package `app_base` in `into` (imports rewritten), on
    sys.path; `data`: their other files too (the packaged rules, say)."""
    pkg = into / "app_base"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, *(f"app/{d}" for d in dirs)], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout.split()
    for rel in listed:
        if not rel.endswith(".py") and not data:
            continue
        src = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=ROOT, check=True, capture_output=True).stdout
        if rel.endswith(".py"):
            src = src.replace(b"from app.", b"from app_base.").replace(b"import app.", b"import app_base.")
        dest = pkg / rel.removeprefix("app/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src)
    sys.path.insert(0, str(into))


def load_base(rev: str, into: Path):
    """The base commit's features and ingest modules as package `app_base` (imports rewritten)."""
    copy_base(rev, into, ("features", "ingest"))
    return (importlib.import_module("app_base.features.content"), importlib.import_module("app_base.ingest.parse"))


def content_view(f) -> tuple:
    return (f.skeleton_hash, tuple(k for k in f.template_keys if k[0] == "m"), f.trace_elicit, f.rubric_grading,
            f.censor_rewrite, f.task_family, f.lang, f.length_bucket, f.token_count)


def event_view(ev) -> tuple:
    if hasattr(ev, "code"):  # a Rejection
        return ("rejection", ev.code, ev.message, ev.event_id)
    from app.ingest.event import Event
    names = getattr(Event, "__struct_fields__", None) or tuple(Event.__dataclass_fields__)
    return tuple((n, getattr(ev, n)) for n in names)


def interleaved(chunks: list, a, b, reps: int, fresh=None) -> tuple[list[float], list[float]]:
    """CPU seconds of this thread per repetition for `a` and `b`, each called on every chunk, alternating.
    CPU time rather than wall time: on a machine shared with other jobs the wall clock also counts the
    time this process waited for a core, which moves with everybody else's load. `fresh()` runs before
    each repetition (emptying caches, so that each repetition is a first pass over the records)."""
    ta, tb = [], []
    pc = time.thread_time
    for rep in range(reps):
        if fresh is not None:
            fresh()
        sa = sb = 0.0
        for i, chunk in enumerate(chunks):
            first_a = (i + rep) % 2 == 0
            for run_a in ((True, False) if first_a else (False, True)):
                t0 = pc()
                (a if run_a else b)(chunk)
                dt = pc() - t0
                if run_a:
                    sa += dt
                else:
                    sb += dt
        ta.append(sa)
        tb.append(sb)
    return ta, tb


def ab_parser(reps: int) -> argparse.ArgumentParser:
    """The arguments every A/B script here takes: the base commit, how many records, repetitions, the events."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="the commit to compare the work tree with")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=reps)
    ap.add_argument("--events", type=Path, default=ROOT / ".bench/default/events.jsonl")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = ab_parser(reps=5)
    ap.add_argument("--stage", choices=("content", "parse"), default="content")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old_content, old_parse = load_base(args.base, Path(tmp))
        from app.features import content as new_content
        from app.ingest import parse as new_parse

        with args.events.open("rb") as f:
            raws = [line.rstrip(b"\r\n") for line in islice((x for x in f if x.strip()), args.records)]
        parsed = (new_parse.parse_record(r, NOW_MS) for r in raws)
        evs = [ev for ev in parsed if not isinstance(ev, new_parse.Rejection)]
        gc.set_threshold(*GC_THRESHOLD)
        if args.stage == "content":
            items = [(ev.prompt, ev.system_prompt_hash, ev.tools, ev.images) for ev in evs]
            cfg_old, cfg_new = old_content.ContentConfig(), new_content.ContentConfig()
            old_content.warm_up(compile_all=True)
            new_content.warm_up(compile_all=True)
            old_out = old_content.analyse_batch(items, cfg_old)
            new_out = new_content.analyse_batch(items, cfg_new)
            bad = [i for i, (x, y) in enumerate(zip(old_out, new_out, strict=True))
                   if content_view(x) != content_view(y)]
            for i in bad[:5]:
                print("DIFF", i, content_view(old_out[i]), content_view(new_out[i]))
            chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
            ta, tb = interleaved(chunks, lambda c: old_content.analyse_batch(c, cfg_old),
                                 lambda c: new_content.analyse_batch(c, cfg_new), args.reps,
                                 fresh=lambda: [getattr(m, "_SKETCHES", {}).clear()
                                                for m in (old_content, new_content)])
            n = len(items)
        else:
            old_out = [old_parse.parse_record(r, NOW_MS) for r in raws]
            new_out = [new_parse.parse_record(r, NOW_MS) for r in raws]
            bad = [i for i, (x, y) in enumerate(zip(old_out, new_out, strict=True)) if event_view(x) != event_view(y)]
            for i in bad[:5]:
                print("DIFF", i, event_view(old_out[i]), event_view(new_out[i]))
            chunks = [raws[i:i + CHUNK] for i in range(0, len(raws), CHUNK)]
            po, pn = old_parse.parse_record, new_parse.parse_record
            ta, tb = interleaved(chunks, lambda c: [po(r, NOW_MS) for r in c], lambda c: [pn(r, NOW_MS) for r in c],
                                 args.reps)
            n = len(evs)  # per event, as the cost pass divides
    report(f"{args.stage}: {len(raws):,} records, {n:,} events, {args.reps} reps", args.base, ta, tb, n, "event",
           f"outputs differing: {len(bad)}")
    return 1 if bad else 0


def report(head: str, base: str, ta: list[float], tb: list[float], n: int, unit: str, differing: str) -> None:
    """An A/B's lines: `head` with the load average, each side's microseconds per `unit` (of `n`) by
    repetition and their median, the ratio and `differing`."""
    per = [1e6 * t / n for t in ta], [1e6 * t / n for t in tb]
    ma, mb = statistics.median(per[0]), statistics.median(per[1])
    print(f"{head}, load average {os.getloadavg()[0]:.2f}")
    print(f"  base {base}: " + " ".join(f"{x:.1f}" for x in per[0]) + f"  median {ma:.1f} us/{unit}")
    print("  work tree:  " + " ".join(f"{x:.1f}" for x in per[1]) + f"  median {mb:.1f} us/{unit}")
    print(f"  new/old {mb / ma:.3f}; {differing}")


if __name__ == "__main__":
    sys.exit(main())
