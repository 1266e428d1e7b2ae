"""Many worlds, one verdict: simulate, replay and score N randomised worlds, then summarise the spread
(mean and worst world per figure, recall per campaign archetype and size, targets met or missed)."""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.evaluate.metrics import DEFINITIONS, GroupRow, Totals, evaluate, load_labels
from app.evaluate.table import duration_text
from app.sim import worlds
from app.sim.scenario import Scenario

CONVENTION = ("the project tunes on odd seeds and reports on even seeds it never looked at; "
              "worlds use seeds S, S+2, S+4, ... so they keep the parity of S")


# --- which world a seed gives -----------------------------------------------------------------------------
def scenario_for(seed: int, size: str = "small") -> Scenario:
    """The world a seed gives (the seam tests replace with a smaller scenario)."""
    return worlds.draw(seed, size)


def world_source(size: str) -> str:
    return f"app.sim.worlds.draw(seed, {size!r})"


def world_seeds(seed: int, n: int) -> list[int]:
    return [seed + 2 * i for i in range(n)]


def seed_convention(seeds: list[int]) -> str:
    kind = "even: reporting seeds" if seeds[0] % 2 == 0 else "odd: tuning seeds"
    shown = ", ".join(map(str, seeds[:6])) + (", ..." if len(seeds) > 6 else "")
    return f"seeds {shown} ({kind}; {CONVENTION})"


# --- one world ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorldJob:
    index: int  # 1-based, for progress
    total: int
    seed: int
    scenario: Scenario
    rules_path: str
    allowlist_path: str | None
    out_dir: str | None  # keep the world's files here; None: a temporary directory, removed afterwards
    progress: bool = True


@dataclass(slots=True)
class WorldResult:
    seed: int
    scenario: str
    events: int
    accounts: int
    decisions: int
    totals: Totals
    # GroupRow.as_dict() plus kind (benign), archetype (campaign) and size (the group's account count)
    groups: list[dict[str, Any]]
    seconds: float = 0.0
    dir: str | None = None

    def benign(self) -> list[dict[str, Any]]:
        return [g for g in self.groups if g["cls"] == "benign"]

    def campaigns(self) -> list[dict[str, Any]]:
        return [g for g in self.groups if g["cls"] == "campaign"]

    def as_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "scenario": self.scenario, "events": self.events, "accounts": self.accounts,
                "decisions": self.decisions, "totals": self.totals.as_dict(), "groups": self.groups,
                "worst_benign_group": worst_benign_group(self.benign()), "seconds": round(self.seconds, 3),
                "dir": self.dir}


def describe_groups(rows: list[GroupRow], labels: dict[str, dict[str, Any]], sc: Scenario) -> list[dict[str, Any]]:
    """Group rows with kind/archetype/size: from the labels when they carry them, else from the scenario's
    group spec, else the group name (kind/archetype) and the accounts counted in the labels (size)."""
    first: dict[str, dict[str, Any]] = {}
    for lab in labels.values():
        first.setdefault(lab["group"], lab)
    spec = {g["name"]: g for g in [*sc.populations, *sc.campaigns]}
    out = []
    for r in rows:
        lab, sp = first.get(r.group, {}), spec.get(r.group, {})
        d = r.as_dict()
        d["kind"] = (lab.get("kind") or sp.get("kind") or r.group) if r.cls == "benign" else None
        d["archetype"] = (lab.get("archetype") or sp.get("archetype") or r.group) if r.cls == "campaign" else None
        size = lab.get("size")
        d["size"] = int(size) if isinstance(size, int | float) and size > 0 else r.accounts
        out.append(d)
    return out


@contextmanager
def _world_dir(out_dir: str | None, seed: int) -> Iterator[Path]:
    if out_dir is not None:
        p = Path(out_dir)
        p.mkdir(parents=True, exist_ok=True)
        yield p
        return
    with tempfile.TemporaryDirectory(prefix=f"dg-world-{seed}-") as tmp:
        yield Path(tmp)


