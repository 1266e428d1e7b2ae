"""Pooled content evidence (`policy.attribution.content_pool`, app/policy/attribution.py `pooled`): in a
community whose members' requests, pooled, are flagged content, a strongly tied member with flagged
requests of its own has content evidence from its first one on. A slow campaign's accounts each send too
few requests for `own_content.min_flagged`; the trap populations either flag nothing (a hackathon), or
are aged and verified (a lab: the risky share stops the cluster whatever its content)."""

from __future__ import annotations

from app.detect.cluster import COMMUNITY, ClusterState
from app.detect.messages import OWN_CONTENT, Summary
from app.policy import attribution
from tests.core.test_clusters import MIN, T0, Feed, account_decisions, aged, trace, with_changes, young

HARNESS = "harness-slow"
POOL = {"min_members": 3, "min_requests": 10, "min_share": 0.2}


def pool_rules(pool: dict | None = POOL):
    def change(doc: dict) -> None:
        # these cases are about pooling alone: their trace prompts share templates, which harvest-template
        # evidence (tests/core/test_harvest_template.py) would add to
        doc["fingerprints"].pop("harvest_template", None)
        at = doc["policy"]["attribution"]
        if pool is None:
            at.pop("content_pool", None)
        else:
            at["content_pool"] = dict(pool)
    return with_changes(change)


def _slow_campaign(feed: Feed, n: int = 6, flagged_round: int = 3, rounds: int = 4, account=young) -> list:
    """`n` accounts of `n` orgs, each with its own card, behind one harness system prompt; each sends
    `rounds` requests, one of them (round `flagged_round`) a trace-elicitation prompt: one flagged request
    per account, never two, and a quarter of its requests (ACCT_TRACE_ELICIT fires from 0.3)."""
    outs = []
    for r in range(rounds):
        for k in range(n):
            prompt = trace(r * 10 + k) if r == flagged_round else {"prompt": f"Summarise chapter {r}{k} of the novel"}
            outs.append(feed(f"s{k}", f"org-s{k}", account(f"card-s{k}"),
                             request={**prompt, "system_prompt_hash": HARNESS}))
    return outs


def test_a_slow_campaign_with_one_flagged_request_per_account_is_decided_on_pooled_content():
    rules = pool_rules()
    feed = Feed(rules)
    outs = _slow_campaign(feed)
    c = feed.cluster_of("s0")
    assert c is not None and c.kind == COMMUNITY and len(c.members) == 6
    # no member has content evidence of its own: one flagged request each (own_content.min_flagged 2)
    assert all((m.n, m.flagged, m.own) == (4, 1, 0) for m in c.members.values())
    assert attribution.pooled(c, rules)
    assert attribution.cluster_gate(c, rules) is None
    decided = account_decisions(outs)
    assert set(decided) == {f"s{k}" for k in range(6)}
    # reached for its own (pooled) content evidence and its strong tie, or, before its flagged request, by
    # association through the harness; by the end every member has the pooled content evidence
    first = {}
    for o in outs:
        for d in o.decisions:
            first.setdefault(d.value, d.reasons)
    assert {r[-1] for r in first.values()} <= {"OWN_EVIDENCE", "ASSOCIATION"}
    assert "OWN_EVIDENCE" in {r[-1] for r in first.values()}
    v = attribution.view(c, rules)
    assert {attribution.member_evidence(c, m, v) for m in c.members.values()} == {OWN_CONTENT}


def test_without_the_content_pool_the_same_campaign_is_not_decided():
    rules = pool_rules(None)
    feed = Feed(rules)
    outs = _slow_campaign(feed)
    c = feed.cluster_of("s0")
    assert c is not None and len(c.members) == 6
    assert not attribution.pooled(c, rules)
    gate = attribution.cluster_gate(c, rules)
    assert gate is not None and gate.code == "NOT_DECIDED_OWN_EVIDENCE"
    assert account_decisions(outs) == {}


def test_a_hackathon_on_one_starter_prompt_with_one_misread_request_is_not_pooled():
    # new accounts on the organisers' system prompt: one of them sends one prompt the classifier misreads
    rules = pool_rules()
    feed = Feed(rules)
    outs = []
    for r in range(3):
        for k in range(6):
            prompt = trace(k) if (r, k) == (1, 0) else {"prompt": f"Build a todo app, step {r}{k}"}
            outs.append(feed(f"h{k}", f"org-h{k}", young(), request={**prompt, "system_prompt_hash": "starter-kit"}))
    c = feed.cluster_of("h0")
    assert c is not None and c.kind == COMMUNITY
    assert c.flagged_members == 1 and not attribution.pooled(c, rules)
    assert account_decisions(outs) == {}


