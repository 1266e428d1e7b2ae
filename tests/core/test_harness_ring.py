"""A harness ring (`policy.attribution.harness_ring`): a throwaway account (disposable email or no KYC) running
a campaign's harness system prompt whose users are throwaway accounts of at least `min_orgs` orgs and
`min_share` of its orgs has evidence of its own, reaching it as far as association (a challenge), never a
block. A campaign's one-session agent accounts are bought throwaways, and the first ones are gone before the
prompt has enough users to say so: those already in the cluster are marked when it does. Developers trying a
new agent framework on its launch day sign up with their own emails (a few percent disposable): no ring."""

from __future__ import annotations

import pytest

from app.detect.cluster import ClusterState, Member, Value
from app.detect.messages import OWN_CONTENT, OWN_HARNESS, OWN_HARVEST, OWN_PAYMENT, Link, Summary
from app.errors import RulesError
from app.policy import attribution
from app.rules.load import compile_rules
from tests.core.test_clusters import T0, Feed, rules_doc, with_changes, young

HARNESS = "harness-7"


def crowd(rules, n: int, throwaway: set[int], requests: int = 3) -> tuple[Feed, list]:
    """`n` new accounts of as many orgs, each one short agent session of `requests` requests on one system
    prompt from its own residential line, one after another; members in `throwaway` have disposable emails."""
    feed, outs = Feed(rules), []
    for k in range(n):
        acct = {**young(), "email_domain_class": "disposable"} if k in throwaway else young()
        for r in range(requests):
            outs.append(feed(f"a{k}", f"org-{k}", acct, client={"ip": f"81.{k}.{r}.7", "asn_type": "residential"},
                             request={"system_prompt_hash": HARNESS, "tools": 2}))
    return feed, outs


def member_decisions(outs) -> dict[str, tuple[str, str]]:
    """account -> (highest action, tie code) of the cluster decisions that reached it."""
    order = ("throttle", "challenge", "block")
    got: dict[str, tuple[str, str]] = {}
    for o in outs:
        for d in o.decisions:
            if d.scope == "account" and "CLUSTER_MEMBER" in d.reasons:
                prev = got.get(d.value)
                if prev is None or order.index(d.action) > order.index(prev[0]):
                    got[d.value] = (d.action, d.reasons[-1])
    return got


def test_the_packaged_rules_want_five_throwaway_orgs_and_two_fifths_of_them(rules):
    at = rules.policy.attribution
    assert (at.harness_min_orgs, at.harness_min_share) == (5, 0.4)


def test_throwaway_users_of_a_harness_that_throwaway_orgs_run_are_a_ring_reached_at_most_as_association(rules):
    feed, outs = crowd(rules, 10, throwaway={0, 2, 4, 6, 8})
    got = member_decisions(outs)
    assert {a for a, (_, code) in got.items() if code == "HARNESS_RING"} == {"a0", "a2", "a4", "a6", "a8"}
    # the others hold the harness with members that have evidence now: association, nothing of their own
    assert {a for a, (_, code) in got.items() if code == "ASSOCIATION"} == {"a1", "a3", "a5", "a7", "a9"}
    assert all(action in ("throttle", "challenge") for action, _ in got.values())
    c = feed.cluster_of("a9")
    # a0 to a6 linked while the prompt had one to four throwaway orgs; a8 made it a ring, which marked them
    assert [a for a, m in c.members.items() if m.harness] == ["a0", "a2", "a4", "a6", "a8"]
    assert c.members["a0"].evidence == OWN_HARNESS
    assert c.fps[f"template:sys:{HARNESS}"].harness


def test_a_launch_crowd_with_a_few_disposable_emails_is_no_ring(rules):
    # 20 developers trying a framework, one of them on a disposable email: 1 throwaway org of 20
    feed, outs = crowd(rules, 20, throwaway={7})
    assert member_decisions(outs) == {}
    assert not any(m.harness for m in feed.cluster_of("a19").members.values())


def test_five_throwaway_orgs_are_not_enough_below_the_share(rules):
    # 5 throwaway orgs among 16: under two fifths, like a big launch crowd's few disposable emails
    feed, outs = crowd(rules, 16, throwaway={3, 6, 9, 12, 15})
    assert member_decisions(outs) == {}
    assert not any(m.harness for m in feed.cluster_of("a15").members.values())


