"""A residential proxy pool's aged users, and a team of travellers (app/detect/account.py's
ACCT_RESIDENTIAL_ROTATION, counted by fingerprints.pool_prompt): the golden cases replayed with the packaged
rules and with the knobs that keep them apart turned off."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.drivers.replay import replay
from app.emit.sinks import ListSink
from app.rules.load import compile_rules
from app.rules.model import Rules

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
NOW_MS = 1_769_990_400_000  # the golden cases' pipeline clock


def rules_with(change) -> Rules:
    doc = yaml.safe_load((ROOT / "app" / "rules" / "default.yaml").read_text())
    change(doc)
    return compile_rules(doc, "<test>")


def run(case: str, rules: Rules) -> ListSink:
    sink = ListSink()
    replay(GOLDEN / case / "events.jsonl", rules, sink, now_ms=NOW_MS)
    return sink


def test_a_travelling_team_is_left_alone_and_would_be_throttled_without_min_returns():
    assert run("travelling_team", rules_with(lambda d: None)).decisions == []
    sink = run("travelling_team", rules_with(
        lambda d: d["signals"]["ACCT_RESIDENTIAL_ROTATION"].update(min_returns=0)))
    acted = {d.value for d in sink.decisions if d.scope == "account" and d.action != "lift"}
    assert len(acted) >= 4
    assert {d.action for d in sink.decisions} == {"throttle"}


def test_a_residential_pools_aged_users_are_challenged_and_not_without_the_signal():
    sink = run("aged_residential_pool", rules_with(lambda d: None))
    accounts = {d.value: d.action for d in sink.decisions if d.scope == "account"}
    assert len(accounts) == 12 and set(accounts.values()) == {"challenge"}  # aged: a challenge at most

    def off(d):
        del d["signals"]["ACCT_RESIDENTIAL_ROTATION"]
        d["policy"]["attribution"]["own_signals"].remove("ACCT_RESIDENTIAL_ROTATION")
    assert run("aged_residential_pool", rules_with(off)).decisions == []