def test_aged_verified_accounts_with_pooled_content_are_not_decided_as_a_cluster():
    # a lab's benchmark prompts read as trace elicitation, on a grant card shared across the students' orgs:
    # the pool holds, but a community of aged, verified accounts is not acted on as a cluster
    rules = pool_rules()
    feed = Feed(rules)
    outs = []
    for r in range(3):
        for k in range(6):
            prompt = trace(r * 10 + k) if r == 1 else {"prompt": f"Summarise paper {r}{k}"}
            outs.append(feed(f"lab{k}", f"org-l{k}", aged("grant-card"), request=prompt))
    c = feed.cluster_of("lab0")
    assert c is not None and attribution.pooled(c, rules)
    gate = attribution.cluster_gate(c, rules)
    assert gate is not None and gate.code == "NOT_DECIDED_ESTABLISHED"
    assert not [d for o in outs for d in o.decisions if "CLUSTER_MEMBER" in d.reasons]


def test_pooled_content_needs_the_members_own_flagged_share_and_a_strong_tie():
    rules = pool_rules()
    c = ClusterState("c", T0)
    for k in range(4):  # four members with 1 flagged request of 3: the pool holds (6 of 24)
        c.add(Summary(f"m{k}", f"org-{k}", T0, True, True, 3, 1, risky=True), 2000, "payment_fp", f"card:{k}")
    c.add(Summary("diluted", "org-d", T0, True, True, 7, 1, risky=True), 2000, "payment_fp", "card:d")
    c.add(Summary("weak", "org-w", T0, True, True, 2, 1, risky=True), 2000, "ip_prefix")
    c.add(Summary("clean", "org-c", T0, True, True, 3, 0, risky=True), 2000, "payment_fp", "card:c")
    assert c.flagged_members == 6 and attribution.pooled(c, rules)
    v = attribution.view(c, rules)
    ev = {a: attribution.member_evidence(c, m, v) for a, m in c.members.items()}
    assert all(ev[f"m{k}"] == OWN_CONTENT for k in range(4))
    # 1 flagged of 7 (below own_content.min_share), tied by an IP block only, nothing flagged: none
    assert ev["diluted"] == ev["weak"] == ev["clean"] == 0
    assert attribution.own_members(c, v) == 4
    assert attribution.own_members(c, v, need=2) == 2
    # a ring is never pooled, and min_members 0 turns the pool off
    assert not attribution.pooled(c, pool_rules({**POOL, "min_members": 0}))
    c.kind = "ring"
    assert not attribution.pooled(c, rules)


def test_the_pool_follows_the_share_as_members_send_more():
    rules = pool_rules()
    c = ClusterState("c", T0)
    for k in range(3):
        c.add(Summary(f"m{k}", f"org-{k}", T0, True, True, 4, 1, risky=True), 2000, "payment_fp", f"card:{k}")
    assert attribution.pooled(c, rules)  # 3 of 12
    for k in range(3):  # the same members, later: 1 flagged of 8 each (3 of 24 pooled, below 0.2)
        c.add(Summary(f"m{k}", f"org-{k}", T0, True, True, 8, 1, risky=True), 2000, "payment_fp", f"card:{k}",
              ts_ms=T0 + MIN)
    assert not attribution.pooled(c, rules)


def test_the_packaged_rules_pool_content_and_count_a_small_proxy_pool_as_spread(rules):
    at = rules.policy.attribution
    assert (at.pool_min_members, at.pool_min_requests, at.pool_min_share) == (3, 10, 0.25)
    assert rules.signals["CL_CONTENT"].min_requests == 10
    # a harvester's pool of 6 data-centre blocks of three operators behind 29 accounts is a proxy pool (0.2
    # of a block per hosted member); a hackathon behind its venue's NAT (1 block), an eval vendor's or an
    # office's few NAT addresses (3 blocks) are not, whatever their size, nor six blocks of one or two clouds
    def community(blocks: int, members: int, operators: int = 3) -> ClusterState:
        c = ClusterState("c", T0)
        for k in range(members):
            c.add(Summary(f"m{k}", f"org-{k}", T0, True, True, 5, 0, risky=True, hosting_block=1 + k % blocks,
                          asn=64500 + k % blocks % operators),
                  2000, "template", "template:sys:h")
        return c
    assert attribution.spread(community(6, 29), rules)
    assert not attribution.spread(community(6, 29, operators=2), rules)
    assert not attribution.spread(community(1, 70), rules)
    assert not attribution.spread(community(3, 40), rules)
    assert not attribution.spread(community(5, 40), rules)  # 0.125 of a block per member
