"""A cohort at home (`policy.attribution.home_cohort`) and a weak tie at home (`home_weak_max_action`).

An online course's live lesson on reasoning models: new accounts of their own orgs on the course notebook's
system prompt (a harness by its users' age), each student on its own home line or phone in its billing
country, chain-of-thought exercises that read as trace elicitation (evidence of their own). Before these
rules all of them were blocked. A community most of whose members are at home (`Summary.home`: every request
from a home or phone network in the billing country) each on an IP block no other member uses is not
decided; a member at home whose own evidence is only what it sends gets nothing through a weak tie (a ring's
evidence, a harvest template). The same cohort through a VPN, from abroad, or over a pool's shared exits is
decided as before."""

from __future__ import annotations

import pytest

from app.detect.account import AccountState
from app.detect.cluster import ClusterState, Member
from app.detect.messages import OWN_CONTENT, OWN_HARVEST, OWN_VOLUME, Summary
from app.errors import RulesError
from app.policy import attribution
from app.rules.load import compile_rules
from tests.core.test_clusters import T0, Feed, rules_doc, with_changes, young
from tests.core.test_harness_ring import member_decisions
from tests.core.test_site_cohort import _gate_codes, undecided_cohort
from tests.traffic import TRACE_PROMPTS

NOTEBOOK = "course-notebook-1"
COUNTRIES = ("US", "IN", "GB", "DE", "BR", "CA", "FR", "JP")


def lesson(rules, n: int = 10, requests: int = 5, asn_type: str = "residential", abroad: bool = False,
           shared_exits: bool = False, disposable: frozenset[int] = frozenset(), notebook: bool = True):
    """`n` new students of as many orgs, email KYC, on the notebook's system prompt (`notebook`; else none),
    in turns of one request each, every request a chain-of-thought exercise that reads as trace elicitation.
    Each on its own line in its billing country; `abroad`: billed elsewhere; `shared_exits`: two students per IP
    block (a pool's exits); `asn_type`: their networks' kind."""
    feed, outs = Feed(rules), []
    for r in range(requests):
        for k in range(n):
            cc = COUNTRIES[k % len(COUNTRIES)]
            acct = {**young(), "billing_country": "SG" if abroad else cc}
            if k in disposable:
                acct["email_domain_class"] = "disposable"
            block = k // 2 if shared_exits else k
            outs.append(feed(f"s{k}", f"org-{k}", acct,
                             client={"ip": f"{81 + block}.{block}.9.{7 + k}", "asn_type": asn_type,
                                     "asn": 64500 + block, "country": cc},
                             request={"system_prompt_hash": NOTEBOOK if notebook else None, "thinking": True,
                                      "prompt": TRACE_PROMPTS[(k + r) % 2].format(n=17 + r + k)}))
    return feed, outs


def test_the_packaged_rules_hold_cohorts_at_home_and_weak_ties_at_home(rules):
    at = rules.policy.attribution
    assert (at.home_min_members, at.home_min_share, at.home_max_throwaway_share) == (2, 0.7, 0.5)
    assert at.home_weak_max_action == "none"


def test_an_online_lesson_is_not_decided_and_nobody_in_it_is_acted_on(rules):
    feed, outs = lesson(rules)
    c = undecided_cohort(feed, outs, "NOT_DECIDED_HOME_COHORT", "s0")
    assert len(c.members) == 10 and attribution.home_cohort(c, rules) == 10
    assert attribution.site_cohort(c, rules) == 0  # no shared site: ten lines
    # they have evidence of their own: it is their being at home, not their behaviour, that keeps it undecided
    view = attribution.view(c, rules)
    assert all(attribution.member_evidence(c, m, view) for m in c.members.values())


def test_without_the_rules_the_lesson_is_decided_and_its_students_blocked():
    off = with_changes(lambda d: d["policy"]["attribution"].update(
        home_cohort={"min_members": 0, "min_share": 0.7}, home_weak_max_action="challenge"))
    _, outs = lesson(off)
    reached = member_decisions(outs)
    assert len(reached) == 10 and {a for a, _ in reached.values()} == {"block"}


@pytest.mark.parametrize("how", ["vpn", "abroad", "shared_exits", "throwaways"])
def test_the_same_lesson_through_a_vpn_from_abroad_on_shared_exits_or_of_throwaways_is_decided(rules, how):
    feed, outs = lesson(rules, asn_type="vpn" if how == "vpn" else "residential", abroad=how == "abroad",
                        shared_exits=how == "shared_exits",
                        disposable=frozenset(range(5)) if how == "throwaways" else frozenset())
    assert attribution.home_cohort(feed.cluster_of("s0"), rules) == 0
    assert "NOT_DECIDED_HOME_COHORT" not in _gate_codes(outs)
    assert len(member_decisions(outs)) == 10


