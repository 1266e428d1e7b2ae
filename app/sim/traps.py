"""Benign traps users report as false positives: research labs, classrooms, hackathons, onboarding waves,
security-research programmes, eval vendors, an agent framework's launch crowd, a team behind a VPN and a hosted
agent product's customers, as populations whose accounts share a site, cards and a start.

A trap's accounts are spread over `labs` sites (one for every kind but research_lab). A site has one network
(`nat_ips` addresses of one ASN, or each account's own home line when `nat_ips` is absent) and one country;
with `exit_per_session` each session leaves from any of the addresses alike (a commercial VPN's exits).
Each account is its own org with probability `org_per_account`, else one of the population's `orgs` shared
orgs. Cards follow `card_scope`: `groups` (a site's card holders split into groups of `card_shared_by`
accounts, one card each: a lab's grant cards, a team's card), `population` (one card for every card holder: a
company's corporate card) or `account` (each their own). A `cohort` starts every account at (nearly) the same
moment from one template (a class session, a hackathon kickoff), optionally pinned to one phrasing per site
(the class's exercise, the organisers' starter kit), followed by `sessions` more within `hours`.
"""

from __future__ import annotations

import math
import random
from typing import Any

from app.sim.accounts import Account, make_account, weighted
from app.sim.groups import STACKS_BY_PATH, Session
from app.sim.infra import Asn, Stack, asns, pick_stack
from app.sim.populations import BenignPopulation
from app.sim.prompts import FAMILIES, Family
from app.sim.timing import HOUR_MS, geometric, loguniform, session_times

_SDK = {"python_sdk": 0.7, "python_httpx": 0.3}
_BENCH_SWEEP = {"bench_cot": 1.0, "bench_math": 0.3, "bench_mc": 0.3}

