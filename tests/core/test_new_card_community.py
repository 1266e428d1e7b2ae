"""A community of new accounts tied by a card, decided on one member's own evidence
(`policy.attribution.new_card_community`).

A hydra reseller replaces each banned account with a new one of another org on the same card: a card's holders
come in pairs, the predecessor with evidence of its own (flagged trace elicitation), the replacement with
ordinary requests. `cluster_min_own_members` (2) left such a pair undecided until a second holder had evidence
(odd worlds 289-311: 64 campaign accounts). A community whose every member is new at first use and tied by a
payment method or a device is decided on one member with own evidence that is not at home; two teammates of
a security programme on one card, the one with flagged probes at home, are not; nor are new accounts that share
only a system prompt (a hackathon's starter kit), nor a community with an aged member."""

from __future__ import annotations

import pytest

from app.errors import RulesError
from app.policy import attribution
from app.rules.load import compile_rules
from tests.core.test_clusters import Feed, aged, rules_doc, trace, with_changes, young

HOME = {"ip": "81.2.9.7", "asn_type": "residential", "asn": 64500, "country": "US"}  # billing country US


def exit_(k: int) -> dict:
    """A residential proxy exit of its own abroad (billing country US)."""
    return {"ip": f"102.{k}.33.9", "asn_type": "residential", "asn": 64600 + k, "country": "IN"}


def pair(rules, *, first: dict | None = None, second: dict | None = None, where: dict | None = None,
         prompt: str | None = None, card: str | None = "card-1"):
    """A predecessor (account `first`, new by default) sends three trace-reconstruction prompts from `where`
    (its own exit abroad by default); then a replacement of another org (`second`) sends two ordinary requests
    from its own exit. Both pay with `card` (None: no card) and send with system prompt `prompt`."""
    feed, outs = Feed(rules), []
    req = {"system_prompt_hash": prompt} if prompt else {}
    a = {**(first or young()), "billing_country": "US"}
    b = {**(second or young()), "billing_country": "US"}
    if card:
        a["payment_fp"] = b["payment_fp"] = card
    for k in range(3):
        outs.append(feed("pred", "org-a", a, client=where or exit_(1), request={**req, **trace(k)}))
    for k in range(2):
        outs.append(feed("repl", "org-b", b, client=exit_(2), request={**req, "prompt": f"Hello {k}"}))
    return feed, outs


def acts(outs) -> dict[str, tuple[str, str]]:
    first: dict[str, tuple[str, str]] = {}
    for o in outs:
        for d in o.decisions:
            if d.scope == "account":
                first.setdefault(d.value, (d.action, d.reasons[-1]))
    return first


def test_the_packaged_rules_decide_a_new_card_community_on_one_member():
    r = compile_rules(rules_doc(), "default.yaml")
    assert r.policy.attribution.new_card_min_own_members == 1
    assert r.policy.attribution.cluster_min_own_members == 2


def test_a_replacement_on_its_predecessors_card_is_reached_on_its_first_request(rules):
    feed, outs = pair(rules)
    got = acts(outs)
    assert got["pred"][1] == "OWN_EVIDENCE"
    # by association (a challenge at most: here the cluster's throttle), on its first request
    assert got["repl"] == ("throttle", "ASSOCIATION")
    assert sorted(d.value for d in outs[3].decisions if d.scope == "account") == ["pred", "repl"]
    c = feed.cluster_of("repl")
    assert attribution.cluster_gate(c, rules) is None
    assert attribution.own_members(c, attribution.view(c, rules)) == 1


def test_without_the_rule_the_pair_waits_for_a_second_member_with_evidence():
    off = with_changes(lambda d: d["policy"]["attribution"].update(new_card_community={"min_own_members": 0}))
    feed, outs = pair(off)
    assert acts(outs) == {}
    gate = attribution.cluster_gate(feed.cluster_of("repl"), off)
    assert gate is not None and (gate.code, gate.value, gate.threshold) == ("NOT_DECIDED_OWN_EVIDENCE", 1, 2)


def test_an_aged_holder_joining_the_decided_pairs_card_is_not_reached(rules):
    # the pair is decided on the predecessor's evidence alone; then an aged, card-verified customer of a third
    # org pays with the same card (its owner, say): the community is no longer one of new accounts, it has one
    # member with evidence of its own, so it is not decidable now, and its live decision reaches no member
    # that is not risky (before: a challenge by association)
    feed, outs = pair(rules)
    assert set(acts(outs)) == {"pred", "repl"}
    owner = {**aged(), "billing_country": "US", "payment_fp": "card-1"}
    later = [feed("owner", "org-c", owner, client=HOME, request={"prompt": f"Plan a trip, day {k}"})
             for k in range(3)]
    assert "owner" not in acts(later)
    c = feed.cluster_of("owner")
    assert c is feed.cluster_of("pred") and c.live is not None and c.live.new_card
    v = attribution.view(c, rules)
    assert v.aged_cap == attribution.UNDECIDABLE
    tie = attribution.member_tie(c.members["owner"], attribution.flagged_values(c, rules), rules,
                                 attribution.member_evidence(c, c.members["owner"], v), v.aged_cap)
    assert tie.cap is None and "fewer members with abuse evidence of their own" in tie.detail
    # a new, risky holder joining the same card is still reached by association
    later = [feed("third", "org-d", {**young(), "billing_country": "US", "payment_fp": "card-1"}, client=exit_(3),
                  request={"prompt": f"Hello again {k}"}) for k in range(2)]
    assert acts(later)["third"][1] == "ASSOCIATION"
    # the live decision keeps how it was made through a restore; one made otherwise stores as before
    from app.detect.cluster import Live
    assert Live.restore(c.live.snapshot()).new_card and len(c.live.snapshot()) == 8
    assert len(Live("d", "block", 60, ("CL_SIZE",), "a", "enforce", 0).snapshot()) == 7


