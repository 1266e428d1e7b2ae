"""A system prompt run through a proxy pool (app/detect/fingerprint.py, rules `fingerprints.pool_prompt`): a
harness that a campaign's aged, bought accounts run from a data-centre pool links its members although most of
them are established; a product's prompt stays popular when its users send from the vendor's servers (a few
blocks, or many blocks of one cloud), from their own cloud machines (no rotation), or when only a few of them
rotate."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from app.detect.fingerprint import FpState, popularity
from app.detect.messages import OWN_CONTENT, OWN_NETWORK, Observation, Summary
from app.errors import RulesError
from app.rules.load import compile_rules
from app.rules.model import Rules
from app.stages.base import Output
from app.stages.fingerprint import FingerprintStage
from tests.helpers import T0

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
SYS = "sys:900dc0ffee000001"
KEY = "template:" + SYS


def doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


@pytest.fixture
def rules() -> Rules:
    return compile_rules(doc(), "default.yaml")


def member(k: int, *, rotates: bool, block: int, asn: int, young: bool = False, own: int = 0,
           org: str | None = None) -> Summary:
    """Account k of its own org (or `org`): established (aged, verified) unless `young`; its own egress rotating
    through hosting networks (OWN_NETWORK) when `rotates`; its last request from hosting block `block` of `asn`."""
    bits = own | (OWN_NETWORK if rotates else 0)
    return Summary(f"acct{k:04d}", org or f"org{k:04d}", T0, young, False, 12, 0, own=bits, hosting_block=block,
                   net=block, asn=asn)


def feed(rules: Rules, summaries: list[Summary], stage: FingerprintStage | None = None) -> tuple[FingerprintStage,
                                                                                                 list]:
    stage, out = stage or FingerprintStage(rules), Output()
    for k, s in enumerate(summaries):
        stage.process(Observation("template", SYS, T0 + 1000 * k, f"ev{k}", s), out)
    return stage, out.links


def assert_products_prompt(rules: Rules, users: list[Summary], why: str = "") -> None:
    """The prompt these users run stays a product's: popular by its established users, nothing linked."""
    stage, links = feed(rules, users)
    st = stage.store.get(KEY)
    assert st.popular and links == [], why
    assert popularity(st, "template", SYS, rules)[0] == "FP_POPULAR_ESTABLISHED", why


def pool_users(n: int, *, asns: int, blocks: int, rotating_every: int = 1) -> list[Summary]:
    """n established accounts on `blocks` hosting blocks of `asns` operators; every `rotating_every`-th rotates."""
    return [member(k, rotates=k % rotating_every == 0, block=1000 + k % blocks, asn=64500 + k % asns)
            for k in range(n)]


def assert_links_every_member(rules: Rules, users: list[Summary]) -> str:
    """The prompt these established users run links every one of them as a pool's harness (`FP_POOL_PROMPT`,
    all of the members kept counted); its detail."""
    stage, links = feed(rules, users)
    st = stage.store.get(KEY)
    assert st.established == len(users) and not st.popular and st.strong and st.linking
    assert {lk.summary.account_id for lk in links} == {s.account_id for s in users}
    assert all(lk.strong for lk in links)
    code, figure, threshold, detail = popularity(st, "template", SYS, rules)
    assert (code, figure, threshold) == ("FP_POOL_PROMPT", 1.0, rules.fingerprints.pool_prompt.min_share)
    return detail


def test_aged_harness_through_a_data_centre_pool_links_every_member(rules):
    pp = rules.fingerprints.pool_prompt
    assert pp is not None and (pp.min_members, pp.min_asns) == (5, 3)
    # 40 aged, card-verified accounts of 40 orgs, each rotating through a pool of 30 blocks of 6 clouds
    detail = assert_links_every_member(rules, pool_users(40, asns=6, blocks=30))
    assert "40 of the 40 accounts kept" in detail and "30 hosting blocks of 6 network operators" in detail


def test_the_same_prompt_without_the_rule_links_nothing(rules):
    d = doc()
    d["fingerprints"]["pool_prompt"]["min_members"] = 0
    off = compile_rules(d, "off.yaml")
    assert off.fingerprints.pool_prompt is None
    stage, links = feed(off, pool_users(40, asns=6, blocks=30))
    st = stage.store.get(KEY)
    assert st.popular and links == []
    assert popularity(st, "template", SYS, off)[0] == "FP_POPULAR_ESTABLISHED"


@pytest.mark.parametrize("asns,blocks,why", [
    (1, 4, "a hosted tool's servers: four NAT addresses of one cloud"),
    (1, 40, "serverless egress: a block per member, one cloud"),
    (2, 40, "a vendor on two clouds"),
])
def test_a_product_prompt_sent_from_its_vendors_servers_stays_popular(rules, asns, blocks, why):
    # every customer's requests hop between the vendor's egress addresses: each one rotates (OWN_NETWORK)
    assert_products_prompt(rules, pool_users(40, asns=asns, blocks=blocks), why)