TRAP_DEFAULTS: dict[str, dict[str, Any]] = {
    # students of a university lab: own accounts and orgs, grant cards, the campus NAT, CoT sweeps after a release
    "research_lab": {
        "labs": 2, "org_per_account": 1.0, "card_scope": "groups", "card_shared_by": [3, 8],
        "shared_payment_fraction": 0.45, "no_card_fraction": 1.0, "nat_ips": 1,
        "countries": {"US": 5, "GB": 2, "DE": 1, "CA": 1, "JP": 1, "TW": 1, "AU": 1},
        "asn_types": {"unknown": 1}, "v6_share": 0.0, "access_paths": {"api": 0.85, "consumer_app": 0.15},
        "stacks": _SDK, "tail_stack_share": 0.02, "tiers": {"free": 0.5, "build": 0.5},
        "signup_channels": {"edu": 1}, "kyc": {"email": 0.8, "card": 0.2}, "email_domain_classes": {"edu": 1},
        "account_age_days": [21, 400], "session_length": 3, "session_gap_seconds": [30, 400],
        "template_families": {"paper_help": 1.0, "explain": 0.5, "dev_question": 0.8, "bench_cot": 0.2},
        "multi_turn": False, "thinking": 0.4, "models": {"large": 0.6, "medium": 0.4},
        "new_model_adoption": {"fraction": 0.8, "within_hours": 2}, "output_tokens": [150, 2500],
        "thinking_tokens": [300, 8000], "context_tokens": [0, 1500], "cache_read_fraction": 0.0,
        "release_burst": {"share": 0.6, "requests": [80, 400], "hours": 4, "gap_seconds": [1, 10],
                          "new_model_share": 0.9, "thinking": 0.95, "template_families": _BENCH_SWEEP},
    },
    # a class session: new accounts behind the campus NAT open the same exercise within minutes
    "classroom": {
        "org_per_account": 1.0, "card_scope": "account", "no_card_fraction": 1.0, "nat_ips": 1,
        "countries": {"US": 4, "GB": 1, "DE": 1, "IN": 1, "BR": 1, "CA": 1}, "asn_types": {"unknown": 1},
        "v6_share": 0.0, "access_paths": {"consumer_app": 0.6, "api": 0.4}, "stacks": _SDK,
        "tiers": {"free": 1}, "signup_channels": {"edu": 0.6, "standard": 0.4}, "kyc": {"email": 1},
        "email_domain_classes": {"edu": 0.6, "freemail": 0.4}, "account_age_days": [0.02, 3],
        "session_length": 4, "session_gap_seconds": [30, 300], "diurnal": "human",
        "template_families": {"homework": 1.0, "dev_question": 0.8, "explain": 0.6},
        "followup_family": "class_followup", "system_prompts": 1, "system_prompt_share": 0.5,
        "thinking": 0.1, "models": {"medium": 0.7, "small": 0.3}, "output_tokens": [80, 1200],
        "context_tokens": [0, 1500], "new_model_adoption": {"fraction": 0.2, "within_hours": 24},
        "keys_per_account": [1, 1],
        "cohort": {"at_hours": 1, "spread_minutes": 4, "hours": 1.5, "first_requests": [2, 8],
                   "gap_seconds": [40, 400], "sessions": [0, 2], "template_families": {"class_exercise": 1},
                   "pin_phrasing": True},
    },
    # a live lesson of an online course on reasoning models: new accounts, each student at home (their own
    # home line or phone, in their own country: no shared network), the course notebook's system prompt,
    # opening the lesson's chain-of-thought exercises within minutes of each other, exercises a content
    # classifier reads as trace elicitation ("write out your complete chain of thought"). `labs`: the
    # countries the cohort comes from (one site each, with no NAT)
    "online_course": {
        "labs": 3, "org_per_account": 1.0, "card_scope": "account", "no_card_fraction": 0.7, "local_networks": True,
        "countries": {"US": 3, "IN": 2, "GB": 1, "DE": 1, "BR": 1, "CA": 1, "FR": 1, "JP": 1},
        "asn_types": {"residential": 0.8, "mobile": 0.2}, "v6_share": 0.1,
        "access_paths": {"api": 0.7, "consumer_app": 0.3}, "stacks": _SDK, "tiers": {"free": 0.8, "build": 0.2},
        "signup_channels": {"edu": 0.4, "standard": 0.6}, "kyc": {"email": 0.8, "card": 0.2},
        "email_domain_classes": {"freemail": 0.65, "edu": 0.3, "disposable": 0.05}, "account_age_days": [0.02, 5],
        "session_length": 5, "session_gap_seconds": [20, 300], "diurnal": "human",
        "template_families": {"homework": 1.0, "explain": 0.6, "dev_question": 0.4},
        "followup_family": "class_followup", "system_prompts": 1, "system_prompt_share": 0.8,
        "thinking": 0.6, "models": {"large": 0.5, "medium": 0.5}, "output_tokens": [150, 2500],
        "thinking_tokens": [300, 6000], "context_tokens": [0, 2000], "keys_per_account": [1, 1],
        "cohort": {"at_hours": 1, "spread_minutes": 8, "hours": 1.5, "first_requests": [3, 10],
                   "gap_seconds": [30, 300], "sessions": [0, 2],
                   "template_families": {"bench_cot_trace": 1.0, "bench_cot": 1.0}, "pin_phrasing": False},
    },
    # a hackathon: new accounts behind the venue NAT, the organisers' starter kit, coding agents all night
    "hackathon": {
        "org_per_account": 1.0, "card_scope": "account", "no_card_fraction": 1.0, "nat_ips": 1,
        "countries": {"US": 3, "GB": 1, "DE": 1, "IN": 1, "SG": 1, "CA": 1}, "asn_types": {"unknown": 0.7,
                                                                                         "datacenter": 0.3},
        "v6_share": 0.0, "access_paths": {"api": 0.55, "ide_agent": 0.45},
        "stacks": {"node_sdk": 0.5, "python_sdk": 0.4, "python_httpx": 0.1}, "tiers": {"free": 0.7, "build": 0.3},
        "signup_channels": {"standard": 0.6, "edu": 0.4}, "kyc": {"email": 1},
        "email_domain_classes": {"freemail": 0.7, "edu": 0.3}, "account_age_days": [0.02, 3],
        "session_length": 20, "session_gap_seconds": [3, 45], "diurnal": "flat",
        "template_families": {"agent_task": 1.0, "dev_question": 0.4, "hack_idea": 0.3},
        "followup_family": "agent_followup", "system_prompts": 1, "system_prompt_share": 1.0, "thinking": 0.3,
        "tools": [3, 20], "models": {"large": 0.5, "medium": 0.5}, "output_tokens": [60, 3000],
        "context_tokens": [2000, 60000], "cache_read_fraction": 0.8,
        "cohort": {"at_hours": 1, "spread_minutes": 10, "hours": 20, "first_requests": [3, 12],
                   "gap_seconds": [5, 60], "sessions": [3, 10], "template_families": {"hack_starter": 1},
                   "pin_phrasing": True},
    },
    # a company onboarding a cohort of engineers in one week, all on the corporate card, behind the office NAT
    "onboarding_wave": {
        "org_per_account": 0.3, "orgs": 1, "card_scope": "population", "shared_payment_fraction": 1.0,
        "nat_ips": 2, "countries": {"US": 3, "GB": 1, "DE": 1, "NL": 1, "IN": 1},
        "asn_types": {"unknown": 0.7, "residential": 0.3}, "v6_share": 0.0,
        "access_paths": {"ide_agent": 0.7, "api": 0.3}, "tiers": {"scale": 0.6, "enterprise": 0.4},
        "signup_channels": {"enterprise": 0.6, "standard": 0.4}, "kyc": {"card": 1},
        "email_domain_classes": {"corporate": 1}, "account_age_days": [0.05, 7], "session_length": 25,
        "session_gap_seconds": [2, 40], "diurnal": "office",
        "template_families": {"agent_task": 1.0, "onboard_question": 0.6, "dev_question": 0.3},
        "followup_family": "agent_followup", "system_prompts": 1, "system_prompt_share": 1.0, "thinking": 0.5,
        "tools": [8, 30], "models": {"large": 0.6, "medium": 0.4}, "output_tokens": [40, 3000],
        "thinking_tokens": [100, 6000], "context_tokens": [4000, 100000], "cache_read_fraction": 0.85,
        "keys_per_account": [1, 2],
    },
    # a security-research programme: red-team probes from researchers' own lines, small teams on one card
    "security_research": {
        "org_per_account": 1.0, "card_scope": "groups", "card_shared_by": [2, 4], "shared_payment_fraction": 0.3,
        "no_card_fraction": 0.0, "countries": {"US": 4, "GB": 1, "DE": 1, "NL": 1, "FR": 1, "SG": 1, "CA": 1},
        "asn_types": {"residential": 0.5, "cloud": 0.25, "vpn": 0.15, "datacenter": 0.1},
        "access_paths": {"api": 0.8, "consumer_app": 0.2},
        "stacks": {"python_sdk": 0.4, "python_requests": 0.25, "curl": 0.2, "python_httpx": 0.15},
        "tail_stack_share": 0.1, "tiers": {"build": 0.6, "scale": 0.4}, "signup_channels": {"security_research": 1},
        "kyc": {"card": 0.6, "id_verified": 0.4}, "email_domain_classes": {"corporate": 0.5, "freemail": 0.5},
        "account_age_days": [1, 900], "session_length": 8, "session_gap_seconds": [5, 120], "diurnal": "office",
        "template_families": {"redteam_jailbreak": 0.3, "redteam_injection": 0.25, "redteam_extraction": 0.2,
                              "redteam_refusal": 0.2, "redteam_reasoning_leak": 0.05},
        "family_per_session": True, "thinking": 0.3, "models": {"large": 0.6, "medium": 0.3, "small": 0.1},
        "new_model_adoption": {"fraction": 0.7, "within_hours": 4}, "output_tokens": [30, 1500],
        "context_tokens": [0, 3000],
    },
    # an evaluation company: client-project orgs, cloud egress, one corporate card, benchmark and grading sweeps
    "eval_vendor": {
        "org_per_account": 0.0, "orgs": 3, "card_scope": "population", "shared_payment_fraction": 1.0,
        "nat_ips": 3, "countries": {"US": 3, "GB": 1, "DE": 1}, "asn_types": {"cloud": 0.8, "datacenter": 0.2},
        "v6_share": 0.0, "access_paths": {"api": 1}, "stacks": {"python_sdk": 0.6, "python_httpx": 0.4},
        "tiers": {"scale": 0.6, "enterprise": 0.4}, "signup_channels": {"enterprise": 0.5, "startup": 0.5},
        "kyc": {"id_verified": 0.6, "card": 0.4}, "email_domain_classes": {"corporate": 1},
        "account_age_days": [90, 1200], "activity_sigma": 0.5, "session_length": 150,
        "session_gap_seconds": [0.5, 4], "diurnal": "batch", "multi_turn": False, "family_per_session": True,
        "template_families": {"bench_cot": 1.0, "bench_math": 0.4, "bench_mc": 0.4, "judge_rubric": 0.8,
                              "judge_pairwise": 0.8},
        "system_prompts": 2, "system_prompt_share": 0.5, "thinking": 0.5,
        "models": {"large": 0.5, "medium": 0.3, "small": 0.2}, "output_tokens": [50, 2500],
        "thinking_tokens": [200, 8000], "context_tokens": [200, 3000], "cache_read_fraction": 0.3,
        "new_model_adoption": {"fraction": 0.5, "within_hours": 6}, "keys_per_account": [2, 6],
        "release_burst": {"share": 0.7, "requests": [200, 1500], "hours": 6, "gap_seconds": [0.5, 3],
                          "new_model_share": 0.95, "thinking": 0.9, "template_families": _BENCH_SWEEP},
    },
    # launch day of an open-source agent framework: developers sign up to try it, each their own org, card and
    # machine (a cloud box or a home line), all running the framework's system prompt with its tools
    "agent_launch": {
        "org_per_account": 1.0, "card_scope": "account", "no_card_fraction": 0.3,
        "countries": {"US": 4, "GB": 1, "DE": 1, "IN": 2, "BR": 1, "CA": 1, "FR": 1, "JP": 1},
        "asn_types": {"cloud": 0.6, "residential": 0.4}, "v6_share": 0.05,
        "access_paths": {"api": 0.5, "ide_agent": 0.5},
        "stacks": {"node_sdk": 0.5, "python_sdk": 0.4, "python_httpx": 0.1}, "tail_stack_share": 0.05,
        "tiers": {"free": 0.5, "build": 0.5}, "signup_channels": {"standard": 0.8, "startup": 0.2},
        "kyc": {"card": 0.7, "email": 0.3}, "email_domain_classes": {"freemail": 0.55, "corporate": 0.4,
                                                                     "disposable": 0.05},
        "account_age_days": [0.01, 3], "session_length": 15, "session_gap_seconds": [3, 60], "diurnal": "human",
        "template_families": {"agent_task": 1.0, "dev_question": 0.3}, "followup_family": "agent_followup",
        "system_prompts": 1, "system_prompt_share": 1.0, "thinking": 0.4, "tools": [5, 25],
        "models": {"large": 0.6, "medium": 0.4}, "output_tokens": [60, 3000], "context_tokens": [2000, 60000],
        "cache_read_fraction": 0.8,
    },
    # a startup's engineers behind the company's commercial VPN, which hands out one of its exits (a dozen IP
    # blocks of a VPN provider) per connection: new accounts, each their own org, on team cards, coding work
    # through the company's agent tooling (one system prompt)
    "vpn_team": {
        "org_per_account": 1.0, "card_scope": "groups", "card_shared_by": [3, 8], "shared_payment_fraction": 0.8,
        "no_card_fraction": 0.3, "nat_ips": 12, "exit_per_session": True,
        "countries": {"US": 3, "GB": 1, "DE": 1, "NL": 1, "SE": 1, "CA": 1}, "asn_types": {"vpn": 1.0},
        "v6_share": 0.0, "access_paths": {"api": 0.6, "ide_agent": 0.4},
        "stacks": {"python_sdk": 0.5, "node_sdk": 0.4, "python_httpx": 0.1}, "tail_stack_share": 0.05,
        "tiers": {"build": 0.6, "scale": 0.4}, "signup_channels": {"startup": 0.6, "standard": 0.4},
        "kyc": {"card": 0.8, "email": 0.2}, "email_domain_classes": {"corporate": 0.6, "freemail": 0.4},
        "account_age_days": [1, 45], "session_length": 12, "session_gap_seconds": [3, 60], "diurnal": "office",
        "template_families": {"agent_task": 1.0, "dev_question": 0.6}, "followup_family": "agent_followup",
        "system_prompts": 1, "system_prompt_share": 0.7, "thinking": 0.4, "tools": [5, 25],
        "models": {"large": 0.6, "medium": 0.4}, "output_tokens": [60, 3000], "context_tokens": [2000, 60000],
        "cache_read_fraction": 0.7,
    },
    # customers of a hosted agent product that calls the API with each customer's own key (bring your own key)
    # from the vendor's servers: established accounts of their own orgs and cards, all on the product's one
    # system prompt with tools, every session leaving from any of the vendor's egress addresses (`nat_ips` of
    # one cloud per site; `labs` sites: a vendor on one or two clouds), so each customer rotates through
    # several hosting blocks that other customers use too, like a proxy pool's users
    "hosted_agent": {
        "labs": 1, "org_per_account": 1.0, "card_scope": "account", "no_card_fraction": 0.2, "nat_ips": 12,
        "exit_per_session": True, "countries": {"US": 4, "IE": 1, "DE": 1, "SG": 1},
        "asn_types": {"cloud": 0.8, "datacenter": 0.2}, "v6_share": 0.0, "access_paths": {"api": 1},
        "stacks": {"node_sdk": 1.0}, "tiers": {"build": 0.5, "scale": 0.4, "enterprise": 0.1},
        "signup_channels": {"standard": 0.7, "startup": 0.3}, "kyc": {"card": 0.7, "id_verified": 0.3},
        "email_domain_classes": {"corporate": 0.55, "freemail": 0.45}, "account_age_days": [3, 900],
        "session_length": 10, "session_gap_seconds": [5, 90], "diurnal": "office",
        "template_families": {"agent_task": 1.0, "dev_question": 0.5}, "followup_family": "agent_followup",
        "system_prompts": 1, "system_prompt_share": 1.0, "thinking": 0.4, "tools": [5, 25],
        "models": {"large": 0.6, "medium": 0.4}, "output_tokens": [60, 3000], "context_tokens": [2000, 60000],
        "cache_read_fraction": 0.8,
    },
    # colleagues travelling together (a team to a conference or a client site; `labs` trips): established
    # accounts, each with a home line and a phone of home-country networks, that leave for the airport on the
    # trip's day (the airport's Wi-Fi, a residential ISP's line; a layover abroad for some trips, two for a few)
    # and end the day at a hotel abroad whose Wi-Fi all the trip's members share, alternating with their phones
    # roaming on the home carrier (a new address every session) or on a local eSIM. So each member sends from
    # several residential and mobile blocks of several operators in two to four countries within hours, like a
    # residential proxy pool's user, and a team on one agent tool shares its system prompt and often a card
    "travellers": {
        "labs": 1, "org_per_account": 0.3, "orgs": 1, "card_scope": "groups", "card_shared_by": [3, 10],
        "shared_payment_fraction": 0.5, "no_card_fraction": 0.1,
        "countries": {"US": 4, "GB": 1, "DE": 1, "FR": 1, "JP": 1, "IN": 1, "CA": 1, "NL": 1, "SG": 1},
        "asn_types": {"residential": 1.0}, "v6_share": 0.0,
        "access_paths": {"api": 0.45, "ide_agent": 0.3, "consumer_app": 0.25},
        "stacks": {"python_sdk": 0.5, "node_sdk": 0.4, "python_httpx": 0.1}, "tail_stack_share": 0.02,
        "tiers": {"build": 0.5, "scale": 0.3, "free": 0.2}, "signup_channels": {"standard": 0.7, "startup": 0.3},
        "kyc": {"card": 0.7, "id_verified": 0.2, "email": 0.1},
        "email_domain_classes": {"corporate": 0.6, "freemail": 0.4}, "account_age_days": [20, 1500],
        "session_length": 6, "session_gap_seconds": [5, 120], "diurnal": "human",
        "template_families": {"agent_task": 0.6, "dev_question": 0.8, "explain": 0.5, "writing": 0.4},
        "followup_family": "agent_followup", "system_prompts": 1, "system_prompt_share": 0.6, "thinking": 0.3,
        "tools": [0, 15], "models": {"large": 0.5, "medium": 0.5}, "output_tokens": [60, 2500],
        "context_tokens": [200, 30000], "cache_read_fraction": 0.6,
        "trip": {"depart_at": 2, "spread_hours": 2, "transit_hours": [2, 9], "layover": 0.3, "second_layover": 0.1,
                 "hotel_share": 0.55, "esim_share": 0.25},
    },
}
TRAP_KINDS = frozenset(TRAP_DEFAULTS)
# knobs only these kinds read (a scenario that sets them on another kind is rejected)
TRAP_KNOBS = ("labs", "org_per_account", "card_scope", "card_shared_by", "system_prompt_share",
              "family_per_session", "cohort", "exit_per_session", "trip")