def test_a_launch_crowd_whose_first_users_happen_to_be_disposable_is_no_ring(rules):
    # fresh odd world 83: a crowd 11 % disposable had 4 throwaway orgs among its first 9 users; with 3 orgs and
    # a quarter that was a ring, and the community of the framework's prompt (new, synchronised, 9 strong) was
    # throttled on its shape alone. Four is not five, whatever the share
    _, outs = crowd(rules, 9, throwaway={1, 3, 5, 7})
    assert member_decisions(outs) == {}
    old = with_changes(lambda d: d["policy"]["attribution"].update(harness_ring={"min_orgs": 3, "min_share": 0.25}))
    _, outs = crowd(old, 9, throwaway={1, 3, 5, 7})
    assert {code for _, code in member_decisions(outs).values()} >= {"HARNESS_RING"}


def test_off_with_min_orgs_zero():
    rules = with_changes(lambda d: d["policy"]["attribution"].update(harness_ring={"min_orgs": 0, "min_share": 0.25}))
    feed, outs = crowd(rules, 10, throwaway={0, 2, 4, 6, 8})
    assert member_decisions(outs) == {}
    assert not any(m.harness for m in feed.cluster_of("a9").members.values())


@pytest.mark.parametrize(("tie", "orgs", "throwaway_orgs", "ring"), [
    ("harness", 10, 5, True),          # 5 orgs, half
    ("harness", 12, 5, True),          # 5 orgs, 0.42
    ("harness", 13, 5, False),         # under two fifths
    ("harness", 10, 4, False),         # two fifths, but four orgs
    ("harness", 4, 4, False),          # all of them, but four orgs
    ("system_prompt", 10, 5, False),   # a system prompt that links weakly is no harness
    ("payment_fp", 10, 5, False),
])
def test_the_ring_needs_a_harness_and_enough_throwaway_orgs(rules, tie, orgs, throwaway_orgs, ring):
    assert attribution.harness_ring(tie, orgs, throwaway_orgs, rules) is ring


def test_a_ring_member_with_content_of_its_own_is_tied_by_that_and_with_a_harvest_hit_only_weakly(rules):
    m = Member(Summary("x", "o", T0, True, True, 5, 0, risky=True, throwaway=True), 64)
    assert attribution.member_tie(m, set(), rules, OWN_HARNESS).code == "HARNESS_RING"
    assert attribution.member_tie(m, set(), rules, OWN_HARNESS | OWN_PAYMENT).code == "PAYMENT_RING"
    assert attribution.member_tie(m, set(), rules, OWN_HARNESS | OWN_CONTENT).kind == "own_strong"
    # a flagged request on a harvest template plus the ring is still nothing it sent on its own
    assert attribution.member_tie(m, set(), rules, OWN_HARNESS | OWN_HARVEST).kind == "own_weak"


def test_stored_forms_round_trip_and_older_ones_restore():
    m = Member(Summary("x", "o", T0, True, True, 5, 0, risky=True, throwaway=True), 64)
    m.harness = True
    back = Member.restore(m.snapshot())
    assert (back.throwaway, back.harness, back.harvest) == (True, True, False)
    old = m.snapshot()[:15]  # a member stored before harvest, throwaway and harness
    assert (lambda r: (r.throwaway, r.harness, r.harvest))(Member.restore(old)) == (False, False, False)
    m2 = Member(Summary("y", "o", T0, True, True, 5, 0, risky=True), 64)
    m2.harvest = True
    assert Member.restore(m2.snapshot()).harvest and not Member.restore(m2.snapshot()).throwaway
    v = Value(5, 5, 5, T0, True)
    v.harness = True
    assert Value.restore(v.snapshot()).harness
    assert not Value.restore(v.snapshot()[:6]).harness
    c = ClusterState("c", T0)
    c.add(Summary("x", "o", T0, True, True, 5, 0, risky=True, throwaway=True), 64, "harness", "template:sys:h", T0)
    c.note_fp("template:sys:h", 4, 4, 4, 64, T0, True)
    c.mark_harness("template:sys:h")
    assert ClusterState.restore(c.snapshot()).members["x"].evidence == OWN_HARNESS


def test_links_carry_throwaway_orgs_and_older_records_read_as_none():
    s = Summary("x", "o", T0, True, True, 5, 0, risky=True, throwaway=True)
    lk = Link("template:sys:h", T0, "e1", s, "x", 5, 5, True, 5, False, 3)
    w = lk.wire_ref(0)
    assert Link.unwire_ref(w, [s]) == lk
    assert Link.unwire_ref(w[:10], [s]).fp_throwaway_orgs == 0


def test_the_knob_is_validated():
    doc = rules_doc()
    doc["policy"]["attribution"]["harness_ring"] = {"min_orgs": 3, "min_share": 1.5}
    with pytest.raises(RulesError, match="min_share"):
        compile_rules(doc, "<test>")
