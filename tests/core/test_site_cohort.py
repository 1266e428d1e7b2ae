"""A cohort at one site (`policy.attribution.site_cohort`): a community most of whose members send from one IP
block that is not hosting egress (a hackathon at its venue, a class on its campus, new hires in their office)
is not decided, even when a few of its members have evidence of their own; those are judged on their own
behaviour. Not when a quarter or more of its members are throwaway accounts (a card ring's bought accounts
behind one line), nor when the shared block is hosting egress (a campaign's accounts on one cloud machine),
nor when its members are spread over many networks (a campaign on a proxy pool)."""

from __future__ import annotations

import pytest

from app.detect.cluster import ClusterState
from app.detect.messages import Summary
from app.errors import RulesError
from app.policy import attribution
from app.rules.load import compile_rules
from tests.core.test_clusters import T0, Feed, rules_doc, with_changes, young
from tests.core.test_harness_ring import member_decisions
from tests.traffic import TRACE_PROMPTS

STARTER = "starter-kit-1"
CODING = "Write unit tests with pytest for the parse_ticket function in the starter repo ({k}, {r})."


def hackathon(rules, n: int = 12, curious: frozenset[int] = frozenset({3, 7}), requests: int = 6,
              venue: bool = True, asn_type: str = "residential", disposable: frozenset[int] = frozenset()):
    """`n` new accounts of as many orgs, email KYC, on the organisers' starter-kit system prompt with tools, in
    turns of one request each; members in `curious` ask for the model's hidden reasoning instead of coding.
    `venue`: all behind the venue's one address, else each from its own network."""
    feed, outs = Feed(rules), []
    for r in range(requests):
        for k in range(n):
            acct = {**young(), "email_domain_class": "disposable"} if k in disposable else young()
            ip = "198.51.100.7" if venue else f"{81 + k}.{k}.9.7"
            prompt = TRACE_PROMPTS[(k + r) % 3].format(n=17 + r) if k in curious else CODING.format(k=k, r=r)
            outs.append(feed(f"h{k}", f"org-{k}", acct, client={"ip": ip, "asn_type": asn_type, "asn": 64500 + k},
                             request={"system_prompt_hash": STARTER, "tools": 3, "prompt": prompt}))
    return feed, outs


def _gate_codes(outs) -> set[str]:
    return {r.code for o in outs for a in o.alerts if a.scope == "cluster" for r in a.reasons
            if r.code.startswith("NOT_DECIDED")}


def undecided_cohort(feed, outs, code: str, acct: str):
    """The community of `acct` after `outs`: nobody was acted on, and its cluster alerts said why (`code`)."""
    assert member_decisions(outs) == {}
    assert not any(d.scope == "account" for o in outs for d in o.decisions)
    assert code in _gate_codes(outs)
    return feed.cluster_of(acct)


def test_the_packaged_rules_hold_cohorts_of_two_on_one_block_with_few_throwaways(rules):
    at = rules.policy.attribution
    assert (at.site_min_members, at.site_min_share, at.site_max_throwaway_share) == (2, 0.5, 0.25)


def test_a_hackathon_whose_two_curious_participants_ask_for_hidden_reasoning_is_not_decided(rules):
    feed, outs = hackathon(rules)
    c = undecided_cohort(feed, outs, "NOT_DECIDED_SITE_COHORT", "h0")
    assert len(c.members) == 12 and attribution.site_cohort(c, rules) == 12
    # the two have evidence of their own: it is the site, not their behaviour, that keeps the cohort undecided
    view = attribution.view(c, rules)
    assert {a for a, m in c.members.items() if attribution.member_evidence(c, m, view)} == {"h3", "h7"}


def test_without_the_rule_the_hackathon_is_decided_and_its_members_reached_by_association():
    off = with_changes(lambda d: d["policy"]["attribution"].update(site_cohort={"min_members": 0, "min_share": 0.5}))
    _, outs = hackathon(off)
    assert len(member_decisions(outs)) == 12
    ties = {d.value: {"OWN_EVIDENCE", "ASSOCIATION"} & set(d.reasons) for o in outs for d in o.decisions
            if d.scope == "account"}
    assert {a for a, t in ties.items() if t == {"OWN_EVIDENCE"}} == {"h3", "h7"}
    assert {a for a, t in ties.items() if t == {"ASSOCIATION"}} == {f"h{k}" for k in range(12)} - {"h3", "h7"}


def test_the_same_cohort_spread_over_its_members_own_networks_is_no_site(rules):
    feed, outs = hackathon(rules, venue=False)
    assert attribution.site_cohort(feed.cluster_of("h0"), rules) == 0
    assert "NOT_DECIDED_SITE_COHORT" not in _gate_codes(outs)


def test_one_hosting_address_is_no_site(rules):
    # a campaign's accounts behind one cloud machine: the block is hosting egress
    feed, _ = hackathon(rules, asn_type="cloud")
    c = feed.cluster_of("h0")
    assert c.blocks and attribution.site_cohort(c, rules) == 0


