"""A community of aged, verified accounts decided on its members' spread networks
(`policy.attribution.spread_networks`). A lab's students share grant cards across their own orgs and the campus
NAT, and their CoT-faithfulness sweeps read as trace elicitation: never decided (`NOT_DECIDED_ESTABLISHED`). A
campaign's aged card holders of different orgs send the same content, each from its own proxy exit: decided,
and its aged members reached at most as `aged_max_action` (a challenge), never blocked. An eval vendor's
accounts on several blocks of one cloud operator are one site: never decided (`min_asns`)."""

from __future__ import annotations

import pytest

from app.detect.cluster import ClusterState, Member
from app.detect.messages import OWN_CONTENT, Summary
from app.errors import RulesError
from app.policy import attribution
from app.rules.load import compile_rules
from tests.core.test_clusters import T0, Feed, aged, rules_doc, trace, with_changes


def students(rules, *, campus: bool, n: int = 10, rounds: int = 4) -> tuple[Feed, list]:
    """`n` aged accounts of as many orgs (edu email, card KYC) on one shared card, each sending `rounds`
    trace-eliciting prompts: behind one campus address (`campus`) or each from its own residential line
    (three ISPs)."""
    feed, outs = Feed(rules), []
    for r in range(rounds):
        for k in range(n):
            client = ({"ip": "192.0.2.10", "asn": 3, "asn_type": "unknown"} if campus else
                      {"ip": f"81.{k}.{r}.7", "asn": (7922, 7018, 701)[k % 3], "asn_type": "residential"})
            outs.append(feed(f"s{k}", f"org-{k}", {**aged("grant-card"), "email_domain_class": "edu"},
                             client=client, request=trace(r * 10 + k)))
    return feed, outs


def vendor(rules, *, blocks: int, n: int = 8, rounds: int = 4) -> tuple[Feed, list]:
    """An eval vendor: `n` aged accounts of four client orgs on the vendor's card, corporate email, sending
    benchmark prompts that read as trace elicitation from `blocks` NAT addresses of one cloud operator (each
    in its own /24)."""
    feed, outs = Feed(rules), []
    for r in range(rounds):
        for k in range(n):
            client = {"ip": f"136.4.{100 + (k + r) % blocks}.9", "asn": 8075, "asn_type": "cloud"}
            outs.append(feed(f"v{k}", f"client-{k % 4}", {**aged("vendor-card"), "email_domain_class": "corporate"},
                             client=client, request=trace(r * 10 + k)))
    return feed, outs


def decisions(outs) -> dict[str, str]:
    return {d.value: d.action for o in outs for d in o.decisions if d.scope == "account"}


def cluster_codes(outs) -> list[list[str]]:
    return [[r.code for r in a.reasons] for o in outs for a in o.alerts if a.scope == "cluster"]


def test_the_packaged_rules(rules):
    at = rules.policy.attribution
    assert (at.spread_min_members, at.spread_min_share, at.spread_max_block_share, at.spread_min_asns,
            at.spread_aged_max_action) == (2, 0.8, 0.2, 2, "challenge")
    assert (at.spread_pool_min_blocks, at.spread_pool_min_share) == (3, 0.8)


def test_a_lab_behind_its_campus_nat_is_never_decided_whatever_its_content(rules):
    feed, outs = students(rules, campus=True)
    assert decisions(outs) == {}
    assert cluster_codes(outs)[-1][-1] == "NOT_DECIDED_ESTABLISHED"
    c = feed.cluster_of("s0")
    assert (c.netted, len(c.nets)) == (10, 1)
    assert not attribution.spread_networks(c, rules)


def test_aged_card_holders_each_on_their_own_network_are_decided_and_reached_at_most_as_a_challenge(rules):
    feed, outs = students(rules, campus=False)
    got = decisions(outs)
    assert set(got) == {f"s{k}" for k in range(10)}
    assert set(got.values()) == {"challenge"}
    assert "NOT_DECIDED_ESTABLISHED" not in cluster_codes(outs)[-1]
    c = feed.cluster_of("s0")
    assert attribution.spread_networks(c, rules)
    assert attribution.view(c, rules).aged_cap == "challenge"


