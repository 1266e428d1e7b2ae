"""Egress from a proxy pool as a member's own evidence (`policy.attribution.egress_spread`): a community whose
members send from hosting networks spread over many IP blocks is run through a pool, but only a member whose
own hosting block other members send from too has pool egress evidence (`min_block_members`), and that
evidence, about how it connects and not about what it sends, reaches it at most as far as association
(a challenge): a bootcamp whose students share a hosted IDE's egress pool looks like that too. Developers trying a
new agent framework, each on their own cloud machine, share a harness-like system prompt and spread over as
many blocks as there are of them; the spread is a fact about the community, not about any one of them."""

from __future__ import annotations

import pytest

from app.detect.cluster import ClusterState, cluster_signals
from app.detect.messages import OWN_CONTENT, OWN_HARVEST, OWN_NETWORK, OWN_PAYMENT, OWN_POOL, Summary
from app.errors import RulesError
from app.policy import attribution
from app.rules.load import compile_rules
from app.stages.base import Output
from tests.core.test_clusters import T0, rules_doc, with_changes


def community(blocks: list[int], own: int = 0, operators: int = 4) -> ClusterState:
    """New accounts of as many orgs on one harness prompt, member k sending from hosting block `blocks[k]`
    (0: a residential line) of one of `operators` network operators in turn; `own`: the account stage's
    own-evidence bits of every member."""
    c = ClusterState("c", T0)
    for k, b in enumerate(blocks):
        c.add(Summary(f"m{k}", f"org-{k}", T0 + k, True, True, 5, 0, risky=True, own=own, hosting_block=b,
                      asn=64500 + k % operators),
              2000, "harness", "template:sys:h", ts_ms=T0 + k)
    return c


def evidence(c: ClusterState, rules) -> dict[str, int]:
    v = attribution.view(c, rules)
    return {a: attribution.member_evidence(c, m, v) for a, m in c.members.items()}


def egress_signal(c: ClusterState, rules) -> float | None:
    return next((h.value for h in cluster_signals(c, rules) if h.signal.code == "CL_EGRESS"), None)


def test_the_packaged_rules_want_a_block_shared_by_two_members(rules):
    assert rules.policy.attribution.egress_min_block_members == 2


def test_developers_each_on_their_own_cloud_machine_have_no_egress_evidence(rules):
    c = community(list(range(1, 31)))  # 30 members, 30 blocks: spread like a pool, reused by nobody
    assert attribution.spread(c, rules)
    assert not any(evidence(c, rules).values())
    assert attribution.own_members(c, attribution.view(c, rules)) == 0
    assert egress_signal(c, rules) is None
    gate = attribution.cluster_gate(c, rules)
    assert gate is not None and gate.code == "NOT_DECIDED_OWN_EVIDENCE"


@pytest.mark.parametrize("operators", [1, 2])
def test_a_hosted_tools_customers_behind_its_servers_of_one_or_two_clouds_are_no_pool(rules, operators):
    # new customers of a hosted agent product, its system prompt a harness by their age, every request sent
    # from any of the vendor's twelve egress blocks (tests/golden/hosted_agent_vendor)
    assert rules.policy.attribution.egress_min_asns == 3
    c = community([1 + k % 12 for k in range(40)], operators=operators)
    assert not attribution.spread(c, rules)
    assert not any(evidence(c, rules).values())
    assert egress_signal(c, rules) is None
    # with the operators not counted (min_asns 1) every customer had pool egress evidence
    any_ops = with_changes(lambda d: d["policy"]["attribution"]["egress_spread"].__setitem__("min_asns", 1))
    assert all(bits == OWN_POOL for bits in evidence(c, any_ops).values())


def test_a_pool_reused_across_members_gives_each_member_behind_it_egress_evidence(rules):
    c = community([1 + k % 6 for k in range(29)])  # a harvester's six data-centre blocks behind 29 accounts
    assert all(bits == OWN_POOL for bits in evidence(c, rules).values())
    assert attribution.own_members(c, attribution.view(c, rules)) == 29
    assert egress_signal(c, rules) == 1.0
    assert attribution.cluster_gate(c, rules) is None


def test_only_the_members_behind_a_shared_block_count_and_the_counts_follow_membership(rules):
    # 4 + 3 members behind two shared blocks, 8 on blocks of their own, 3 on residential lines
    blocks = [1] * 4 + [2] * 3 + list(range(10, 18)) + [0] * 3
    c = community(blocks)
    ev = evidence(c, rules)
    assert {a for a, bits in ev.items() if bits & OWN_POOL} == {f"m{k}" for k in range(7)}
    v = attribution.view(c, rules)
    assert attribution.own_members(c, v) == 7
    assert egress_signal(c, rules) == pytest.approx(7 / 18)
    # the running per-block counts equal a count over the members, also after a rebuild
    c.recompute()
    assert attribution.own_members(c, attribution.view(c, rules)) == 7
    # block 2 down to one member: that one has nothing left to share it with
    c.remove("m4")
    c.remove("m5")
    ev = evidence(c, rules)
    assert not ev["m6"] & OWN_POOL
    assert attribution.own_members(c, attribution.view(c, rules)) == 4
    # a member moving onto a shared block (its latest summary's block) gains it, one leaving loses it
    c.add(Summary("m10", "org-10", T0 + 10, True, True, 6, 0, risky=True, hosting_block=1), 2000, "template",
          "template:sys:h", ts_ms=T0 + 100)
    c.add(Summary("m0", "org-0", T0, True, True, 6, 0, risky=True, hosting_block=99), 2000, "template",
          "template:sys:h", ts_ms=T0 + 100)
    ev = evidence(c, rules)
    assert ev["m10"] & OWN_POOL and not ev["m0"] & OWN_POOL
    assert attribution.own_members(c, attribution.view(c, rules)) == 4