def _community(homes: list[int], nets: list[int], throwaway: int = 0) -> ClusterState:
    c = ClusterState("c", T0)
    for k, (home, net) in enumerate(zip(homes, nets, strict=True)):
        s = Summary(f"a{k}", f"o{k}", T0, True, True, 3, 0, risky=True, throwaway=k < throwaway, net=net,
                    asn=64500 + k, home=bool(home))
        c.add(s, 64, "harness", "template:sys:h", T0)
    return c


@pytest.mark.parametrize(("homes", "nets", "throwaway", "alone"), [
    ([1, 1], [7, 8], 0, 2),                      # two at home, each on its own block
    ([1], [7], 0, 0),                            # one: under min_members
    ([1, 1], [7, 7], 0, 0),                      # one block between them: not alone on it
    ([1, 1, 1, 0], [7, 8, 9, 10], 0, 3),         # three of four (0.75)
    ([1, 1, 0, 0], [7, 8, 9, 10], 0, 0),         # half of them
    ([1, 1, 1, 1], [7, 8, 9, 9], 0, 0),          # two of four alone
    ([1, 1, 1, 0], [7, 8, 9, 9], 0, 0),          # one at home shares a block with one not at home
    ([1, 1, 1, 1], [7, 8, 9, 10], 2, 0),         # half of them throwaway
    ([1, 1, 1, 1, 1, 1, 1], [7, 8, 9, 10, 11, 12, 13], 2, 7),  # two of seven throwaway (a lesson's first seven)
])
def test_the_home_test(rules, homes, nets, throwaway, alone):
    assert attribution.home_cohort(_community(homes, nets, throwaway), rules) == alone


def test_a_ring_is_never_a_home_cohort(rules):
    c = _community([1, 1, 1], [7, 8, 9])
    c.kind = "ring"
    assert attribution.home_cohort(c, rules) == 0


def test_the_figures_follow_a_member_that_leaves_home_and_survive_a_restore(rules):
    c = _community([1, 1, 1], [7, 8, 9])
    assert attribution.home_cohort(c, rules) == 3
    # a1 sends through a VPN from then on: its newer summary says it is not at home any more
    c.add(Summary("a1", "o1", T0, True, True, 4, 0, risky=True, net=12, asn=64501, home=False), 64, "harness",
          "template:sys:h", T0 + 1)
    assert c.home_nets == {7: 1, 9: 1} and attribution.home_cohort(c, rules) == 0  # 2 of 3 < 0.7
    back = ClusterState.restore(c.snapshot())
    assert back.home_nets == c.home_nets and {a: m.home for a, m in back.members.items()} == {
        "a0": True, "a1": False, "a2": True}


def _member(home: bool, ties: str = "template") -> Member:
    return Member(Summary("m", "o", T0, True, True, 6, 3, risky=True, own=OWN_CONTENT, net=7, home=home),
                  {"template": 4, "payment_fp": 1}[ties], T0)


@pytest.mark.parametrize(("home", "own", "ties", "cap"), [
    (True, OWN_CONTENT, "template", None),                  # at home, content only, a weak tie: nothing
    (True, OWN_CONTENT | OWN_HARVEST, "template", None),    # ... a harvest template's flagged request too
    (False, OWN_CONTENT, "template", "challenge"),          # not at home: a ring member's challenge
    (True, OWN_CONTENT | OWN_VOLUME, "template", "challenge"),  # volume of its own: more than it sends
    (True, OWN_HARVEST, "payment_fp", None),                # strongly tied, its evidence only a harvest template
    (True, OWN_CONTENT, "payment_fp", "block"),             # strongly tied with content: own_strong, as before
])
def test_a_weak_tie_at_home(rules, home, own, ties, cap):
    m = _member(home, ties)
    tie = attribution.member_tie(m, set(), rules, own)
    assert tie.cap == cap and attribution.tie_cap(m, own, rules) == cap
    if home and cap is None:
        assert "at home" in tie.detail


@pytest.mark.parametrize("requests", [1, 2, 3])
def test_students_linked_while_quiet_are_known_at_home(rules, requests):
    # without the notebook the lesson is a ring on its exercises' templates (weak values). A value turns linking
    # after most students have sent on it, and links them from what it kept of each (`fingerprint._stub`):
    # that record carries whether the student is at home, or the ring's evidence throttled all of them
    # (eight of ten before it did)
    feed, outs = lesson(rules, requests=requests, notebook=False)
    c = feed.cluster_of("s0")
    assert c is not None and c.kind == "ring" and len(c.members) >= 5
    assert all(attribution.at_home(m) for m in c.members.values())
    assert member_decisions(outs) == {}
    # ... and so are the same students half of whom signed up with disposable emails (throttled through the
    # ring before they were held at home too: whoever they are, their exercises are theirs)
    feed, outs = lesson(rules, requests=requests, notebook=False, disposable=frozenset(range(0, 10, 2)))
    c = feed.cluster_of("s0")
    assert c is not None and sum(1 for m in c.members.values() if m.throwaway) >= 2
    assert member_decisions(outs) == {}


