"""Backpressure: a burst of ten times the sustained load is absorbed. The worker's capacity is measured
first (a batch produced at once, timed from its first record consumed until all three stages have
finished it); the sustained load is then offered at a quarter of that capacity, at most SUSTAINED_MAX,
which the worker keeps up with; the burst at ten times the sustained load (2.5 x capacity, less when the
cap applies) for a few seconds builds a backlog;
the sustained load goes on until the backlog has drained. Nothing may be lost, the worker must not
crash, memory must stay bounded, and the drain must not collapse.

The load goes through Kafka's own Java ConsoleProducer (app/bench/feed.py): a Python producer costs
~100 us of CPU per record and, on two shared cores, could not offer 2.5 x what the worker does."""

from __future__ import annotations

import time

import pytest

from app.bench.feed import ConsoleFeed
from tests.conftest import BOOTSTRAP
from tests.faults.harness import (
    FaultWorker,
    HarnessError,
    add_summary,
    end_offsets,
    keyed,
    new_uid,
    release,
    scenario_events,
    start_worker,
    wait_until,
)
from tests.integration.workerproc import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MEASURE_N = 3000
SUSTAINED_SHARE = 0.25      # offered sustained load, as a share of the measured capacity ...
# ... and at most this many events/s: the run's records, and the state the worker builds from them, grow with
# the load, and the RSS bound below is absolute. At a moment the shared machine measured 3,588 events/s the
# run sent 42,910 records instead of ~18,000-29,000 (1,684-2,431 events/s) and the RSS grew 225 MiB
# instead of 101-120; the burst still builds a backlog of more than a second of work (asserted)
SUSTAINED_MAX = 600.0
SUSTAIN_S = 5.0
BURST_FACTOR = 10
BURST_S = 3.0
RSS_GROWTH_MAX_MB = 200
DRAIN_TIMEOUT_S = 240


class Run:
    """Samples of (seconds since t0, produced, taken by the account stage, RSS kB, records waiting in the
    internal topics), phase marks. The backlog is the input's: produced and not yet through the account
    stage (the consumer lag on the requests topic); the internal topics' lag is kept beside it."""

    def __init__(self, w: FaultWorker) -> None:
        self.w = w
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, int, float, int]] = []
        self.produced = 0
        self.marks: dict[str, float] = {}

    def sample(self, produced: int | None = None) -> float:
        if produced is not None:
            self.produced = produced
        if not self.w.alive():
            raise HarnessError(f"worker died (exit {self.w.proc.returncode}): {self.w.tail()}")
        c, obs_lag, link_lag = self.w.stages()
        self.samples.append((time.monotonic() - self.t0, self.produced, c, self.w.rss_kb(), obs_lag + link_lag))
        return c

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic() - self.t0

    def backlog(self, start: str, end: str | None = None) -> list[int]:
        lo, hi = self.marks[start], self.marks[end] if end else float("inf")
        return [int(p - c) for t, p, c, _, _ in self.samples if lo <= t <= hi]


def _paced(feed: ConsoleFeed, run: Run, records: list, rate: float, base: int) -> float:
    last = [0.0]

    def every(done: int) -> None:
        if time.monotonic() - last[0] >= 0.25:
            last[0] = time.monotonic()
            run.sample(base + done)
        else:
            run.produced = base + done

    return feed.paced(records, rate, every=every)