def test_members_with_evidence_of_their_own_are_counted_once(rules):
    c = community([1] * 3 + list(range(10, 17)), own=OWN_CONTENT)  # everyone has content evidence already
    assert attribution.own_members(c, attribution.view(c, rules)) == 10
    assert egress_signal(c, rules) == pytest.approx(3 / 10)


def test_one_member_per_block_is_the_earlier_rule(rules):
    def one(doc: dict) -> None:
        doc["policy"]["attribution"]["egress_spread"]["min_block_members"] = 1
    loose = with_changes(one)
    c = community(list(range(1, 31)))
    assert all(bits == OWN_POOL for bits in evidence(c, loose).values())
    assert attribution.cluster_gate(c, loose) is None
    assert not any(evidence(c, rules).values())


def test_the_knob_is_validated():
    doc = rules_doc()
    doc["policy"]["attribution"]["egress_spread"]["min_block_members"] = 0
    with pytest.raises(RulesError, match="min_block_members"):
        compile_rules(doc, "<test>")


def test_egress_alone_pooled_or_its_own_reaches_a_member_as_far_as_association_and_content_to_a_block(rules):
    c = community([1 + k % 6 for k in range(12)])
    bad = attribution.flagged_values(c, rules)
    v = attribution.view(c, rules)
    m = c.members["m1"]
    tie = attribution.member_tie(m, bad, rules, attribution.member_evidence(c, m, v))
    assert (tie.kind, tie.cap, tie.code) == ("egress_pool", "challenge", "EGRESS_POOL")
    assert attribution.tie_cap(m, attribution.member_evidence(c, m, v), rules) == "challenge"
    # the same member with egress that hops between blocks itself (a proxy pool's exits, or a commercial VPN's
    # that hands out a new one per connection), with or without the ring's card: how it connects, a challenge;
    # with flagged content of its own, alone or besides: what it sends, the cluster's block
    cases = [(OWN_NETWORK, ("egress_rotation", "challenge", "EGRESS_ROTATION")),
             (OWN_NETWORK | OWN_PAYMENT, ("egress_rotation", "challenge", "EGRESS_ROTATION")),
             (OWN_NETWORK | OWN_HARVEST, ("own_weak", "challenge", "OWN_EVIDENCE_WEAK_TIE")),
             (OWN_CONTENT, ("own_strong", "block", "OWN_EVIDENCE")),
             (OWN_CONTENT | OWN_NETWORK, ("own_strong", "block", "OWN_EVIDENCE"))]
    for k, (own, want) in enumerate(cases):
        c.add(Summary("m1", "org-1", T0 + 1, True, True, 6, 0, risky=True, own=own, hosting_block=2), 2000,
              "harness", "template:sys:h", ts_ms=T0 + 50 + k)
        v = attribution.view(c, rules)
        ev = attribution.member_evidence(c, c.members["m1"], v)
        assert ev & ~OWN_POOL == own, own  # its block is a shared one: pool egress besides, unless its own egress
        tie = attribution.member_tie(c.members["m1"], bad, rules, ev)
        assert (tie.kind, tie.cap, tie.code) == want, own
        assert attribution.tie_cap(c.members["m1"], ev, rules) == want[1], own


def test_members_a_harness_links_after_their_one_session_carry_their_block(rules):
    """One-session accounts of a campaign on a harness prompt: the first two send before the prompt has
    min_accounts users, so the third one's observation links them, from the value's record, while they are
    quiet. Their hosting blocks come along (they never send again), so the third, which reuses the first's
    pool address, shares a block with a member."""
    from app.detect.messages import Observation
    from app.stages.cluster import ClusterStage
    from app.stages.fingerprint import FingerprintStage

    fp, cl = FingerprintStage(rules), ClusterStage(rules)
    for k, block in enumerate((11, 22, 11)):
        s = Summary(f"a{k}", f"org-{k}", T0 + k * 60_000, True, True, 6, 0, risky=True, hosting_block=block)
        out = Output()
        fp.process(Observation("template", "sys:h4rn355", T0 + k * 60_000, f"ev-{k}", s), out)
        for link in out.links:
            cl.process(link, out)
    c = cl.cluster_of_account("a2", T0 + 120_000)
    assert c is not None and set(c.members) == {"a0", "a1", "a2"}
    assert {a: m.block for a, m in c.members.items()} == {"a0": 11, "a1": 22, "a2": 11}
    assert c.blocks == {11: 2, 22: 1}
