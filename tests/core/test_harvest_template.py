"""Harvest templates (`fingerprints.harvest_template`, app/detect/fingerprint.py): a prompt template whose
users' requests on it are mostly flagged, its users mostly new or unverified, links its risky users that
sent a flagged request on it, that request their own evidence (`OWN_HARVEST`), acted on as ring members
(challenge at most). Aged or verified users of such a template (a lab sweeping a benchmark that reads like
trace elicitation) are never linked through it; system prompts are judged by `campaign_prompt` instead."""

from __future__ import annotations

import orjson

from app.detect.cluster import RING, ClusterState, Member
from app.detect.fingerprint import FpState, popularity
from app.detect.messages import OWN_CONTENT, OWN_HARVEST, OWN_PAYMENT, Observation, Summary
from app.policy import attribution
from tests.core.test_clusters import (
    MIN,
    T0,
    Feed,
    account_decisions,
    observe_all,
    rules_doc,
    summary,
    trace,
    with_changes,
    young,
)

TEMPLATE = "m0:5eed1e55"


def hit_obs(acct: str, org: str, *, hit: bool, risky: bool = True, eligible: bool = True, own: int = 0,
            value: str = TEMPLATE, k: int = 0) -> Observation:
    s = summary(acct, org, eligible=eligible, risky=risky, own=own, n=3, flagged=int(hit))
    return Observation("template", value, T0 + k * MIN, f"ev-{acct}", s, hit)


def off():
    return with_changes(lambda doc: doc["fingerprints"].pop("harvest_template"))


def test_a_template_most_new_users_sent_flagged_requests_on_links_them_with_their_own_evidence(rules):
    items = [hit_obs(f"h{k}", f"org-{k}", hit=True, k=k) for k in range(6)]
    stage, links = observe_all(rules, items)
    st = stage.store.get(f"template:{TEMPLATE}")
    assert st.harvest and st.hits == 6
    code, figure, threshold, _ = popularity(st, "template", TEMPLATE, rules)
    assert (code, figure, threshold) == ("FP_HARVEST_TEMPLATE", 6, 6)
    # judged at its fifth user (min_accounts 5): the four waiting come along, then each new user
    assert {lk.summary.account_id for lk in links} == {f"h{k}" for k in range(6)}
    assert all(lk.harvest and not lk.strong for lk in links)
    # without the rule, nobody here has evidence of its own and a weak value links nobody
    assert observe_all(off(), items)[1] == []


def test_users_without_a_flagged_request_on_it_are_not_linked_and_a_mostly_unflagged_template_is_no_harvest(rules):
    # 5 of 6 flagged: a harvest template (0.8), the sixth not linked
    items = [hit_obs(f"h{k}", f"org-{k}", hit=k != 5, k=k) for k in range(6)]
    _, links = observe_all(rules, items)
    assert {lk.summary.account_id for lk in links} == {f"h{k}" for k in range(5)}
    # 4 of 6 flagged, the first two not: never 0.8 of its users, no harvest template, no links
    items = [hit_obs(f"h{k}", f"org-{k}", hit=k >= 2, k=k) for k in range(6)]
    stage, links = observe_all(rules, items)
    assert links == [] and not stage.store.get(f"template:{TEMPLATE}").harvest


def test_a_lab_of_unverified_but_not_risky_accounts_is_never_linked_through_it(rules):
    # aged students on the edu programme with email-only KYC: new-or-unverified for the template's figures,
    # not risky (not new, no disposable email, some KYC): every sweep request flagged, still nobody linked
    items = [hit_obs(f"lab{k}", f"org-lab{k}", hit=True, risky=False, k=k) for k in range(8)]
    stage, links = observe_all(rules, items)
    assert stage.store.get(f"template:{TEMPLATE}").harvest
    assert links == []
    # established (aged, verified) users make it popular: it judges nothing
    items = [hit_obs(f"est{k}", f"org-e{k}", hit=True, risky=False, eligible=False, k=k) for k in range(8)]
    stage, links = observe_all(rules, items)
    st = stage.store.get(f"template:{TEMPLATE}")
    assert links == [] and st.popular and not st.harvest


def test_a_system_prompt_and_a_single_org_are_no_harvest_template(rules):
    items = [hit_obs(f"h{k}", f"org-{k}", hit=True, k=k, value="sys:abc") for k in range(6)]
    stage, _ = observe_all(rules, items)
    assert not stage.store.get("template:sys:abc").harvest
    items = [hit_obs(f"h{k}", "org-one", hit=True, k=k) for k in range(6)]
    stage, links = observe_all(rules, items)
    assert links == [] and not stage.store.get(f"template:{TEMPLATE}").harvest


