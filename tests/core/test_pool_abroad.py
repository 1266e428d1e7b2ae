"""A harness run through a residential proxy pool's exits abroad (`fingerprints.pool_prompt.abroad_countries`):
a campaign's aged, bought accounts, each its own org, run one system prompt from a residential pool's exits in
whatever country, one or two requests each (too few for their egress to rotate). Half or more of them are
established, so by its users' age the prompt is a product's and links nothing (odd world 247: a stealth
campaign's 298 accounts, 222 never reached). Its users' latest requests come from home or phone networks
outside their billing countries, over several operators in several countries: a product's users are mostly at
home, and a team on a trip is a few orgs on its hotel's and airport's networks."""

from __future__ import annotations

import pytest

from app.detect.fingerprint import FpState, popularity
from app.detect.messages import Observation, Summary
from app.errors import RulesError
from app.rules.load import compile_rules
from app.stages.base import Output
from app.stages.fingerprint import FingerprintStage
from tests.core.test_clusters import Feed, young
from tests.core.test_pool_prompt import KEY, SYS, assert_links_every_member, doc, feed
from tests.helpers import T0

COUNTRIES = ("US", "GB", "DE", "CA", "AU", "SG", "JP")


@pytest.fixture
def rules():
    return compile_rules(doc(), "default.yaml")


def user(k: int, *, abroad: bool, asn: int, country: str, org: str | None = None) -> Summary:
    """Account k of its own org (or `org`), aged and verified (established), its latest request from a home or
    phone network of `asn` in `country`, outside its billing country when `abroad`."""
    return Summary(f"acct{k:04d}", org or f"org{k:04d}", T0, False, False, 2, 0, net=5000 + k, asn=asn,
                   country=country, abroad=abroad)


def pool(n: int, *, asns: int = 8, countries: int = 5, abroad_every: int = 1, per_org: int = 1) -> list:
    """n established users, every `abroad_every`-th abroad, over `asns` operators in `countries` countries,
    `per_org` consecutive users to an org (colleagues arrive together)."""
    return [user(k, abroad=k % abroad_every == 0, asn=64700 + k % asns, country=COUNTRIES[k % countries],
                 org=f"org{k // per_org:04d}") for k in range(n)]


def test_an_aged_harness_through_a_residential_pool_abroad_links_every_member(rules):
    pp = rules.fingerprints.pool_prompt
    assert pp is not None and (pp.abroad_countries, pp.abroad_asns) == (3, 4)
    detail = assert_links_every_member(rules, pool(40))
    assert "40 of the 40 accounts kept last sent from a home or phone network outside their billing country" in detail
    assert "of 8 network operators in 5 countries" in detail


def test_accounts_without_an_org_count_as_their_own_org_abroad(rules):
    """An account that carries no org is its own operator for the abroad test, as for the shared-exits test and
    `FpState.orgs`: forty such accounts are forty orgs, not one."""
    orgless = [Summary(u.account_id, None, u.first_ms, False, False, 2, 0, net=u.net, asn=u.asn, country=u.country,
                       abroad=True) for u in pool(40)]
    assert all(u.org is None for u in orgless)
    assert_links_every_member(rules, orgless)


def test_without_the_rule_the_same_prompt_is_a_products(rules):
    d = doc()
    d["fingerprints"]["pool_prompt"]["abroad_countries"] = 0
    off = compile_rules(d, "off.yaml")
    stage, links = feed(off, pool(40))
    st = stage.store.get(KEY)
    assert st.popular and links == []
    assert popularity(st, "template", SYS, off)[0] == "FP_POPULAR_ESTABLISHED"


@pytest.mark.parametrize(("users", "why"), [
    (pool(40, abroad_every=4), "a product's users, a quarter of them abroad (expats, travellers)"),
    (pool(30, asns=2, countries=2, per_org=10), "a team of three orgs on a trip: its hotel's and airport's networks"),
    (pool(30, asns=6, countries=1), "a conference's participants, each its own org, in one country"),
    (pool(30, asns=3, countries=4), "abroad in four countries through three operators"),
    (pool(30, per_org=3), "thirty accounts of ten orgs abroad: a few companies' staff"),
    (pool(4), "four users abroad: fewer than min_members"),
])
def test_who_is_not_a_pool(rules, users, why):
    stage, links = feed(rules, users)
    st = stage.store.get(KEY)
    assert st.popular and links == [], why
    assert popularity(st, "template", SYS, rules)[0] == "FP_POPULAR_ESTABLISHED", why


def test_the_count_of_members_abroad_follows_moves_evictions_and_a_restore(rules):
    cap = rules.fingerprint.max_members
    users = pool(cap + 30, abroad_every=2)
    stage, _ = feed(rules, users)
    st = stage.store.get(KEY)
    assert len(st.members) == cap and st.n_cc == sum(1 for m in st.members.values() if m.cc) == cap // 2
    kept = list(st.members)
    a, b = int(kept[0][4:]), int(kept[1][4:])
    moves = [user(a, abroad=not st.members[kept[0]].cc, asn=64700, country="FR"),
             user(b, abroad=not st.members[kept[1]].cc, asn=64701, country="FR")]
    feed(rules, moves, stage)
    st = stage.store.get(KEY)
    assert st.n_cc == sum(1 for m in st.members.values() if m.cc)
    back = FpState.restore(st.snapshot())
    assert back.n_cc == st.n_cc and back.abroad is None
    assert {k: m.cc for k, m in back.members.items()} == {k: m.cc for k, m in st.members.items()}