def test_a_values_record_of_a_member_keeps_its_home_flag():
    from app.detect.fingerprint import FpMember, _stub

    m = FpMember(T0, "org-1", 1, 0, 1, 1, 0, 1, 0, home=1)
    assert FpMember(*m.snapshot()).home == 1 and _stub("a", m).home is True
    assert len(m.snapshot()) == 16
    assert FpMember(*m.snapshot()[:15]).home == 0  # stored before it: not at home
    assert len(FpMember(T0, "org-1", 1, 0, 1, 1, 0, 1, 0, 1, 5).snapshot()) == 11  # the rest stored as before


def test_stored_forms_round_trip_and_older_ones_restore():
    s = Summary("a", "o", T0, True, False, 3, 1, country="DE", home=True)
    assert Summary.unwire(s.wire()) == s and len(s.wire()) == 17
    assert Summary.unwire(s.wire()[:16]).home is False
    v = Summary("a", "o", T0, True, False, 3, 1, country="DE", verified=True)
    assert Summary.unwire(v.wire()) == v and len(v.wire()) == 16
    m = Member(s, 4, T0)
    assert Member.restore(m.snapshot()).home is True
    assert Member.restore(m.snapshot()[:20]).home is False
    assert len(Member(Summary("a", "o", T0, True, False, 3, 1), 4, T0).snapshot()) == 20  # as before
    # verified (new_card_community): stored after `home`; a member stored before it is not verified
    mv = Member(v, 4, T0)
    assert len(mv.snapshot()) == 22 and Member.restore(mv.snapshot()).verified is True
    assert Member.restore(mv.snapshot()).home is False and Member.restore(mv.snapshot()[:21]).verified is False
    assert Member.restore(m.snapshot()).verified is False
    a = AccountState(T0)
    a.home_n = 3
    assert AccountState.restore(a.snapshot()).home_n == 3
    assert AccountState.restore(a.snapshot()[:44]).home_n == 0  # stored before: not at home from then on


def test_home_is_every_request_from_a_home_or_phone_network_in_the_billing_country(rules):
    def homes(client: dict, billing: str = "DE", requests: int = 3) -> list[bool]:
        feed, got = Feed(rules), []
        for _ in range(requests):
            out = feed("h", "org-h", {**young(), "billing_country": billing}, client=client)
            got.append(out.observations[0].summary.home if out.observations else None)
        return got

    assert homes({"ip": "81.2.9.7", "asn_type": "residential", "country": "DE"}) == [True] * 3
    assert homes({"ip": "81.2.9.7", "asn_type": "mobile", "country": "DE"}) == [True] * 3
    assert homes({"ip": "81.2.9.7", "asn_type": "residential", "country": "FR"}) == [False] * 3
    assert homes({"ip": "81.2.9.7", "asn_type": "vpn", "country": "DE"}) == [False] * 3
    assert homes({"ip": "81.2.9.7", "asn_type": "cloud", "country": "DE"}) == [False] * 3
    assert homes({"ip": "81.2.9.7", "country": "DE"}) == [False] * 3  # the network's kind unknown


def test_the_knobs_are_validated():
    for change, match in (({"home_cohort": {"min_members": 2, "min_share": 0}}, "min_share"),
                          ({"home_weak_max_action": "block"}, "home_weak_max_action")):
        doc = rules_doc()
        doc["policy"]["attribution"].update(change)
        with pytest.raises(RulesError, match=match):
            compile_rules(doc, "<test>")


def test_at_home_is_the_members_own_record(rules):
    # at home, a throwaway account too: whoever else sends from its block (neighbours on one ISP's block, a
    # proxy exit)
    c = ClusterState("c", T0, "ring")
    for k, (home, net, throwaway) in enumerate(((True, 7, False), (True, 7, False), (True, 8, False),
                                                (False, 8, False), (True, 9, True))):
        c.add(Summary(f"s{k}", f"o{k}", T0, True, True, 5, 2, risky=True, own=OWN_CONTENT, net=net, home=home,
                      throwaway=throwaway), 64, "template", "", T0)
    assert {a: attribution.at_home(m) for a, m in c.members.items()} == {
        "s0": True, "s1": True, "s2": True, "s3": False, "s4": True}
