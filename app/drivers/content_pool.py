"""Content analysis in other processes, for the drivers.

The content stage (`app.features.content.analyse`) is pure and needs no state, and it is the largest
share of the core's cost per event (docs/benchmarks.md); the stateful stages after it are sequential per
key. A driver therefore hands each batch's prompts to `jobs` spawned processes (`analyse_batch`, in
chunks) and runs the stateful stages in its own process, overlapping the next batch's analysis. Features
are the same wherever they are computed, so outputs do not change with `jobs`
(tests/drivers/test_content_pool.py holds replay to that).

A child that dies (OOM killer, say) breaks the pool: the batch is then analysed in this process, the
pool is started again and `restarts` counts it; nothing is lost or computed differently."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from app.features.content import ContentConfig, ContentFeatures, ContentInput, analyse_batch

log = logging.getLogger("distill_guard.content_pool")

MAX_AUTO_JOBS = 8
PARENT_POLL_S = 0.5


def usable_cpus() -> float:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (a container's
    CPU limit, which os.cpu_count does not see)."""
    try:
        n: float = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            n = min(n, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return n


def resolve_jobs(value: str | int) -> int:
    """'auto': one content process per usable CPU beyond the one the driver runs on (at most
    MAX_AUTO_JOBS); 0: analyse in the driver's own process. Raises ValueError on anything else."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return max(0, min(MAX_AUTO_JOBS, int(usable_cpus()) - 1))
    try:
        jobs = int(value)
    except (TypeError, ValueError):
        jobs = -1
    if jobs < 0:
        raise ValueError(f"content jobs must be 'auto' or >= 0, got {value!r}")
    return jobs


def _child_init(parent: int, compile_all: bool) -> None:
    import gc
    import signal
    import threading
    import time

    from app.features.content import warm_up

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pool

    def orphaned() -> None:  # a parent killed with SIGKILL closes no pool: leave with it
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=orphaned, name="parent-watch", daemon=True).start()
    warm_up(compile_all)
    gc.freeze()


class Pending:
    """The features of one submitted batch, in input order (`result`)."""

    def __init__(self, pool: ContentPool, ex: ProcessPoolExecutor, items: list[ContentInput],
                 cfg: ContentConfig, futures: list[Future]) -> None:
        self._pool, self._ex, self._items, self._cfg, self._futures = pool, ex, items, cfg, futures

    def result(self) -> list[ContentFeatures]:
        try:
            return [cf for f in self._futures for cf in f.result()]
        except BrokenProcessPool:
            return self._pool._recover(self._items, self._cfg, self._ex)

    async def wait(self) -> list[ContentFeatures]:
        """`result` for asyncio drivers: the event loop runs other work while the children compute."""
        try:
            parts = await asyncio.gather(*(asyncio.wrap_future(f) for f in self._futures))
        except BrokenProcessPool:
            return self._pool._recover(self._items, self._cfg, self._ex)
        return [cf for part in parts for cf in part]


class ContentPool:
    """`jobs` spawned processes running `analyse_batch`; with 0 jobs everything runs in this process."""

    MIN_CHUNK = 32  # fewer prompts than this per child are not worth a round trip each

    def __init__(self, jobs: int, compile_all: bool = False) -> None:
        """`compile_all`: children compile every cue regex at start (app.features.content.warm_up)."""
        self.jobs = jobs
        self.compile_all = compile_all
        self.restarts = 0
        self._ex: ProcessPoolExecutor | None = None
        if jobs > 0:
            self._start()

    def _start(self) -> None:
        # spawn, not fork: the Faust worker has threads (a forked child could inherit a held lock)
        try:
            ex = ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"), initializer=_child_init,
                                     initargs=(os.getpid(), self.compile_all))
            for _ in range(self.jobs):  # start (and warm up) every child now, not on the first live batch
                ex.submit(int)
        except OSError as exc:  # no /dev/shm for its semaphores, no processes left: analyse here
            log.warning("cannot start %d content processes (%s); analysing prompts in this process",
                        self.jobs, exc)
            self._ex = None
            return
        self._ex = ex

    def submit(self, items: list[ContentInput], cfg: ContentConfig) -> Pending:
        ex = self._ex
        if ex is None or not items:
            return _Done(analyse_batch(items, cfg))
        size = max(self.MIN_CHUNK, -(-len(items) // self.jobs))
        try:
            futures = [ex.submit(analyse_batch, items[i:i + size], cfg) for i in range(0, len(items), size)]
        except BrokenProcessPool:  # broken by an earlier batch's child
            return _Done(self._recover(items, cfg, ex))
        return Pending(self, ex, items, cfg, futures)

    def _recover(self, items: list[ContentInput], cfg: ContentConfig,
                 ex: ProcessPoolExecutor) -> list[ContentFeatures]:
        """The batch analysed here; the broken pool `ex` replaced (once, however many batches it broke)."""
        if self._ex is ex:
            log.warning("a content process died; analysing its batches in the driver, restarting the pool")
            self.restarts += 1
            ex.shutdown(wait=False, cancel_futures=True)
            self._start()
        return analyse_batch(items, cfg)

    def close(self) -> None:
        if self._ex is not None:
            self._ex.shutdown(wait=True, cancel_futures=True)
            self._ex = None

    def __enter__(self) -> ContentPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Done(Pending):
    def __init__(self, features: list[ContentFeatures]) -> None:
        self._features = features

    def result(self) -> list[ContentFeatures]:
        return self._features

    async def wait(self) -> list[ContentFeatures]:
        return self._features