def test_customers_running_a_tool_on_their_own_cloud_machines_do_not_rotate(rules):
    # 40 established developers, each on its own cloud box (its own block, twelve clouds between them)
    users = [member(k, rotates=False, block=2000 + k, asn=64500 + k % 12) for k in range(40)]
    stage, links = feed(rules, users)
    assert stage.store.get(KEY).popular and links == []


def test_a_few_rotating_users_are_not_a_pool(rules):
    # one in three of the prompt's users rotates (14 of 40, > min_members, < min_share): still a product
    stage, links = feed(rules, pool_users(40, asns=6, blocks=40, rotating_every=3))
    st = stage.store.get(KEY)
    assert st.n_rot == 14 and st.popular and links == []


def test_rotating_members_on_a_few_reused_blocks_are_not_a_pool(rules):
    # 40 rotating members whose last requests came from 12 blocks (of 6 operators): 0.3 per member. Its
    # first dozen, each on a block of its own, were a pool's users; from the 25th on it is popular again
    users = pool_users(40, asns=6, blocks=12)
    stage, links = feed(rules, users)
    st = stage.store.get(KEY)
    assert st.popular and popularity(st, "template", SYS, rules)[0] == "FP_POPULAR_ESTABLISHED"
    linked = {lk.summary.account_id for lk in links}
    assert linked and not linked & {s.account_id for s in users[24:]}


def test_the_count_of_rotating_members_follows_changes_evictions_and_a_restore(rules):
    cap = rules.fingerprint.max_members
    users = pool_users(cap + 30, asns=6, blocks=60, rotating_every=2)
    stage, _ = feed(rules, users)
    st = stage.store.get(KEY)
    assert len(st.members) == cap
    assert st.n_rot == sum(1 for m in st.members.values() if m.own & OWN_NETWORK) == cap // 2
    # a kept member stops rotating, another starts: the count follows
    keep = list(st.members)
    a, b = st.members[keep[0]], st.members[keep[1]]
    flip = [member(int(keep[0][4:]), rotates=not (a.own & OWN_NETWORK), block=1, asn=64500, own=OWN_CONTENT),
            member(int(keep[1][4:]), rotates=not (b.own & OWN_NETWORK), block=2, asn=64501)]
    feed(rules, flip, stage)
    st = stage.store.get(KEY)
    assert st.n_rot == sum(1 for m in st.members.values() if m.own & OWN_NETWORK)
    # the stored form keeps each member's operator; the count is made again on restore
    back = FpState.restore(st.snapshot())
    assert back.n_rot == st.n_rot
    assert {a: m.asn for a, m in back.members.items()} == {a: m.asn for a, m in st.members.items()}
    assert all(m.asn for m in back.members.values())


def test_operators_are_kept_only_for_system_prompts_and_payment_methods(rules):
    # a system prompt's members' operators for pool_prompt, a card's holders' for unrelated_card; no other
    # value keeps them (a JA4's, an IP block's, a device's members store as before operators were kept)
    stage, out = FingerprintStage(rules), Output()
    s = member(1, rotates=True, block=7, asn=64512)
    for scope, value in (("ja4", "t13d_example"), ("payment_fp", "pf_example"), ("device_id", "dev_example")):
        stage.process(Observation(scope, value, T0, "ev1", s), out)
    assert stage.store.get("ja4:t13d_example").members[s.account_id].asn == 0
    dm = stage.store.get("device_id:dev_example").members[s.account_id]
    assert dm.asn == 0 and len(dm.snapshot()) == 12
    pm = stage.store.get("payment_fp:pf_example").members[s.account_id]
    assert pm.asn == 64512 and len(pm.snapshot()) == 13


@pytest.mark.parametrize("knob,value,where", [
    ("min_members", 2, "fingerprints.pool_prompt.min_members"),
    ("min_asns", 1, "fingerprints.pool_prompt.min_asns"),
    ("max_accounts", 150, "fingerprints.pool_prompt.max_accounts"),
    ("keep_share", 0, "fingerprints.pool_prompt"),
    ("keep_share", 1.5, "fingerprints.pool_prompt"),
    # the shared-exits route (tests/core/test_pool_shared_exits.py)
    ("shared_members", 2, "fingerprints.pool_prompt.shared_members"),
    ("shared_share", 0, "fingerprints.pool_prompt"),
    ("shared_share", 1.5, "fingerprints.pool_prompt"),
    ("shared_org_share", 0, "fingerprints.pool_prompt"),
])
def test_knobs_are_validated(knob, value, where):
    d = doc()
    d["fingerprints"]["pool_prompt"][knob] = value
    with pytest.raises(RulesError) as exc:
        compile_rules(d, "bad.yaml")
    assert where in str(exc.value)


