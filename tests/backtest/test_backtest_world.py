"""`distill-guard backtest` on a small simulated world (`simulate --world 15 --world-size small`, its first 10,000
events), against the packaged rules with the harness-prompt threshold pinned at five users (the scenario's) and
cards never a ring's by their holders' networks: identical rules change nothing; FP_PAYMENT_SHARED needing 3 orgs
instead of 2 changes exactly the accounts two plain replays say it does; with labels, recall and benign FPR under
both rule sets are `metrics.evaluate` on each plain replay's decisions; the report names the changed accounts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import yaml

from app.evaluate.metrics import evaluate
from app.ingest.parse import parse_ts
from tests.backtest.case import rules_doc
from tests.backtest.conftest import (
    backtest,
    expected_changes,
    plain_first_enforced,
    plain_outcomes,
    plain_replay,
    run_cli,
)

pytestmark = pytest.mark.slow

SEED = 15
EVENTS = 10_000
NOW = "2026-03-01T00:00:00Z"  # after the simulated day: the pipeline clock of every replay here


@dataclass(frozen=True)
class World:
    events: Path
    labels: Path
    base_rules: Path
    fp3: Path
    plain_base: Path      # the plain replays' directories
    plain_new: Path
    expected: dict[str, tuple[str, str]]
    base: dict[str, str]  # account -> outcome under each rule set, from the plain replays
    new: dict[str, str]
    timing: dict[str, tuple[str, str]]  # same outcome, first enforced at another time: (base, new) times


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("backtest-world")
    code, _, err = run_cli("simulate", "--world", str(SEED), "--world-size", "small", "--out", str(d / "sim"))
    assert code == 0, err
    events = d / "events.jsonl"
    with (d / "sim" / "events.jsonl").open("rb") as src, events.open("wb") as dst:
        for i, line in enumerate(src):
            if i == EVENTS:
                break
            dst.write(line)
    # the base: the packaged rules with the knobs this scenario was built on pinned (a system prompt links as a
    # campaign's harness from five users; no card is a ring's by its holders' networks, which since 299e206
    # gives this world's card holders evidence of their own whatever FP_PAYMENT_SHARED's threshold): with them
    # the change below moves accounts both to no action and to a weaker one, whatever the packaged defaults
    doc = rules_doc()
    doc["fingerprints"]["campaign_prompt"]["min_accounts"] = 5
    doc["fingerprints"]["unrelated_card"]["min_orgs"] = 0
    base_rules = d / "base.yaml"
    base_rules.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    doc["signals"]["FP_PAYMENT_SHARED"]["threshold"] = 3
    fp3 = d / "fp3.yaml"
    fp3.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    now_ms = parse_ts(NOW, "now")
    base_decisions = plain_replay(events, base_rules, d / "plain-base", now_ms)
    new_decisions = plain_replay(events, fp3, d / "plain-new", now_ms)
    base, new = plain_outcomes(base_decisions), plain_outcomes(new_decisions)
    first_base, first_new = plain_first_enforced(base_decisions), plain_first_enforced(new_decisions)
    timing = {a: (first_base[a], first_new[a]) for a in base
              if new.get(a) == base[a] and first_base[a] != first_new[a]}
    return World(events, d / "sim" / "labels.json", base_rules, fp3, d / "plain-base", d / "plain-new",
                 expected_changes(base, new), base, new, timing)


@pytest.fixture(scope="module")
def fp3_run(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str, Path]:
    """The backtest of fp3.yaml with labels, a report and JSON, its replays in two processes."""
    d = tmp_path_factory.mktemp("backtest-fp3")
    code, stdout, stderr = backtest(world.events, "--rules", str(world.fp3), "--base-rules", str(world.base_rules),
                                    "--labels", str(world.labels),
                                    "--now", NOW, "--json", str(d / "bt.json"), "--report", str(d / "r.html"),
                                    "--processes", "2", "--content-jobs", "0", fast=False)
    assert code == 0, stderr
    return code, orjson.loads((d / "bt.json").read_bytes()), stdout, d / "r.html"


def test_the_change_moves_accounts(world: World) -> None:
    # the rule change is worth testing: it moves accounts, in more than one way
    assert len(world.expected) >= 5
    assert any(n == "none" for _, n in world.expected.values())          # released
    assert any(b != "none" != n for b, n in world.expected.values())     # a weaker action
    assert world.timing  # and moves when others are first enforced


def test_changed_accounts_are_exactly_what_plain_replays_give(world: World, fp3_run) -> None:
    _, doc, stdout, _ = fp3_run
    got = {c["account"]: (c["base"], c["new"]) for c in doc["changes"]}
    assert got == world.expected
    assert doc["changed"] == len(world.expected)
    for side, outcomes in (("base", world.base), ("new", world.new)):
        counts = Counter(outcomes.values())
        for action in ("throttle", "challenge", "block"):
            assert doc["outcomes"][side][action] == counts.get(action, 0), (side, action)
    assert doc["meta"]["processes"] == 2 and doc["meta"]["records"] == EVENTS
    timing = {c["account"]: (c["outcome"]["base"]["first_enforced"], c["outcome"]["new"]["first_enforced"])
              for c in doc["timing_changes"]}
    assert timing == world.timing
    first = doc["changes"][0]["account"]
    assert first in stdout
    # every change carries its signals under both rule sets
    for c in doc["changes"]:
        assert c["signals"]["base"]["basis"] == "decision"  # enforced under the base rules: released or weaker
        assert c["signals"]["base"]["alert"]["reasons"]
        assert "FP_PAYMENT_SHARED" in c["signals"]["base"]["decision"]["reasons"]


def test_labels_give_evaluates_recall_and_fpr_under_both(world: World, fp3_run) -> None:
    _, doc, stdout, _ = fp3_run
    labels = doc["labels"]
    for side, plain in (("base", world.plain_base), ("new", world.plain_new)):
        ev = evaluate(world.events, world.labels, plain / "decisions.jsonl")
        assert labels["totals"][side] == orjson.loads(orjson.dumps(ev.totals.as_dict())), side
        rates = {g["group"]: g["rate"][side] for g in labels["groups"]}
        assert rates == {r.group: r.rate for r in ev.groups}
    assert labels["totals"]["base"]["campaign_recall"] != labels["totals"]["new"]["campaign_recall"]
    # changes by group add up to the changes, and each changed account's label is its group's
    by_group = {g["group"]: g["changed"] for g in labels["groups"]}
    assert sum(by_group.values()) == doc["changed"]
    label_of = orjson.loads(world.labels.read_bytes())
    assert Counter(label_of[c["account"]]["group"] for c in doc["changes"]) == +Counter(by_group)
    kinds = {g["group"] for g in labels["by_kind"]}
    assert "reasoning_harvester" in kinds and "trace_coercion" not in kinds  # rolled up by archetype
    t = labels["totals"]
    assert f"campaign recall  {t['base']['campaign_recall']:.4f}" in stdout


def test_report_names_the_changed_accounts(world: World, fp3_run) -> None:
    _, doc, _, report = fp3_run
    text = report.read_text(encoding="utf-8")
    for c in doc["changes"]:
        assert f'data-account="{c["account"]}"' in text
    assert text.count('<tr class="" data-account=') + text.count('<tr class="blocked" data-account=') == doc["changed"]
    assert text.count("data:image/png;base64,") >= 4  # outcomes, rates by group, changes by group, by org
    assert 'id="groups"' in text


def test_identical_rules_change_nothing_on_the_world(world: World, tmp_path: Path) -> None:
    out = tmp_path / "same.json"
    code, _, stderr = backtest(world.events, "--rules", str(world.base_rules), "--base-rules", str(world.base_rules),
                               "--now", NOW, "--json", str(out),
                               "--fail-on-new-blocks", "0", "--processes", "2", "--content-jobs", "0", fast=False)
    assert code == 0, stderr
    doc = orjson.loads(out.read_bytes())
    assert doc["changed"] == 0 and doc["subject_changes"] == []
    counts = Counter(world.base.values())
    assert doc["outcomes"]["base"] == doc["outcomes"]["new"]
    assert {a: doc["outcomes"]["base"][a] for a in ("throttle", "challenge", "block")} == \
        {a: counts.get(a, 0) for a in ("throttle", "challenge", "block")}