def test_state_round_trips_and_stores_hits_and_the_verdict_only_when_set(rules):
    items = [hit_obs(f"h{k}", f"org-{k}", hit=k != 5, k=k) for k in range(6)]
    stage, _ = observe_all(rules, items)
    st = stage.store.get(f"template:{TEMPLATE}")
    stored = orjson.loads(orjson.dumps(st.snapshot()))
    back = FpState.restore(stored)
    assert back.snapshot() == stored and back.hits == 5 and back.harvest
    # the stored form of tests/core/test_fp_stored_form.py plus what is set: a tenth member field for a
    # member with a flagged request on the value, an eleventh state field for the verdict
    assert stored[0] == 3 and len(stored) == 11 and stored[10] == 1
    assert [len(m) for m in stored[5].values()] == [10, 10, 10, 10, 10, 9]


def test_harvest_evidence_is_kept_by_the_cluster_and_capped_at_a_ring_members_action(rules):
    c = ClusterState("cl", T0)
    s = Summary("a", "org-a", T0, True, False, 3, 1, risky=True)
    c.add(s, 100, "template", "", T0, harvest=True)
    # a later link through another value does not carry it: kept anyway
    c.add(Summary("a", "org-a", T0, True, False, 4, 1, risky=True), 100, "ip_prefix", "", T0 + MIN)
    m = c.members["a"]
    assert m.harvest and m.evidence == OWN_HARVEST
    assert Member.restore(orjson.loads(orjson.dumps(m.snapshot()))).harvest
    at = rules.policy.attribution
    # strongly tied (a card) with only harvest evidence: a ring member's cap, not the block
    c.add(s, 100, "payment_fp", "payment_fp:card", T0 + 2 * MIN)
    tie = attribution.member_tie(m, set(), rules, OWN_HARVEST)
    assert (tie.kind, tie.cap, tie.code) == ("own_weak", at.own_weak_max_action, "OWN_EVIDENCE_WEAK_TIE")
    assert attribution.tie_cap(m, OWN_HARVEST, rules) == at.own_weak_max_action
    # with other own evidence besides, a strong tie gets the cluster's decision as before
    for ev in (OWN_HARVEST | OWN_CONTENT, OWN_HARVEST | OWN_PAYMENT):
        assert attribution.member_tie(m, set(), rules, ev).cap == at.own_strong_max_action
        assert attribution.tie_cap(m, ev, rules) == at.own_strong_max_action


def _slow_campaign(rules) -> list:
    """Eight new accounts of eight orgs, each with its own card and address, no system prompt: each sends
    three benign requests, then one trace-elicitation request on the campaign's template. None has content
    evidence of its own (one flagged request of four: own_content.min_flagged 2, ACCT_TRACE_ELICIT from 0.3)."""
    feed = Feed(rules)
    outs = []
    for r in range(4):
        for k in range(8):
            req = trace(100 + r * 10 + k) if r == 3 else {"prompt": f"Plan a weekend trip number {r}{k} to the coast"}
            outs.append(feed(f"sc{k}", f"org-sc{k}", young(f"card-sc{k}"), client={"ip": f"198.51.{k}.7"},
                             request=req))
    return feed, outs


def test_a_slow_campaign_of_one_flagged_request_per_account_forms_a_ring_and_is_challenged_at_most(rules):
    feed, outs = _slow_campaign(rules)
    c = feed.cluster_of("sc7")
    assert c is not None and c.kind == RING
    assert all(m.own & OWN_CONTENT == 0 and m.harvest for m in c.members.values())
    decided = account_decisions(outs)
    assert set(decided) == {f"sc{k}" for k in range(8)} and set(decided.values()) <= {"throttle", "challenge"}
    reasons = {r for o in outs for d in o.decisions for r in d.reasons}
    assert "OWN_EVIDENCE_WEAK_TIE" in reasons and all(d.scope == "account" for o in outs for d in o.decisions)
    # the same traffic without the rule: nobody is linked, nobody is acted on
    assert account_decisions(_slow_campaign(off())[1]) == {}


def test_rules_validation_of_the_harvest_template():
    import pytest

    from app.errors import RulesError
    from app.rules.load import compile_rules

    for bad in ({"min_accounts": 1, "min_hit_share": 0.8, "min_young_share": 0.6},
                {"min_accounts": 5, "min_hit_share": 0.8, "min_young_share": 0.5}):
        doc = rules_doc()
        doc["fingerprints"]["harvest_template"] = bad
        with pytest.raises(RulesError):
            compile_rules(doc, "<test>")
    doc = rules_doc()
    doc["fingerprints"]["harvest_template"]["min_accounts"] = 0
    assert compile_rules(doc, "<test>").fingerprints.harvest_template is None
