"""A system prompt whose users share a proxy pool's exits (rules `fingerprints.pool_prompt.shared_members`,
`shared_share`; app/detect/fingerprint.py `_shared_exits`): a harness that a campaign's aged, bought accounts
run through a data-centre pool with sticky sessions, each account on one exit for hours and each exit carrying
accounts of several orgs, links its members although most of them are established and none rotates (odd
worlds 189, 195, 213). A product's prompt stays popular when its users each send from their own cloud machine
(an agent framework's launch crowd over six providers), from a venue's one address (a hackathon), from its
vendor's few blocks of one cloud, or rotate through a multi-cloud vendor's addresses (the rotating route judges
those: test_pool_prompt.py's `test_rotating_members_on_a_few_reused_blocks_are_not_a_pool`, with this route
on)."""

from __future__ import annotations

import pytest

from app.detect.fingerprint import popularity
from app.rules.load import compile_rules
from app.rules.model import Rules
from app.stages.fingerprint import FingerprintStage
from tests.core.test_pool_prompt import KEY, SYS, assert_products_prompt, doc, feed, member


@pytest.fixture
def rules() -> Rules:
    return compile_rules(doc(), "default.yaml")


def sticky_pool(n: int, *, exits: int, asns: int, first: int = 0) -> list:
    """n established accounts of n orgs, none rotating, each on one of `exits` hosting blocks of `asns`
    operators (a pool's sticky sessions: several orgs per exit)."""
    return [member(k, rotates=False, block=3000 + k % exits, asn=64500 + (k % exits) % asns)
            for k in range(first, first + n)]


def test_aged_accounts_on_a_pools_shared_sticky_exits_run_a_harness(rules):
    pp = rules.fingerprints.pool_prompt
    assert (pp.shared_members, pp.shared_share) == (4, 0.2)
    # odd world 213: 114 aged, card-verified accounts on 34 exits of five operators, sticky for hours
    users = sticky_pool(60, exits=20, asns=5)
    stage, links = feed(rules, users)
    st = stage.store.get(KEY)
    assert st.n_rot == 0 and st.established == 60 and st.strong and not st.popular
    assert {lk.summary.account_id for lk in links} >= {s.account_id for s in users[-48:]}
    assert all(lk.strong for lk in links)
    code, figure, threshold, detail = popularity(st, "template", SYS, rules)
    assert (code, figure, threshold) == ("FP_POOL_PROMPT", 1.0, 0.2)
    assert "48 of the 48 accounts kept on hosting networks send from a hosting block that an account of " \
           "another org sends from too" in detail and "of 5 network operators" in detail


@pytest.mark.parametrize("users,why", [
    ([member(k, rotates=False, block=5000 + k, asn=64500 + k % 6) for k in range(60)],
     "an agent framework's launch crowd: each user on its own cloud box, six providers, none shared"),
    ([member(k, rotates=False, block=7000, asn=16509) for k in range(60)],
     "a hackathon at a cloud venue: everyone behind one address"),
    ([member(k, rotates=False, block=8000 + k % 4, asn=16509) for k in range(60)],
     "a hosted tool's customers pinned to four egress addresses of one cloud"),
    ([member(k, rotates=False, block=8000 + k % 6, asn=16509 + k % 2) for k in range(60)],
     "a vendor on two clouds (fewer operators than min_asns)"),
    ([member(k, rotates=False, block=9100 + k % 6, asn=64500 + k % 3, org=f"company{k // 5}") for k in range(60)],
     "twelve companies' employees behind three security vendors' shared cloud egress, five per company, each "
     "company's starting their day together"),
    ([member(k, rotates=False, block=5000 + k if k % 10 else 9000 + k % 20, asn=64500 + k % 6)
      for k in range(60)],
     "two pairs of colleagues among developers on their own boxes (2 of 48 share an exit: under the share)"),
])
def test_a_products_users_on_their_own_a_venues_or_a_vendors_machines_are_not_a_pool(rules, users, why):
    assert_products_prompt(rules, users, why)


def test_the_verdict_is_made_again_when_members_move_onto_shared_exits(rules):
    # the same accounts first each on a box of its own (a product's), then their sessions move onto a pool's
    # shared exits: judged again at each move, not only when a member joins
    users = [member(k, rotates=False, block=5000 + k, asn=64500 + k % 6) for k in range(40)]
    stage, links = feed(rules, users)
    assert stage.store.get(KEY).popular and links == []
    stage, links = feed(rules, sticky_pool(40, exits=10, asns=5), stage)
    st = stage.store.get(KEY)
    assert st.strong and not st.popular and links


