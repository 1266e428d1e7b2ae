"""The many-world sweep's arithmetic on hand-made figures: mean and worst world, worst benign group, archetype
size buckets, targets, seed parity, the HTML report, and the CLI's argument errors. No world is simulated."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from app.cli import main
from app.evaluate import sweep
from app.evaluate.metrics import GroupRow, Totals
from app.evaluate.sweep import (
    TARGETS,
    WorldResult,
    archetype_buckets,
    bucket_of,
    describe_groups,
    score,
    seed_convention,
    world_seeds,
    worst_benign_group,
    worst_benign_overall,
)
from app.evaluate.sweep_table import render as render_text
from app.sim.scenario import Scenario


def totals(recall: float = 1.0, fpr: float = 0.0, blocked: int = 0, leak: float = 0.0, ttd: float | None = 60.0,
           campaign_accounts: int = 100, benign_accounts: int = 1000) -> Totals:
    cc, bc = round(recall * campaign_accounts), round(fpr * benign_accounts)
    return Totals(campaign_accounts, cc, recall, benign_accounts, bc, fpr, blocked, 1000, round(leak * 1000), leak,
                  ttd, 0, 0, 0.0)


def group(name: str, cls: str, accounts: int, caught: int, kind: str | None = None, archetype: str | None = None,
          size: int | None = None) -> dict:
    return {"group": name, "cls": cls, "accounts": accounts, "caught": caught, "rate": caught / accounts,
            "blocked": 0, "events": 10 * accounts, "leaked": 0, "median_ttd_s": None, "replacements": 0,
            "replacements_caught_first_request": 0, "kind": kind, "archetype": archetype,
            "size": accounts if size is None else size}


def world(seed: int, groups: list[dict] | None = None, **kw) -> WorldResult:
    return WorldResult(seed, "hand", 1000, 1100, 10, totals(**kw), groups or [])


# --- mean and worst --------------------------------------------------------------------------------------------
THREE = [
    world(2, recall=0.95, fpr=0.003, blocked=1, leak=0.05, ttd=None),
    world(4, recall=0.90, fpr=0.001, blocked=3, leak=0.10, ttd=300.0),
    world(6, recall=0.70, fpr=0.000, blocked=3, leak=0.30, ttd=600.0),
]


def test_mean_and_worst_world_per_figure() -> None:
    s = score(THREE, [2, 4, 6]).spreads
    assert s["campaign_recall"].mean == pytest.approx(0.85)
    assert (s["campaign_recall"].worst, s["campaign_recall"].worst_seed) == (0.70, 6)  # lowest
    assert s["benign_fpr"].mean == pytest.approx(0.004 / 3)
    assert (s["benign_fpr"].worst, s["benign_fpr"].worst_seed) == (0.003, 2)  # highest
    assert s["benign_blocked"].mean == pytest.approx(7 / 3)
    assert (s["benign_blocked"].worst, s["benign_blocked"].worst_seed) == (3, 4)  # tie 4/6: the first seed
    assert s["leak_ratio"].mean == pytest.approx(0.15)
    assert (s["leak_ratio"].worst, s["leak_ratio"].worst_seed) == (0.30, 6)
    # nothing caught in seed 2: no median TTD, left out of the mean, and the worst world
    ttd = s["median_ttd_s"]
    assert (ttd.mean, ttd.worlds, ttd.worst, ttd.worst_seed) == (450.0, 2, None, 2)
    assert all(s[k].worlds == 3 for k in ("campaign_recall", "benign_fpr", "benign_blocked", "leak_ratio"))


def test_missing_ttd_without_campaign_accounts_is_not_the_worst() -> None:
    worlds = [world(2, ttd=None, campaign_accounts=0), world(4, ttd=300.0), world(6, ttd=600.0)]
    ttd = score(worlds, [2, 4, 6]).spreads["median_ttd_s"]
    assert (ttd.mean, ttd.worst, ttd.worst_seed) == (450.0, 600.0, 6)


def test_worst_benign_group_per_world_and_across_worlds() -> None:
    w1 = [group("pop_a", "benign", 100, 2), group("pop_b", "benign", 10, 2), group("camp", "campaign", 50, 50)]
    w2 = [group("pop_a", "benign", 100, 3), group("pop_b", "benign", 10, 0), group("camp", "campaign", 50, 50)]
    w3 = [group("pop_a", "benign", 100, 0), group("pop_b", "benign", 10, 0)]
    assert worst_benign_group(w1)["group"] == "pop_b"  # 2 caught each: the higher rate (2/10)
    assert worst_benign_group(w2)["group"] == "pop_a"
    assert worst_benign_group(w3) is None  # none caught: no worst group
    across = worst_benign_overall([world(2, w1), world(4, w2), world(6, w3)])
    assert (across["group"], across["caught"], across["accounts"], across["worlds"]) == ("pop_a", 5, 300, 3)
    # a tie in caught accounts across worlds goes to the higher rate
    tie = worst_benign_overall([world(2, [group("big", "benign", 1000, 4), group("small", "benign", 8, 4)])])
    assert tie["group"] == "small"
    assert worst_benign_overall([world(2, w3)]) is None


# --- archetypes by size ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "bucket"), [(1, "<10"), (9, "<10"), (10, "10-29"), (29, "10-29"), (30, "30-99"),
                                              (99, "30-99"), (100, "100-299"), (299, "100-299"), (300, "300+"),
                                              (25_000, "300+")])
def test_size_buckets(size: int, bucket: str) -> None:
    assert bucket_of(size) == bucket


def test_archetype_cells_mean_min_and_counts() -> None:
    worlds = [
        world(2, [group("h1", "campaign", 150, 135, archetype="hydra_reseller"),
                  group("s1", "campaign", 20, 10, archetype="stealth"),
                  group("b", "benign", 500, 0, kind="casual_consumers")]),
        world(4, [group("h1", "campaign", 120, 84, archetype="hydra_reseller"),
                  group("s1", "campaign", 40, 40, archetype="stealth"),
                  group("r", "campaign", 4, 3, archetype="release_tracker")]),
    ]
    cells = {(c.archetype, c.bucket): c for c in archetype_buckets(worlds)}
    assert set(cells) == {("hydra_reseller", "100-299"), ("stealth", "10-29"), ("stealth", "30-99"),
                          ("release_tracker", "<10")}
    h = cells[("hydra_reseller", "100-299")]
    assert (h.mean, h.min, h.min_seed, h.groups, h.accounts) == (pytest.approx(0.8), 0.7, 4, 2, 270)
    assert (cells[("stealth", "10-29")].mean, cells[("stealth", "10-29")].groups) == (0.5, 1)
    assert cells[("stealth", "30-99")].mean == 1.0
    assert not cells[("release_tracker", "<10")].targeted and h.targeted


def test_cells_bucket_a_campaign_by_the_accounts_it_used_not_its_declared_size() -> None:
    # a scenario declares 18 accounts; a short world ends before 13 of them send anything, so the campaign
    # the detector (or a labelled day from elsewhere) sees is 5 accounts: shown, not targeted
    worlds = [world(2, [group("a", "campaign", 5, 0, archetype="agentic_harvester", size=18),
                        group("h", "campaign", 47, 40, archetype="hydra_reseller", size=332)])]
    cells = {(c.archetype, c.bucket): c for c in archetype_buckets(worlds)}
    assert set(cells) == {("agentic_harvester", "<10"), ("hydra_reseller", "30-99")}
    assert not cells[("agentic_harvester", "<10")].targeted


def test_describe_groups_prefers_labels_then_the_scenario_then_the_name() -> None:
    sc = Scenario("s", "s", "", 0, 24.0, {}, "m", 1.0,
                  populations=[{"name": "devs", "kind": "developers_coding_agents"}],
                  campaigns=[{"name": "tracer", "archetype": "reasoning_harvester"}])
    rows = [GroupRow("devs", "benign", accounts=7), GroupRow("tracer", "campaign", accounts=5),
            GroupRow("hyd", "campaign", accounts=40), GroupRow("odd", "benign", accounts=3)]
    labels = {
        "a1": {"cls": "benign", "group": "devs"},
        "a2": {"cls": "campaign", "group": "tracer"},
        "a3": {"cls": "campaign", "group": "hyd", "archetype": "hydra_reseller", "size": 100},
        "a4": {"cls": "benign", "group": "odd", "kind": "llm_judges", "size": 3},
    }
    got = {g["group"]: (g["kind"], g["archetype"], g["size"]) for g in describe_groups(rows, labels, sc)}
    assert got == {"devs": ("developers_coding_agents", None, 7),   # scenario spec, counted accounts
                   "tracer": (None, "reasoning_harvester", 5),
                   "hyd": (None, "hydra_reseller", 100),            # the labels' own keys win
                   "odd": ("llm_judges", None, 3)}
    bare = Scenario("s", "s", "", 0, 24.0, {}, "m", 1.0)
    got = {g["group"]: (g["kind"], g["archetype"]) for g in describe_groups(rows[:2], {}, bare)}
    assert got == {"devs": ("devs", None), "tracer": (None, "tracer")}  # neither: the group's name


# --- targets ------------------------------------------------------------------------------------------------------
def good(seed: int, **kw) -> WorldResult:
    groups = [group("camp", "campaign", 20, 20, archetype="stealth"), group("pop", "benign", 1000, 0, kind="casual")]
    return world(seed, groups, **{"recall": 1.0, "fpr": 0.0, "blocked": 0, "leak": 0.0, "ttd": 60.0, **kw})


def statuses(worlds: list[WorldResult], targets: dict = TARGETS) -> dict[str, str]:
    sw = score(worlds, [w.seed for w in worlds], targets=targets)
    return {t.key: t.status for t in sw.targets}


def test_all_targets_pass_on_good_worlds_and_at_their_bounds() -> None:
    assert set(statuses([good(2), good(4)]).values()) == {"PASS"}
    assert len(statuses([good(2)])) == len(TARGETS)
    # exactly at every bound still passes
    edge = [good(2, recall=0.95, fpr=0.001, leak=0.10, ttd=900.0), good(4, recall=0.95, fpr=0.001, leak=0.10)]
    for w in edge:
        w.groups[0].update(caught=16, rate=0.8)
    s = statuses(edge)
    assert set(s.values()) == {"PASS"}, s
    assert score(edge, [2, 4]).spreads["campaign_recall"].mean == 0.95
    assert statuses([good(2), good(4), good(6), good(8), good(10, recall=0.85)])["recall_worst_min"] == "PASS"


def _fail_blocked() -> list[WorldResult]:
    return [good(2), good(4, blocked=1)]


def _fail_fpr() -> list[WorldResult]:
    return [good(2, fpr=0.002), good(4)]


def _fail_recall_mean() -> list[WorldResult]:
    return [good(2, recall=0.90), good(4, recall=0.90)]  # worst 0.90 >= 0.85 still passes


def _fail_recall_worst() -> list[WorldResult]:
    return [good(2), good(4), good(6), good(8), good(10, recall=0.84)]  # mean 0.968 passes


def _fail_archetype() -> list[WorldResult]:
    ws = [good(2), good(4)]
    ws[0].groups[0].update(caught=10, rate=0.5)  # stealth 10-29: mean (0.5 + 1.0) / 2 = 0.75
    return ws


def _fail_leak() -> list[WorldResult]:
    return [good(2), good(4, leak=0.11)]


def _fail_ttd() -> list[WorldResult]:
    return [good(2, ttd=901.0), good(4)]


def _fail_ttd_nothing_caught() -> list[WorldResult]:
    return [good(2), good(4, ttd=None)]


@pytest.mark.parametrize(("make", "key"), [
    (_fail_blocked, "benign_blocked_max"), (_fail_fpr, "benign_fpr_max"), (_fail_recall_mean, "recall_mean_min"),
    (_fail_recall_worst, "recall_worst_min"), (_fail_archetype, "archetype_bucket_recall_min"),
    (_fail_leak, "leak_ratio_max"), (_fail_ttd, "median_ttd_s_max"), (_fail_ttd_nothing_caught, "median_ttd_s_max"),
])
def test_each_target_fails_alone(make, key: str) -> None:
    worlds = make()
    s = statuses(worlds)
    assert {k for k, v in s.items() if v == "FAIL"} == {key}, s
    sw = score(worlds, [w.seed for w in worlds])
    assert sw.failed and sw.verdict == f"1 of {len(TARGETS)} targets missed"


def test_targets_are_data() -> None:
    s = statuses([good(2, leak=0.5)], {"leak_ratio_max": 0.6, "recall_mean_min": 1.0})
    assert s == {"leak_ratio_max": "PASS", "recall_mean_min": "PASS"}
    assert statuses([good(2, leak=0.5)], {"leak_ratio_max": 0.4}) == {"leak_ratio_max": "FAIL"}


def test_archetype_target_without_groups_of_ten_is_not_applicable() -> None:
    ws = [good(2)]
    ws[0].groups[0].update(accounts=5, size=5, caught=1, rate=0.2)
    sw = score(ws, [2])
    res = {t.key: t for t in sw.targets}["archetype_bucket_recall_min"]
    assert res.status == "N/A" and not sw.failed


# --- seeds ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "n"), [(1, 4), (2, 3), (0, 1), (-3, 5), (1000, 10)])
def test_world_seeds_step_two_and_keep_parity(seed: int, n: int) -> None:
    seeds = world_seeds(seed, n)
    assert len(seeds) == n and seeds[0] == seed
    assert all(b - a == 2 for a, b in itertools.pairwise(seeds))
    assert {s % 2 for s in seeds} == {seed % 2}


def test_convention_names_the_parity() -> None:
    assert "odd: tuning seeds" in seed_convention(world_seeds(1, 3))
    assert "even: reporting seeds" in seed_convention(world_seeds(4, 3))
    assert "tunes on odd seeds and reports on even seeds" in seed_convention([2])


# --- rendering ------------------------------------------------------------------------------------------------------
def _sweep():
    ws = [good(2, recall=0.97, leak=0.2), good(4, blocked=2, fpr=0.002)]
    ws[1].groups[1].update(caught=2, rate=0.002)
    ws[0].groups.append(group("tracker", "campaign", 4, 3, archetype="release_tracker"))
    return score(ws, [2, 4], "small", "hand-made worlds", "rules.yaml")


def test_text_table_has_every_part() -> None:
    text = render_text(_sweep())
    assert "seeds 2, 4 (even: reporting seeds" in text
    assert re.search(r"^\s+2\s+1000\s+1100\s+0\.9700\s+0\.0000\s+0\s+0\.2000\s+60\.0s\s+none caught$", text, re.M)
    assert re.search(r"^\s+4\s+1000\s+1100\s+1\.0000\s+0\.0020\s+2\s+0\.0000\s+60\.0s\s+pop 2/1000$", text, re.M)
    assert re.search(r"^recall\s+0\.9850\s+0\.9700 \(seed 2\)$", text, re.M)
    assert re.search(r"^leak ratio\s+0\.1000\s+0\.2000 \(seed 2\)$", text, re.M)
    assert "worst benign group across worlds: pop (2 of 2000 accounts caught over 2 worlds" in text
    assert re.search(r"^stealth\s+-\s+1\.0000/1\.0000 n=2", text, re.M)
    assert re.search(r"^release_tracker\s+0\.7500/0\.7500 n=1", text, re.M)
    assert re.search(r"^  FAIL  benign accounts blocked <= 0 in every world\s+most 2 \(seed 4\)$", text, re.M)
    assert re.search(r"^  PASS  campaign recall mean >= 0\.95\s+mean 0\.9850$", text, re.M)
    assert text.rstrip().endswith("3 of 7 targets missed")  # blocked, FPR, leak


def test_missed_accounts_are_summed_per_archetype_by_why() -> None:
    ws = [good(2), good(4)]
    g1 = group("tracker", "campaign", 10, 6, archetype="release_tracker")
    g1["missed"] = {"undetected": 0, "before_detection": 3, "not_reached": 1}
    g2 = group("tracker", "campaign", 5, 0, archetype="release_tracker")
    g2["missed"] = {"undetected": 5, "before_detection": 0, "not_reached": 0}
    ws[0].groups.append(g1)
    ws[1].groups.append(g2)
    sw = score(ws, [2, 4], "small", "hand-made worlds", "rules.yaml")
    rt = next(r for r in sw.misses if r.archetype == "release_tracker")
    assert (rt.accounts, rt.caught, rt.missed) == (15, 6, 9)
    assert (rt.undetected, rt.before_detection, rt.not_reached) == (5, 3, 1)
    assert re.search(r"^release_tracker\s+15\s+9\s+5\s+3\s+1$", render_text(sw), re.M)
    d = sw.as_dict()["summary"]["missed_by_archetype"]
    assert {"archetype": "release_tracker", "accounts": 15, "caught": 6, "undetected": 5, "before_detection": 3,
            "not_reached": 1, "missed": 9} in d


def test_html_report_is_self_contained_with_every_figure(tmp_path: Path) -> None:
    from app.evaluate.sweep_report import write

    path = tmp_path / "r" / "sweep.html"
    write(_sweep(), path, "sweep <test>")
    text = path.read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") and len(s) > 5000 for s in srcs)
    assert "http://" not in text and "https://" not in text
    assert "<title>sweep &lt;test&gt;</title>" in text
    for m in sweep.MEASURES:
        assert f'data-metric="{m.key}"' in text and m.label in text
    assert re.search(r'data-metric="campaign_recall"><div class="v">0\.9850</div>', text)
    assert "worst: 0.9700, seed 2" in text
    assert re.search(r'data-metric="worst_benign_group"><div class="v">pop</div>', text)
    assert text.count('<td class="FAIL">FAIL</td>') == 3 and text.count('<td class="PASS">PASS</td>') == 4
    for part in ("release_tracker", "stealth", "10-29", "&lt;10 (not targeted)", "pop 2/1000", "Definitions",
                 "Campaign accounts missed, by why", "missed_by_archetype",
                 "archetype_bucket", "even: reporting seeds", "3 of 7 targets missed"):
        assert part in text, part


def test_json_form_carries_worlds_summary_and_targets() -> None:
    d = _sweep().as_dict()
    assert d["seeds"] == [2, 4] and "even" in d["convention"]
    assert [w["seed"] for w in d["worlds"]] == [2, 4]
    assert d["worlds"][0]["totals"]["campaign_recall"] == 0.97
    assert {g["archetype"] for g in d["worlds"][0]["groups"] if g["cls"] == "campaign"} == {"stealth",
                                                                                          "release_tracker"}
    assert all({"kind", "archetype", "size"} <= g.keys() for w in d["worlds"] for g in w["groups"])
    assert d["worlds"][1]["worst_benign_group"]["group"] == "pop"
    assert d["summary"]["figures"]["benign_blocked"]["worst_seed"] == 4
    assert d["targets"]["values"] == TARGETS and d["targets"]["all_passed"] is False
    assert [r["status"] for r in d["targets"]["results"]].count("FAIL") == 3


# --- CLI argument errors (no world runs) -------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["--worlds", "2", "--seed", "1", "--events", "e.jsonl"], "--worlds cannot be combined with --events"),
    (["--worlds", "2", "--seed", "1", "--labels", "l.json", "--decisions", "d.jsonl"],
     "--worlds cannot be combined with --labels, --decisions"),
    (["--worlds", "0", "--seed", "1"], "--worlds must be at least 1, not 0"),
    (["--worlds", "-2", "--seed", "1"], "--worlds must be at least 1, not -2"),
    (["--worlds", "2"], "--worlds needs --seed S"),
    (["--worlds", "2", "--seed", "1", "--jobs", "0"], "--jobs must be at least 1, not 0"),
    (["--events", "e.jsonl"], "--events, --labels and --decisions are all required"),
    ([], "--events, --labels and --decisions are all required"),
    (["--events", "e", "--labels", "l", "--decisions", "d", "--seed", "2", "--jobs", "2"],
     "--seed, --jobs only apply with --worlds N"),
    (["--events", "e", "--labels", "l", "--decisions", "d", "--fail-on-targets"],
     "--fail-on-targets only apply with --worlds N"),
])
def test_cli_argument_errors_exit_2_with_a_message(argv: list[str], message: str, capsys) -> None:
    assert main(["evaluate", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


@pytest.mark.parametrize("argv", [["--worlds", "two", "--seed", "1"], ["--worlds", "1", "--seed", "1",
                                                                          "--world-size", "huge"]])
def test_cli_malformed_values_are_argparse_errors(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", *argv])
    assert exc.value.code == 2
    assert "evaluate: error:" in capsys.readouterr().err


def test_cli_bad_rules_file_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: [\n", encoding="utf-8")
    assert main(["evaluate", "--worlds", "1", "--seed", "2", "--rules", str(bad)]) == 2
    assert "invalid rules" in capsys.readouterr().err


# --- where worlds come from ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "size"), [(2, "small"), (5, "medium")])
def test_scenario_for_is_the_randomised_world(seed: int, size: str) -> None:
    from app.sim import worlds

    sc = sweep.scenario_for(seed, size)
    assert sc == worlds.draw(seed, size) and sc.name == f"world-{seed}-{size}"
    assert sc != sweep.scenario_for(seed + 2, size)  # another seed, another world
    assert sweep.world_source(size) == f"app.sim.worlds.draw(seed, {size!r})"
