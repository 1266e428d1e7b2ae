"""Ground truth covers every account, and nothing in the events gives it away."""

from __future__ import annotations

import re
from collections import defaultdict

from app.sim import scenario

OPAQUE = re.compile(r"^(acct|org|key|pf|dev|evt)_[0-9a-f]{16,24}$")
HEX = re.compile(r"^[0-9a-f]{16}$")


def _strings(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(obj, str):
        yield path, obj


def test_labels_cover_exactly_the_accounts_in_events(smoke_events, smoke_labels) -> None:
    accounts = {e["account_id"] for e in smoke_events}
    assert accounts == set(smoke_labels)
    assert {v["cls"] for v in smoke_labels.values()} == {"benign", "campaign"}


def test_every_population_and_archetype_is_present(smoke_labels) -> None:
    sc = scenario.load("smoke")
    groups = {v["group"] for v in smoke_labels.values()}
    assert groups == {g["name"] for g in sc.populations} | {g["name"] for g in sc.campaigns}
    kinds = {g["kind"] for g in sc.populations}
    assert kinds == {"casual_consumers", "developers_coding_agents", "enterprise_batch", "university_eval",
                     "llm_judges", "routers_aggregators", "journalists_sensitive", "chinese_language_users",
                     "research_lab", "classroom", "hackathon", "onboarding_wave", "security_research", "eval_vendor"}
    assert {g["archetype"] for g in sc.campaigns} == {"reasoning_harvester", "agentic_harvester",
                                                      "release_tracker", "hydra_reseller", "stealth"}
    replacements = [v for v in smoke_labels.values() if v.get("replacement")]
    assert replacements and all(v["cls"] == "campaign" for v in replacements)


def test_no_event_carries_label_information(smoke_events, smoke_labels) -> None:
    names = {v["group"].lower() for v in smoke_labels.values()} | {"benign", "campaign", "hydra", "stealth",
                                                                     "harvest", "replacement"}
    for ev in smoke_events:
        for path, value in _strings(ev):
            low = value.lower()
            hit = next((n for n in names if n in low), None)
            assert hit is None, f"{ev['event_id']} {path} contains {hit!r}"
        for field in (ev["event_id"], ev["account_id"], ev["org_id"], ev.get("api_key_id"),
                      ev["account"].get("payment_fp"), ev["client"].get("device_id")):
            assert field is None or OPAQUE.match(field), field
        sph = ev["request"].get("system_prompt_hash")
        assert sph is None or HEX.match(sph)


def test_ids_do_not_cluster_by_group(smoke_labels) -> None:
    # opaque ids: the leading hex digit of account ids is spread the same way in every large group
    by_group = defaultdict(set)
    for acct, v in smoke_labels.items():
        by_group[v["group"]].add(acct[5])
    for group, digits in by_group.items():
        n = sum(1 for v in smoke_labels.values() if v["group"] == group)
        if n >= 100:
            assert len(digits) >= 12, group


def test_harvesting_is_multilingual_and_uses_tags_and_debug_mode(smoke_events, smoke_labels) -> None:
    camp = [e["request"]["prompt"] for e in smoke_events if smoke_labels[e["account_id"]]["cls"] == "campaign"]
    assert any("推理" in p or "思考" in p for p in camp)  # Chinese trace coercion
    assert any("Рассуждай" in p or "Piensa paso a paso" in p or "Schritt für Schritt" in p for p in camp)
    assert any("<" in p and "tags" in p for p in camp)
    assert any("ebug mode" in p or "调试模式" in p for p in camp)


def test_benign_prompts_rarely_collide(smoke_events, smoke_labels) -> None:
    from collections import Counter

    # benchmark harnesses send the same items by design; everything else should almost never repeat
    prompts = [e["request"]["prompt"] for e in smoke_events if smoke_labels[e["account_id"]]["cls"] == "benign"]
    prompts = [p for p in prompts if "Think step by step" not in p]
    dup = sum(n - 1 for n in Counter(prompts).values() if n > 1)
    assert dup / len(prompts) < 0.05