def test_the_same_harness_without_the_route_links_nothing():
    d = doc()
    d["fingerprints"]["pool_prompt"]["shared_members"] = 0
    off = compile_rules(d, "off.yaml")
    assert off.fingerprints.pool_prompt.shared_members == 0
    stage, links = feed(off, sticky_pool(60, exits=20, asns=5))
    assert stage.store.get(KEY).popular and links == []


def test_the_verdict_is_made_again_after_a_restore(rules):
    stage, _ = feed(rules, sticky_pool(30, exits=10, asns=5))
    restored = FingerprintStage(rules)
    for key, st in stage.store.items():
        restored.store.put(key, type(st).restore(st.snapshot()))
    assert restored.store.get(KEY).exits is None
    _, links = feed(rules, sticky_pool(1, exits=10, asns=5, first=30), restored)
    st = restored.store.get(KEY)
    assert st.exits is True and st.strong and links


def _sessions(rules, users: list[tuple[str, dict, dict]], system_prompt: str = "5a5a5a5a5a5a5a5a"):
    """End to end: each user (account, account fields, client) of its own org sends one session of six requests,
    ten seconds apart, on `system_prompt`, the sessions a minute apart; -> {account: first action} and the
    last request time of each."""
    from app.engine import Engine
    from app.ingest.parse import Rejection, parse_record
    from tests.helpers import T0, event, line

    eng = Engine(rules)
    acted: dict[str, tuple[int, str]] = {}
    last: dict[str, int] = {}
    i = 0
    for k, (acct, account, client) in enumerate(users):
        for j in range(6):
            ts = T0 + k * 60_000 + j * 10_000
            raw = event(i, acct, ts_ms=ts, account=account, client=client,
                        request={"prompt": f"Run the test suite for module {i} and fix what fails",
                                 "system_prompt_hash": system_prompt, "tools": 3})
            raw["org_id"] = "org-" + acct
            i += 1
            e = parse_record(line(raw), T0 + 40 * 86_400_000)
            assert not isinstance(e, Rejection), e
            last[acct] = ts
            for d in eng.process(e).decisions:
                if d.scope == "account" and d.mode == "enforce":
                    acted.setdefault(d.value, (ts, d.action))
    return acted, last


AGED_CARD = {"created_at": "2025-12-20T00:00:00Z", "kyc": "card", "email_domain_class": "freemail"}


def test_end_to_end_a_harness_on_a_pools_sticky_exits_is_challenged_at_most_and_a_launch_crowd_left_alone(rules):
    # 40 aged, card-verified one-session accounts on one harness, each on one exit of a pool of ten /24s of five
    # data-centre operators in three countries, three cards held by three of them each: the prompt links every
    # member, the community is decided on its pool's shared exits (each member's egress-pool evidence), and
    # its aged members are challenged at most, most of them during their session
    def pool_client(k: int) -> dict:
        x = k % 10
        return {"ip": f"45.{60 + x}.{x}.{9 + k % 7}", "asn": 64500 + x % 5, "asn_type": "datacenter",
                "country": ("US", "DE", "NL")[x % 3], "ja4": "t13d_common"}

    users = []
    for k in range(40):
        card = {"payment_fp": f"pf_ring{k % 3}"} if k < 9 else {"payment_fp": f"pf_own{k}"}
        users.append((f"pool-{k}", {**AGED_CARD, **card}, pool_client(k)))
    acted, last = _sessions(rules, users)
    assert len(acted) >= 30
    assert {a for _, a in acted.values()} <= {"throttle", "challenge"}
    in_session = sum(1 for acct, (ts, _) in acted.items() if ts <= last[acct])
    assert in_session >= 25
    # (without the shared-exits route nothing links them but their cards, and nobody is acted on: each card's
    # three holders send from one country, so none is a ring's by unrelated_card, and none of them rotates)
    d = doc()
    d["fingerprints"]["pool_prompt"]["shared_members"] = 0
    assert _sessions(compile_rules(d, "off.yaml"), users)[0] == {}
    # the same harness run by an agent framework's launch crowd, each user on a cloud box of its own of six
    # providers: nothing links them, nobody is acted on
    crowd = [(f"dev-{k}", {**AGED_CARD, "payment_fp": f"pf_dev{k}"},
              {"ip": f"34.{100 + k}.{k}.5", "asn": 16509 + k % 6, "asn_type": "cloud", "country": "US",
               "ja4": "t13d_common"}) for k in range(40)]
    acted, _ = _sessions(rules, crowd)
    assert acted == {}
