"""The two replays of a backtest: the same events, the same pipeline clock, each rule set through
`app.drivers.replay.replay` into its own directory (alerts.jsonl, decisions.jsonl, dlq.jsonl, exactly what
`replay` writes). One after the other in this process, or in two processes at once (`processes=2`): each
replay is one sequential core, so on two or more cores the pair takes about as long as one.

Progress (records read / total per rule set) goes to stderr for long inputs: the engine each replay runs is
`app.engine.Engine` plus a counter, so nothing the stages do changes."""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from app.drivers.content_pool import MAX_AUTO_JOBS, usable_cpus
from app.drivers.replay import replay
from app.emit.records import DeadLetter
from app.emit.sinks import JsonlSink
from app.engine import Engine, Output
from app.evaluate.metrics import Evaluation, evaluate
from app.features.content import ContentFeatures, warm_up
from app.ingest.event import Event
from app.rules.model import Rules

SYNC_EVERY = 256            # records between updates of the shared progress counter
PROGRESS_FIRST_S = 2.0      # inputs replayed faster than this show no progress lines
PROGRESS_EVERY_S = 5.0
# `--processes auto` runs the replays in two processes from this input size (~16k simulated events). Measured
# on the 2-core machine shared with other jobs (load 3-6): the small world of seed 3 (33k events, 33 MB) took
# 30-34 s in two processes against 47-50 s one after the other (53-61 s with a content process), for the same
# CPU (~26 s); its first 4k events (4 MB) took longer in two (23-33 s against 14-20 s): each child compiles the
# content cues the other one compiles too (~4 s of CPU), which only a long input repays. Above this size the
# parent compiles them once before forking.
PARALLEL_MIN_BYTES = 16 << 20


class Counter:
    """Records done, readable from another process (a shared integer) or this one."""

    def __init__(self, shared: Any = None) -> None:
        self.shared = shared
        self.local = 0

    @property
    def value(self) -> int:
        return self.shared.value if self.shared is not None else self.local

    def set(self, n: int) -> None:
        self.local = n
        if self.shared is not None:
            self.shared.value = n


class CountingEngine(Engine):
    """`Engine` that counts the events it processes (for progress) and, when asked, what each account is:
    its org, events, first and last event time."""

    def __init__(self, rules: Rules, counter: Counter, tick: Callable[[], None] | None = None,
                 accounts: dict[str, list] | None = None) -> None:
        super().__init__(rules)
        self.counter = counter
        self.tick = tick
        self.seen = accounts
        self.done = 0

    def process(self, ev: Event, cf: ContentFeatures | None = None) -> Output:
        self.done += 1
        if self.done % SYNC_EVERY == 0:
            self.sync()
        if self.seen is not None:
            a = self.seen.get(ev.account_id)
            if a is None:
                self.seen[ev.account_id] = [ev.org_id, 1, ev.ts_ms, ev.ts_ms]
            else:
                a[1] += 1
                if ev.ts_ms < a[2]:
                    a[2] = ev.ts_ms
                if ev.ts_ms > a[3]:
                    a[3] = ev.ts_ms
        return super().process(ev, cf)

    def sync(self) -> None:
        self.counter.set(self.done)
        if self.tick is not None:
            self.tick()


class CountingSink(JsonlSink):
    """replay's JSONL files; a dead letter is a record done too."""

    def __init__(self, out_dir: Path, engine: CountingEngine) -> None:
        super().__init__(out_dir)
        self.engine = engine

    def dead_letter(self, r: DeadLetter) -> None:
        super().dead_letter(r)
        self.engine.done += 1


@dataclass(frozen=True, slots=True)
class Job:
    name: str                 # "base" or "new"
    events: Path
    rules: Rules
    out_dir: Path
    now_ms: int
    content_jobs: int
    labels: Path | None       # score the decisions with app.evaluate.metrics when given
    accounts: bool            # collect each account's org, events, first/last time


@dataclass(slots=True)
class Run:
    """One replay's result."""
    name: str
    out_dir: Path
    lines: int
    events: int
    dead_letters: int
    alerts: int
    decisions: int
    seconds: float
    accounts: dict[str, list] | None = None   # account -> [org, events, first ts, last ts]
    evaluation: Evaluation | None = None
    evaluate_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "records": self.lines, "events": self.events,
                "dead_letters": self.dead_letters, "alerts": self.alerts, "decisions": self.decisions,
                "replay_seconds": round(self.seconds, 3), "evaluate_seconds": round(self.evaluate_seconds, 3)}


def run_one(job: Job, counter: Counter, tick: Callable[[], None] | None = None) -> Run:
    accounts: dict[str, list] | None = {} if job.accounts else None
    engine = CountingEngine(job.rules, counter, tick, accounts)
    with CountingSink(job.out_dir, engine) as sink:
        stats = replay(job.events, job.rules, sink, now_ms=job.now_ms, engine=engine,
                       content_jobs=job.content_jobs)
    engine.sync()
    run = Run(job.name, job.out_dir, stats.lines, stats.events, stats.dead_letters, stats.alerts, stats.decisions,
              stats.seconds, accounts)
    if job.labels is not None:
        started = time.perf_counter()
        run.evaluation = evaluate(job.events, job.labels, job.out_dir / "decisions.jsonl")
        run.evaluate_seconds = time.perf_counter() - started
    return run


