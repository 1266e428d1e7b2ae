"""Replay: pours a JSONL file of gateway events, with their own timestamps, through the core and
writes exactly the records the worker would publish (alerts.jsonl, decisions.jsonl, dlq.jsonl).

Rule changes (`switches`, `replay --rules-at TS=FILE`) are replayed at an event time: the rules switch
before the first event, in file order, whose time reaches TS (the event-time watermark), and stay switched
for every event after it, as a worker's hot reload holds from the batch after it on."""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.drivers.content_pool import ContentPool, Pending
from app.emit.records import DeadLetter
from app.emit.sinks import Sink
from app.engine import Engine, Output
from app.features.content import ContentConfig
from app.feedback.feed import VerdictFeed
from app.ingest.parse import Rejection, parse_record
from app.rules.model import Rules

# The core allocates a few short-lived objects per event and keeps large long-lived state (windows,
# fingerprint members, sketch caches): with the default thresholds the cyclic collector runs every
# 700 allocations and walks that state often (~10% of a replay). Collect less often while replaying.
GC_THRESHOLD = (50_000, 20, 100)


@dataclass(slots=True)
class ReplayStats:
    lines: int = 0
    events: int = 0
    dead_letters: int = 0
    alerts: int = 0
    decisions: int = 0
    verdicts: int = 0  # analysts' verdicts applied (`feedback`)
    seconds: float = 0.0
    switches: int = 0  # rule switches applied (those whose time the events reached)


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes without the newline); blank lines are not records and are skipped."""
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            raw = line.rstrip(b"\r\n")
            if raw.strip():
                yield n, raw


def content_config(rules: Rules) -> ContentConfig:
    """The content stage's knobs under `rules` (what `AccountStage.set_rules` makes of them)."""
    return ContentConfig(lsh_bands=rules.content_lsh_bands, max_chars=rules.content_max_chars)


def replay(path: Path, rules: Rules, sink: Sink, now_ms: int | None = None,
           engine: Engine | None = None, content_jobs: int = 0,
           switches: Sequence[tuple[int, Rules]] = (), feedback: Path | None = None) -> ReplayStats:
    """`now_ms` is the pipeline clock for plausibility checks and DLQ timestamps (default: wall clock).
    `content_jobs` > 0 analyses prompts in that many other processes (`ContentPool`), the same records out.
    `switches`: (event time ms, rules) pairs; each takes over before the first event whose time reaches it.
    `feedback`: a JSONL file of analysts' verdicts, each applied at its time (app.feedback.feed)."""
    clock_ms = int(time.time() * 1000) if now_ms is None else now_ms
    engine = engine or Engine(rules)
    stats = ReplayStats()
    feed = _feed(feedback, clock_ms, sink, stats) if feedback is not None else None
    started = time.perf_counter()
    threshold = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        with ContentPool(content_jobs) as pool:  # 0 jobs: analysed in this process, chunk by chunk
            _run(path, clock_ms, engine, sink, stats, pool, sorted(switches, key=lambda s: s[0]), feed)
    finally:
        gc.set_threshold(*threshold)
    stats.seconds = time.perf_counter() - started
    return stats


def _feed(path: Path, clock_ms: int, sink: Sink, stats: ReplayStats) -> VerdictFeed:
    def dead(dl: DeadLetter) -> None:
        stats.dead_letters += 1
        sink.dead_letter(dl)

    return VerdictFeed(path, clock_ms, dead)


def _verdicts(feed: VerdictFeed, engine: Engine, sink: Sink, stats: ReplayStats):
    """What applies a verdict of `feed` to `engine` and writes its records."""
    def apply(v) -> str | None:
        out, why = engine.apply_verdict(v)
        if why is None:
            stats.verdicts += 1
            feed.seen(out.decisions)
            _emit(out, sink, stats)
        return why

    return apply


def _emit(out: Output, sink: Sink, stats: ReplayStats) -> None:
    for a in out.alerts:
        sink.alert(a)
    for d in out.decisions:
        sink.decision(d)
    stats.alerts += len(out.alerts)
    stats.decisions += len(out.decisions)


POOLED_CHUNK = 512  # events per chunk handed to the content pool


def _run(path: Path, clock_ms: int, engine: Engine, sink: Sink, stats: ReplayStats, pool: ContentPool,
         switches: list[tuple[int, Rules]], feed: VerdictFeed | None = None) -> None:
    """The file in chunks of events: each chunk's prompts analysed by `pool` (in other processes while
    this one runs the stateful stages over the chunks before it, or here with 0 jobs); chunks finish in
    file order, so the records do not depend on the pool. A rule switch ends a chunk: the chunk after it
    is analysed with the new rules' content knobs and switches the engine's rules before its first event."""
    name = str(path)
    accounts = engine.accounts
    apply = _verdicts(feed, engine, sink, stats) if feed is not None else None
    inflight: deque[tuple[list, Pending, tuple[Rules, int] | None]] = deque()
    depth = 2 * pool.jobs + 1
    cfg = accounts.content_cfg
    switch_to: tuple[Rules, int] | None = None  # rules the next chunk switches to first (and how many switches)
    watermark = None

    def finish() -> None:
        chunk, pending, new_rules = inflight.popleft()
        if new_rules is not None:
            engine.set_rules(new_rules[0])
            stats.switches += new_rules[1]
        features = iter(pending.result())
        for line_no, raw, ev in chunk:
            if isinstance(ev, Rejection):
                stats.dead_letters += 1
                sink.dead_letter(DeadLetter(clock_ms, {"file": name, "line": line_no}, ev.code, ev.message, raw))
                continue
            stats.events += 1
            if feed is not None:  # verdicts due before this event, then the event's own decisions noted
                feed.before(ev.ts_ms, apply)
                out = engine.process(ev, next(features))
                feed.seen(out.decisions)
                _emit(out, sink, stats)
                continue
            _emit(engine.process(ev, next(features)), sink, stats)

    def submit(chunk: list) -> None:
        nonlocal switch_to
        items = [accounts.content_input(ev) for _, _, ev in chunk if not isinstance(ev, Rejection)]
        inflight.append((chunk, pool.submit(items, cfg), switch_to))
        switch_to = None
        while len(inflight) > depth:
            finish()

    chunk: list = []
    for line_no, raw in iter_lines(path):
        stats.lines += 1
        ev = parse_record(raw, clock_ms)
        if switches and not isinstance(ev, Rejection) and (watermark is None or ev.ts_ms > watermark):
            watermark = ev.ts_ms
            if switches[0][0] <= watermark:
                if chunk:
                    submit(chunk)
                    chunk = []
                n = 0
                while switches and switches[0][0] <= watermark:
                    new, n = switches.pop(0)[1], n + 1
                switch_to = (new, n)
                cfg = content_config(new)
        chunk.append((line_no, raw, ev))
        if len(chunk) >= POOLED_CHUNK:
            submit(chunk)
            chunk = []
    if chunk:
        submit(chunk)
    while inflight:
        finish()
    if feed is not None:
        feed.rest(apply)