def test_throwaway_accounts_behind_one_line_are_no_site(rules):
    # a quarter of the members on disposable emails: bought accounts, not participants
    feed, _ = hackathon(rules, disposable=frozenset({0, 1, 2}))
    assert attribution.site_cohort(feed.cluster_of("h0"), rules) == 0
    feed, _ = hackathon(rules, disposable=frozenset({0, 1}))  # two of twelve: still a cohort
    assert attribution.site_cohort(feed.cluster_of("h0"), rules) == 12


def _community(nets: list[int], blocks: list[int] | None = None, throwaway: int = 0) -> ClusterState:
    c = ClusterState("c", T0)
    for k, net in enumerate(nets):
        s = Summary(f"a{k}", f"o{k}", T0, True, True, 3, 0, risky=True, throwaway=k < throwaway,
                    hosting_block=(blocks or [0] * len(nets))[k], net=net, asn=64500 + k)
        c.add(s, 64, "harness", "template:sys:h", T0)
    return c


@pytest.mark.parametrize(("nets", "blocks", "throwaway", "site"), [
    ([7, 7, 7], None, 0, 3),               # three on one block
    ([7, 8], None, 0, 0),                  # one on it: under min_members
    ([7, 7, 8], None, 0, 2),               # two of three
    ([7, 7, 7, 8, 9, 10], None, 0, 3),     # half of them
    ([7, 7, 7, 8, 9, 10, 11], None, 0, 0),  # under half
    ([7, 7, 7], [7, 7, 7], 0, 0),          # a hosting block
    ([7, 7, 7, 7], None, 1, 0),            # a quarter throwaway
    ([7, 7, 7, 7, 7], None, 1, 5),         # a fifth throwaway
    ([7, 7, 8, 8], [7, 7, 0, 0], 0, 2),    # two blocks of two, one hosting: the other is a site ...
    ([8, 8, 7, 7], [0, 0, 7, 7], 0, 2),    # ... whichever the members came in first (no order to depend on)
])
def test_the_site_test(rules, nets, blocks, throwaway, site):
    assert attribution.site_cohort(_community(nets, blocks, throwaway), rules) == site


def test_a_ring_is_never_a_site_cohort(rules):
    c = _community([7, 7, 7])
    c.kind = "ring"
    assert attribution.site_cohort(c, rules) == 0


def test_the_knob_is_validated():
    doc = rules_doc()
    doc["policy"]["attribution"]["site_cohort"] = {"min_members": 3, "min_share": 0}
    with pytest.raises(RulesError, match="min_share"):
        compile_rules(doc, "<test>")


def test_a_decision_made_before_the_community_turned_out_a_site_cohort_reaches_no_one_after(rules):
    # two new students of a lab, each with trace content, first seen from their homes, share a grant card: a
    # decided community. Then the lab's other students come in on the card from the campus address: once most
    # of the community sends from it, the live decision reaches none of them, and no new one is made
    feed = Feed(rules)
    outs = []
    for r in range(3):
        for k in range(2):
            outs.append(feed(f"s{k}", f"org-{k}", young("grant-1"), client={"ip": f"81.{k}.9.7"},
                             request={"prompt": TRACE_PROMPTS[(k + r) % 3].format(n=r)}))
    assert {d.value for o in outs for d in o.decisions if d.scope == "account"} == {"s0", "s1"}
    c = feed.cluster_of("s0")
    assert c.live is not None and attribution.view(c, rules).aged_cap is None
    later = [feed(f"s{k}", f"org-{k}", young("grant-1"), client={"ip": "128.32.47.9"}) for k in range(2, 7)]
    c = feed.cluster_of("s6")
    assert attribution.view(c, rules).aged_cap == attribution.COHORT
    reached = {d.value for o in later for d in o.decisions if d.scope == "account"}
    # s2 came while the campus was one block of three; from s3 on (two of four on it) nobody is reached
    assert reached == {"s2"}
    tie = attribution.member_tie(c.members["s6"], {"payment_fp:grant-1"}, rules, 0, attribution.COHORT)
    assert tie.cap is None and "cohort at one site" in tie.detail


def test_a_quiet_member_linked_later_brings_its_network():
    # the fingerprint stage keeps each member's latest IP block, so a member linked as a stub (its session over
    # when a second holder turned the card linking) counts for the site test; stored forms round-trip, and a
    # member stored before `net` restores with none
    from app.detect.fingerprint import FpMember, _stub

    m = FpMember(T0, "org-1", 1, 0, 1, 1, 0, 1, 0, 1, 0, 77)
    assert FpMember(*m.snapshot()).net == 77 and _stub("a", m).net == 77
    assert len(m.snapshot()) == 12
    old = FpMember(T0, "org-1", 1, 0, 1, 1, 0, 1, 0, 1, 5).snapshot()
    assert len(old) == 11 and FpMember(*old).net == 0