@pytest.mark.parametrize("blocks", [2, 8])
def test_an_eval_vendor_on_blocks_of_one_cloud_operator_is_never_decided(rules, blocks):
    """Its accounts send from as many blocks as members (8) or from two: one operator either way."""
    feed, outs = vendor(rules, blocks=blocks)
    assert decisions(outs) == {}
    assert cluster_codes(outs)[-1][-1] == "NOT_DECIDED_ESTABLISHED"
    c = feed.cluster_of("v0")
    assert (c.netted, len(c.nets), len(c.asns)) == (8, blocks, 1)
    assert not attribution.spread_networks(c, rules)
    one_operator_enough = with_changes(lambda d: d["policy"]["attribution"]["spread_networks"].update(min_asns=1))
    assert attribution.spread_networks(c, one_operator_enough) == (blocks == 8)


def test_off_with_min_members_zero():
    rules = with_changes(lambda d: d["policy"]["attribution"].update(
        spread_networks={"min_members": 0, "min_share": 0.8, "aged_max_action": "challenge"}))
    _, outs = students(rules, campus=False)
    assert decisions(outs) == {}
    assert cluster_codes(outs)[-1][-1] == "NOT_DECIDED_ESTABLISHED"


def test_spread_counts_distinct_blocks_per_member_with_one(rules):
    c = ClusterState("c", T0)
    for k, net in enumerate([1, 2, 3, 4, 4, 0]):  # five members with a block, four blocks; one unknown
        c.add(Summary(f"m{k}", f"o{k}", T0, False, False, 5, 0, net=net, asn=100), 64, "payment_fp",
              "payment_fp:x", T0)
    assert (c.netted, len(c.nets), len(c.asns)) == (5, 4, 1)
    assert not attribution.spread_networks(c, rules)      # one operator
    c.add(Summary("m0", "o0", T0, False, False, 6, 0, net=1, asn=200), 64, "payment_fp", "payment_fp:x", T0 + 1)
    assert c.asns == {100: 5, 200: 1}
    assert attribution.spread_networks(c, rules)          # 4 >= 0.8 * 5, two operators
    c.add(Summary("m6", "o6", T0, False, False, 5, 0, net=4, asn=100), 64, "payment_fp", "payment_fp:x", T0)
    assert not attribution.spread_networks(c, rules)      # 4 < 0.8 * 6
    # a member moving to another network is counted there, not twice
    c.add(Summary("m6", "o6", T0, False, False, 6, 0, net=9, asn=300), 64, "payment_fp", "payment_fp:x", T0 + 1)
    assert (c.netted, len(c.nets), len(c.asns)) == (6, 5, 3)
    c.remove("m6")
    assert (c.netted, len(c.nets), len(c.asns)) == (5, 4, 2)
    c.recompute()
    assert c.asns == {100: 5, 200: 1}


