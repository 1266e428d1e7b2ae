"""Where replay's time goes: the core's cost per event, stage by stage, next to what orjson alone costs
on the same records (the baseline of the replay ratio), so a bench run shows how far the engine is from
a target ratio and which stage holds the time.

The stages run over the records a chunk at a time, each stage over the whole chunk before the next one:
the account stage reads no fingerprint or cluster state and the fingerprint stage no cluster state, so
this is the work `Engine.process` does event by event, with one timer around each stage instead of
around each event (tests/bench/test_costs.py checks that the records out are the same)."""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import orjson

from app.drivers.replay import GC_THRESHOLD, iter_lines
from app.engine import Engine, Output
from app.features.content import analyse_batch, warm_up
from app.ingest.parse import Rejection, parse_record
from app.rules.model import Rules

STAGES = ("parse", "content", "accounts", "fingerprints", "clusters")
CHUNK = 512  # records per pass, as replay hands them to its content pool


@dataclass(slots=True)
class Costs:
    records: int = 0
    events: int = 0  # records that passed validation
    observations: int = 0
    links: int = 0
    new_edges: int = 0  # links that are the first of their (account, value) edge
    parse_only_s: float = 0.0  # orjson.loads of every record, nothing else
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    out: Output = field(default_factory=Output)  # alerts and decisions (kept only when asked for)

    def us_per_event(self, stage: str) -> float:
        return 1e6 * self.seconds[stage] / max(1, self.events)

    @property
    def us_per_link(self) -> float:
        """The cluster stage's cost per link it takes in."""
        return 1e6 * self.seconds["clusters"] / max(1, self.links)

    @property
    def cluster_ceiling_eps(self) -> float:
        """Gateway events/s the single cluster partition can absorb: its cost per link inverted, divided by
        the links per gateway event (= 1 / its cost per gateway event)."""
        links_per_event = self.links / max(1, self.events)
        return 1e6 / (self.us_per_link * links_per_event) if self.links else float("inf")

    @property
    def core_us(self) -> float:
        """Everything replay does per event, parse and validation included."""
        return sum(map(self.us_per_event, STAGES))

    @property
    def parse_only_us(self) -> float:
        return 1e6 * self.parse_only_s / max(1, self.records)

    def budget_us(self, ratio: float) -> float:
        """Time per event the whole engine may take for replay to reach `ratio` of parse-only."""
        return self.parse_only_us / ratio

    def as_dict(self) -> dict:
        """The figures as plain data, for the bench's results (app/bench/markdown.py)."""
        return {"records": self.records, "events": self.events, "observations": self.observations,
                "links": self.links, "new_edges": self.new_edges, "parse_only_us": self.parse_only_us,
                "us": {s: self.us_per_event(s) for s in STAGES}, "core_us": self.core_us,
                "us_per_link": self.us_per_link,
                "cluster_ceiling_eps": self.cluster_ceiling_eps if self.links else None}


def stage_costs(events: Path, rules: Rules, limit: int, clock_ms: int, keep: bool = False) -> Costs:
    """The first `limit` records of `events` through a fresh engine, every stage timed. Cue regexes are
    compiled first (a worker does so at start; replay pays ~4 s on its first prompts), so the figures
    are the steady state. `keep` collects the alerts and decisions in `Costs.out`."""
    raws = [raw for _, raw in islice(iter_lines(events), limit)]
    c = Costs(records=len(raws))
    warm_up(compile_all=True)
    engine = Engine(rules)
    accounts, fingerprints, clusters = engine.accounts, engine.fingerprints, engine.clusters
    seconds = c.seconds
    pc = time.perf_counter
    threshold = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLD)
    edges: set[tuple[str, str]] = set()  # (account, value) pairs linked so far, counted outside the timings
    try:
        loads, bad = orjson.loads, orjson.JSONDecodeError
        t0 = pc()
        for raw in raws:
            # a malformed record costs the baseline its failed parse, as it costs replay; try is free when
            # nothing is raised, contextlib.suppress would build a context manager per record in the timing
            try:  # noqa: SIM105
                loads(raw)
            except bad:
                pass
        c.parse_only_s = pc() - t0
        for start in range(0, len(raws), CHUNK):
            t0 = pc()
            evs = [ev for ev in (parse_record(raw, clock_ms) for raw in raws[start:start + CHUNK])
                   if not isinstance(ev, Rejection)]
            t1 = pc()
            features = analyse_batch([accounts.content_input(ev) for ev in evs], accounts.content_cfg)
            t2 = pc()
            out = Output()
            for ev, cf in zip(evs, features, strict=True):
                accounts.process(ev, out, cf)
            t3 = pc()
            for obs in out.observations:
                fingerprints.process(obs, out)
            t4 = pc()
            for link in out.links:
                clusters.process(link, out)
            t5 = pc()
            for stage, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                seconds[stage] += dt
            c.events += len(evs)
            c.observations += len(out.observations)
            c.links += len(out.links)
            for link in out.links:
                edge = (link.summary.account_id, link.fp)
                if edge not in edges:
                    edges.add(edge)
                    c.new_edges += 1
            if keep:
                c.out.alerts += out.alerts
                c.out.decisions += out.decisions
    finally:
        gc.set_threshold(*threshold)
    return c


def describe(c: Costs, target_ratio: float, target_core_us: float | None = None) -> list[str]:
    """The bench's lines for `c`: per-stage microseconds per event, the parse-only baseline, the target
    cost per event (`target_core_us`, when given) and the budget a target replay ratio leaves."""
    if not c.events:
        return [f"cost      no valid event in the first {c.records:,} records: nothing to cost"]
    per = {s: c.us_per_event(s) for s in STAGES}
    obs, links = c.observations / max(1, c.events), c.links / max(1, c.events)
    target = ""
    if target_core_us:
        target = (f"; target <= {target_core_us:g} us per event: "
                  + ("met" if c.core_us <= target_core_us else f"not met, x{c.core_us / target_core_us:.2f} over"))
    return [
        f"cost      first {c.records:,} records, one process, steady state (regexes compiled), per event: "
        f"parse+validate {per['parse']:.1f} us, content {per['content']:.1f} us, accounts {per['accounts']:.1f} us, "
        f"fingerprints {per['fingerprints']:.1f} us ({obs:.2f} observations), clusters {per['clusters']:.1f} us "
        f"({links:.2f} links); all {c.core_us:.1f} us" + target,
        f"cost      orjson parse-only {c.parse_only_us:.2f} us per record: the engine costs "
        f"x{c.core_us / c.parse_only_us:.0f} of it (ratio {c.parse_only_us / c.core_us:.3f}); "
        f"a replay ratio of {target_ratio:g} leaves {c.budget_us(target_ratio):.1f} us per event for all five stages, "
        + (f"x{c.core_us / c.budget_us(target_ratio):.1f} less than now" if c.core_us > c.budget_us(target_ratio)
           else "more than they take"),
        cluster_line(c),
    ]


def cluster_line(c: Costs) -> str:
    """The cluster stage's input per gateway event and the input rate its one partition can follow."""
    obs, links = c.observations / max(1, c.events), c.links / max(1, c.events)
    head = (f"cluster   per gateway event {obs:.3f} observations to the fingerprint stage, {links:.3f} links to the "
            f"cluster stage ({c.new_edges / max(1, c.events):.3f} of them a new (account, value) edge)")
    if not c.links:
        return head + "; no link: nothing to size the cluster stage from"
    return (head + f"; {c.us_per_link:.1f} us per link: its one partition absorbs at most "
            f"~{c.cluster_ceiling_eps:,.0f} gateway events/s")