def _carriers(country: str) -> list[Asn]:
    """The mobile operators of `country` itself (`asns` falls back to other countries' when it has none)."""
    return [a for a in asns("mobile", country) if a.country == country]


def split(rng: random.Random, total: int, parts: int) -> list[int]:
    """`total` accounts over `parts` sites, each within a quarter of the mean size (and at least 1)."""
    parts = max(1, min(parts, total))
    w = [0.75 + 0.5 * rng.random() for _ in range(parts)]
    sizes = [max(1, int(total * x / sum(w))) for x in w]
    i = 0
    while sum(sizes) < total:
        sizes[i % parts] += 1
        i += 1
    while sum(sizes) > total:
        j = max(range(parts), key=lambda k: sizes[k])
        sizes[j] -= 1
    return sizes


class TrapPopulation(BenignPopulation):
    KINDS = TRAP_DEFAULTS

    def __init__(self, spec: dict[str, Any], world, index: int) -> None:
        # a scenario's cohort, release_burst or trip overrides the kind's defaults key by key, not as a whole
        defaults = TRAP_DEFAULTS[spec["kind"]]
        spec = {**spec, **{k: {**defaults[k], **spec[k]} for k in ("cohort", "release_burst", "trip")
                           if k in spec and k in defaults}}
        super().__init__(spec, world, index)

    def label_fields(self, acct: Account) -> dict[str, Any]:
        return {**super().label_fields(acct), "site": acct.state["site"]}

    def pick_stack(self, access_path: str) -> Stack:
        """The population's SDKs on the API paths; the app and IDE paths keep their own clients."""
        if access_path in ("api", "cloud_marketplace") and "stacks" in self.spec:
            return pick_stack(self.rng, self.spec["stacks"], self.spec.get("tail_stack_share", 0.0))
        return pick_stack(self.rng, STACKS_BY_PATH[access_path], self.spec.get("tail_stack_share", 0.0))

    # -- sites, orgs, cards ------------------------------------------------------------------------------
    def build(self) -> None:
        s, rng, w = self.spec, self.rng, self.world
        fams, fam_w = self.families()
        pop_prompts = [f"{rng.getrandbits(64):016x}" for _ in range(s["system_prompts"])]
        shared_orgs = [self.ids("org") for _ in range(s.get("orgs") or 1)]
        pop_card = self.ids("pf")
        for site_no, size in enumerate(split(rng, s["accounts"], s.get("labs", 1))):
            site = self._site()
            cards = self._cards(size, pop_card)
            for j in range(size):
                own = rng.random() < s["org_per_account"]
                org_id = self.ids("org") if own else shared_orgs[j % len(shared_orgs)]
                acct = self._member(org_id, site["country"], cards[j])
                st = acct.state
                st["site"] = site_no
                st["org"] = {"nat": site["nat"]} if site["nat"] else {}
                st["activity"] = math.exp(rng.gauss(0, s["activity_sigma"]) - s["activity_sigma"] ** 2 / 2)
                st["prompts"] = pop_prompts if rng.random() < s.get("system_prompt_share", 1.0) else []
                st["family"] = None
                st["paths"] = [weighted(rng, s["access_paths"]) for _ in range(2)]
                st["devices"] = [self.ids("dev") for _ in range(rng.randint(1, 2))]
                st["stacks"] = {p: self.pick_stack(p) for p in dict.fromkeys(st["paths"])}
                st["home"] = site["nat"] or self._home(acct.country, {})
                if site.get("trip"):
                    self._traveller(acct, site["trip"])
                adopt = s["new_model_adoption"]
                st["adopt_ms"] = (w.release + int(rng.random() * adopt["within_hours"] * HOUR_MS)
                                  if rng.random() < adopt["fraction"] else None)
                st["pinned"] = site["pinned"]
                self.accounts.append(acct)
                self._plan_account(acct, fams, fam_w)

    def _site(self) -> dict[str, Any]:
        """One lab, classroom, venue or office: a country, the NAT of one ASN, the pinned cohort template."""
        s, rng = self.spec, self.rng
        country = weighted(rng, s["countries"])
        nat = None
        if s.get("nat_ips"):
            pool = asns(weighted(rng, s["asn_types"]), country)
            a = pool[int(rng.random() * len(pool))]
            nat = [(a, a.ip(rng, s["v6_share"])) for _ in range(s["nat_ips"])]
            # the site is where its network is: with no ASN of the type in the drawn country, `asns` falls
            # back to another country's, and the members' cards are billed where the site is
            country = a.country
        pinned = None
        cohort = s.get("cohort")
        if cohort:
            base = FAMILIES[weighted(rng, cohort["template_families"])]
            if cohort.get("pin_phrasing"):
                k = int(rng.random() * len(base.phrasings))
                base = Family(base.name, (base.phrasings[k],), base.fill, base.trace, base.images, base.tools)
            pinned = base
        trip = self._trip(country) if s.get("trip") else None
        return {"country": country, "nat": nat, "pinned": pinned, "trip": trip}

    # -- a trip's networks ------------------------------------------------------------------------------
    def _trip(self, home: str) -> dict[str, Any]:
        """A trip from `home`: when it leaves, how long it takes, the airport's, the layovers' and the hotel's
        Wi-Fi (one address of a residential ISP each, shared by the trip's members) and the destination."""
        s, rng, w = self.spec, self.rng, self.world
        t = s["trip"]
        others = {c: x for c, x in s["countries"].items() if c != home} or {"GB": 1.0}
        dest = weighted(rng, others)
        dep = w.start + int((t["depart_at"] + rng.random() * t.get("spread_hours", 0)) * HOUR_MS)
        lo, hi = t["transit_hours"]
        wifi = lambda cc: self._line("residential", cc)  # noqa: E731
        # a layover's airport Wi-Fi abroad, for `layover` of trips; a second for `second_layover` of those
        layovers = []
        if rng.random() < t["layover"]:
            third = {c: x for c, x in others.items() if c != dest}
            if third:
                first = weighted(rng, third)
                layovers.append(wifi(first))
                fourth = {c: x for c, x in third.items() if c != first}
                if fourth and t.get("second_layover", 0) and rng.random() < t["second_layover"]:
                    layovers.append(wifi(weighted(rng, fourth)))
        return {"depart": dep, "transit": int((lo + rng.random() * (hi - lo)) * HOUR_MS), "airport": wifi(home),
                "layovers": layovers, "hotel": wifi(dest), "dest": dest}

    def _line(self, asn_type: str, country: str) -> tuple[Asn, str]:
        pool = asns(asn_type, country)
        a = pool[int(self.rng.random() * len(pool))]
        return a, a.ip(self.rng)

    def _traveller(self, acct: Account, trip: dict[str, Any]) -> None:
        """A member's own networks on the trip: a home line and a phone at home (a carrier of the home
        country where it has one, else the home ISP's mobile brand), a local eSIM abroad for some, and its
        own moment of leaving (within half an hour of the trip's)."""
        s, rng, st = self.spec, self.rng, acct.state
        line = self._line("residential", acct.country)
        phones = _carriers(acct.country)
        phone = phones[int(rng.random() * len(phones))] if phones else line[0]
        local = _carriers(trip["dest"])
        esim = local[int(rng.random() * len(local))] if local and rng.random() < s["trip"]["esim_share"] else None
        st["home"] = [line]
        st["trip"] = {**trip, "depart": trip["depart"] + int(rng.random() * 1_800_000), "phone": phone,
                      "esim": esim}

    def _egress(self, acct: Account, t0: int) -> tuple[Asn, str]:
        """A traveller's network at `t0`: home (the line, or the phone), in transit (the airport's or the
        layover's Wi-Fi, or the phone roaming), abroad (the hotel's Wi-Fi, or the phone: roaming on the home
        carrier or on a local eSIM). A phone gets a new address every session. Others: as at home."""
        tr = acct.state.get("trip")
        if tr is None:
            return super()._egress(acct, t0)
        rng = self.rng
        dep, transit = tr["depart"], tr["transit"]
        if t0 < dep:
            if rng.random() < 0.7:
                return acct.state["home"][0]
            phone = tr["phone"]
        elif t0 < dep + transit:
            if rng.random() < 0.5:  # the transit in equal legs: the airport, then each layover
                stops = [tr["airport"], *tr["layovers"]]
                return stops[(t0 - dep) * len(stops) // transit]
            phone = tr["phone"]
        else:
            if rng.random() < self.spec["trip"]["hotel_share"]:
                return tr["hotel"]
            phone = tr["esim"] or tr["phone"]
        return phone, phone.ip(rng)

    def _cards(self, size: int, pop_card: str) -> list[str | None]:
        """A card (or None) per member of a site, per `card_scope`."""
        s, rng = self.spec, self.rng
        holders = [j for j in range(size) if rng.random() < s.get("shared_payment_fraction", 0.0)]
        out: list[str | None] = [None] * size
        scope = s["card_scope"]
        if scope == "population":
            for j in holders:
                out[j] = pop_card
        elif scope == "groups":
            lo, hi = s["card_shared_by"]
            groups: list[list[int]] = []
            i = 0
            while len(holders) - i >= lo:
                k = rng.randint(lo, hi)
                groups.append(holders[i:i + k])
                i += k
            rest = holders[i:]
            if groups:
                for n, j in enumerate(rest):  # too few left for a group: they join the existing ones
                    groups[n % len(groups)].append(j)
            elif len(rest) >= 2:
                groups.append(rest)
            for g in groups:
                card = self.ids("pf")
                for j in g:
                    out[j] = card
        return out

    def _member(self, org_id: str, country: str, card: str | None) -> Account:
        s, rng, w = self.spec, self.rng, self.world
        # a shared card (a PI's grant card, a company card) verifies its owner, not the member: the member keeps
        # the KYC level of their own signup; a member's own card is a card check
        kyc = weighted(rng, s["kyc"])
        if card is None and (kyc == "card" or (kyc == "id_verified" and rng.random() >= s["no_card_fraction"])):
            card = self.ids("pf")
        age_ms = int(loguniform(rng, *s["account_age_days"]) * 24 * HOUR_MS)
        lo, hi = s["keys_per_account"]
        keys = [self.ids("key") for _ in range(rng.randint(lo, hi))]
        return make_account(ids=self.ids, org_id=org_id, keys=keys, created_ms=w.start - max(age_ms, 60_000),
                            tier=weighted(rng, s["tiers"]), channel=weighted(rng, s["signup_channels"]), kyc=kyc,
                            payment_fp=card, billing_country=country,
                            email_class=weighted(rng, s["email_domain_classes"]), country=country)

    # -- timing: the regular diurnal use and the release sweep, plus the cohort's start ------------------
    def _plan_account(self, acct: Account, fams, fam_w) -> None:
        c = self.spec.get("cohort")
        if c:  # the account's first request is the cohort's: nothing of it before then
            spread = int(self.rng.random() * c.get("spread_minutes", 5) * 60_000)
            acct.state["not_before"] = self.world.start + int(c["at_hours"] * HOUR_MS) + spread
        super()._plan_account(acct, fams, fam_w)
        if c:
            self._plan_cohort(acct, c, fams, fam_w)

    def add(self, ts: int, session: Session, turn: int) -> None:
        if ts >= session.account.state.get("not_before", 0):
            super().add(ts, session, turn)

    def _plan_cohort(self, acct: Account, c: dict[str, Any], fams, fam_w) -> None:
        s, rng, w = self.spec, self.rng, self.world
        t0 = acct.state["not_before"]
        span = int(c.get("hours", 1) * HOUR_MS)  # the event's length: what falls after the window is not sent
        multi = s["multi_turn"]
        sess = self._session(acct, t0, [acct.state["pinned"]], [1.0], None)
        glo, ghi = c.get("gap_seconds", s["session_gap_seconds"])
        n = rng.randint(*c.get("first_requests", [1, 1]))
        for turn, t in enumerate(session_times(rng, t0, n, glo, ghi, w.end), 1):
            self.add(t, sess, turn if multi else 1)
        lo, hi = s["session_gap_seconds"]
        for _ in range(rng.randint(*c.get("sessions", [0, 0]))):
            t1 = t0 + int(rng.random() * span)
            sess = self._session(acct, t1, fams, fam_w, None)
            length = geometric(rng, s["session_length"])
            for turn, t in enumerate(session_times(rng, t1, length, lo, hi, w.end), 1):
                self.add(t, sess, turn if multi else 1)

    def _session(self, acct: Account, t0: int, fams, fam_w, role: str | None, harness: bool = False) -> Session:
        sess = super()._session(acct, t0, fams, fam_w, role, harness)
        if sess.family is None and self.spec.get("family_per_session"):
            sess.family = self.rng.choices(fams, fam_w)[0]  # one benchmark or one probe set per run
        return sess
