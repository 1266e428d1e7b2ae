"""The benign traps have the structure users report, read back from the smoke day's events and labels."""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
import yaml

from app.sim import generator, scenario
from app.sim.infra import STACKS
from app.sim.scenario import ScenarioError
from app.sim.timing import HOUR_MS, parse_ts

DAY_MS = 24 * HOUR_MS
SMOKE = scenario.load("smoke")
RELEASE_MS = SMOKE.release_ms


def _by_kind(events: list[dict], labels: dict[str, dict], kind: str) -> list[dict]:
    out = [e for e in events if labels[e["account_id"]].get("kind") == kind]
    assert out, f"no events of kind {kind}"
    return out


def _accounts(evs: list[dict]) -> dict[str, dict]:
    """account id -> its first event (the account block is the same on every event of an account)."""
    out: dict[str, dict] = {}
    for e in evs:
        out.setdefault(e["account_id"], e)
    return out


def _age_days(e: dict) -> float:
    return (SMOKE.start_ms - parse_ts(e["account"]["created_at"])) / DAY_MS


def test_research_lab_students_share_the_campus_nat_and_grant_cards_across_orgs(smoke_events, smoke_labels):
    evs = _by_kind(smoke_events, smoke_labels, "research_lab")
    accts = _accounts(evs)
    spec = next(p for p in SMOKE.populations if p["kind"] == "research_lab")
    # one address per lab, classified like a university; different labs, different addresses
    ips_by_site: dict[int, set[str]] = defaultdict(set)
    for e in evs:
        ips_by_site[smoke_labels[e["account_id"]]["site"]].add(e["client"]["ip"])
        assert e["client"]["asn_type"] == "unknown"
    assert len(ips_by_site) == spec["labs"]
    assert all(len(ips) == 1 for ips in ips_by_site.values())
    assert len({ip for ips in ips_by_site.values() for ip in ips}) == spec["labs"]
    # every student is an account with its own org, edu signup and edu email, 3 weeks to 13 months old
    assert len({e["org_id"] for e in accts.values()}) == len(accts)
    assert all(e["account"]["signup_channel"] == "edu" and e["account"]["email_domain_class"] == "edu"
               for e in accts.values())
    assert all(21 <= _age_days(e) <= 400 for e in accts.values())
    kyc = Counter(e["account"]["kyc"] for e in accts.values())
    assert set(kyc) <= {"email", "card"} and kyc["email"] > kyc["card"] > 0
    # grant cards: each shared by several students of different orgs, all in one lab
    holders: dict[str, list[dict]] = defaultdict(list)
    for e in accts.values():
        if "payment_fp" in e["account"]:
            holders[e["account"]["payment_fp"]].append(e)
    shared = {c: es for c, es in holders.items() if len(es) >= 2}
    assert shared and max(len(es) for es in shared.values()) >= 3
    for es in shared.values():
        assert len({e["org_id"] for e in es}) == len(es)
        assert len({smoke_labels[e["account_id"]]["site"] for e in es}) == 1
    # a common SDK on the API path (a rare student brings another HTTP library)
    sdk = {STACKS["python_sdk"].ja4, STACKS["python_httpx"].ja4}
    ja4s: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        if e["client"]["access_path"] == "api":
            ja4s[e["account_id"]].add(e["client"]["ja4"])
    assert sum(j <= sdk for j in ja4s.values()) / len(ja4s) > 0.85


