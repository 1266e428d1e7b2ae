"""Randomised worlds: knobs inside their documented ranges, deterministic per seed, every archetype and trap
present, world.yaml reproducing the same bytes, the ranges table in docs/simulator.md current."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from app.cli import main
from app.evaluate.metrics import load_labels
from app.sim import generator, scenario, worlds
from app.sim.worlds import RANGES, SIZES, BySize, range_of

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "simulator.md"
TRAPS = {"research_lab", "classroom", "hackathon", "onboarding_wave", "security_research", "eval_vendor",
         "agent_launch", "vpn_team", "hosted_agent", "travellers", "online_course"}
ALL_KINDS = TRAPS | {"casual_consumers", "developers_coding_agents", "enterprise_batch", "university_eval",
                     "llm_judges", "routers_aggregators", "journalists_sensitive", "chinese_language_users"}
ARCHETYPES = {"reasoning_harvester", "agentic_harvester", "release_tracker", "hydra_reseller", "stealth"}
WORLD_SEEDS = (1, 2, 3)


def _digest(d: Path) -> tuple[str, str]:
    return (hashlib.sha256((d / "events.jsonl").read_bytes()).hexdigest(),
            hashlib.sha256((d / "labels.json").read_bytes()).hexdigest())


# --- drawing: cheap, over many seeds ------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_every_drawn_knob_is_inside_its_documented_range(size: str) -> None:
    for seed in range(150):
        knobs = worlds.draw_knobs(seed, size)
        assert knobs.keys() == RANGES.keys()
        for key, value in knobs.items():
            assert range_of(key, size).holds(value), f"seed {seed} {size}: {key} = {value!r}"


@pytest.mark.parametrize("size", SIZES)
def test_every_drawn_world_is_a_valid_scenario(size: str) -> None:
    # world 83 (small) once drew a reasoning harvester's last shift ending at 6.98 h in a 6.9788 h window, and
    # evaluate stopped on it; every world a seed can ask for validates like a scenario file
    for seed in range(400):
        sc = worlds.draw(seed, size)
        for c in sc.campaigns:
            assert all(0 <= a < b <= sc.duration_hours for a, b in c.get("shifts", [])), (seed, c["name"])


def test_ranges_span_their_width_over_seeds() -> None:
    # a range is drawn across, not stuck at one end: numeric knobs reach both halves of their range
    draws = [worlds.draw_knobs(seed, "day") for seed in range(200)]
    for key, spec in RANGES.items():
        spec = spec.at("day") if isinstance(spec, BySize) else spec
        if isinstance(spec, worlds.Num) and spec.hi > spec.lo:
            mid = (spec.lo + spec.hi) / 2 if not spec.log else (spec.lo * spec.hi) ** 0.5
            values = [d[key] for d in draws]
            assert min(values) < mid < max(values), key
        elif isinstance(spec, worlds.Choice):
            assert {d[key] for d in draws} == set(spec.options), key


def test_scenario_values_follow_the_knobs() -> None:
    for seed in range(60):
        for size in SIZES:
            k = worlds.draw_knobs(seed, size)
            sc = worlds.draw(seed, size)
            assert sc.seed == seed
            assert sc.duration_hours == k["world.duration_hours"]
            assert 0.2 * sc.duration_hours - 0.01 <= sc.release_hours <= 0.6 * sc.duration_hours + 0.01
            camps = {c["name"]: c for c in sc.campaigns}
            assert {c["archetype"] for c in sc.campaigns} == ARCHETYPES
            assert ("trace_coercion" in camps) == k["campaign.trace_variant.present"]
            for name, c in camps.items():
                a = "trace_variant" if name == "trace_coercion" else c["archetype"]
                assert 10 <= c["accounts"] <= 500 and c["accounts"] == k[f"campaign.{a}.accounts"]
                key = f"campaign.{a}.requests_per_account_hour"
                spec, drawn = RANGES[key], k[key]
                rate, live = c["requests_per_account_hour"], c.get("live_accounts", c["accounts"])
                assert spec.lo <= rate <= spec.hi
                assert live * rate <= worlds.CAMPAIGN_MAX_REQUESTS_PER_HOUR + 1
                if rate < drawn:  # lowered to the campaign's budget
                    assert live * rate > worlds.CAMPAIGN_MAX_REQUESTS_PER_HOUR - 1
                elif rate > drawn:  # raised so that a short window still has the campaign in it
                    assert live * rate * sc.duration_hours <= worlds.CAMPAIGN_MIN_REQUESTS / 0.1 + 1
                assert 0 <= c["system_prompts"] <= 3
            hydra = camps["hydra_reseller"]
            assert 3 <= hydra["live_accounts"] <= hydra["accounts"]
            pops = {p["kind"]: p for p in sc.populations}
            assert pops.keys() == ALL_KINDS
            lab = pops["research_lab"]
            assert 1 <= lab["labs"] <= 4 and 15 <= lab["accounts"] / lab["labs"] <= 40
            for kind in ("classroom", "hackathon", "onboarding_wave"):
                assert 20 <= pops[kind]["accounts"] <= 80
            assert 0 <= pops["onboarding_wave"]["org_per_account"] <= 1
            for kind in ("classroom", "hackathon", "online_course"):
                assert 0 <= pops[kind]["cohort"]["at_hours"] < sc.duration_hours
            course = pops["online_course"]
            assert 1 <= course["labs"] <= 5 and 20 <= course["accounts"] <= 120
            assert 0.2 <= course["cohort"]["template_families"]["bench_cot_trace"] <= 2


def test_same_seed_same_world_other_seed_other_knobs() -> None:
    assert worlds.draw_doc(5, "small") == worlds.draw_doc(5, "small")
    a, b = worlds.draw_knobs(5, "small"), worlds.draw_knobs(6, "small")
    varying = [k for k, spec in RANGES.items() if not (isinstance(spec, BySize) and spec.at("small").lo
                                                         == spec.at("small").hi)]
    differ = sum(a[k] != b[k] for k in varying)
    assert differ / len(varying) > 0.7, differ


def test_a_world_keeps_its_campaigns_and_traps_across_sizes() -> None:
    small, day = worlds.draw_doc(9, "small"), worlds.draw_doc(9, "day")
    # shifts are laid over the window, whose length is the size's; a rate may be raised in a short window
    strip = ("shifts", "requests_per_account_hour")
    assert [{k: v for k, v in c.items() if k not in strip} for c in small["campaigns"]] == \
        [{k: v for k, v in c.items() if k not in strip} for c in day["campaigns"]]
    for p_small, p_day in zip(small["populations"], day["populations"], strict=True):
        if p_small["kind"] in TRAPS:
            assert p_small["accounts"] == p_day["accounts"]
    casual = [next(p for p in d["populations"] if p["kind"] == "casual_consumers")["accounts"] for d in (small, day)]
    assert casual[0] < casual[1]


def test_every_group_sends_traffic_in_many_small_worlds() -> None:
    # planning only (no rendering): every campaign and population of six more worlds has requests in its window
    for seed in range(10, 16):
        sim = generator.build(worlds.draw(seed, "small"), seed)
        planned = {g.name: len(g._planned) for g in sim.groups}
        assert min(planned.values()) >= 5, (seed, min(planned.items(), key=lambda kv: kv[1]))
        assert 15_000 <= sim.total <= 60_000, (seed, sim.total)


def test_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="small"):
        worlds.draw(1, "huge")


def test_doc_lists_every_range_key_and_its_range() -> None:
    text = DOC.read_text(encoding="utf-8")
    m = re.search(r"<!-- ranges:begin -->\n(.*?)<!-- ranges:end -->", text, re.S)
    assert m, "docs/simulator.md has no ranges table between its markers"
    assert m.group(1) == worlds.table(), "stale ranges table: regenerate with python -m app.sim.worlds --table"
    for key in RANGES:
        assert f"| `{key}` |" in m.group(1)


# --- generated worlds: three small ones, written once -------------------------------------------------------
@pytest.fixture(scope="module")
def small_worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    out = {}
    for seed in WORLD_SEEDS:
        d = tmp_path_factory.mktemp(f"world{seed}")
        assert main(["simulate", "--world", str(seed), "--out", str(d)]) == 0
        out[seed] = d
    return out


def test_every_world_has_every_archetype_and_every_trap(small_worlds: dict[int, Path]) -> None:
    for seed, d in small_worlds.items():
        labels = load_labels(d / "labels.json")  # the evaluator's reader accepts the file
        kinds = {v["kind"] for v in labels.values() if v["cls"] == "benign"}
        assert kinds == ALL_KINDS, (seed, ALL_KINDS - kinds)
        assert {v["archetype"] for v in labels.values() if v["cls"] == "campaign"} == ARCHETYPES
        sc = scenario.load(str(d / "world.yaml"))
        sizes = {g["name"]: g["accounts"] for g in sc.populations + sc.campaigns}
        assert all(v["size"] == sizes[v["group"]] for v in labels.values())
        assert any(v.get("replacement") for v in labels.values())
        n_events = (d / "events.jsonl").read_bytes().count(b"\n")
        assert 12_000 <= n_events <= 60_000, (seed, n_events)
        assert 1_000 <= len(labels) <= 6_000, (seed, len(labels))


def test_worlds_leak_no_labels_and_traps_keep_their_structure(small_worlds: dict[int, Path]) -> None:
    for d in small_worlds.values():
        labels = orjson.loads((d / "labels.json").read_bytes())
        names = {v["group"] for v in labels.values()}
        ips: dict[tuple[str, int], set[str]] = defaultdict(set)
        cards: dict[str, set[str]] = defaultdict(set)
        with (d / "events.jsonl").open("rb") as f:
            for line in f:
                low = line.decode().lower()
                assert not any(n in low for n in names), line[:200]
                e = orjson.loads(line)
                lab = labels[e["account_id"]]
                if lab.get("kind") in ("research_lab", "classroom", "hackathon"):
                    ips[lab["kind"], lab["site"]].add(e["client"]["ip"])
                if lab.get("kind") == "onboarding_wave":
                    cards["onboarding"].add(e["account"].get("payment_fp"))
        assert all(len(v) == 1 for v in ips.values()), ips  # one campus or venue address per site
        assert len(cards["onboarding"]) == 1 and None not in cards["onboarding"]


def test_world_yaml_reproduces_the_same_bytes(small_worlds: dict[int, Path], tmp_path: Path) -> None:
    d = small_worlds[WORLD_SEEDS[0]]
    assert main(["simulate", "--scenario", str(d / "world.yaml"), "--out", str(tmp_path)]) == 0
    assert _digest(tmp_path) == _digest(d)


def test_same_world_seed_same_bytes_other_seed_other_bytes(small_worlds: dict[int, Path], tmp_path: Path) -> None:
    seed = WORLD_SEEDS[1]
    sim = generator.build(worlds.draw(seed, "small"), seed)
    generator.write(sim, tmp_path)
    assert _digest(tmp_path) == _digest(small_worlds[seed])
    assert _digest(small_worlds[WORLD_SEEDS[0]]) != _digest(small_worlds[seed])
    yamls = [(small_worlds[s] / "world.yaml").read_bytes() for s in WORLD_SEEDS]
    assert len(set(yamls)) == len(yamls)