def test_a_verdict_made_again_when_members_come_home(rules):
    # judged a pool; then its kept members send from home one by one: below keep_share it is a product's again
    pp = rules.fingerprints.pool_prompt
    users = pool(20)
    stage, links = feed(rules, users)
    assert stage.store.get(KEY).strong and links
    home = [user(k, abroad=False, asn=64700, country="US") for k in range(20)]
    stage, _ = feed(rules, home, stage)
    st = stage.store.get(KEY)
    assert st.n_cc == 0 and st.abroad is False and st.popular
    assert popularity(st, "template", SYS, rules)[0] == "FP_POPULAR_ESTABLISHED"
    assert pp.keep_share < pp.min_share


def test_the_country_abroad_is_kept_on_a_system_prompt_only(rules):
    stage, out = FingerprintStage(rules), Output()
    s = user(1, abroad=True, asn=64512, country="DE")
    for scope, value in (("ja4", "t13d_example"), ("ip_prefix", "81.2.3.0/24"), ("template", "m0:0123abcd"),
                         ("template", SYS)):
        stage.process(Observation(scope, value, T0, "ev1", s), out)
    assert stage.store.get("ja4:t13d_example").members[s.account_id].cc == ""
    assert stage.store.get("template:m0:0123abcd").members[s.account_id].cc == ""
    assert stage.store.get(KEY).members[s.account_id].cc == "DE"
    at_home = user(2, abroad=False, asn=64512, country="DE")
    stage.process(Observation("template", SYS, T0, "ev2", at_home), out)
    assert stage.store.get(KEY).members[at_home.account_id].cc == ""


def test_abroad_is_the_latest_request_from_a_home_or_phone_network_outside_the_billing_country(rules):
    def abroad(client: dict, billing: str = "DE") -> bool:
        out = Feed(rules)("h", "org-h", {**young(), "billing_country": billing}, client=client)
        return out.observations[0].summary.abroad

    assert abroad({"ip": "81.2.9.7", "asn_type": "residential", "country": "FR"})
    assert abroad({"ip": "81.2.9.7", "asn_type": "mobile", "country": "US"})
    assert not abroad({"ip": "81.2.9.7", "asn_type": "residential", "country": "DE"})
    assert not abroad({"ip": "81.2.9.7", "asn_type": "cloud", "country": "FR"})  # hosting: pool_prompt's rotation
    assert not abroad({"ip": "81.2.9.7", "asn_type": "vpn", "country": "FR"})
    assert not abroad({"ip": "81.2.9.7", "asn_type": "residential"})  # no country


def test_the_wire_form_round_trips_and_older_ones_are_not_abroad():
    s = Summary("a", "o", T0, True, False, 3, 1, country="FR", abroad=True)
    assert Summary.unwire(s.wire()) == s and len(s.wire()) == 18
    assert Summary.unwire(s.wire()[:17]).abroad is False
    h = Summary("a", "o", T0, True, False, 3, 1, country="DE", home=True)
    assert len(h.wire()) == 17 and Summary.unwire(h.wire()) == h  # not abroad: as before the field


@pytest.mark.parametrize(("knob", "value"), [("abroad_countries", 1), ("abroad_countries", -1),
                                              ("abroad_asns", 1)])
def test_the_knobs_are_validated(knob, value):
    d = doc()
    d["fingerprints"]["pool_prompt"][knob] = value
    with pytest.raises(RulesError) as exc:
        compile_rules(d, "bad.yaml")
    assert "fingerprints.pool_prompt" in str(exc.value)



def test_a_verdict_skipped_while_an_earlier_test_holds_is_made_again_after(rules):
    # The abroad verdict is cached and made again when a member joins or its country abroad changes. Members
    # that join while the rotation test holds skip it, so the cache must not outlive them: once that test
    # stops holding (its rotating members crowd onto two hosting blocks, no member joining), the verdict
    # counts everyone abroad who joined meanwhile.
    from tests.core.test_pool_prompt import member
    pp = rules.fingerprints.pool_prompt
    first = user(0, abroad=True, asn=64600, country="GB")             # the verdict is made: one member, none
    rotating = [member(10 + k, rotates=True, block=9000 + k, asn=64500 + k % 3) for k in range(5)]
    abroad = [user(20 + k, abroad=True, asn=64600 + k % 8, country=COUNTRIES[k % 5]) for k in range(9)]
    stage, _ = feed(rules, [first, *rotating, *abroad])
    st = stage.store.get(KEY)
    assert st.strong and st.n_rot == 5 and st.n_cc == 10 and len(st.members) == 15
    assert popularity(st, "template", SYS, rules)[0] == "FP_POOL_PROMPT"
    assert "rotate" in popularity(st, "template", SYS, rules)[3]  # the rotation test, not the abroad one
    # three rotating members move onto the others' blocks: 2 blocks for 5 rotating members, below
    # min_block_share, so the rotation test fails; nobody joined and no country changed
    moves = [member(10 + k, rotates=True, block=9000 + k % 2, asn=64500 + k % 3) for k in (2, 3, 4)]
    stage, _ = feed(rules, moves, stage)
    st = stage.store.get(KEY)
    assert pp.min_block_share * 5 > 2
    assert st.abroad is True and st.strong and not st.popular
    code, _, _, detail = popularity(st, "template", SYS, rules)
    assert code == "FP_POOL_PROMPT" and "outside their billing country" in detail