def test_a_large_community_reusing_a_pool_is_spread_a_site_is_not(rules):
    """Twenty members, two on each of ten blocks of five operators: half a block per member, below min_share,
    but no block holds more than a tenth of them (a campaign reusing its pool's exits). A lab of twenty
    whose students mostly sit behind the campus NAT, a few at home on three ISPs, is not."""
    pool, lab = ClusterState("pool", T0), ClusterState("lab", T0)
    for k in range(20):
        pool.add(Summary(f"p{k}", f"o{k}", T0, False, False, 5, 0, net=1 + k // 2, asn=100 + k % 5), 64,
                 "payment_fp", "payment_fp:x", T0)
        home = k >= 16
        lab.add(Summary(f"s{k}", f"l{k}", T0, False, False, 5, 0, net=50 + k if home else 1,
                        asn=(7922, 7018, 701)[k % 3] if home else 3), 64, "payment_fp", "payment_fp:g", T0)
    assert (pool.netted, len(pool.nets), len(pool.asns)) == (20, 10, 5)
    assert attribution.spread_networks(pool, rules)        # 10 < 0.8 * 20, but the top block holds 2 of 20
    off = with_changes(lambda d: d["policy"]["attribution"]["spread_networks"].update(max_block_share=0))
    assert attribution.spread_networks(pool, off)          # ... and each of its ten exits is shared (a pool)
    off = with_changes(lambda d: d["policy"]["attribution"]["spread_networks"].update(max_block_share=0,
                                                                                     pool_min_blocks=0))
    assert not attribution.spread_networks(pool, off)
    assert (lab.netted, len(lab.nets), len(lab.asns)) == (20, 5, 4)
    assert not attribution.spread_networks(lab, rules)     # the campus NAT holds 16 of 20


def test_a_community_of_risky_members_has_no_aged_cap(rules):
    c = ClusterState("c", T0)
    for k in range(4):
        c.add(Summary(f"m{k}", f"o{k}", T0, True, True, 5, 0, risky=k < 2, net=k + 1, asn=100 + k), 64,
              "payment_fp", "payment_fp:x", T0)
    assert attribution.aged_cap(c, rules) is None          # half risky: the gate is the risky share's
    c.add(Summary("m9", "o9", T0, False, False, 5, 0, net=9, asn=109), 64, "payment_fp", "payment_fp:x", T0)
    assert attribution.aged_cap(c, rules) == "challenge"   # 2 of 5, on spread networks
    for k in range(10, 16):                                # six more aged members behind one office address
        c.add(Summary(f"m{k}", f"o{k}", T0, False, False, 5, 0, net=50, asn=150), 64, "payment_fp",
              "payment_fp:x", T0)
    assert attribution.aged_cap(c, rules) == attribution.NOTHING  # 6 blocks for 11 members


def test_the_aged_cap_lowers_an_aged_member_only(rules):
    aged_m = Member(Summary("a", "o", T0, False, False, 9, 5, own=OWN_CONTENT), 1)
    risky_m = Member(Summary("r", "o", T0, True, True, 9, 5, risky=True, own=OWN_CONTENT), 1)
    assert attribution.member_tie(aged_m, set(), rules, OWN_CONTENT).cap == "block"
    tie = attribution.member_tie(aged_m, set(), rules, OWN_CONTENT, "challenge")
    assert (tie.kind, tie.cap, tie.code) == ("own_strong", "challenge", "OWN_EVIDENCE")
    assert attribution.member_tie(risky_m, set(), rules, OWN_CONTENT, "challenge").cap == "block"
    assert attribution.tie_cap(aged_m, OWN_CONTENT, rules, "challenge") == "challenge"


def test_stored_and_wire_forms_carry_the_network_and_older_ones_read_as_none():
    s = Summary("x", "o", T0, True, True, 5, 0, risky=True, hosting_block=3, net=77, asn=8075)
    assert Summary.unwire(s.wire()) == s
    assert (Summary.unwire(s.wire()[:12]).net, Summary.unwire(s.wire()[:12]).asn) == (0, 0)
    assert (Summary.unwire(s.wire()[:13]).net, Summary.unwire(s.wire()[:13]).asn) == (77, 0)
    m = Member(s, 1)
    assert (Member.restore(m.snapshot()).net, Member.restore(m.snapshot()).asn) == (77, 8075)
    assert (Member.restore(m.snapshot()[:19]).net, Member.restore(m.snapshot()[:19]).asn) == (77, 0)
    assert Member.restore(m.snapshot()[:18]).net == 0


def test_the_knob_is_validated():
    doc = rules_doc()
    doc["policy"]["attribution"]["spread_networks"]["aged_max_action"] = "ban"
    with pytest.raises(RulesError, match="aged_max_action"):
        compile_rules(doc, "<test>")
    doc = rules_doc()
    doc["policy"]["attribution"]["spread_networks"]["min_asns"] = 0
    with pytest.raises(RulesError, match="min_asns"):
        compile_rules(doc, "<test>")
    doc = rules_doc()
    doc["policy"]["attribution"]["spread_networks"]["max_block_share"] = 1.5
    with pytest.raises(RulesError, match="max_block_share"):
        compile_rules(doc, "<test>")
    doc = rules_doc()
    del doc["policy"]["attribution"]["spread_networks"]["min_asns"]  # a rules file from before it: two
    assert compile_rules(doc, "<test>").policy.attribution.spread_min_asns == 2


def test_a_decision_made_on_spread_networks_does_not_reach_aged_members_once_they_share_a_site(rules):
    """Five aged card holders each on their own line are decided (a challenge each); five more join from one
    office address. The first two of them still find it spread (6 blocks for 6 and for 7 members) and are
    reached; from the third on (6 for 8) it is colleagues again, and its live decision reaches no aged late
    joiner, while those it reached keep theirs."""
    feed, outs = Feed(rules), []

    def send(k: int, r: int, client: dict) -> None:
        outs.append(feed(f"s{k}", f"org-{k}", {**aged("grant-card"), "email_domain_class": "edu"}, client=client,
                         request=trace(r * 10 + k)))

    for r in range(3):
        for k in range(5):
            send(k, r, {"ip": f"81.{k}.{r}.7", "asn": (7922, 7018, 701)[k % 3], "asn_type": "residential"})
    first = decisions(outs)
    assert first == {f"s{k}": "challenge" for k in range(5)}
    for r in range(3):
        for k in range(5, 10):
            send(k, r, {"ip": "192.0.2.10", "asn": 3, "asn_type": "unknown"})
    c = feed.cluster_of("s0")
    assert len(c.members) == 10 and not attribution.spread_networks(c, rules)
    assert c.live is not None and c.live.action == "challenge"   # still live: made before the office joined
    assert attribution.view(c, rules).aged_cap == attribution.NOTHING
    assert decisions(outs) == {**first, "s5": "challenge", "s6": "challenge"}
    tie = attribution.member_tie(c.members["s7"], attribution.flagged_values(c, rules), rules,
                                 attribution.member_evidence(c, c.members["s7"], attribution.view(c, rules)),
                                 attribution.NOTHING)
    assert tie.cap is None and "at most nothing" in tie.detail


def _community(name: str, blocks: list[tuple[int, int, int]]) -> ClusterState:
    """Aged members of their own orgs on one card: `blocks` as (block, operator, members sending from it)."""
    c, k = ClusterState(name, T0), 0
    for net, asn, n in blocks:
        for _ in range(n):
            c.add(Summary(f"{name}{k}", f"o{k}", T0, False, False, 5, 0, net=net, asn=asn), 64, "payment_fp",
                  f"payment_fp:{name}", T0)
            k += 1
    return c


def test_a_small_residential_pool_each_exit_reused_is_spread(rules):
    """A release tracker's 31 aged card holders behind a residential proxy pool of six exits (odd small world
    79): 6 blocks for 31 members, the top one 8 of them, so neither distinct blocks per member nor the block
    share says spread; but every exit is shared by members of different orgs, of five operators."""
    c = _community("rt", [(1, 3320, 8), (2, 3320, 7), (3, 12322, 6), (4, 3209, 4), (5, 20115, 3), (6, 3215, 3)])
    assert (c.netted, len(c.nets), len(c.asns)) == (31, 6, 5)
    assert attribution.pool_blocks(c.nets, c.netted, rules.policy.attribution) == 6
    assert attribution.spread_networks(c, rules)
    off = with_changes(lambda d: d["policy"]["attribution"]["spread_networks"].update(pool_min_blocks=0))
    assert not attribution.spread_networks(c, off)
    assert attribution.aged_cap(c, rules) == "challenge"


def test_a_site_with_members_at_home_is_not_a_pool(rules):
    """A lab: 7 of 25 behind the campus NAT, three pairs of flatmates, twelve each on their own line (three
    ISPs): four shared blocks, but they hold 13 of 25; and a company whose three offices hold most of its
    aged members is a pool only while no office holds half of them (a site)."""
    lab = _community("lab", [(1, 3, 7), (2, 7922, 2), (3, 7018, 2), (4, 701, 2)]
                     + [(10 + k, (7922, 7018, 701)[k % 3], 1) for k in range(12)])
    assert attribution.pool_blocks(lab.nets, lab.netted, rules.policy.attribution) == 0
    assert not attribution.spread_networks(lab, rules)
    office = _community("hq", [(1, 10, 13), (2, 11, 6), (3, 12, 5)])
    assert attribution.pool_blocks(office.nets, office.netted, rules.policy.attribution) == 0  # 13 of 24 at one
    assert not attribution.spread_networks(office, rules)


def test_the_pool_knobs_are_validated():
    doc = rules_doc()
    doc["policy"]["attribution"]["spread_networks"]["pool_min_share"] = 0
    with pytest.raises(RulesError, match="pool_min_share"):
        compile_rules(doc, "<test>")
    doc = rules_doc()
    doc["policy"]["attribution"]["spread_networks"]["pool_min_blocks"] = -1
    with pytest.raises(RulesError, match="pool_min_blocks"):
        compile_rules(doc, "<test>")
    doc = rules_doc()
    for key in ("pool_min_blocks", "pool_min_share"):  # a rules file from before them: off
        doc["policy"]["attribution"]["spread_networks"].pop(key, None)
    assert compile_rules(doc, "<test>").policy.attribution.spread_pool_min_blocks == 0