def test_research_lab_sweeps_the_new_model_with_thinking_right_after_the_release(smoke_events, smoke_labels):
    evs = _by_kind(smoke_events, smoke_labels, "research_lab")
    new = [e for e in evs if e["request"]["model"] == SMOKE.release_model]
    assert new and min(parse_ts(e["ts"]) for e in new) >= RELEASE_MS
    by_acct: dict[str, list[dict]] = defaultdict(list)
    for e in new:
        by_acct[e["account_id"]].append(e)
    sweeps = {a: es for a, es in by_acct.items() if len(es) >= 60}
    assert len(sweeps) >= 3
    for es in sweeps.values():
        ts = [parse_ts(e["ts"]) for e in es]
        assert ts[0] < RELEASE_MS + 4 * HOUR_MS
        assert len(es) <= 400 * 1.2  # 80-400 requests a sweep (plus a little ordinary use)
        gaps = sorted((b - a) / 1000 for a, b in itertools.pairwise(ts))
        assert 1 <= gaps[len(gaps) // 2] <= 10  # 1-10 s apart
    # extended thinking on for (nearly) every sweep
    swept = [e for es in sweeps.values() for e in es]
    assert sum(e["request"]["thinking"] for e in swept) / len(swept) > 0.7
    phrasings = Counter(e["request"]["prompt"][:12] for es in sweeps.values() for e in es)
    assert len(phrasings) >= 10  # many phrasings of the benchmark prompts, not one


@pytest.mark.parametrize(("kind", "spread_min"), [("classroom", 4), ("hackathon", 10)])
def test_classroom_and_hackathon_start_together_behind_one_address(smoke_events, smoke_labels, kind, spread_min):
    evs = _by_kind(smoke_events, smoke_labels, kind)
    accts = _accounts(evs)
    spec = next(p for p in SMOKE.populations if p["kind"] == kind)
    assert len({e["client"]["ip"] for e in evs}) == 1
    assert len({e["org_id"] for e in accts.values()}) == len(accts)  # each student its own org
    assert all(0 <= _age_days(e) <= 3 for e in accts.values())
    assert all(e["account"]["kyc"] == "email" and "payment_fp" not in e["account"] for e in accts.values())
    assert {e["account"]["email_domain_class"] for e in accts.values()} <= {"edu", "freemail"}
    assert {e["account"]["signup_channel"] for e in accts.values()} <= {"edu", "standard"}
    # every account's first request falls in the few minutes after the session or kickoff starts
    start = SMOKE.start_ms + int(spec["cohort"]["at_hours"] * HOUR_MS)
    firsts = [parse_ts(e["ts"]) for e in accts.values()]
    assert all(start <= t <= start + spread_min * 60_000 + 1000 for t in firsts)
    # ...from the same exercise or starter kit (students word the rest themselves)
    prefixes = ("sorry if this is a dumb question, ", "I'm stuck, ", "quick question: ")
    heads = set()
    for e in accts.values():
        p = e["request"]["prompt"]
        for pre in prefixes:
            p = p.removeprefix(pre)
        heads.add(p[:24])
    assert len(heads) == 1, heads
    assert len({e["request"]["prompt"] for e in accts.values()}) > len(accts) // 2


def test_classroom_shares_a_course_prompt_and_hackathon_a_starter_kit_prompt(smoke_events, smoke_labels):
    course = {e["request"].get("system_prompt_hash") for e in _by_kind(smoke_events, smoke_labels, "classroom")
              if e["client"]["access_path"] != "consumer_app"}
    assert len(course - {None}) == 1 and None in course  # a share of the class uses the course's prompt
    hack = _by_kind(smoke_events, smoke_labels, "hackathon")
    assert len({e["request"].get("system_prompt_hash") for e in hack}) == 1
    assert sum(e["request"]["tools"] > 0 for e in hack) / len(hack) > 0.9
    assert {e["client"]["access_path"] for e in hack} == {"api", "ide_agent"}


def test_onboarding_wave_is_one_corporate_card_over_new_accounts_and_several_orgs(smoke_events, smoke_labels):
    evs = _by_kind(smoke_events, smoke_labels, "onboarding_wave")
    accts = _accounts(evs)
    assert len({e["account"].get("payment_fp") for e in accts.values()}) == 1
    assert None not in {e["account"].get("payment_fp") for e in accts.values()}
    assert all(0 <= _age_days(e) <= 7 for e in accts.values())
    assert all(e["account"]["email_domain_class"] == "corporate" and e["account"]["kyc"] == "card"
               for e in accts.values())
    assert len({e["org_id"] for e in accts.values()}) >= 3  # org_per_account 0.5: own orgs and the company's
    assert 1 <= len({e["client"]["ip"] for e in evs}) <= 3
    assert len({e["request"].get("system_prompt_hash") for e in evs}) == 1
    ide = [e for e in evs if e["client"]["access_path"] == "ide_agent"]
    assert ide and all("device_id" in e["client"] for e in ide)


def test_security_research_probes_from_programme_accounts(smoke_events, smoke_labels):
    evs = _by_kind(smoke_events, smoke_labels, "security_research")
    accts = _accounts(evs)
    assert all(e["account"]["signup_channel"] == "security_research" for e in accts.values())
    assert {e["account"]["kyc"] for e in accts.values()} <= {"card", "id_verified"}
    ages = [_age_days(e) for e in accts.values()]
    assert min(ages) < 60 < max(ages)  # new and aged accounts
    prompts = [e["request"]["prompt"] for e in evs]
    assert any("system prompt" in p or "instructions" in p for p in prompts)  # extraction attempts
    assert any("ignore all previous instructions" in p.lower() or "[system]" in p for p in prompts)  # injection


def test_eval_vendor_is_a_few_orgs_on_one_card_in_the_cloud_sweeping_after_the_release(smoke_events,
                                                                                        smoke_labels):
    evs = _by_kind(smoke_events, smoke_labels, "eval_vendor")
    accts = _accounts(evs)
    spec = next(p for p in SMOKE.populations if p["kind"] == "eval_vendor")
    assert len({e["org_id"] for e in accts.values()}) == spec["orgs"]
    assert len({e["account"]["payment_fp"] for e in accts.values()}) == 1
    assert {e["client"]["asn_type"] for e in evs} <= {"cloud", "datacenter"}
    assert all(e["account"]["kyc"] in ("card", "id_verified") and _age_days(e) >= 90 for e in accts.values())
    after = [e for e in evs if e["request"]["model"] == SMOKE.release_model]
    assert after and min(parse_ts(e["ts"]) for e in after) >= RELEASE_MS
    # sweeps on the new model within hours of the release
    early = Counter(e["account_id"] for e in after if parse_ts(e["ts"]) < RELEASE_MS + 6 * HOUR_MS)
    sweepers = {a for a, n in early.items() if n >= 100}
    assert sweepers
    # a sweep is one harness run: one thinking setting throughout, on for most runs (one here is enough)
    thinking = {a: {e["request"]["thinking"] for e in after if e["account_id"] == a
                    and parse_ts(e["ts"]) < RELEASE_MS + 6 * HOUR_MS} for a in sweepers}
    assert all(len(t) == 1 for t in thinking.values()) and any(True in t for t in thinking.values())


def test_trap_labels_carry_kind_size_and_site(smoke_labels):
    sizes = {p["name"]: p["accounts"] for p in SMOKE.populations}
    traps = [v for v in smoke_labels.values() if v.get("kind") in ("research_lab", "classroom", "hackathon",
                                                                    "onboarding_wave", "security_research",
                                                                    "eval_vendor")]
    assert traps and all(v["size"] == sizes[v["group"]] and isinstance(v["site"], int) for v in traps)
    campaigns = [v for v in smoke_labels.values() if v["cls"] == "campaign"]
    assert all("archetype" in v and v["size"] >= 1 for v in campaigns)
    assert all("kind" in v for v in smoke_labels.values() if v["cls"] == "benign")


def _smoke_doc() -> dict:
    return yaml.safe_load((scenario.SCENARIO_DIR / "smoke.yaml").read_text(encoding="utf-8"))


def _index(doc: dict, kind: str) -> int:
    return next(i for i, p in enumerate(doc["populations"]) if p["kind"] == kind)


@pytest.mark.parametrize(("edit", "where"), [
    (lambda d: d["populations"][0].__setitem__("labs", 3), "populations[0].labs"),
    (lambda d: d["populations"][0].__setitem__("cohort", {"at_hours": 1}), "populations[0].cohort"),
    (lambda d: d["populations"][_index(d, "research_lab")].__setitem__("labs", 500),
     "populations[{research_lab}].labs"),
    (lambda d: d["populations"][_index(d, "classroom")].__setitem__("cohort", {"at_hours": 30}),
     "populations[{classroom}].cohort.at_hours"),
    (lambda d: d["populations"][_index(d, "hackathon")]["cohort"].__setitem__("template_families", {"nope": 1}),
     "populations[{hackathon}].cohort.template_families.nope"),
    (lambda d: d["populations"][_index(d, "classroom")].__setitem__("labs", 2), "populations[{classroom}].labs"),
    (lambda d: d["populations"][_index(d, "onboarding_wave")].__setitem__("org_per_account", 1.5),
     "populations[{onboarding_wave}].org_per_account"),
    (lambda d: d["populations"][_index(d, "security_research")].__setitem__("card_scope", "family"),
     "populations[{security_research}].card_scope"),
])
def test_trap_knobs_are_validated(tmp_path: Path, edit, where: str) -> None:
    doc = _smoke_doc()
    edit(doc)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    where = where.format(**{k: _index(doc, k) for k in ("research_lab", "classroom", "hackathon",
                                                         "onboarding_wave", "security_research")})
    with pytest.raises(ScenarioError) as info:
        scenario.load(str(path))
    assert f": {where}" in str(info.value), str(info.value)


def _alone(population: dict, seed: int) -> tuple[list[dict], dict[str, dict]]:
    """The events of a world holding only `population`, and its accounts (first event each)."""
    doc = _smoke_doc()
    doc["populations"] = [population]
    doc["campaigns"] = []
    sim = generator.build(scenario.from_dict(doc, "<test>"), seed)
    evs = [json.loads(data) for _, _, data in sim.events()]
    return evs, _accounts(evs)


def test_an_agent_launch_crowd_is_new_developers_each_on_their_own_line_on_one_system_prompt() -> None:
    evs, accts = _alone({"name": "launch_crowd", "kind": "agent_launch", "accounts": 40,
                         "requests_per_account_hour": 6}, 3)
    assert len(accts) >= 20
    # each its own org and its own card (or none), new, consumer or work email, standard or startup signup
    assert len({e["org_id"] for e in accts.values()}) == len(accts)
    cards = [e["account"].get("payment_fp") for e in accts.values()]
    assert len({c for c in cards if c}) == sum(1 for c in cards if c) > 0 and None in cards
    assert all(0 <= _age_days(e) <= 3 for e in accts.values())
    assert {e["account"]["email_domain_class"] for e in accts.values()} <= {"freemail", "corporate", "disposable"}
    # no shared NAT: each on its own cloud machine or home line, so its addresses are its own
    owners: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        owners[e["client"]["ip"]].add(e["account_id"])
    assert all(len(a) == 1 for a in owners.values())
    assert {e["client"]["asn_type"] for e in evs} <= {"cloud", "residential"}
    # all running the framework's one system prompt, with tools
    assert len({e["request"]["system_prompt_hash"] for e in evs}) == 1
    assert all(e["request"]["tools"] >= 5 for e in evs if e["request"]["turn"] == 1)


def test_a_vpn_team_leaves_through_its_vpns_exits_one_per_session_on_team_cards() -> None:
    evs, accts = _alone({"name": "vpn_startup", "kind": "vpn_team", "accounts": 30, "nat_ips": 10,
                         "requests_per_account_hour": 4}, 5)
    assert len(accts) >= 20
    assert len({e["org_id"] for e in accts.values()}) == len(accts)
    # team cards: some card paid for by three or more of them
    holders: dict[str, set[str]] = defaultdict(set)
    for a, e in accts.items():
        if e["account"].get("payment_fp"):
            holders[e["account"]["payment_fp"]].add(a)
    assert max(len(h) for h in holders.values()) >= 3
    # one VPN provider, ten exits, and an account that sends several sessions leaves through several of them
    assert {e["client"]["asn_type"] for e in evs} == {"vpn"} and len({e["client"]["asn"] for e in evs}) == 1
    assert len({e["client"]["ip"] for e in evs}) == 10
    exits: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        exits[e["account_id"]].add(e["client"]["ip"])
    assert max(len(x) for x in exits.values()) >= 3


def test_hosted_agent_customers_rotate_through_their_vendors_egress_of_one_cloud_per_site() -> None:
    evs, accts = _alone({"name": "byok_tool_users", "kind": "hosted_agent", "accounts": 40, "nat_ips": 20,
                         "labs": 2, "requests_per_account_hour": 5}, 7)
    assert len(accts) >= 30
    # each its own org, its own card (or none), card or ID KYC, no disposable email, mostly aged
    assert len({e["org_id"] for e in accts.values()}) == len(accts)
    cards = [e["account"].get("payment_fp") for e in accts.values() if e["account"].get("payment_fp")]
    assert len(set(cards)) == len(cards) > 0
    assert {e["account"]["kyc"] for e in accts.values()} <= {"card", "id_verified"}
    assert "disposable" not in {e["account"]["email_domain_class"] for e in accts.values()}
    assert sum(_age_days(e) >= 14 for e in accts.values()) > len(accts) / 2
    # the vendor's egress: hosting addresses of at most two operators (two sites), 20 addresses each at most
    assert {e["client"]["asn_type"] for e in evs} <= {"cloud", "datacenter"}
    assert len({e["client"]["asn"] for e in evs}) <= 2
    assert len({e["client"]["ip"] for e in evs}) <= 40
    # a customer with several sessions leaves through several of the vendor's blocks, which others use too
    blocks: dict[str, set[str]] = defaultdict(set)
    users: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        b = e["client"]["ip"].rsplit(".", 1)[0]
        blocks[e["account_id"]].add(b)
        users[b].add(e["account_id"])
    assert max(len(b) for b in blocks.values()) >= 3
    assert all(len(u) >= 2 for u in users.values())
    # one system prompt, the product's, with tools, on the API
    assert len({e["request"]["system_prompt_hash"] for e in evs}) == 1
    assert {e["client"]["access_path"] for e in evs} == {"api"}


def test_travellers_go_from_home_networks_through_an_airport_to_a_shared_hotel_abroad() -> None:
    doc = _smoke_doc()
    trip = {"depart_at": 4, "spread_hours": 1, "transit_hours": [3, 4], "layover": 1.0, "second_layover": 0.0,
            "hotel_share": 0.6, "esim_share": 0.0}
    evs, accts = _alone({"name": "away_team", "kind": "travellers", "accounts": 24, "labs": 2,
                         "requests_per_account_hour": 4, "trip": trip}, 5)
    assert doc["duration_hours"] > 12 and len(accts) >= 20
    # established customers: card or ID KYC for most, none disposable, at least 20 days old
    assert all(_age_days(e) >= 20 for e in accts.values())
    assert "disposable" not in {e["account"]["email_domain_class"] for e in accts.values()}
    # home and phone networks only, in a home country, a layover's and a destination's
    assert {e["client"]["asn_type"] for e in evs} <= {"residential", "mobile"}
    countries: dict[str, set[str]] = defaultdict(set)
    blocks: dict[str, set[str]] = defaultdict(set)
    by_block: dict[str, set[str]] = defaultdict(set)
    start = parse_ts(doc["start"])
    for e in evs:
        a = e["account_id"]
        b = e["client"]["ip"].rsplit(".", 1)[0]
        blocks[a].add(b)
        by_block[b].add(a)
        countries[a].add(e["client"]["country"])
        home = e["account"]["billing_country"]
        if parse_ts(e["ts"]) < start + 4 * HOUR_MS:  # before the trip leaves: at home
            assert e["client"]["country"] == home
    # abroad by the end: most travellers sent from two or three countries, through several blocks
    assert sum(len(c) >= 2 for c in countries.values()) > len(accts) / 2
    assert max(len(c) for c in countries.values()) == 3
    assert all(len(c) <= 3 for c in countries.values())
    assert max(len(b) for b in blocks.values()) >= 5
    # the hotel's and the airports' Wi-Fi are shared by the trip's members: two trips, few such blocks
    shared = [b for b, users in by_block.items() if len(users) >= 5]
    assert 2 <= len(shared) <= 6
    # a team: one system prompt for those who use it, at most two orgs' worth of shared orgs
    assert len({e["request"].get("system_prompt_hash") for e in evs} - {None}) <= 2


def test_a_trip_with_two_layovers_passes_through_four_countries() -> None:
    trip = {"depart_at": 2, "spread_hours": 0, "transit_hours": [6, 6], "layover": 1.0, "second_layover": 1.0,
            "hotel_share": 0.6, "esim_share": 0.0}
    evs, _ = _alone({"name": "away_team", "kind": "travellers", "accounts": 12, "labs": 1,
                     "requests_per_account_hour": 8, "trip": trip}, 5)
    countries: dict[str, set[str]] = defaultdict(set)
    for e in evs:
        if e["client"]["asn_type"] == "residential":
            countries[e["account_id"]].add(e["client"]["country"])
    # home, two layovers, the destination: the trip's airports and hotel, the same four for everyone (a member
    # who sent nothing from a leg's Wi-Fi has fewer)
    assert len(set().union(*countries.values())) == 4
    assert max(len(c) for c in countries.values()) >= 3


def test_a_trip_knob_is_checked() -> None:
    doc = _smoke_doc()
    doc["populations"] = [{"name": "away_team", "kind": "travellers", "accounts": 10,
                           "requests_per_account_hour": 1, "trip": {"depart_at": 999}}]
    with pytest.raises(ScenarioError, match=r"trip\.depart_at"):
        scenario.from_dict(doc, "<test>")
    doc["populations"][0]["trip"] = {"depart_at": 1, "transit_hours": [5, 2]}
    with pytest.raises(ScenarioError, match=r"trip\.transit_hours"):
        scenario.from_dict(doc, "<test>")
    doc["populations"][0] = {"name": "lab", "kind": "classroom", "accounts": 10, "requests_per_account_hour": 1,
                             "trip": {"depart_at": 1}}
    with pytest.raises(ScenarioError, match="trip"):
        scenario.from_dict(doc, "<test>")