def _say(job: WorldJob, phase: str) -> None:
    if job.progress:
        print(f"evaluate: world {job.index}/{job.total} seed {job.seed}: {phase}", file=sys.stderr, flush=True)


def run_world(job: WorldJob, rules: Any = None) -> WorldResult:
    """Simulate, replay with the rules, score. Top-level so worker processes can run it."""
    from app.drivers.replay import replay
    from app.emit.sinks import JsonlSink
    from app.rules.load import load_rules
    from app.sim import generator

    started = time.perf_counter()
    if rules is None:
        rules = load_rules(job.rules_path, job.allowlist_path)
    with _world_dir(job.out_dir, job.seed) as d:
        _say(job, f"simulate ({job.scenario.name})")
        counts = generator.write(generator.build(job.scenario, job.seed), d)
        _say(job, f"replay {counts['events']:,} events")
        with JsonlSink(d) as sink:
            # the simulated day's end as the pipeline clock: the figures do not depend on the day they run
            stats = replay(d / "events.jsonl", rules, sink, now_ms=job.scenario.end_ms)
        _say(job, "score")
        ev = evaluate(d / "events.jsonl", d / "labels.json", d / "decisions.jsonl")
        groups = describe_groups(ev.groups, load_labels(d / "labels.json"), job.scenario)
    seconds = time.perf_counter() - started
    t = ev.totals
    _say(job, f"done in {seconds:.1f}s: recall {t.campaign_recall:.4f}, benign FPR {t.benign_fpr:.4f}")
    return WorldResult(job.seed, job.scenario.name, counts["events"], counts["accounts"], stats.decisions, t,
                       groups, seconds, job.out_dir)


def run_worlds(seeds: list[int], scenario_of: Callable[[int], Scenario], rules_path: Path,
               allowlist_path: Path | None = None, out: Path | None = None, jobs: int = 1,
               progress: bool = True) -> list[WorldResult]:
    """One result per seed, in seed order; `jobs` > 1 runs worlds in that many processes."""
    from app.rules.load import load_rules

    rules = load_rules(rules_path, allowlist_path)  # fails here, once, on a bad file
    work = [WorldJob(i, len(seeds), s, scenario_of(s), str(rules_path),
                     None if allowlist_path is None else str(allowlist_path),
                     None if out is None else str(out / f"world-{s}"), progress)
            for i, s in enumerate(seeds, 1)]
    if jobs <= 1 or len(work) == 1:
        return [run_world(w, rules) for w in work]
    with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
        return list(pool.map(run_world, work))


# --- the spread -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Measure:
    key: str  # a Totals field
    label: str
    higher_is_worse: bool


MEASURES = (
    Measure("campaign_recall", "recall", False),
    Measure("benign_fpr", "benign FPR", True),
    Measure("benign_blocked", "benign blocked", True),
    Measure("leak_ratio", "leak ratio", True),
    Measure("median_ttd_s", "median TTD", True),
)


@dataclass(slots=True)
class Spread:
    key: str
    label: str
    mean: float | None  # over the worlds with a value
    worst: float | None  # None with a worst_seed: a world where no campaign account was caught (TTD only)
    worst_seed: int | None
    worlds: int  # worlds with a value


def _value(w: WorldResult, m: Measure) -> float | None:
    v = getattr(w.totals, m.key)
    return None if v is None else float(v)


def spread(worlds: list[WorldResult], m: Measure) -> Spread:
    """Mean and worst world; ties go to the first seed. A median TTD with nothing caught has no value: it is
    left out of the mean and counts as the longest (worst) when the world had campaign accounts."""
    vals = [(w.seed, _value(w, m), w.totals.campaign_accounts) for w in worlds]
    present = [v for _, v, _ in vals if v is not None]
    worst_seed, worst_rank, worst = None, -math.inf, None
    for seed, v, campaign_accounts in vals:
        if v is None:
            if campaign_accounts == 0:
                continue
            rank = math.inf
        else:
            rank = v if m.higher_is_worse else -v
        if rank > worst_rank:
            worst_seed, worst_rank, worst = seed, rank, v
    return Spread(m.key, m.label, statistics.fmean(present) if present else None, worst, worst_seed, len(present))