def home_users(n: int, *, asns: int, nets: int, rotating_every: int = 1) -> list[Summary]:
    """n established accounts whose last requests came from `nets` residential blocks of `asns` operators (no
    hosting block); every `rotating_every`-th rotates through home and phone networks across countries
    (ACCT_RESIDENTIAL_ROTATION, which sets OWN_NETWORK)."""
    return [Summary(f"acct{k:04d}", f"org{k:04d}", T0, False, False, 12, 0,
                    own=OWN_NETWORK if k % rotating_every == 0 else 0, net=3000 + k % nets, asn=64600 + k % asns)
            for k in range(n)]


def test_aged_harness_through_a_residential_pool_links_every_member_whatever_its_few_exits(rules):
    # 224 aged accounts on a residential pool of twelve exits of seven ISPs: 0.05 of a block per member, which
    # the block share (a hosting tool's test) does not ask of members without a hosting block
    users = home_users(48, asns=7, nets=12)
    stage, links = feed(rules, users)
    st = stage.store.get(KEY)
    assert not st.popular and st.strong
    code, figure, _, detail = popularity(st, "template", SYS, rules)
    assert (code, figure) == ("FP_POOL_PROMPT", 1.0)
    assert "48 of the 48 accounts kept send from networks that rotate (>= 0.5), of 7 network operators" in detail
    assert {lk.summary.account_id for lk in links} == {s.account_id for s in users}


def test_a_team_whose_members_rotate_on_two_operators_or_a_few_travellers_is_not_a_pool(rules):
    # the same users on two operators between them (min_asns 3), or a third of them rotating (min_share 0.5)
    for users in (home_users(48, asns=2, nets=12), home_users(48, asns=7, nets=12, rotating_every=3)):
        stage, links = feed(rules, users)
        assert stage.store.get(KEY).popular and links == []


# ------------------------------------------------- a pool's harness whose newest members do not rotate yet
def arrivals(n: int) -> list[Summary]:
    """A pool's harness: its first 12 users rotate through 30 blocks of 6 operators (judged a pool's with its
    fifth), then new users arrive faster than their rotation shows: about every other one rotates yet (a fixed
    coin-flip sequence), so once the first dozen are evicted from the members kept (48) the share that rotate
    wanders about min_share, as in odd world 133 (24 of 48, then 23: a new account's first requests come from
    one exit before its egress rotation fires)."""
    coin = random.Random(18)
    out = []
    for k in range(n):
        rotates = coin.random() < 0.5 or k < 12
        out.append(member(k, rotates=rotates, block=1000 + k % 30, asn=64500 + k % 6))
    return out


def verdicts(rules: Rules, users: list[Summary]) -> list[bool]:
    stage, out = FingerprintStage(rules), Output()
    strong = []
    for k, s in enumerate(users):
        stage.process(Observation("template", SYS, T0 + 1000 * k, f"ev{k}", s), out)
        st = stage.store.get(KEY)
        strong.append(st.strong and not st.popular)
    return strong


def test_a_pools_harness_stays_one_while_its_new_members_do_not_rotate_yet(rules):
    pp = rules.fingerprints.pool_prompt
    assert pp.keep_share == 0.3 < pp.min_share
    users = arrivals(120)
    strong = verdicts(rules, users)
    first = strong.index(True)
    assert first == pp.min_members - 1 and all(strong[first:])
    stage, _ = feed(rules, users)
    st = stage.store.get(KEY)
    share = st.n_rot / len(st.members)
    assert pp.keep_share <= share < pp.min_share
    code, figure, _, detail = popularity(st, "template", SYS, rules)
    assert code == "FP_POOL_PROMPT" and figure == round(share, 4)
    assert f"{st.n_rot} of the 48 accounts kept" in detail and "judged so at >= 0.5, kept while >= 0.3" in detail


def rotation_only() -> Rules:
    """The packaged rules without the shared-exits route (`shared_members` 0): the tests of keep_share judge
    the rotating route alone (a pool's newcomers sit on its shared exits, which that route holds a pool
    by)."""
    d = doc()
    d["fingerprints"]["pool_prompt"]["shared_members"] = 0
    return compile_rules(d, "rotation.yaml")


def test_without_keep_share_the_same_harness_flips_with_each_arrival():
    d = doc()
    del d["fingerprints"]["pool_prompt"]["keep_share"]
    d["fingerprints"]["pool_prompt"]["shared_members"] = 0
    off = compile_rules(d, "off.yaml")
    assert off.fingerprints.pool_prompt.keep_share == 1.0
    strong = verdicts(off, arrivals(120))
    assert sum(a != b for a, b in pairwise(strong)) >= 6 and not strong[-1]


def test_a_kept_harness_whose_rotating_members_fall_below_keep_share_is_a_products_prompt():
    # the same start, then only one in five of the newcomers rotates: the share sinks under 0.3
    rules = rotation_only()
    users = arrivals(12) + [member(k, rotates=k % 5 == 0, block=1000 + k % 30, asn=64500 + k % 6)
                            for k in range(12, 200)]
    strong = verdicts(rules, users)
    assert any(strong) and not strong[-1]
    stage, _ = feed(rules, users)
    assert stage.store.get(KEY).popular