def _in_topic(topic: str) -> int:
    return sum(end_offsets([topic]).values())


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    tmp = tmp_path_factory.mktemp("backpressure")
    pool = keyed(scenario_events(tmp, "hydra", 3, 80_000))
    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port())
    try:
        start_worker(w)
        # capacity is measured past start-up: the worker compiles its cue regexes between its first batches
        wait_until(lambda: 'phase="regexes"' in w.metrics(), 120, 0.2, "start-up done")
        topic = w.topic("requests")
        rss_start = w.rss_kb()
        r = Run(w)
        with ConsoleFeed(topic, BOOTSTRAP) as feed:
            # 1. capacity: a batch produced at once, from its first consumed record until every stage has
            #    finished it (the worker takes its input in batches, so the end-to-end figure)
            measure, pos = pool[:MEASURE_N], MEASURE_N
            feed.send(measure)
            r.produced = MEASURE_N
            wait_until(lambda: w.consumed() > 0, 60, 0.05, "first record consumed")
            t_first = time.monotonic()
            wait_until(lambda: r.sample() >= MEASURE_N and w.finished() >= MEASURE_N, 180, 0.1,
                       "measurement batch finished")
            capacity = MEASURE_N / max(0.1, time.monotonic() - t_first)
            rss_base = w.rss_kb()
            rate = min(SUSTAINED_SHARE * capacity, SUSTAINED_MAX)
            burst_rate = BURST_FACTOR * rate
            n_sustain, n_burst = int(rate * SUSTAIN_S), int(burst_rate * BURST_S)
            if pos + n_sustain + n_burst + int(rate * 30) > len(pool):
                raise HarnessError(f"pool of {len(pool)} events too small for a capacity of {capacity:.0f}/s")

            # 2. the sustained load
            r.mark("sustain")
            _paced(feed, r, pool[pos:pos + n_sustain], rate, pos)
            pos += n_sustain
            r.sample()
            r.mark("burst")
            # 3. the burst, ten times the sustained load
            before = _in_topic(topic)
            t_burst = time.monotonic()
            _paced(feed, r, pool[pos:pos + n_burst], burst_rate, pos)
            pos += n_burst
            wait_until(lambda: _in_topic(topic) >= before + n_burst, 60, 0.05, "burst in the topic")
            burst_took = time.monotonic() - t_burst
            r.mark("after")
            # 4. the sustained load again until the backlog has drained (or the pool or the time runs out)
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            caught_up = None
            step = max(1, int(rate * 0.5))
            while pos < len(pool) and time.monotonic() < deadline:
                _paced(feed, r, pool[pos:pos + step], rate, pos)
                pos += step
                if r.produced - r.sample() <= step:
                    caught_up = time.monotonic() - t_burst
                    break
        total = pos
        wait_until(lambda: r.sample(total) >= total and w.finished() >= total, DRAIN_TIMEOUT_S, 0.5,
                   f"{total} records finished through every stage")
        r.mark("end")
        rss_end = w.rss_kb()
        counters = w.counters()
        code = w.stop()
    finally:
        release(w)
    timeline, next_t = [], r.marks["burst"]
    for t, prod, c, _, _ in r.samples:
        if t >= next_t:
            timeline.append(f"{t - r.marks['burst']:.0f}s:{int(prod - c)}")
            next_t = t + 2.0
    peak_lag = max(r.backlog("burst"))
    sustain_lag = max(r.backlog("sustain", "burst"))
    peak_rss = max(s[3] for s in r.samples)
    peak_internal = int(max(s[4] for s in r.samples))
    drain = peak_lag / caught_up if caught_up else 0.0
    print("backlog over time (since the burst started): " + " ".join(timeline))
    print(f"capacity {capacity:.0f} events/s; sustained load {rate:.0f}/s (max backlog {sustain_lag}); burst "
          f"{n_burst} events at {n_burst / burst_took:.0f}/s over {burst_took:.1f}s (target {burst_rate:.0f}/s); "
          f"peak backlog {peak_lag} (internal topics {peak_internal}); caught up "
          f"{caught_up or float('nan'):.1f}s after the burst began under the sustained load; "
          f"RSS start {rss_start // 1024}, base {rss_base // 1024}, peak {peak_rss // 1024}, "
          f"end {rss_end // 1024} MiB")
    lost = total - int(counters["valid"]) - int(sum(counters["dead"].values()))
    add_summary("backpressure burst", f"capacity {capacity:.0f}/s; sustained {rate:.0f}/s; burst {n_burst} at "
                f"{n_burst / burst_took:.0f}/s ({BURST_FACTOR}x) for {burst_took:.1f}s",
                f"burst of 10x the sustained load ({BURST_FACTOR * rate / capacity:.1f}x capacity)", total, lost,
                f"peak backlog {peak_lag}, caught up {caught_up or float('nan'):.0f}s after the burst; RSS "
                f"{rss_base // 1024} -> peak {peak_rss // 1024} MiB")
    return {"capacity": capacity, "rate": rate, "n_burst": n_burst, "burst_took": burst_took,
            "peak_lag": peak_lag, "sustain_lag": sustain_lag, "total": total, "counters": counters,
            "rss_base": rss_base, "peak_rss": peak_rss, "rss_end": rss_end, "exit": code, "log": w.tail(),
            "caught_up": caught_up, "drain": drain}


def test_the_burst_was_ten_times_the_sustained_load(run):
    # paced in 20 ms slices; measured from the first write to the last record in the topic
    assert run["n_burst"] / run["burst_took"] >= 0.8 * BURST_FACTOR * run["rate"]


def test_the_worker_kept_up_with_the_sustained_load(run):
    assert run["sustain_lag"] <= max(3 * run["rate"], 1000), run["sustain_lag"]


def test_the_burst_built_a_backlog_beyond_a_second_of_work(run):
    assert run["peak_lag"] >= run["capacity"], (run["peak_lag"], run["capacity"])


def test_backlog_drains_completely_and_nothing_is_lost(run):
    c = run["counters"]
    assert run["caught_up"] is not None, "the backlog did not drain under the sustained load"
    assert c["consumed"] == run["total"]
    assert c["valid"] + sum(c["dead"].values()) == run["total"]
    assert run["exit"] == 0, run["log"]


def test_drain_rate_does_not_collapse_under_backlog(run):
    """The backlog is worked off, on top of the sustained load, at no less than a fifth of the spare
    capacity (capacity - sustained load; the figure includes the burst's own seconds, and the machine
    is shared: a collapse, not noise, is what this catches)."""
    assert run["drain"] >= 0.2 * (run["capacity"] - run["rate"]), (run["drain"], run["capacity"])


def test_memory_stays_bounded_under_backlog(run):
    assert (run["peak_rss"] - run["rss_base"]) / 1024 < RSS_GROWTH_MAX_MB
