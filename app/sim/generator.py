"""Runs a scenario: plans every group, merges their time-ordered streams, writes or hands out the events.

Output is a pure function of (scenario, seed): the same inputs give byte-identical `events.jsonl` and
`labels.json`. Ties in time are broken by group order, then by each group's own plan order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.sim.campaigns import Campaign
from app.sim.groups import Group, World
from app.sim.populations import BenignPopulation
from app.sim.scenario import Scenario
from app.sim.traps import TRAP_KINDS, TrapPopulation


@dataclass(slots=True)
class Simulation:
    scenario: Scenario
    seed: int
    groups: list[Group]
    total: int  # events planned

    def events(self) -> Iterator[tuple[int, str, bytes]]:
        """(ts_ms, account_id, JSON bytes) in time order. Single use."""
        merged = heapq.merge(*(g.events() for g in self.groups), key=lambda e: (e[0], e[1]))
        for ts, _, account_id, data in merged:
            yield ts, account_id, data

    def labels(self) -> dict[str, dict[str, Any]]:
        """Ground truth for every account that sends at least one event (plus idle ones, harmlessly)."""
        out: dict[str, dict[str, Any]] = {}
        for g in self.groups:
            out.update(g.labels())
        return out


def build(scenario: Scenario, seed: int) -> Simulation:
    world = World(scenario, seed)
    groups: list[Group] = []
    for spec in scenario.populations:
        cls = TrapPopulation if spec["kind"] in TRAP_KINDS else BenignPopulation
        groups.append(cls(spec, world, len(groups)))
    for spec in scenario.campaigns:
        groups.append(Campaign(spec, world, len(groups)))
    total = sum(g.plan() for g in groups)
    return Simulation(scenario, seed, groups, total)


def write(sim: Simulation, out_dir: Path, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Write `events.jsonl` and `labels.json`; labels cover exactly the accounts that appear in events."""
    out_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    n = 0
    with (out_dir / "events.jsonl").open("wb", buffering=1 << 20) as f:
        chunk: list[bytes] = []
        for _, account_id, data in sim.events():
            seen.add(account_id)
            chunk.append(data)
            n += 1
            if len(chunk) >= 4096:
                chunk.append(b"")
                f.write(b"\n".join(chunk))
                chunk = []
                if progress is not None:
                    progress(n, sim.total)
        if chunk:
            chunk.append(b"")
            f.write(b"\n".join(chunk))
    n_labels = write_labels(sim, out_dir, seen)
    if progress is not None:
        progress(n, sim.total)
    return {"events": n, "accounts": n_labels}


def write_labels(sim: Simulation, out_dir: Path, seen: set[str]) -> int:
    """`labels.json` for the accounts in `seen` (those that sent at least one event)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = {k: v for k, v in sim.labels().items() if k in seen}
    (out_dir / "labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return len(labels)