def count_records(path: Path) -> int:
    """Lines in the file (blank ones included: a progress total, read at disk speed)."""
    n = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def plan(processes: str, content_jobs: str, size_bytes: int) -> tuple[int, int]:
    """(processes, content jobs per replay) from the options. `auto` processes: two when there are two
    usable cores and the input is large enough to repay a second process's start. `auto` content jobs: the
    cores left over, shared by the replays running at once. Raises ValueError on a bad value."""
    cpus = int(usable_cpus())
    p = processes.strip().lower()
    if p == "auto":
        n = 2 if cpus >= 2 and size_bytes >= PARALLEL_MIN_BYTES else 1
    elif p in ("1", "2"):
        n = int(p)
    else:
        raise ValueError(f"--processes must be 1, 2 or auto, not {processes!r}")
    c = content_jobs.strip().lower()
    if c == "auto":
        jobs = max(0, min(MAX_AUTO_JOBS, cpus // n - 1))
    else:
        try:
            jobs = int(c)
        except ValueError:
            jobs = -1
        if jobs < 0:
            raise ValueError(f"--content-jobs must be 'auto' or >= 0, not {content_jobs!r}")
    return n, jobs


@dataclass(slots=True)
class Progress:
    """Lines like `backtest: base 12,288/33,310 records (37%)  new 11,776/33,310 (35%)  14s` on stderr, the
    first after PROGRESS_FIRST_S, then every PROGRESS_EVERY_S; none for inputs replayed faster."""
    total: int
    stream: IO[str] | None = None
    first_s: float = PROGRESS_FIRST_S
    every_s: float = PROGRESS_EVERY_S
    started: float = field(default_factory=time.perf_counter)
    last: float = 0.0

    def due(self) -> bool:
        now = time.perf_counter()
        if now - self.started < self.first_s or now - self.last < self.every_s:
            return False
        self.last = now
        return True

    def show(self, counters: dict[str, Counter]) -> None:
        parts = []
        for name, c in counters.items():
            done = c.value
            pct = f" ({100 * done / self.total:.0f}%)" if self.total else ""
            parts.append(f"{name} {done:,}/{self.total:,} records{pct}")
        self.say("  ".join(parts) + f"  {time.perf_counter() - self.started:.0f}s")

    def say(self, text: str) -> None:
        print(f"backtest: {text}", file=self.stream or sys.stderr, flush=True)


def _done_line(run: Run) -> str:
    rate = run.events / run.seconds if run.seconds else 0.0
    return (f"{run.name} done: {run.lines:,} records, {run.events:,} events, {run.dead_letters:,} dead letters, "
            f"{run.alerts:,} alerts, {run.decisions:,} decisions in {run.seconds:.1f}s ({rate:,.0f} events/s)")


def run_both(jobs: list[Job], processes: int, progress: Progress) -> list[Run]:
    if processes >= 2:
        return _parallel(jobs, progress)
    runs = []
    for job in jobs:
        counter = Counter()
        counters = {job.name: counter}

        def tick(counters: dict[str, Counter] = counters) -> None:
            if progress.due():
                progress.show(counters)

        run = run_one(job, counter, tick)
        progress.say(_done_line(run))
        runs.append(run)
    return runs


def _child(job: Job, shared: Any, conn: Any) -> None:
    try:
        conn.send(("ok", run_one(job, Counter(shared))))
    except KeyboardInterrupt:  # pragma: no cover - the parent is stopping too
        conn.send(("error", "interrupted"))
    except BaseException as exc:  # reported by the parent, which exits 1
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class ReplayFailed(RuntimeError):
    pass


def _parallel(jobs: list[Job], progress: Progress) -> list[Run]:
    # fork: the child starts with the parent's imports and rules (a spawned one would import the core
    # again); each child's content pool, if any, spawns its own processes
    ctx = multiprocessing.get_context("fork")
    if not any(j.content_jobs for j in jobs) and jobs[0].events.stat().st_size >= PARALLEL_MIN_BYTES:
        # what the prompts of a long input compile anyway (cue pre-filters, the cues' regexes), compiled
        # once here and shared with both children rather than once in each (~4.5 s of CPU)
        progress.say("compiling the content cues once for both replays")
        warm_up(compile_all=True)
    counters: dict[str, Counter] = {}
    procs: list[tuple[Job, Any, Any]] = []
    try:
        for job in jobs:
            shared = ctx.Value("q", 0, lock=False)
            counters[job.name] = Counter(shared)
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(job, shared, send), name=f"backtest-{job.name}")
            p.start()
            send.close()
            procs.append((job, p, recv))
        results: dict[str, Run] = {}
        while len(results) < len(procs):
            if progress.due():  # before the polls: children faster than one poll still get a line when due
                progress.show(counters)
            for job, p, recv in procs:
                if job.name in results:
                    continue
                if recv.poll(0.2):
                    try:
                        status, value = recv.recv()
                    except EOFError:
                        raise ReplayFailed(f"the {job.name} replay stopped (exit code {p.exitcode})") from None
                    if status != "ok":
                        raise ReplayFailed(f"the {job.name} replay failed: {value}")
                    results[job.name] = value
                    p.join()
                    progress.say(_done_line(value))
                elif not p.is_alive() and not recv.poll():
                    raise ReplayFailed(f"the {job.name} replay stopped (exit code {p.exitcode})")
        return [results[j.name] for j in jobs]
    finally:
        for _, p, recv in procs:
            if p.is_alive():
                p.terminate()
            p.join()
            recv.close()
