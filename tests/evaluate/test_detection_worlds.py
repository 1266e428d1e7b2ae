"""Detection on randomised worlds (issue 17): three small worlds drawn by `app.sim.worlds`, simulated,
replayed with the packaged rules and scored. No benign account is blocked, the benign false-positive rate
stays within the target, no benign trap (labs, classrooms, hackathons, onboarding waves, security
researchers, eval vendors) is acted on at all, and campaign recall keeps a floor in every world.

The seeds are fixed (odd: tuning seeds, see docs/evaluation.md), so the figures are deterministic: a change
that lowers them is a regression this test names, not noise."""

from __future__ import annotations

import pytest

from app.evaluate import sweep
from app.settings import DEFAULT_RULES

pytestmark = pytest.mark.slow

SEEDS = [1001, 1003, 1005]
TRAPS = {"research_lab", "classroom", "hackathon", "onboarding_wave", "security_research", "eval_vendor",
         "agent_launch", "vpn_team", "hosted_agent", "travellers", "online_course"}
RECALL_FLOOR = 0.9       # every world
RECALL_MEAN = 0.95
FPR_MAX = 0.001          # issue 17's target, every world


@pytest.fixture(scope="module")
def worlds() -> list[sweep.WorldResult]:
    return sweep.run_worlds(SEEDS, lambda s: sweep.scenario_for(s, "small"), DEFAULT_RULES, jobs=1, progress=False)


def test_no_benign_account_is_blocked_and_the_fpr_is_within_target(worlds) -> None:
    for w in worlds:
        t = w.totals
        assert t.benign_accounts > 500, w.seed
        assert t.benign_blocked == 0, (w.seed, sweep.worst_benign_group(w.groups))
        assert t.benign_fpr <= FPR_MAX, (w.seed, t.benign_caught, sweep.worst_benign_group(w.groups))


def test_no_benign_trap_is_acted_on(worlds) -> None:
    seen = set()
    for w in worlds:
        for g in w.benign():
            if g.get("kind") in TRAPS:
                seen.add(g["kind"])
                assert g["caught"] == 0, (w.seed, g["group"], g["caught"], g["accounts"])
    assert seen == TRAPS  # every world has every trap: the test looked at all of them


def test_campaign_recall_keeps_its_floor_in_every_world(worlds) -> None:
    recalls = [w.totals.campaign_recall for w in worlds]
    assert min(recalls) >= RECALL_FLOOR, dict(zip(SEEDS, recalls, strict=True))
    assert sum(recalls) / len(recalls) >= RECALL_MEAN, recalls
    for w in worlds:  # every archetype is there, and is caught at all
        archetypes = {g["archetype"] for g in w.campaigns()}
        assert {"reasoning_harvester", "agentic_harvester", "release_tracker", "hydra_reseller",
                "stealth"} <= archetypes, w.seed
        assert all(g["caught"] > 0 for g in w.campaigns() if g["accounts"] >= 10), (w.seed, w.campaigns())
