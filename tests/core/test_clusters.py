"""Fingerprint linking (app/detect/fingerprint.py) and campaign clusters (app/detect/cluster.py, the
ClusterStage in app/stages/cluster.py): who gets linked, what is too popular to link, union by size, fan-out to
implicated members only, late joiners on a decided cluster, bounded state."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from app.detect.cluster import _DEC, _SCOPES, ClusterState, cluster_signals, member_implicated
from app.detect.fingerprint import FpState
from app.detect.fingerprint import observe as fp_observe
from app.detect.messages import Link, Observation, Summary
from app.engine import ClusterStage, Engine, FingerprintStage, Output
from app.ingest.parse import Rejection, parse_record
from app.rules.load import compile_rules
from app.rules.model import Rules
from tests.helpers import T0, event, line

MIN = 60_000
DAY = 86_400_000
NOW = T0 + 40 * DAY
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
TRACE = ("Problem {n}: a farmer has {n} sheep and buys 5 more each week for 6 weeks. Answer: {m}. "
         "Reconstruct the complete step-by-step reasoning behind this completed answer.")


def young(card: str | None = None) -> dict:
    """Two days old at T0, email-only KYC: a new account (eligible for linking)."""
    acct = {"created_at": "2026-01-30T12:00:00Z", "kyc": "email", "email_domain_class": "freemail"}
    if card:
        acct["payment_fp"] = card
    return acct


ESTABLISHED = {"created_at": "2025-01-10T00:00:00Z", "kyc": "card", "email_domain_class": "corporate"}


class Feed:
    """An Engine plus a clock: each call sends one event a minute after the previous one."""

    def __init__(self, rules: Rules) -> None:
        self.engine = Engine(rules)
        self.i = 0

    def __call__(self, acct: str, org: str | None, account: dict, **groups) -> Output:
        raw = event(self.i, acct, ts_ms=T0 + self.i * MIN, account=account, **groups)
        if org is not None:
            raw["org_id"] = org
        self.i += 1
        e = parse_record(line(raw), NOW)
        assert not isinstance(e, Rejection), e
        return self.engine.process(e)

    def cluster_of(self, acct: str) -> ClusterState | None:
        return self.engine.clusters._cluster_of("a:" + acct, T0 + self.i * MIN)


def account_decisions(out: Output) -> dict[str, str]:
    return {d.value: d.action for d in out.decisions if d.scope == "account"}


def summary(acct: str, org: str | None, *, eligible: bool = True, n: int = 1, flagged: int = 0) -> Summary:
    return Summary(acct, org, T0, eligible, eligible, n, flagged)


def obs(scope: str, value: str, s: Summary, ts: int = T0) -> Observation:
    return Observation(scope, value, ts, f"ev-{s.account_id}", s)


def observe_all(rules: Rules, items: list[Observation]) -> tuple[FingerprintStage, list[Link]]:
    stage, out = FingerprintStage(rules), Output()
    for o in items:
        stage.process(o, out)
    return stage, out.links


def rules_doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


# -------------------------------------------------------------------------------------------- linking
def test_shared_card_among_young_accounts_of_different_orgs_links_them(rules):
    items = [obs("payment_fp", "card-1", summary(f"a{k}", f"org-{k}"), T0 + k) for k in range(3)]
    stage, links = observe_all(rules, items)
    # the second org turns the value into a link: the waiting first member comes along
    assert [(lk.summary.account_id, lk.anchor, lk.fp_accounts, lk.fp_orgs) for lk in links] == [
        ("a0", "a0", 2, 2), ("a1", "a0", 2, 2), ("a2", "a0", 3, 3)]
    assert {lk.fp for lk in links} == {"payment_fp:card-1"}
    st = stage.store.get("payment_fp:card-1")
    assert st.linking and not st.popular


def test_team_card_within_one_org_links_nothing(rules):
    items = [obs("payment_fp", "corp-card", summary(f"dev{k}", "org-acme"), T0 + k) for k in range(6)]
    stage, links = observe_all(rules, items)
    assert links == []
    assert not stage.store.get("payment_fp:corp-card").linking


def test_accounts_without_org_count_as_unrelated(rules):
    _, links = observe_all(rules, [obs("device_id", "dev-9", summary(f"a{k}", None)) for k in range(2)])
    assert [lk.summary.account_id for lk in links] == ["a0", "a1"]


def test_established_members_are_not_linked(rules):
    items = [obs("ja4", "j-rare", summary("old", "org-old", eligible=False)),
             obs("ja4", "j-rare", summary("y1", "org-1")), obs("ja4", "j-rare", summary("y2", "org-2"))]
    _, links = observe_all(rules, items)
    assert [lk.summary.account_id for lk in links] == ["y1", "y2"]


def test_value_used_by_established_accounts_is_popular_and_links_nothing(rules):
    assert rules.fingerprints.popular_established == 2
    # mostly established users: popular, links nothing
    items = [obs("ja4", "t13d-sdk", summary(f"old{k}", f"org-old{k}", eligible=False)) for k in range(3)]
    items += [obs("ja4", "t13d-sdk", summary(f"y{k}", f"org-{k}")) for k in range(3)]
    stage, links = observe_all(rules, items)
    assert links == []
    st = stage.store.get("ja4:t13d-sdk")
    assert st.popular and (st.distinct, st.established) == (6, 3)


def test_value_mostly_used_by_new_accounts_stays_linkable(rules):
    # a campaign's aged accounts share its system prompt with its new ones: still rare elsewhere
    items = [obs("ja4", "t13d-camp", summary(f"old{k}", f"org-old{k}", eligible=False)) for k in range(2)]
    items += [obs("ja4", "t13d-camp", summary(f"y{k}", f"org-{k}")) for k in range(5)]
    stage, links = observe_all(rules, items)
    st = stage.store.get("ja4:t13d-camp")
    assert not st.popular and (st.distinct, st.established) == (7, 2)
    assert {lk.summary.account_id for lk in links} == {f"y{k}" for k in range(5)}


def test_value_used_by_more_than_popular_accounts_is_popular(rules):
    limit = rules.fingerprints.popular_accounts
    assert limit == 150
    items = [obs("ip_prefix", "203.0.113.0/24", summary(f"y{k}", f"org-{k}"), T0 + k) for k in range(limit + 1)]
    stage, out = FingerprintStage(rules), Output()
    counts = []
    for o in items:
        before = len(out.links)
        stage.process(o, out)
        counts.append(len(out.links) - before)
    assert counts[1] == 2 and set(counts[2:limit]) == {1}  # linking while rare
    assert counts[limit] == 0                              # the 151st account makes it popular
    st = stage.store.get("ip_prefix:203.0.113.0/24")
    assert st.popular and st.distinct == limit + 1
    # once popular, nothing links any more, not even members already seen
    more = Output()
    stage.process(obs("ip_prefix", "203.0.113.0/24", summary("y3", "org-3", n=64), T0 + 999), more)
    assert more.links == []


def test_fingerprint_members_are_capped_but_counted(rules):
    cap = rules.fingerprint.max_members
    items = [obs("device_id", "dev-1", summary(f"a{k:03d}", "org-1"), T0 + k) for k in range(cap + 12)]
    stage, _ = observe_all(rules, items)
    st = stage.store.get("device_id:dev-1")
    assert len(st.members) == cap and st.distinct == cap + 12
    assert "a000" not in st.members and f"a{cap + 11:03d}" in st.members  # the oldest are dropped


def test_summary_eligibility_from_the_account_stage(rules):
    feed = Feed(rules)
    consumer = {"created_at": "2025-06-01T00:00:00Z", "kyc": "email", "email_domain_class": "freemail"}
    cases = {
        "young": young(),
        "consumer": consumer,                                              # old, email-only: not linkable
        "edu-student": {**consumer, "signup_channel": "edu"},              # abused channel, unverified
        "disposable": {**ESTABLISHED, "email_domain_class": "disposable"},
        "no-kyc": {**consumer, "kyc": "none"},
        "customer": ESTABLISHED,
    }
    flags = {}
    for acct, account in cases.items():
        out = feed(acct, "org-" + acct, account, client={"ja4": "j"})
        s = out.observations[0].summary
        flags[acct] = (s.young, s.unverified, s.eligible)
    assert flags == {
        "young": (True, False, True), "consumer": (False, False, False), "edu-student": (False, True, True),
        "disposable": (False, True, True), "no-kyc": (False, True, True), "customer": (False, False, False),
    }


# ------------------------------------------------------------------------------------ cluster decisions
def _ring(feed: Feed, card: str = "card-1", n: int = 3, **groups) -> list[Output]:
    return [feed(f"ring-{k}", f"org-r{k}", young(card), **groups) for k in range(n)]


def test_card_ring_becomes_a_decided_cluster_with_fan_out(rules):
    feed = Feed(rules)
    outs = _ring(feed, client={"ip": "198.51.100.7"})
    assert [o.alerts for o in outs[:2]] == [[], []]
    (alert,) = outs[2].alerts
    w = alert.wire()
    assert (w["subject"]["scope"], w["score"], w["severity"], w["account_count"]) == ("cluster", 75, "high", 3)
    assert [(r["code"], r["value"], r["threshold"]) for r in w["reasons"]] == [
        ("FP_PAYMENT_SHARED", 3, 3.0), ("CL_YOUNG", 1.0, 0.6)]
    assert w["reasons"][0]["detail"] == "3 different orgs (3 accounts) pay with payment_fp:card-1"
    by_scope = {(d.scope, d.value): d for d in outs[2].decisions}
    # the shared IP block is not decided: bystanders behind it would be hit (see DECISION_SCOPES)
    assert set(by_scope) == {("account", "ring-0"), ("account", "ring-1"), ("account", "ring-2"),
                             ("payment_fp", "card-1")}
    for (scope, _), d in by_scope.items():
        assert (d.action, d.ttl_s, d.alert_id, d.cluster_id) == ("challenge", 21600, alert.alert_id, w["cluster_id"])
        assert d.reasons[-1] == ("CLUSTER_MEMBER" if scope == "account" else "CLUSTER_FP")
    # the ring's next requests add nothing while the decision is live
    more = _ring(feed, client={"ip": "198.51.100.7"})
    assert [d for o in more for d in o.decisions] == [] and [a for o in more for a in o.alerts] == []


def test_team_card_in_one_org_decides_nothing(rules):
    feed = Feed(rules)
    outs = [feed(f"dev{k}", "org-acme", young("corp-card"), client={"ip": "192.0.2.10"}) for k in range(6)]
    assert all(o.links == [] and o.alerts == [] and o.decisions == [] for o in outs)
    assert feed.engine.state_sizes()["clusters"] == 0


def test_students_behind_one_nat_are_linked_but_never_decided(rules):
    # new edu accounts of different orgs behind a university NAT: shared infrastructure, no content evidence
    feed = Feed(rules)
    outs = [feed(f"student{k}", f"org-s{k}", {**young(), "signup_channel": "edu"}, client={"ip": "192.0.2.77"},
                 request={"prompt": "Let's think step by step. What is 17 * 23?"}) for k in range(8)]
    assert feed.cluster_of("student0") is not None and len(feed.cluster_of("student0").members) == 8
    assert [a for o in outs for a in o.alerts] == [] and [d for o in outs for d in o.decisions] == []


@pytest.mark.parametrize(("bits", "flagged", "implicated"), [
    (1, 0, True),        # payment method
    (2, 0, True),        # device
    (16, 0, False),      # a JA4: bystanders share those
    (4, 0, False),       # a prompt template: resold genuine traffic uses ordinary prompts
    (8, 0, False),       # an IP block alone
    (32, 0, False),      # a system prompt alone
    (8 | 4, 0, False),   # IP block plus a prompt template: still what bystanders share
    (8 | 16, 0, False),  # IP block plus a JA4: what neighbours on an ISP block with one browser share
    (8 | 16, 1, True),   # ... with a flagged request of its own
    (8 | 16 | 4, 0, False),
    (8 | 32, 0, True),   # IP block plus a system prompt
    (16 | 4, 0, False),
    (16, 1, False),
    (16, 2, True),       # content evidence of its own
])
def test_member_implicated(bits, flagged, implicated):
    m = [T0, "org", 1, 1, 10, flagged, 0, bits]
    assert bool(member_implicated(m)) is implicated


def test_fan_out_reaches_only_implicated_members(rules):
    feed = Feed(rules)
    ja4 = {"ja4": "t13d-rare-kit"}
    feed("ring-0", "org-r0", young("card-1"), client=ja4)
    feed("tagalong", "org-t", young("own-card"), client=ja4)  # shares only the JA4
    feed("ring-1", "org-r1", young("card-1"), client=ja4)
    out = feed("ring-2", "org-r2", young("card-1"), client=ja4)
    assert out.alerts and set(feed.cluster_of("ring-0").members) == {"ring-0", "ring-1", "ring-2", "tagalong"}
    # payment 60 + young 15 + four starts within 15 min 15 = 90: a block, for the ring only
    assert account_decisions(out) == {"ring-0": "block", "ring-1": "block", "ring-2": "block"}
    # content evidence of its own makes the tagalong implicated on its next summary update
    for k in range(2):
        out = feed("tagalong", "org-t", young("own-card"), client=ja4, request={"prompt": TRACE.format(n=k, m=k + 9)})
    assert account_decisions(out) == {"tagalong": "block"}


def test_a_decided_fingerprint_has_every_account_behind_it_decided(rules):
    # contract v1: a fingerprint-scoped decision applies to every request on the value, so every account
    # behind a decided value gets an account decision too. The ring's card is decided and all three ring
    # accounts are; the JA4 is shared with a bystander who is not implicated, so it is not decided at all
    # (deciding it would penalise the bystander at the rate limiter)
    feed = Feed(rules)
    ja4 = {"ja4": "t13d-rare-kit"}
    outs = [feed(f"ring-{k}", f"org-r{k}", young("card-1"), client=ja4) for k in range(3)]
    outs.append(feed("bystander", "org-b", young("own-card"), client=ja4))
    outs += [feed(f"ring-{k}", f"org-r{k}", young("card-1"), client=ja4) for k in range(3, 5)]
    cluster = feed.cluster_of("ring-0")
    assert "bystander" in cluster.members and cluster.live is not None
    decided_values = {(d.scope, d.value) for o in outs for d in o.decisions if d.scope != "account"}
    decided_accounts = {d.value for o in outs for d in o.decisions if d.scope == "account"}
    assert decided_values == {("payment_fp", "card-1")}
    assert decided_accounts == {f"ring-{k}" for k in range(5)}


def test_device_shared_by_a_ring_is_decided_but_an_ip_block_is_not(rules):
    feed = Feed(rules)
    outs = [feed(f"ring-{k}", f"org-r{k}", young("card-1"), client={"device_id": "dev-77", "ip": "198.51.100.7"})
            for k in range(3)]
    decided_values = {(d.scope, d.value) for o in outs for d in o.decisions if d.scope != "account"}
    assert decided_values == {("payment_fp", "card-1"), ("device_id", "dev-77")}


def _ring_with_weak_member(feed: Feed) -> list[Output]:
    # a card ring on one proxy /24 running one agent system prompt, and an account of its own card on the
    # same /24 with the same system prompt: implicated by weak shared values only
    shared = {"client": {"ip": "198.51.100.7"}, "request": {"system_prompt_hash": "sp-agent-kit"}}
    outs = [feed("ring-0", "org-r0", young("card-1"), **shared),
            feed("weak", "org-w", young("own-card"), **shared)]
    outs += [feed(f"ring-{k}", f"org-r{k}", young("card-1"), **shared) for k in (1, 2)]
    return outs


def test_weakly_implicated_member_gets_the_cluster_decision_capped(rules):
    assert rules.policy.weak_member_max_action == "challenge"
    feed = Feed(rules)
    outs = _ring_with_weak_member(feed)
    m = feed.cluster_of("ring-0").members["weak"]
    assert member_implicated(m) and m[_SCOPES] == 8 | 32
    by_acct = {d.value: d for o in outs for d in o.decisions if d.scope == "account"}
    assert {a: d.action for a, d in by_acct.items()} == {
        "ring-0": "block", "ring-1": "block", "ring-2": "block", "weak": "challenge"}
    w = by_acct["weak"]
    assert (w.limit_rpm, w.ttl_s, w.reasons[-2:]) == (None, 86400, ("WEAK_MEMBER_CAP", "CLUSTER_MEMBER"))
    assert by_acct["ring-0"].reasons[-1] == "CLUSTER_MEMBER" and "WEAK_MEMBER_CAP" not in by_acct["ring-0"].reasons
    # a late joiner implicated the same way gets the capped decision too
    out = feed("weak-2", "org-w2", young("own-card-2"), client={"ip": "198.51.100.9"},
               request={"system_prompt_hash": "sp-agent-kit"})
    assert [(d.value, d.action, d.limit_rpm) for d in out.decisions] == [("weak-2", "challenge", None)]


def test_weak_member_cap_at_throttle_carries_the_throttle_limit():
    doc = rules_doc()
    doc["policy"]["weak_member_max_action"] = "throttle"
    feed = Feed(compile_rules(doc, "<test>"))
    outs = _ring_with_weak_member(feed)
    (w,) = [d for o in outs for d in o.decisions if d.value == "weak"]
    assert (w.action, w.limit_rpm, w.ttl_s) == ("throttle", 6, 86400)


def test_without_the_weak_member_cap_the_member_gets_the_full_decision():
    doc = rules_doc()
    del doc["policy"]["weak_member_max_action"]
    feed = Feed(compile_rules(doc, "<test>"))
    outs = _ring_with_weak_member(feed)
    by_acct = {d.value: d.action for o in outs for d in o.decisions if d.scope == "account"}
    assert by_acct == dict.fromkeys(("ring-0", "ring-1", "ring-2", "weak"), "block")


def test_replacement_account_on_the_decided_card_is_caught_on_its_first_request(rules):
    feed = Feed(rules)
    _ring(feed)
    cluster = feed.cluster_of("ring-0")
    until = cluster.live[7] + cluster.live[2] * 1000
    out = feed("ring-9", "org-r9", young("card-1"))  # banned account replaced: new org, same card
    (d,) = out.decisions
    assert (d.scope, d.value, d.action, d.cluster_id) == ("account", "ring-9", "challenge", cluster.cid)
    assert d.reasons == ("FP_PAYMENT_SHARED", "CL_YOUNG", "CLUSTER_MEMBER")
    assert d.ts_ms + d.ttl_s * 1000 == until  # the remainder of the cluster's decision
    assert out.alerts == []
    # only once: its next request adds nothing
    assert feed("ring-9", "org-r9", young("card-1")).decisions == []


def test_new_member_after_the_cluster_decision_expired_is_a_repeat_offence(rules):
    feed = Feed(rules)
    _ring(feed)
    first = feed.cluster_of("ring-0").live
    assert (first[1], first[2]) == ("challenge", 21600)
    feed.i += 21600 // 60 + 5  # past the challenge's TTL: nothing live to hand to a late joiner
    out = feed("ring-9", "org-r9", young("card-1"))
    # the cluster is decided again, one step up with twice the block TTL, and every member gets it
    (alert,) = out.alerts
    assert [r.code for r in alert.reasons] == ["FP_PAYMENT_SHARED", "CL_SYNC_START", "CL_YOUNG"]
    assert account_decisions(out) == dict.fromkeys(("ring-0", "ring-1", "ring-2", "ring-9"), "block")
    assert {d.ttl_s for d in out.decisions} == {2 * 86400}
    assert alert.alert_id != first[5] and {d.alert_id for d in out.decisions} == {alert.alert_id}


def test_allowlisting_a_fanned_out_account_lifts_its_decision(rules):
    feed = Feed(rules)
    _ring(feed)
    doc = rules_doc()
    doc["allowlist"] = [{"scope": "account", "value": "ring-1", "reason": "analyst verdict"}]
    feed.engine.set_rules(compile_rules(doc, "<test>"))
    out = feed("ring-1", "org-r1", young("card-1"))
    assert [(d.value, d.action) for d in out.decisions] == [("ring-1", "lift")]


def test_allowlisted_fanned_out_account_is_lifted_once_and_others_keep_theirs(rules):
    feed = Feed(rules)
    _ring(feed)
    doc = rules_doc()
    doc["allowlist"] = [{"scope": "org", "value": "org-r1", "reason": "analyst verdict"}]
    feed.engine.set_rules(compile_rules(doc, "<test>"))
    outs = [feed("ring-1", "org-r1", young("card-1")) for _ in range(3)]
    outs += [feed("ring-2", "org-r2", young("card-1"))]
    assert [[(d.value, d.action) for d in o.decisions] for o in outs] == [[("ring-1", "lift")], [], [], []]
    (lifted,) = outs[0].decisions
    assert lifted.reasons == ("ALLOWLISTED",) and lifted.cluster_id == feed.cluster_of("ring-0").cid


def test_allowlisted_account_is_skipped_by_fan_out(rules):
    doc = rules_doc()
    doc["allowlist"] = [{"scope": "org", "value": "org-r1"}]
    feed = Feed(compile_rules(doc, "<test>"))
    outs = _ring(feed)
    assert account_decisions(outs[2]) == {"ring-0": "challenge", "ring-2": "challenge"}


def test_team_card_plus_one_outside_account_does_not_decide_the_team(rules):
    # FP_PAYMENT_SHARED counts orgs: five colleagues and one outsider are two orgs, below the threshold
    feed = Feed(rules)
    outs = [feed(f"dev{k}", "org-acme", young("corp-card")) for k in range(5)]
    outs.append(feed("contractor", "org-other", young("corp-card")))
    decided = {d.value for o in outs for d in o.decisions if d.scope == "account"}
    assert decided.isdisjoint({f"dev{k}" for k in range(5)})
    c = feed.cluster_of("dev0")
    assert len(c.members) == 6 and c.agg[3:5] == [2, "payment_fp:corp-card"]
    assert [o.alerts for o in outs] == [[]] * 6


def test_team_card_plus_a_third_org_is_a_shared_card(rules):
    # the same card reaching a third, unrelated org is the payment signal again
    feed = Feed(rules)
    for k in range(3):
        feed(f"dev{k}", "org-acme", young("corp-card"))
    feed("outsider-1", "org-x1", young("corp-card"))
    out = feed("outsider-2", "org-x2", young("corp-card"))
    (alert,) = out.alerts
    (pay,) = [r for r in alert.reasons if r.code == "FP_PAYMENT_SHARED"]
    assert (pay.value, pay.detail) == (3, "3 different orgs (5 accounts) pay with payment_fp:corp-card")


# ------------------------------------------------------------------------------------- union and bounds
def _link(fp: str, acct: str, org: str, anchor: str, ts: int = T0, accounts: int = 2, orgs: int = 2) -> Link:
    return Link(fp, ts, f"ev-{acct}", summary(acct, org), anchor, accounts, orgs)


def test_union_by_size_merges_into_the_larger_cluster_and_repoints_the_index(rules):
    stage, out = ClusterStage(rules), Output()
    for a in ("a1", "a2", "a3"):
        stage.process(_link("template:kA", a, "org-" + a, "a1"), out)
    for b in ("b1", "b2"):
        stage.process(_link("template:kB", b, "org-" + b, "b1"), out)
    big, small = stage._cluster_of("a:a1", T0), stage._cluster_of("a:b1", T0)
    assert big.cid != small.cid and (len(big.members), len(small.members)) == (3, 2)
    # b2 shows up on a value anchored in the big cluster: the two merge
    stage.process(_link("template:kC", "b2", "org-b2", "a1", ts=T0 + MIN), out)
    assert len(stage.clusters) == 1 and stage.clusters.get(small.cid) is None
    merged = stage.clusters.get(big.cid)
    assert set(merged.members) == {"a1", "a2", "a3", "b1", "b2"}
    assert set(merged.fps) == {"template:kA", "template:kB", "template:kC"}
    for key in ("a:a1", "a:b1", "a:b2", "f:template:kA", "f:template:kB", "f:template:kC"):
        assert stage.index.get(key).cid == big.cid, key
    # the merged cluster keeps growing under the same id
    stage.process(_link("template:kB", "b3", "org-b3", "b1", ts=T0 + 2 * MIN), out)
    assert stage._cluster_of("a:b3", T0 + 2 * MIN).cid == big.cid


def test_cluster_members_are_capped_oldest_first():
    doc = rules_doc()
    doc["state"]["cluster"]["max_members"] = 4
    small = compile_rules(doc, "<test>")
    stage, out = ClusterStage(small), Output()
    for k in range(10):
        s = Summary(f"m{k}", f"org-{k}", T0 + k * MIN, True, True, 1, 0)
        stage.process(Link("device_id:dev-1", T0 + k * MIN, f"e{k}", s, "m0", k + 1, k + 1), out)
    (c,) = [v for _, v in stage.clusters.items()]
    assert sorted(c.members) == ["m6", "m7", "m8", "m9"]
    assert c.agg[2] == 4  # running aggregates follow the cap


def test_cluster_template_values_are_capped(rules):
    doc = rules_doc()
    doc["state"]["cluster"]["max_members"] = 4  # values kept: max(64, max_members)
    small = compile_rules(doc, "<test>")
    stage, out = ClusterStage(small), Output()
    for k in range(100):
        stage.process(_link(f"template:k{k}", "a1", "org-1", "a1", ts=T0 + k), out)
        stage.process(_link(f"template:k{k}", "a2", "org-2", "a1", ts=T0 + k), out)
    (c,) = [v for _, v in stage.clusters.items()]
    assert len(c.fps) <= 64 and "template:k99" in c.fps and "template:k0" not in c.fps


def test_cluster_decision_scope_values_are_capped_too(rules):
    doc = rules_doc()
    doc["state"]["cluster"]["max_members"] = 4
    small = compile_rules(doc, "<test>")
    stage, out = ClusterStage(small), Output()
    stage.process(_link("ip_prefix:10.9.9.0/24", "a0", "org-0", "a0", ts=T0, orgs=5), out)  # the infra figure
    for k in range(100):
        stage.process(_link(f"ip_prefix:10.0.{k}.0/24", "a1", "org-1", "a0", ts=T0 + k), out)
        stage.process(_link(f"ip_prefix:10.0.{k}.0/24", "a2", "org-2", "a0", ts=T0 + k), out)
    (c,) = [v for _, v in stage.clusters.items()]
    assert len(c.fps) == 64 and "ip_prefix:10.0.99.0/24" in c.fps and "ip_prefix:10.0.0.0/24" not in c.fps
    assert c.agg[5:7] == [5, "ip_prefix:10.9.9.0/24"] and "ip_prefix:10.9.9.0/24" in c.fps


def test_merged_cluster_values_are_capped(rules):
    doc = rules_doc()
    doc["state"]["cluster"]["max_members"] = 4
    small = compile_rules(doc, "<test>")
    stage, out = ClusterStage(small), Output()
    for k in range(60):  # two clusters of 60 values each
        stage.process(_link(f"ja4:x{k}", "a1", "org-1", "a1", ts=T0 + k), out)
        stage.process(_link(f"ja4:y{k}", "b1", "org-3", "b1", ts=T0 + k), out)
    assert len(stage.clusters) == 2
    stage.process(_link("ja4:x0", "b1", "org-3", "a1", ts=T0 + MIN), out)  # b1 on a's value: merge
    (c,) = [v for _, v in stage.clusters.items()]
    assert set(c.members) == {"a1", "b1"} and len(c.fps) == 64


def test_member_dropped_by_the_cap_and_re_added_gets_a_new_decision_id():
    doc = rules_doc()
    doc["state"]["cluster"]["max_members"] = 3
    small = compile_rules(doc, "<test>")
    feed = Feed(small)
    outs = _ring(feed, n=3)
    ids = [d.decision_id for o in outs for d in o.decisions]
    assert {d.value for o in outs for d in o.decisions if d.scope == "account"} == {"ring-0", "ring-1", "ring-2"}
    outs = [feed("ring-3", "org-r3", young("card-1"))]          # a late joiner: ring-0 is dropped
    assert "ring-0" not in feed.cluster_of("ring-1").members
    # ring-0 comes back through a value that knew it only by its last request (a stub summary, whose
    # first request is later than the others'), so this time ring-1 makes room
    ts = T0 + feed.i * MIN
    stub = Summary("ring-0", "org-r0", ts, True, True, 0, 0)
    out = Output()
    feed.engine.clusters.process(Link("payment_fp:card-1", ts, "ev-x", stub, "ring-1", 5, 5), out)
    outs.append(out)
    assert "ring-0" in feed.cluster_of("ring-2").members
    again = [d for o in outs for d in o.decisions]
    assert [(d.value, d.action) for d in again] == [("ring-3", "challenge"), ("ring-0", "challenge")]
    ids += [d.decision_id for d in again]
    assert len(ids) == len(set(ids))  # the second copy to ring-0 has an id of its own


def test_cluster_state_roundtrips_and_decided_marks_survive(rules):
    feed = Feed(rules)
    _ring(feed)
    c = feed.cluster_of("ring-0")
    again = ClusterState.restore(c.snapshot())
    assert again.snapshot() == c.snapshot()
    assert all(m[_DEC] > 0 and m[_SCOPES] & 1 for m in again.members.values())
    fp = FpState(T0)
    fp_observe(fp, obs("payment_fp", "x", summary("a", "o1")), rules)
    assert FpState.restore(fp.snapshot()).snapshot() == fp.snapshot()


def test_cluster_and_index_expire_when_idle(rules):
    feed = Feed(rules)
    _ring(feed)
    assert feed.cluster_of("ring-0") is not None
    feed.i += rules.cluster.ttl_ms // MIN + 1
    assert feed.cluster_of("ring-0") is None


def _shared_infra(stage: ClusterStage) -> list:
    c = next(v for _, v in stage.clusters.items())
    return [(h.signal.code, h.value, h.detail) for h in cluster_signals(c, stage.rules)
            if h.signal.code == "FP_SHARED_UNRELATED"]


def test_shared_infra_counts_only_while_the_value_keeps_linking():
    # a JA4 linked four orgs, then linked nothing for longer than the signal's window (it became
    # popular, or nobody new arrived): the cluster, still growing through a template, no longer counts it
    doc = rules_doc()
    doc["signals"]["FP_SHARED_UNRELATED"]["window_s"] = 3600
    rules = compile_rules(doc, "<test>")
    stage, out = ClusterStage(rules), Output()
    for k in range(4):
        link = _link("ja4:t13d-sdk", f"a{k}", f"org-{k}", "a0", ts=T0 + k * MIN, accounts=k + 1, orgs=k + 1)
        stage.process(link, out)
    assert _shared_infra(stage) == [
        ("FP_SHARED_UNRELATED", 4, "ja4:t13d-sdk is shared by accounts of 4 different orgs")]
    stage.process(_link("ip_prefix:198.51.100.0/24", "a5", "org-5", "a0", ts=T0 + 30 * MIN, orgs=3), out)
    assert _shared_infra(stage)[0][1] == 4                       # still inside the window
    stage.process(_link("template:m1:k", "a6", "org-6", "a0", ts=T0 + 70 * MIN), out)
    # an hour after its last link the JA4 is stale; the IP block (30 min ago, 3 orgs) is the figure now
    assert _shared_infra(stage) == [
        ("FP_SHARED_UNRELATED", 3, "ip_prefix:198.51.100.0/24 is shared by accounts of 3 different orgs")]
    stage.process(_link("template:m1:k", "a7", "org-7", "a0", ts=T0 + 100 * MIN), out)
    assert _shared_infra(stage) == []                            # nothing fresh left
    # the JA4 linking again (a new account behind it) makes it evidence again
    stage.process(_link("ja4:t13d-sdk", "a8", "org-8", "a0", ts=T0 + 101 * MIN, orgs=5), out)
    assert _shared_infra(stage)[0][1] == 5


def test_cluster_state_of_version_3_restores_with_link_times(rules):
    feed = Feed(rules)
    _ring(feed)
    c = feed.cluster_of("ring-0")
    s = orjson.loads(orjson.dumps(c.snapshot()))
    # version 3: values without their last link time, members without the pivot flag, agg one shorter
    members = {k: m[:8] for k, m in s[4].items()}
    old = [3, *s[1:4], members, {k: v[:3] for k, v in s[5].items()}, s[6][:8], *s[7:]]
    again = ClusterState.restore(old)
    assert all(v[3] == c.last_ms for v in again.fps.values())
    assert again.snapshot()[0] == 5
    assert again.members == c.members and again.agg == c.agg   # nobody in the ring pivoted


def test_cluster_state_of_version_4_restores_without_pivots(rules):
    feed = Feed(rules)
    _ring(feed)
    c = feed.cluster_of("ring-0")
    s = orjson.loads(orjson.dumps(c.snapshot()))
    old = [4, *s[1:4], {k: m[:8] for k, m in s[4].items()}, s[5], s[6][:8], *s[7:]]
    again = ClusterState.restore(old)
    assert again.snapshot() == orjson.loads(orjson.dumps(c.snapshot()))


def test_a_card_ring_that_pivots_together_adds_the_model_pivot_signal(rules):
    feed = Feed(rules)
    n = rules.signals["CL_MODEL_PIVOT"].min_requests
    for _ in range(8):    # each ring member: 8 requests on the old model ...
        _ring(feed, n=n, request={"model": "m-old"})
    for _ in range(6):    # ... then all of them move to the new one
        outs = _ring(feed, n=n, request={"model": "m-new"})
    c = feed.cluster_of("ring-0")
    assert c.agg[8] == n and all(m[8] == 1 for m in c.members.values())
    from app.detect.cluster import cluster_signals
    hits = {h.signal.code: (h.value, h.detail) for h in cluster_signals(c, rules)}
    assert hits["CL_MODEL_PIVOT"] == (1.0, f"{n} of {n} accounts moved most of their traffic to a model they "
                                           "first used within the last 24 h")
    assert outs  # the ring kept sending


def test_a_ring_on_one_model_has_no_pivot(rules):
    feed = Feed(rules)
    for _ in range(14):
        _ring(feed, n=4, request={"model": "m-old"})
    from app.detect.cluster import cluster_signals
    c = feed.cluster_of("ring-0")
    assert c.agg[8] == 0 and "CL_MODEL_PIVOT" not in {h.signal.code for h in cluster_signals(c, rules)}


def test_cluster_volume_counts_requests_across_members(rules):
    from app.detect.messages import Summary

    s = rules.signals["CL_VOLUME"]
    c = ClusterState("c", T0)
    per = int(s.threshold) // 4 + 1  # four light-looking members, each a quarter of the threshold
    for k in range(4):
        c.add(Summary(f"m{k}", f"org-{k}", T0, True, True, per, 0), 2000)
    hits = {h.signal.code: (h.value, h.detail) for h in cluster_signals(c, rules)}
    assert hits["CL_VOLUME"][0] == 4 * per >= s.threshold
    assert hits["CL_VOLUME"][1].startswith(f"{4 * per} requests across 4 accounts")
    # the same requests over fewer members than min_requests: not a cluster's volume
    small = ClusterState("d", T0)
    for k in range(s.min_requests - 1):
        small.add(Summary(f"m{k}", f"org-{k}", T0, True, True, int(s.threshold), 0), 2000)
    assert "CL_VOLUME" not in {h.signal.code for h in cluster_signals(small, rules)}
