"""Backpressure: the worker's sustained rate is measured first (a batch produced at once, timed from its
first record consumed until all three stages have finished it), then a burst of ten times that rate is
produced for a few seconds. The backlog must grow, then drain completely through every stage without a
crash and with bounded memory."""

from __future__ import annotations

import time

import pytest

from tests.faults.harness import (
    FaultWorker,
    HarnessError,
    add_summary,
    keyed,
    new_uid,
    produce_all,
    producer,
    release,
    smoke_events,
    start_worker,
    wait_until,
)
from tests.integration.workerproc import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SKIP = 5500  # slices of the smoke day the other tests do not use
MEASURE_N = 3000
BURST_FACTOR = 10
BURST_S = 3.0
RSS_GROWTH_MAX_MB = 200
DRAIN_TIMEOUT_S = 240


def _sample(w: FaultWorker, samples: list, produced: int, t0: float) -> float:
    """Events finished through all three stages (see FaultWorker.finished); records a sample."""
    if not w.alive():
        raise HarnessError(f"worker died (exit {w.proc.returncode}): {w.tail()}")
    c = max(w.finished(), samples[-1][2] if samples else 0.0)
    samples.append((time.monotonic() - t0, produced, c, w.rss_kb()))
    return c


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    tmp = tmp_path_factory.mktemp("backpressure")
    pool = keyed(smoke_events(tmp, 20_000, skip=SKIP))
    measure, rest = pool[:MEASURE_N], pool[MEASURE_N:]
    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port())
    samples: list[tuple[float, int, float, int]] = []
    try:
        start_worker(w)
        rss_start = w.rss_kb()
        # 1. sustained rate: a batch produced at once, from its first consumed record until every
        #    stage has finished it (the worker takes its input in batches, so the end-to-end figure)
        produce_all(w.topic("requests"), measure)
        t0 = time.monotonic()
        wait_until(lambda: w.consumed() > 0, 60, 0.05, "first record consumed")
        t_first = time.monotonic()
        wait_until(lambda: _sample(w, samples, MEASURE_N, t0) >= MEASURE_N, 180, 0.1,
                   "measurement batch finished")
        rate = MEASURE_N / max(0.1, time.monotonic() - t_first)
        rss_base = w.rss_kb()

        # 2. the burst: ten times that rate, paced in 50 ms slices, for BURST_S seconds (or the pool)
        burst_rate = BURST_FACTOR * rate
        n_burst = min(len(rest), int(burst_rate * BURST_S))
        burst = rest[:n_burst]
        p = producer()
        t_burst = time.monotonic()
        sent = 0
        last_sample = 0.0
        try:
            while sent < n_burst:
                due = min(n_burst, int((time.monotonic() - t_burst) * burst_rate) + 1)
                for key, value in burst[sent:due]:
                    p.send(w.topic("requests"), key=key, value=value)
                sent = due
                if time.monotonic() - last_sample >= 0.5:
                    last_sample = time.monotonic()
                    _sample(w, samples, MEASURE_N + sent, t0)
                time.sleep(0.05)
            p.flush(60)
        finally:
            p.close(10)
        burst_took = time.monotonic() - t_burst
        total = MEASURE_N + n_burst
        t1 = time.monotonic()
        drained = wait_until(lambda: _sample(w, samples, total, t0) >= total, DRAIN_TIMEOUT_S, 0.5,
                             f"{total} records finished")
        drain_s = time.monotonic() - t_burst
        rss_end = w.rss_kb()
        counters = w.counters()
        code = w.stop()
    finally:
        release(w)
    burst_samples = [s for s in samples if s[0] >= t_burst - t0]
    timeline, next_t = [], 0.0
    for t, prod, c, _ in burst_samples:
        if t >= next_t:
            timeline.append(f"{t - (t_burst - t0):.0f}s:{int(prod - c)}")
            next_t = t + 3.0
    print("backlog over time (since the burst started): " + " ".join(timeline))
    peak_lag = max(int(prod - c) for _, prod, c, _ in burst_samples)
    peak_rss = max(s[3] for s in samples)
    drain_rate = n_burst / drain_s
    print(f"sustained {rate:.0f} events/s; burst {n_burst} events at {n_burst / burst_took:.0f}/s over "
          f"{burst_took:.1f}s (target {burst_rate:.0f}/s); peak backlog {peak_lag}; drained in {drain_s:.1f}s "
          f"({drain_rate:.0f}/s, waited {drained:.1f}s after the burst); RSS start {rss_start // 1024}, "
          f"base {rss_base // 1024}, peak {peak_rss // 1024}, end {rss_end // 1024} MiB")
    lost = total - int(counters["valid"]) - int(sum(counters["dead"].values()))
    add_summary("backpressure burst", f"sustained {rate:.0f}/s measured on {MEASURE_N}; burst {n_burst} at "
                f"{n_burst / burst_took:.0f}/s ({BURST_FACTOR}x) for {burst_took:.1f}s",
                "burst of 10x the sustained rate", total, lost,
                f"peak backlog {peak_lag}, drained in {drain_s:.0f}s at {drain_rate:.0f}/s; RSS {rss_base // 1024} -> "
                f"peak {peak_rss // 1024} MiB")
    return {"rate": rate, "n_burst": n_burst, "burst_took": burst_took, "peak_lag": peak_lag, "total": total,
            "counters": counters, "rss_base": rss_base, "peak_rss": peak_rss, "rss_end": rss_end, "exit": code,
            "log": w.tail(), "drain_rate": drain_rate, "t1": t1}


def test_the_burst_was_ten_times_the_sustained_rate_and_built_a_backlog(run):
    assert run["n_burst"] >= 3 * run["rate"] * 0.9, "the burst must be worth seconds of work"
    # the burst is paced at 10x; the producer shares the 2 cores with the worker and the broker, so what
    # it reaches varies (3,181/s against a sustained 668/s in one CI run): require 3x, a real overload
    assert run["n_burst"] / run["burst_took"] >= 3 * run["rate"], "could not produce the burst fast enough"
    assert run["peak_lag"] >= run["n_burst"] // 2


def test_backlog_drains_completely(run):
    c = run["counters"]
    assert c["consumed"] == run["total"]
    assert c["valid"] == run["total"]
    assert run["exit"] == 0, run["log"]


def test_drain_rate_does_not_collapse_under_backlog(run):
    """The burst drains at no less than 40 % of the sustained rate (the figure includes the burst's own
    seconds, and the machine is shared: a collapse, not noise, is what this catches)."""
    assert run["drain_rate"] >= 0.4 * run["rate"], (run["drain_rate"], run["rate"])


def test_memory_stays_bounded_under_backlog(run):
    assert (run["peak_rss"] - run["rss_base"]) / 1024 < RSS_GROWTH_MAX_MB