def test_a_decision_made_on_two_members_with_evidence_is_not_a_new_card_decision():
    # the same pair with the replacement sending trace reconstruction too, and the route for one member off:
    # decided on two members with own evidence, so an aged holder joining later is reached by association as
    # in any community
    rules = with_changes(lambda d: d["policy"]["attribution"].update(new_card_community={"min_own_members": 0}))
    feed, outs = Feed(rules), []
    for acct, org, where in (("pred", "org-a", exit_(1)), ("repl", "org-b", exit_(2))):
        for k in range(3):
            outs.append(feed(acct, org, {**young(), "billing_country": "US", "payment_fp": "card-1"}, client=where,
                             request=trace(k)))
    c = feed.cluster_of("pred")
    assert c.live is not None and not c.live.new_card
    later = [feed("owner", "org-c", {**aged(), "billing_country": "US", "payment_fp": "card-1"}, client=HOME,
                  request={"prompt": f"Plan a trip, day {k}"}) for k in range(3)]
    assert acts(later)["owner"][1] == "ASSOCIATION"


@pytest.mark.parametrize(("kw", "why", "said"), [
    ({"where": HOME}, "the member with evidence sends from its home line in its billing country",
     "its members with evidence of their own send from home"),
    ({"second": aged()}, "an aged, verified holder: not a community of new accounts",
     "1 of its 2 members not new at first use"),
    ({"first": aged()}, "the member with evidence is aged", "1 of its 2 members not new at first use"),
])
def test_who_is_not_a_new_card_community(rules, kw, why, said):
    feed, outs = pair(rules, **kw)
    assert "repl" not in acts(outs), why
    c = feed.cluster_of("repl")
    gate = attribution.cluster_gate(c, rules)
    assert gate is not None and gate.code == "NOT_DECIDED_OWN_EVIDENCE", why
    v = attribution.view(c, rules)
    assert not attribution.new_card_community(c, v, attribution.own_members(c, v), rules.policy.attribution)
    # the alert says why the route for a community of new accounts on one card did not apply
    assert f"(not a community of new accounts on one card: {said}" in gate.detail, gate.detail


def test_a_pair_of_verified_identities_is_people_who_know_each_other(rules):
    # two security researchers of a programme on its card, identities verified, the one with flagged probes
    # on a VPN: more than max_verified_share of the members verified (odd world 235)
    assert rules.policy.attribution.new_card_max_verified_share == 0.5
    verified = {**young(), "kyc": "id_verified"}
    feed, outs = pair(rules, first=verified, second=verified)
    assert acts(outs) == {}
    c = feed.cluster_of("repl")
    assert all(m.verified for m in c.members.values())
    # one of the two verified (a half, not more): a community of new accounts on one card as any other
    feed, outs = pair(rules, second=verified)
    assert acts(outs)["repl"] == ("throttle", "ASSOCIATION")
    anyone = with_changes(lambda d: d["policy"]["attribution"]["new_card_community"].update(max_verified_share=None))
    feed, outs = pair(anyone, first=verified, second=verified)
    assert acts(outs)["repl"] == ("throttle", "ASSOCIATION")


@pytest.mark.parametrize("bad", [{"min_own_members": -1}, {"min_own_members": 3},
                                 {"min_own_members": 1, "max_verified_share": 1.5}])
def test_the_knob_is_validated(bad):
    d = rules_doc()
    d["policy"]["attribution"]["new_card_community"] = bad
    with pytest.raises(RulesError, match="new_card_community"):
        compile_rules(d, "bad.yaml")


def test_new_accounts_tied_by_a_system_prompt_only_are_not_a_new_card_community(rules):
    # a hackathon's participants on the organisers' starter kit, each on a cloud machine of its own: one of
    # them sends trace-reconstruction prompts. A harness by its users' age, not a card
    feed, outs = Feed(rules), []
    for r in range(3):
        for k in range(5):
            prompt = trace(r) if k == 0 else {"prompt": f"Build a todo app, step {r}{k}"}
            outs.append(feed(f"h{k}", f"org-h{k}", {**young(), "billing_country": "US"},
                             client={"ip": f"34.{k}.8.9", "asn_type": "cloud", "asn": 15169, "country": "US"},
                             request={**prompt, "system_prompt_hash": "starter-kit"}))
    c = feed.cluster_of("h1")
    assert c is not None and c.kind == "community" and len(c.members) == 5
    v = attribution.view(c, rules)
    own = attribution.own_members(c, v)
    assert own == 1 and not attribution.new_card_community(c, v, own, rules.policy.attribution)
    assert acts(outs) == {}


def test_explain_says_when_a_cluster_is_decidable_on_one_member(capsys):
    # the golden case new_card_pair: the hydra pair is such a community, the researchers' pair is not
    from pathlib import Path

    import orjson

    from app.cli import main

    events = Path(__file__).resolve().parents[1] / "golden" / "new_card_pair" / "events.jsonl"

    def doc(acct: str) -> dict:
        assert main(["explain", "--json", "--events", str(events), "--now", "2026-02-02T00:00:00Z", acct]) == 0
        return orjson.loads(capsys.readouterr().out)

    hydra, researcher = doc("hydra-r")["cluster"], doc("rt-cloud")["cluster"]
    assert (hydra["members_with_own_evidence"], hydra["new_card_community"]) == (1, True)
    assert (researcher["members_with_own_evidence"], researcher["new_card_community"]) == (1, False)
    assert main(["explain", "--events", str(events), "--now", "2026-02-02T00:00:00Z", "hydra-r"]) == 0
    assert "(policy.attribution.new_card_community)" in capsys.readouterr().out