def _worst(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    caught = [r for r in rows if r["caught"] > 0]
    return max(caught, key=lambda r: (r["caught"], r["rate"])) if caught else None


def worst_benign_group(groups: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The benign group with the most accounts caught (tie: highest rate); None when none was caught."""
    w = _worst([g for g in groups if g["cls"] == "benign"])
    return None if w is None else {"group": w["group"], "kind": w.get("kind"), "caught": w["caught"],
                                   "accounts": w["accounts"], "rate": w["rate"]}


def worst_benign_overall(worlds: list[WorldResult]) -> dict[str, Any] | None:
    """Benign groups summed by name over the worlds; the one with the most caught accounts (tie: rate)."""
    pooled: dict[str, dict[str, Any]] = {}
    for w in worlds:
        for g in w.benign():
            p = pooled.setdefault(g["group"], {"group": g["group"], "kind": g.get("kind"), "caught": 0,
                                               "accounts": 0, "worlds": 0})
            p["caught"] += g["caught"]
            p["accounts"] += g["accounts"]
            p["worlds"] += 1
    for p in pooled.values():
        p["rate"] = p["caught"] / p["accounts"] if p["accounts"] else 0.0
    return _worst(list(pooled.values()))


# campaign size buckets, by the accounts of the group that sent requests in the world (what a detector, or a
# labelled day from elsewhere, sees of a campaign: a scenario's declared size counts accounts that a short world
# ends before they send anything, and stays in the group's `size`); groups under 10 accounts are shown, not
# targeted
BUCKETS = ((1, 9, "<10"), (10, 29, "10-29"), (30, 99, "30-99"), (100, 299, "100-299"), (300, math.inf, "300+"))
UNTARGETED_BUCKETS = frozenset({"<10"})


def bucket_of(size: int) -> str:
    for lo, hi, name in BUCKETS:
        if lo <= size <= hi:
            return name
    return BUCKETS[0][2]


@dataclass(slots=True)
class BucketCell:
    archetype: str
    bucket: str
    mean: float  # of the groups' recalls, one sample per (world, group)
    min: float
    min_seed: int
    groups: int  # samples: (world, group) pairs
    accounts: int

    @property
    def targeted(self) -> bool:
        return self.bucket not in UNTARGETED_BUCKETS


def archetype_buckets(worlds: list[WorldResult]) -> list[BucketCell]:
    samples: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
    for w in worlds:
        for g in w.campaigns():
            if g["accounts"] == 0:
                continue
            n = g["accounts"]
            samples.setdefault((g["archetype"], bucket_of(n)), []).append((g["rate"], w.seed, n))
    order = {name: i for i, (_, _, name) in enumerate(BUCKETS)}
    cells = []
    for (arch, bucket), s in sorted(samples.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        lo = min(s, key=lambda x: x[0])
        cells.append(BucketCell(arch, bucket, statistics.fmean(x[0] for x in s), lo[0], lo[1], len(s),
                                sum(x[2] for x in s)))
    return cells


@dataclass(slots=True)
class MissRow:
    """One archetype's campaign accounts over all worlds, and those missed by why (metrics.DEFINITIONS)."""
    archetype: str
    accounts: int = 0
    caught: int = 0
    undetected: int = 0
    before_detection: int = 0
    not_reached: int = 0

    @property
    def missed(self) -> int:
        return self.accounts - self.caught


def misses(worlds: list[WorldResult]) -> list[MissRow]:
    """Per archetype, summed over worlds and groups: what was missed, and why."""
    rows: dict[str, MissRow] = {}
    for w in worlds:
        for g in w.campaigns():
            r = rows.setdefault(g["archetype"], MissRow(g["archetype"]))
            m = g.get("missed") or {}
            r.accounts += g["accounts"]
            r.caught += g["caught"]
            r.undetected += m.get("undetected", 0)
            r.before_detection += m.get("before_detection", 0)
            r.not_reached += m.get("not_reached", 0)
    return [rows[a] for a in sorted(rows)]


# --- targets (data) ---------------------------------------------------------------------------------------------
TARGETS: dict[str, float] = {
    "benign_blocked_max": 0,            # benign accounts blocked, in every world
    "benign_fpr_max": 0.001,            # benign false-positive rate, in every world
    "recall_mean_min": 0.95,            # campaign recall, mean over the worlds
    "recall_worst_min": 0.85,           # campaign recall, worst world
    "archetype_bucket_recall_min": 0.80,  # mean recall of every archetype in every targeted size bucket
    "leak_ratio_max": 0.10,             # in every world
    "median_ttd_s_max": 15 * 60,        # in every world
}


@dataclass(slots=True)
class TargetResult:
    key: str
    text: str
    status: str  # PASS | FAIL | N/A
    observed: str

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def _status(ok: bool | None) -> str:
    return "N/A" if ok is None else ("PASS" if ok else "FAIL")


def check_targets(worlds: list[WorldResult], spreads: dict[str, Spread], cells: list[BucketCell],
                  targets: dict[str, float] = TARGETS) -> list[TargetResult]:
    out: list[TargetResult] = []
    if not worlds:
        return out
    s = spreads
    if "benign_blocked_max" in targets:
        t, w = targets["benign_blocked_max"], s["benign_blocked"]
        out.append(TargetResult("benign_blocked_max", f"benign accounts blocked <= {t:g} in every world",
                                _status(w.worst is not None and w.worst <= t),
                                f"most {w.worst:g} (seed {w.worst_seed})" if w.worst is not None else "-"))
    if "benign_fpr_max" in targets:
        t, w = targets["benign_fpr_max"], s["benign_fpr"]
        out.append(TargetResult("benign_fpr_max", f"benign FPR <= {t:g} in every world",
                                _status(w.worst is not None and w.worst <= t),
                                f"highest {w.worst:.4f} (seed {w.worst_seed})" if w.worst is not None else "-"))
    if "recall_mean_min" in targets:
        t, w = targets["recall_mean_min"], s["campaign_recall"]
        out.append(TargetResult("recall_mean_min", f"campaign recall mean >= {t:g}",
                                _status(w.mean is not None and w.mean >= t),
                                f"mean {w.mean:.4f}" if w.mean is not None else "-"))
    if "recall_worst_min" in targets:
        t, w = targets["recall_worst_min"], s["campaign_recall"]
        out.append(TargetResult("recall_worst_min", f"campaign recall worst world >= {t:g}",
                                _status(w.worst is not None and w.worst >= t),
                                f"lowest {w.worst:.4f} (seed {w.worst_seed})" if w.worst is not None else "-"))
    if "archetype_bucket_recall_min" in targets:
        t = targets["archetype_bucket_recall_min"]
        text = f"every archetype >= {t:g} mean recall at every size bucket of 10+ accounts"
        cand = [c for c in cells if c.targeted]
        if not cand:
            out.append(TargetResult("archetype_bucket_recall_min", text, "N/A", "no campaign group of 10+ accounts"))
        else:
            low = min(cand, key=lambda c: c.mean)
            failing = sum(c.mean < t for c in cand)
            out.append(TargetResult("archetype_bucket_recall_min", text, _status(failing == 0),
                                    f"lowest {low.archetype} {low.bucket}: {low.mean:.4f} "
                                    f"({failing} of {len(cand)} cells below)"))
    if "leak_ratio_max" in targets:
        t, w = targets["leak_ratio_max"], s["leak_ratio"]
        out.append(TargetResult("leak_ratio_max", f"leak ratio <= {t:g} in every world",
                                _status(w.worst is not None and w.worst <= t),
                                f"highest {w.worst:.4f} (seed {w.worst_seed})" if w.worst is not None else "-"))
    if "median_ttd_s_max" in targets:
        t, w = targets["median_ttd_s_max"], s["median_ttd_s"]
        text = f"median time to detect <= {duration_text(t)} in every world"
        if w.worst_seed is None:
            out.append(TargetResult("median_ttd_s_max", text, "N/A", "no world had campaign accounts"))
        elif w.worst is None:
            out.append(TargetResult("median_ttd_s_max", text, "FAIL",
                                    f"nothing caught in seed {w.worst_seed}"))
        else:
            out.append(TargetResult("median_ttd_s_max", text, _status(w.worst <= t),
                                    f"longest {duration_text(w.worst)} (seed {w.worst_seed})"))
    return out


# --- everything together ------------------------------------------------------------------------------------------
SWEEP_DEFINITIONS = {
    **DEFINITIONS,
    "world": "one simulated scenario for one seed, replayed through the detector and scored on its own",
    "mean": "arithmetic mean over the worlds of each world's figure (a world with nothing caught has no "
            "median TTD and is left out of that mean)",
    "worst": "the world with the lowest recall, or the highest FPR, benign blocks, leak ratio or median TTD "
             "(nothing caught counts as the longest TTD); ties go to the first seed",
    "worst_benign_group": "the benign group with the most accounts caught (tie: highest rate); across worlds, "
                          "groups are summed by name",
    "missed_by_archetype": "campaign accounts per archetype over all worlds, those not caught split by why: "
                           "undetected (no enforcing decision ever named its group), before_detection (its last "
                           "event came before its group's first enforcing decision), not_reached (active after it)",
    "archetype_bucket": "campaign groups by archetype and account count (10-29, 30-99, 100-299, 300+; under 10 "
                        "shown, not targeted): mean and min of the groups' recalls, one sample per world and group",
}


@dataclass(slots=True)
class Sweep:
    seeds: list[int]
    size: str
    source: str
    rules: str
    worlds: list[WorldResult]
    spreads: dict[str, Spread] = field(default_factory=dict)
    worst_benign: dict[str, Any] | None = None
    cells: list[BucketCell] = field(default_factory=list)
    targets: list[TargetResult] = field(default_factory=list)
    target_values: dict[str, float] = field(default_factory=dict)
    misses: list[MissRow] = field(default_factory=list)

    @property
    def convention(self) -> str:
        return seed_convention(self.seeds)

    @property
    def failed(self) -> bool:
        return any(t.failed for t in self.targets)

    @property
    def verdict(self) -> str:
        missed = sum(t.failed for t in self.targets)
        return f"{missed} of {len(self.targets)} targets missed" if missed else "all targets met"

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.seeds, "convention": self.convention, "world_size": self.size, "worlds_from": self.source,
            "rules": self.rules,
            "worlds": [w.as_dict() for w in self.worlds],
            "summary": {"figures": {k: asdict(v) for k, v in self.spreads.items()},
                        "worst_benign_group": self.worst_benign,
                        "archetype_buckets": [{**asdict(c), "targeted": c.targeted} for c in self.cells],
                        "missed_by_archetype": [{**asdict(r), "missed": r.missed} for r in self.misses]},
            "targets": {"values": self.target_values, "results": [asdict(t) for t in self.targets],
                        "all_passed": not self.failed},
            "definitions": SWEEP_DEFINITIONS,
        }


def score(worlds: list[WorldResult], seeds: list[int], size: str = "small", source: str = "", rules: str = "",
          targets: dict[str, float] = TARGETS) -> Sweep:
    spreads = {m.key: spread(worlds, m) for m in MEASURES}
    cells = archetype_buckets(worlds)
    return Sweep(seeds, size, source, rules, worlds, spreads, worst_benign_overall(worlds), cells,
                 check_targets(worlds, spreads, cells, targets), dict(targets), misses(worlds))
