"""Fingerprint linking (app/detect/fingerprint.py), communities and rings (app/detect/cluster.py, the
ClusterStage in app/stages/cluster.py) and who a cluster's decision reaches (app/policy/attribution.py):
strong values join communities, weak values only link accounts with evidence of their own and never join
two clusters, a member is acted on for its own evidence or a strong tie to members with it, bounded state."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml

from app.detect.cluster import COMMUNITY, RING, ClusterState, cluster_signals
from app.detect.fingerprint import FpState
from app.detect.fingerprint import observe as fp_observe
from app.detect.messages import OWN_CONTENT, OWN_NETWORK, Link, Observation, Summary
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


def aged(card: str | None = None) -> dict:
    """Eight months old, card-verified, corporate email: an established customer."""
    acct = {"created_at": "2025-06-01T00:00:00Z", "kyc": "card", "email_domain_class": "corporate"}
    if card:
        acct["payment_fp"] = card
    return acct


def trace(k: int) -> dict:
    return {"prompt": TRACE.format(n=k, m=k + 9)}


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
        return self.engine.clusters.cluster_of_account(acct, T0 + self.i * MIN)


def account_decisions(outs: list[Output] | Output) -> dict[str, str]:
    outs = outs if isinstance(outs, list) else [outs]
    return {d.value: d.action for o in outs for d in o.decisions if d.scope == "account"}


def summary(acct: str, org: str | None, *, eligible: bool = True, n: int = 1, flagged: int = 0, own: int = 0,
            risky: bool | None = None) -> Summary:
    return Summary(acct, org, T0, eligible, eligible, n, flagged, False, eligible if risky is None else risky, own)


def obs(scope: str, value: str, s: Summary, ts: int = T0) -> Observation:
    return Observation(scope, value, ts, f"ev-{s.account_id}", s)


def observe_all(rules: Rules, items: list[Observation]) -> tuple[FingerprintStage, list[Link]]:
    stage, out = FingerprintStage(rules), Output()
    for o in items:
        stage.process(o, out)
    return stage, out.links


def rules_doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


def with_changes(change) -> Rules:
    doc = rules_doc()
    change(doc)
    return compile_rules(doc, "<test>")


# -------------------------------------------------------------------------------------------- linking
def test_shared_card_among_accounts_of_different_orgs_links_them_as_a_strong_value(rules):
    items = [obs("payment_fp", "card-1", summary(f"a{k}", f"org-{k}", eligible=k != 1), T0 + k) for k in range(3)]
    stage, links = observe_all(rules, items)
    # the second org turns the value into a link: the waiting first member comes along; a card links its
    # established holders too (a1)
    assert [(lk.summary.account_id, lk.anchor, lk.fp_accounts, lk.fp_orgs, lk.fp_risky_orgs, lk.strong)
            for lk in links] == [("a0", "a0", 2, 2, 1, True), ("a1", "a0", 2, 2, 1, True),
                                 ("a2", "a0", 3, 3, 2, True)]
    st = stage.store.get("payment_fp:card-1")
    assert st.linking and not st.popular and st.strong


def test_team_card_within_one_org_links_nothing(rules):
    items = [obs("payment_fp", "corp-card", summary(f"dev{k}", "org-acme"), T0 + k) for k in range(6)]
    stage, links = observe_all(rules, items)
    assert links == []
    assert not stage.store.get("payment_fp:corp-card").linking


def test_accounts_without_org_count_as_unrelated(rules):
    _, links = observe_all(rules, [obs("device_id", "dev-9", summary(f"a{k}", None)) for k in range(2)])
    assert [lk.summary.account_id for lk in links] == ["a0", "a1"]


def test_a_weak_value_links_only_new_or_unverified_accounts_with_evidence_of_their_own(rules):
    # a campus NAT: five new students without any evidence, one established customer, two accounts that
    # trace-elicit: only the two are linked, as a weak value
    items = [obs("ip_prefix", "192.0.2.0/24", summary(f"student{k}", f"org-s{k}")) for k in range(5)]
    items.append(obs("ip_prefix", "192.0.2.0/24", summary("old", "org-old", eligible=False, own=OWN_CONTENT)))
    items += [obs("ip_prefix", "192.0.2.0/24", summary(f"bad{k}", f"org-b{k}", flagged=2, own=OWN_CONTENT))
              for k in range(2)]
    stage, links = observe_all(rules, items)
    assert [(lk.summary.account_id, lk.anchor, lk.strong) for lk in links] == [
        ("bad0", "bad0", False), ("bad1", "bad0", False)]
    # a student that turns out to have evidence of its own is linked on its next report
    more = Output()
    stage.process(obs("ip_prefix", "192.0.2.0/24", summary("student3", "org-s3", n=2, flagged=2, own=OWN_CONTENT),
                      T0 + MIN), more)
    assert [(lk.summary.account_id, lk.anchor) for lk in more.links] == [("student3", "bad0")]


def test_value_used_by_established_accounts_is_popular_and_links_nothing(rules):
    assert rules.fingerprints.popular_established == 2
    items = [obs("ja4", "t13d-sdk", summary(f"old{k}", f"org-old{k}", eligible=False)) for k in range(3)]
    items += [obs("ja4", "t13d-sdk", summary(f"y{k}", f"org-{k}", own=OWN_CONTENT)) for k in range(3)]
    stage, links = observe_all(rules, items)
    assert links == []
    st = stage.store.get("ja4:t13d-sdk")
    assert st.popular and (st.distinct, st.established) == (6, 3)


def test_value_used_by_more_than_popular_accounts_is_popular(rules):
    limit = rules.fingerprints.popular_accounts
    assert limit == 150
    items = [obs("ip_prefix", "203.0.113.0/24", summary(f"y{k}", f"org-{k}", own=OWN_CONTENT), T0 + k)
             for k in range(limit + 1)]
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
    more = Output()
    stage.process(obs("ip_prefix", "203.0.113.0/24", summary("y3", "org-3", n=64, own=OWN_CONTENT), T0 + 999), more)
    assert more.links == []


def test_a_system_prompt_that_turns_campaign_like_links_everyone_again_as_a_strong_value(rules):
    cp = rules.fingerprints.campaign_prompt
    assert cp is not None and cp.min_accounts >= 3
    # before min_accounts users it is an ordinary (weak) value: only the accounts with evidence link
    items = [obs("template", "sys:harness", summary(f"y{k}", f"org-{k}", own=OWN_CONTENT if k < 2 else 0), T0 + k)
             for k in range(cp.min_accounts - 1)]
    stage, links = observe_all(rules, items)
    assert [(lk.summary.account_id, lk.strong) for lk in links] == [("y0", False), ("y1", False)]
    # the min_accounts-th new account makes it a campaign's harness: every member is linked again, strongly
    out = Output()
    last = cp.min_accounts - 1
    stage.process(obs("template", "sys:harness", summary(f"y{last}", f"org-{last}"), T0 + 10), out)
    assert {lk.summary.account_id for lk in out.links} == {f"y{k}" for k in range(cp.min_accounts)}
    assert {lk.strong for lk in out.links} == {True}


def test_fingerprint_members_are_capped_but_counted(rules):
    cap = rules.fingerprint.max_members
    items = [obs("device_id", "dev-1", summary(f"a{k:03d}", "org-1"), T0 + k) for k in range(cap + 12)]
    stage, _ = observe_all(rules, items)
    st = stage.store.get("device_id:dev-1")
    assert len(st.members) == cap and st.distinct == cap + 12
    assert "a000" not in st.members and f"a{cap + 11:03d}" in st.members  # the oldest are dropped


def test_summary_risk_and_eligibility_from_the_account_stage(rules):
    feed = Feed(rules)
    consumer = {"created_at": "2025-06-01T00:00:00Z", "kyc": "email", "email_domain_class": "freemail"}
    cases = {
        "young": young(),
        "consumer": consumer,                                              # old, email-only: not linkable
        "edu-student": {**consumer, "signup_channel": "edu"},              # abused channel: unverified, not risky
        "disposable": {**aged(), "email_domain_class": "disposable"},
        "no-kyc": {**consumer, "kyc": "none"},
        "customer": aged(),
    }
    flags = {}
    for acct, account in cases.items():
        out = feed(acct, "org-" + acct, account, client={"ja4": "j"})
        s = out.observations[0].summary
        flags[acct] = (s.young, s.unverified, s.eligible, s.risky)
    assert flags == {
        "young": (True, False, True, True), "consumer": (False, False, False, False),
        "edu-student": (False, True, True, False), "disposable": (False, True, True, True),
        "no-kyc": (False, True, True, True), "customer": (False, False, False, False),
    }


def test_own_content_evidence_follows_the_share_and_egress_evidence_stays(rules):
    feed = Feed(rules)
    outs = [feed("tracer", "org-t", young(), client={"ja4": "j"}, request=trace(k)) for k in range(2)]
    outs += [feed("tracer", "org-t", young(), client={"ja4": "j"}, request={"prompt": "hello there, how are you"})
             for _ in range(10)]
    owns = [o.observations[0].summary.own for o in outs if o.observations]
    # two flagged requests of two: evidence; diluted to 2 of 12 (< own_content.min_share 0.2): none
    assert owns[1] == OWN_CONTENT and owns[-1] == 0
    # egress through rotating hosting networks stays evidence once seen
    feed = Feed(rules)
    for k in range(6):
        out = feed("hopper", "org-h", young(),
                   client={"ip": f"34.{k}.1.1", "asn": 16509 + k % 2, "asn_type": "cloud", "ja4": "j"})
    assert out.observations[0].summary.own == OWN_NETWORK
    for _ in range(20):
        out = feed("hopper", "org-h", young(), client={"ip": "81.2.3.4", "asn_type": "residential", "ja4": "j"})
    assert [o.summary.own for o in out.observations][:1] in ([], [OWN_NETWORK])
    assert feed.engine.accounts.store.get("hopper").own == OWN_NETWORK


# ------------------------------------------------------------------------------------ cluster decisions
def _ring(feed: Feed, card: str = "card-1", n: int = 3, accounts=None, **groups) -> list[Output]:
    return [feed(f"ring-{k}", f"org-r{k}", (accounts or young)(card), **groups) for k in range(n)]


def _evidence_ring(feed: Feed, card: str = "card-1", n: int = 3, rounds: int = 2, exits: bool = False,
                   **groups) -> list[Output]:
    """A card ring whose members each send trace-elicitation prompts: evidence of their own. `exits`: each
    member sends from its own proxy exit (a residential /24 of its own), as a campaign's accounts do; the same
    client otherwise (`groups`)."""
    outs = []
    for r in range(rounds):
        outs += [feed(f"ring-{k}", f"org-r{k}", young(card), request=trace(r * 10 + k),
                      **({**groups, "client": {**groups.get("client", {}), "ip": f"198.51.{100 + k}.7"}} if exits
                         else groups))
                 for k in range(n)]
    return outs


def test_a_card_shared_by_new_accounts_without_evidence_is_an_alert_not_a_decision(rules):
    # three new accounts of three orgs on one card, email-only KYC and freemail: a fraud-ring shape, and
    # also a company's onboarding wave. Without abuse evidence of anyone's own, analysts get the evidence
    # and nobody is acted on
    feed = Feed(rules)
    outs = _ring(feed, client={"ip": "198.51.100.7"})
    # the second holder's event (the first holder's link, brought along, is assessed first); the third
    # holder's is inside the alert cooldown
    (alert,) = [a for o in outs for a in o.alerts]
    w = alert.wire()
    assert (w["subject"]["scope"], w["score"], w["severity"]) == ("cluster", 60, "low")
    assert [(r["code"], r["value"], r["threshold"]) for r in w["reasons"]] == [
        ("FP_PAYMENT_SHARED", 2, 2.0), ("NOT_DECIDED_OWN_EVIDENCE", 0, 2)]
    assert [d for o in outs for d in o.decisions] == []
    assert feed.cluster_of("ring-0").live is None


def test_throwaway_accounts_on_one_card_are_a_payment_ring(rules):
    # the same with disposable emails: each holder's own doing, about payment: reached as far as
    # association, never blocked for it
    feed = Feed(rules)
    throwaway = {**young("card-1"), "email_domain_class": "disposable"}
    outs = [feed(f"ring-{k}", f"org-r{k}", throwaway) for k in range(3)]
    acts = {d.value: (d.action, d.reasons[-1]) for o in outs for d in o.decisions if d.scope == "account"}
    assert acts == {f"ring-{k}": ("throttle", "PAYMENT_RING") for k in range(3)}
    assert feed.cluster_of("ring-0").members["ring-0"].payment


def test_a_card_ring_with_evidence_of_its_own_is_decided_and_its_card_too(rules):
    feed = Feed(rules)
    outs = _evidence_ring(feed, exits=True)
    decided = [o for o in outs if o.decisions]
    # ring-0's second trace prompt: one member with own evidence, on an exit of its own (not at home), in a
    # community of new accounts tied by their card (`new_card_community`; two members otherwise)
    assert decided and decided[0] is outs[3]
    by_scope = {(d.scope, d.value): d for d in outs[3].decisions}
    (alert,) = [a for a in outs[3].alerts if a.scope == "cluster"]
    # ring-0 for its own evidence; ring-1 and ring-2 (one flagged request each so far) by association: they
    # share the card with it. The card too; not the IP block (bystanders behind it)
    assert set(by_scope) == {("account", "ring-0"), ("account", "ring-1"), ("account", "ring-2"),
                             ("payment_fp", "card-1")}
    assert {k: d.reasons[-1] for k, d in by_scope.items()} == {
        ("account", "ring-0"): "OWN_EVIDENCE", ("account", "ring-1"): "ASSOCIATION",
        ("account", "ring-2"): "ASSOCIATION", ("payment_fp", "card-1"): "CLUSTER_FP"}
    for d in by_scope.values():
        assert (d.action, d.alert_id, d.mode) == ("challenge", alert.alert_id, "enforce")
    # the ring's next requests add nothing while the decision is live
    more = _ring(feed, client={"ip": "198.51.100.7"})
    assert [d for o in more for d in o.decisions] == []


def test_association_is_capped_and_own_evidence_plus_a_strong_tie_gets_the_block(rules):
    feed = Feed(rules)
    # five new accounts on one card start within minutes: size, sync and payment make the cluster's
    # score a block; three have evidence of their own
    outs = [feed(f"ring-{k}", f"org-r{k}", young("card-1"), request=trace(k) if k < 3 else {}) for k in range(5)]
    outs += [feed(f"ring-{k}", f"org-r{k}", young("card-1"), request=trace(10 + k)) for k in range(3)]
    first = {}
    for o in outs:
        for d in o.decisions:
            if d.scope == "account":
                first.setdefault(d.value, d)
    # decided on ring-0's second trace prompt (evidence of its own, not at home, in a community of new
    # accounts on one card: `new_card_community`): ring-1 and ring-2 (one flagged request each) and the two
    # without any are reached by association
    assert {a: d.action for a, d in first.items()} == {
        "ring-0": "block", "ring-1": "challenge", "ring-2": "challenge", "ring-3": "challenge", "ring-4": "challenge"}
    assert first["ring-3"].reasons[-3:] == ("CLUSTER_MEMBER", "ASSOCIATION", "MEMBER_CAP")
    # ring-1's and ring-2's second trace prompts: the block on top of their challenges
    assert account_decisions(outs)["ring-1"] == account_decisions(outs)["ring-2"] == "block"
    # the card is decided at the association level: the rate limiter applies it to every holder
    (card,) = [d for o in outs for d in o.decisions if d.scope == "payment_fp"]
    assert card.action == "challenge" and card.reasons[-2:] == ("CLUSTER_FP", "MEMBER_CAP")
    # ring-3's own evidence arrives later: it gets the block on top of its challenge
    upgrade = [feed("ring-3", "org-r3", young("card-1"), request=trace(20 + k)) for k in range(2)]
    assert [(d.value, d.action, d.reasons[-1]) for o in upgrade for d in o.decisions] == [
        ("ring-3", "block", "OWN_EVIDENCE")]


def test_an_aged_non_disposable_holder_is_never_blocked_on_association():
    rules = with_changes(lambda d: d["policy"]["attribution"].update(established_association_max_action="throttle"))
    feed = Feed(rules)
    outs = [feed(f"ring-{k}", f"org-r{k}", young("card-1"), request=trace(k)) for k in range(5)]
    outs.append(feed("aged", "org-a", aged("card-1")))
    outs += [feed(f"ring-{k}", f"org-r{k}", young("card-1"), request=trace(10 + k)) for k in range(2)]
    acts = account_decisions(outs)
    assert acts["aged"] == "throttle" and acts["ring-0"] == "block"
    (d,) = [d for o in outs for d in o.decisions if d.value == "aged"]
    assert d.limit_rpm == 6 and d.reasons[-2:] == ("ASSOCIATION", "MEMBER_CAP")


def test_a_member_tied_only_through_values_nobody_flagged_holds_is_not_reached(rules):
    # an account shares card-2 with ring-2 only; ring-2 has no evidence of its own, so card-2 carries none
    feed = Feed(rules)
    feed("ring-2", "org-r2", young("card-1"), client={"device_id": "dev-2"})
    feed("outsider", "org-o", young("card-2"), client={"device_id": "dev-2"})
    outs = [feed(f"ring-{k}", f"org-r{k}", young("card-1"), request=trace(r * 10 + k))
            for r in range(2) for k in range(2)]
    assert "outsider" in feed.cluster_of("ring-0").members
    acts = account_decisions(outs)
    assert set(acts) == {"ring-0", "ring-1", "ring-2"} and "outsider" not in acts


def test_weak_values_never_join_two_communities(rules):
    # a campaign's card ring and a lab's card group share the campus NAT and a JA4. The campaign's
    # accounts (bought: disposable emails) have evidence of their own; one student does too (say, a false
    # positive). The NAT links the flagged accounts, but only as evidence inside their own communities: the lab
    # is never merged into the campaign, and its other students are never reached. (Accounts with their own
    # emails behind one address would be a cohort at one site, test_site_cohort.py: not decided at all)
    feed = Feed(rules)
    nat = {"ip": "192.0.2.44", "ja4": "t13d-lab"}
    student = {**aged("grant-1"), "kyc": "email", "email_domain_class": "edu"}
    for k in range(5):
        feed(f"student{k}", f"org-s{k}", student, client=nat)
    outs = []
    for r in range(2):
        outs.append(feed("student0", "org-s0", student, client=nat, request=trace(90 + r)))
        outs += [feed(f"ring-{k}", f"org-r{k}", {**young("card-1"), "email_domain_class": "disposable"}, client=nat,
                      request=trace(r * 10 + k)) for k in range(4)]
    camp, lab = feed.cluster_of("ring-0"), feed.cluster_of("student1")
    assert camp.cid != lab.cid and camp.kind == lab.kind == COMMUNITY
    assert set(camp.members) == {f"ring-{k}" for k in range(4)}
    assert set(lab.members) == {f"student{k}" for k in range(5)}
    acts = account_decisions(outs)
    assert set(acts) == {f"ring-{k}" for k in range(4)}
    # the lab is made of aged, verified colleagues: whatever it shares, it is not decided as a cluster
    assert lab.live is None


def test_accounts_with_evidence_and_no_strong_tie_form_a_ring_capped_at_challenge(rules):
    # stealth accounts: one card each, a shared proxy block, each with trace prompts of its own
    feed = Feed(rules)
    outs = []
    for r in range(5):
        outs += [feed(f"st{k}", f"org-t{k}", young(f"own-{k}"), client={"ip": "203.0.113.9"},
                      request=trace(r * 10 + k)) for k in range(6)]
    c = feed.cluster_of("st0")
    assert c.kind == RING and set(c.members) == {f"st{k}" for k in range(6)}
    decisions = [d for o in outs for d in o.decisions]
    assert {d.value for d in decisions} == {f"st{k}" for k in range(6)}
    assert all(d.scope == "account" for d in decisions)  # no value of a ring is ever decided
    assert {d.action for d in decisions} <= {"throttle", "challenge"}  # never a block without a strong tie
    assert all("OWN_EVIDENCE_WEAK_TIE" in d.reasons for d in decisions)
    # a throttle while it is small; once it has grown (and the cooldown is over) its score reaches a
    # block, and its members get the challenge
    assert [d.action for d in decisions if d.value == "st5"] == ["throttle", "challenge"]


def test_a_ring_member_tied_to_a_community_by_a_strong_value_moves_there(rules):
    feed = Feed(rules)
    for r in range(2):
        for k in range(2):
            feed(f"st{k}", f"org-t{k}", young(f"own-{k}"), client={"ip": "203.0.113.9"}, request=trace(r * 10 + k))
    ring = feed.cluster_of("st0")
    assert ring.kind == RING and set(ring.members) == {"st0", "st1"}
    feed("other", "org-o", young("shared-card"))
    feed("st1", "org-t1", young("shared-card"), client={"ip": "203.0.113.9"})
    community = feed.cluster_of("st1")
    assert community.kind == COMMUNITY and set(community.members) == {"other", "st1"}
    assert set(feed.cluster_of("st0").members) == {"st0"}


def test_device_shared_by_a_decided_ring_is_decided_but_an_ip_block_is_not(rules):
    feed = Feed(rules)
    outs = _evidence_ring(feed, client={"device_id": "dev-77"}, exits=True)
    decided_values = {(d.scope, d.value) for o in outs for d in o.decisions if d.scope != "account"}
    assert decided_values == {("payment_fp", "card-1"), ("device_id", "dev-77")}


def test_egress_through_rotating_hosting_networks_is_evidence_of_its_own(rules):
    # an agentic harvester's accounts: a harness system prompt, no content cues, requests hopping through
    # cloud addresses in different /24 blocks
    feed = Feed(rules)
    outs = []
    for r in range(6):
        for k in range(6):
            ip = f"34.{10 + (k * 7 + r) % 50}.{r * 13 % 250}.{k + 1}"
            outs.append(feed(f"ag{k}", f"org-a{k}", young(f"own-{k}"),
                             client={"ip": ip, "asn": 16509 + r % 3, "asn_type": "cloud"},
                             request={"system_prompt_hash": "harness-7", "prompt": f"Refactor module {r}{k}"}))
    c = feed.cluster_of("ag0")
    assert c.kind == COMMUNITY and len(c.members) == 6
    assert all(m.own & OWN_NETWORK for m in c.members.values())
    hits = {h.signal.code for h in cluster_signals(c, rules)}
    assert {"CL_EGRESS", "CL_SIZE", "CL_YOUNG"} <= hits
    assert set(account_decisions(outs)) == {f"ag{k}" for k in range(6)}


def test_replacement_account_on_the_decided_card_is_caught_on_its_first_request(rules):
    feed = Feed(rules)
    _evidence_ring(feed)
    cluster = feed.cluster_of("ring-0")
    until = cluster.live.until_ms
    out = feed("ring-9", "org-r9", young("card-1"))  # banned account replaced: new org, same card
    (d,) = out.decisions
    assert (d.scope, d.value, d.action, d.cluster_id) == ("account", "ring-9", "challenge", cluster.cid)
    assert d.reasons[-2:] == ("CLUSTER_MEMBER", "ASSOCIATION")
    assert d.ts_ms + d.ttl_s * 1000 == until  # the remainder of the cluster's decision
    assert feed("ring-9", "org-r9", young("card-1")).decisions == []  # only once


def test_shadow_mode_switched_on_after_the_cluster_decision_reaches_late_joiners_as_shadow(rules):
    feed = Feed(rules)
    _evidence_ring(feed)
    doc = rules_doc()
    doc["mode"] = "shadow"
    feed.engine.set_rules(compile_rules(doc, "<test>"))
    out = feed("ring-9", "org-r9", young("card-1"))
    (d,) = out.decisions
    assert (d.value, d.action, d.mode) == ("ring-9", "challenge", "shadow")


def test_new_member_after_the_cluster_decision_expired_is_a_repeat_offence(rules):
    feed = Feed(rules)
    _evidence_ring(feed)
    first = feed.cluster_of("ring-0").live
    assert (first.action, first.ttl_s) == ("challenge", 21600)
    feed.i += 21600 // 60 + 5  # past the challenge's TTL: nothing live to hand to a late joiner
    out = feed("ring-9", "org-r9", young("card-1"))
    (alert,) = out.alerts
    assert "CL_SYNC_START" in [r.code for r in alert.reasons]
    acts = account_decisions(out)
    assert acts == {"ring-0": "block", "ring-1": "block", "ring-2": "block", "ring-9": "challenge"}
    assert {d.ttl_s for d in out.decisions} == {2 * 86400}
    assert alert.alert_id != first.alert_id


def test_allowlisting_a_reached_account_lifts_its_decision(rules):
    feed = Feed(rules)
    _evidence_ring(feed)
    doc = rules_doc()
    doc["allowlist"] = [{"scope": "org", "value": "org-r1", "reason": "analyst verdict"}]
    feed.engine.set_rules(compile_rules(doc, "<test>"))
    # the cluster stage hears of ring-1 again when its summary changes level (its 4th request)
    outs = [feed("ring-1", "org-r1", young("card-1")) for _ in range(3)]
    outs.append(feed("ring-9", "org-r9", young("card-1")))
    assert [[(d.value, d.action) for d in o.decisions] for o in outs] == [
        [], [("ring-1", "lift")], [], [("ring-9", "challenge")]]
    assert outs[1].decisions[0].reasons == ("ALLOWLISTED",)


def test_allowlisted_account_is_skipped_by_the_fan_out():
    rules = with_changes(lambda d: d.update(allowlist=[{"scope": "org", "value": "org-r2"}]))
    feed = Feed(rules)
    outs = _evidence_ring(feed)
    assert account_decisions(outs) == {"ring-0": "challenge", "ring-1": "challenge"}


def test_team_card_plus_one_outside_account_is_not_a_shared_card(rules):
    # FP_PAYMENT_SHARED counts the orgs of risky holders: five colleagues and one outsider are two orgs
    feed = Feed(rules)
    outs = [feed(f"dev{k}", "org-acme", young("corp-card")) for k in range(5)]
    outs.append(feed("contractor", "org-other", young("corp-card")))
    c = feed.cluster_of("dev0")
    assert len(c.members) == 6 and (c.pay_orgs, c.pay_key) == (2, "payment_fp:corp-card")
    assert [d for o in outs for d in o.decisions] == []


def test_a_lab_grant_card_among_aged_students_is_not_payment_evidence(rules):
    feed = Feed(rules)
    student = {**aged("grant-7"), "kyc": "email", "email_domain_class": "edu", "signup_channel": "edu"}
    for k in range(5):
        feed(f"student{k}", f"org-s{k}", student)
    c = feed.cluster_of("student0")
    assert len(c.members) == 5 and c.pay_orgs == 0
    assert "FP_PAYMENT_SHARED" not in {h.signal.code for h in cluster_signals(c, rules)}


# ------------------------------------------------------------------------------------- union and bounds
def _link(fp: str, acct: str, org: str, anchor: str, ts: int = T0, accounts: int = 2, orgs: int = 2,
          strong: bool = True, own: int = 0) -> Link:
    return Link(fp, ts, f"ev-{acct}", summary(acct, org, own=own), anchor, accounts, orgs, strong, orgs)


def test_union_by_size_merges_into_the_larger_community_and_repoints_the_index(rules):
    stage, out = ClusterStage(rules), Output()
    for a in ("a1", "a2", "a3"):
        stage.process(_link("payment_fp:kA", a, "org-" + a, "a1"), out)
    for b in ("b1", "b2"):
        stage.process(_link("payment_fp:kB", b, "org-" + b, "b1"), out)
    big, small = stage.cluster_of_account("a1", T0), stage.cluster_of_account("b1", T0)
    assert big.cid != small.cid and (len(big.members), len(small.members)) == (3, 2)
    # b2 shows up on a device anchored in the big community: the two merge
    stage.process(_link("device_id:kC", "b2", "org-b2", "a1", ts=T0 + MIN), out)
    assert len(stage.clusters) == 1 and stage.clusters.get(small.cid) is None
    merged = stage.clusters.get(big.cid)
    assert set(merged.members) == {"a1", "a2", "a3", "b1", "b2"}
    assert set(merged.fps) == {"payment_fp:kA", "payment_fp:kB", "device_id:kC"}
    for key in ("a:a1", "a:b1", "a:b2", "f:payment_fp:kA", "f:payment_fp:kB", "f:device_id:kC"):
        assert stage.index.get(key).cid == big.cid, key
    stage.process(_link("payment_fp:kB", "b3", "org-b3", "b1", ts=T0 + 2 * MIN), out)
    assert stage.cluster_of_account("b3", T0 + 2 * MIN).cid == big.cid


def test_a_weak_link_from_a_community_member_is_evidence_not_a_merge(rules):
    stage, out = ClusterStage(rules), Output()
    for a in ("a1", "a2"):
        stage.process(_link("payment_fp:kA", a, "org-" + a, "a1"), out)
    for b in ("b1", "b2"):
        stage.process(_link("payment_fp:kB", b, "org-" + b, "b1"), out)
    stage.process(_link("ip_prefix:192.0.2.0/24", "a2", "org-a2", "b1", strong=False, own=OWN_CONTENT), out)
    stage.process(_link("ip_prefix:192.0.2.0/24", "b2", "org-b2", "b1", strong=False, own=OWN_CONTENT), out)
    a, b = stage.cluster_of_account("a1", T0), stage.cluster_of_account("b1", T0)
    assert a.cid != b.cid and len(stage.clusters) == 2
    assert "ip_prefix:192.0.2.0/24" in a.fps and "ip_prefix:192.0.2.0/24" in b.fps
    assert stage.index.get("f:ip_prefix:192.0.2.0/24") is None


def test_cluster_members_are_capped_oldest_first():
    small = with_changes(lambda d: d["state"]["cluster"].update(max_members=4))
    stage, out = ClusterStage(small), Output()
    for k in range(10):
        s = Summary(f"m{k}", f"org-{k}", T0 + k * MIN, True, True, 1, 0)
        stage.process(Link("device_id:dev-1", T0 + k * MIN, f"e{k}", s, "m0", k + 1, k + 1, True, k + 1), out)
    (c,) = [v for _, v in stage.clusters.items()]
    assert sorted(c.members) == ["m6", "m7", "m8", "m9"]
    assert c.young == 4  # running figures follow the cap


def test_cluster_template_values_are_capped():
    small = with_changes(lambda d: d["state"]["cluster"].update(max_members=4))  # values kept: max(64, max_members)
    stage, out = ClusterStage(small), Output()
    for k in range(100):
        stage.process(_link(f"template:k{k}", "a1", "org-1", "a1", ts=T0 + k, strong=False, own=1), out)
        stage.process(_link(f"template:k{k}", "a2", "org-2", "a1", ts=T0 + k, strong=False, own=1), out)
    (c,) = [v for _, v in stage.clusters.items()]
    assert c.kind == RING and len(c.fps) <= 64 and "template:k99" in c.fps and "template:k0" not in c.fps


def test_cluster_infra_values_are_capped_keeping_the_best():
    small = with_changes(lambda d: d["state"]["cluster"].update(max_members=4))
    stage, out = ClusterStage(small), Output()
    stage.process(_link("ip_prefix:10.9.9.0/24", "a0", "org-0", "a0", ts=T0, orgs=5, strong=False, own=1), out)
    for k in range(100):
        stage.process(_link(f"ip_prefix:10.0.{k}.0/24", "a1", "org-1", "a0", ts=T0 + k, strong=False, own=1), out)
        stage.process(_link(f"ip_prefix:10.0.{k}.0/24", "a2", "org-2", "a0", ts=T0 + k, strong=False, own=1), out)
    (c,) = [v for _, v in stage.clusters.items()]
    assert len(c.fps) == 64 and "ip_prefix:10.0.99.0/24" in c.fps and "ip_prefix:10.0.0.0/24" not in c.fps
    assert (c.infra_orgs, c.infra_key) == (5, "ip_prefix:10.9.9.0/24") and "ip_prefix:10.9.9.0/24" in c.fps


def test_member_dropped_by_the_cap_and_re_added_gets_a_new_decision_id():
    small = with_changes(lambda d: d["state"]["cluster"].update(max_members=3))
    feed = Feed(small)
    outs = _evidence_ring(feed, n=3)
    ids = [d.decision_id for o in outs for d in o.decisions]
    assert set(account_decisions(outs)) == {"ring-0", "ring-1", "ring-2"}
    outs = [feed("ring-3", "org-r3", young("card-1"))]          # a late joiner: ring-0 is dropped
    assert "ring-0" not in feed.cluster_of("ring-1").members
    # ring-0 comes back through a value that knew it only by its last request (a stub summary, whose
    # first request is later than the others'), so this time ring-1 makes room
    ts = T0 + feed.i * MIN
    stub = Summary("ring-0", "org-r0", ts, True, True, 0, 0, False, True, OWN_CONTENT)
    out = Output()
    feed.engine.clusters.process(Link("payment_fp:card-1", ts, "ev-x", stub, "ring-1", 5, 5, True, 5), out)
    outs.append(out)
    assert "ring-0" in feed.cluster_of("ring-2").members
    again = [d for o in outs for d in o.decisions if d.scope == "account"]
    assert [(d.value, d.action) for d in again] == [("ring-3", "challenge"), ("ring-0", "challenge")]
    ids += [d.decision_id for d in again]
    assert len(ids) == len(set(ids))  # the second copy to ring-0 has an id of its own


def test_cluster_state_roundtrips_and_decided_marks_survive(rules):
    feed = Feed(rules)
    _evidence_ring(feed)
    c = feed.cluster_of("ring-0")
    again = ClusterState.restore(orjson.loads(orjson.dumps(c.snapshot())))
    assert again.snapshot() == orjson.loads(orjson.dumps(c.snapshot()))
    assert all(m.dec_until > 0 and m.ties & 1 for m in again.members.values())
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
    # a JA4 linked four orgs of a ring, then linked nothing for longer than the signal's window (it became
    # popular, or nobody new arrived): the ring, still growing through a template, no longer counts it
    rules = with_changes(lambda d: d["signals"]["FP_SHARED_UNRELATED"].update(window_s=3600))
    stage, out = ClusterStage(rules), Output()

    def weak(fp, acct, org, ts, orgs, accounts=2):
        return _link(fp, acct, org, "a0", ts=ts, accounts=accounts, orgs=orgs, strong=False, own=OWN_CONTENT)

    for k in range(4):
        stage.process(weak("ja4:t13d-sdk", f"a{k}", f"org-{k}", T0 + k * MIN, k + 1, k + 1), out)
    assert _shared_infra(stage) == [
        ("FP_SHARED_UNRELATED", 4, "ja4:t13d-sdk is shared by accounts of 4 different orgs")]
    stage.process(weak("ip_prefix:198.51.100.0/24", "a5", "org-5", T0 + 30 * MIN, 3), out)
    assert _shared_infra(stage)[0][1] == 4                       # still inside the window
    stage.process(weak("template:m1:k", "a6", "org-6", T0 + 70 * MIN, 2), out)
    assert _shared_infra(stage) == [
        ("FP_SHARED_UNRELATED", 3, "ip_prefix:198.51.100.0/24 is shared by accounts of 3 different orgs")]
    stage.process(weak("template:m1:k", "a7", "org-7", T0 + 100 * MIN, 2), out)
    assert _shared_infra(stage) == []                            # nothing fresh left
    stage.process(weak("ja4:t13d-sdk", "a8", "org-8", T0 + 101 * MIN, 5), out)
    assert _shared_infra(stage)[0][1] == 5


def test_a_card_ring_that_pivots_together_adds_the_model_pivot_signal(rules):
    feed = Feed(rules)
    n = rules.signals["CL_MODEL_PIVOT"].min_requests
    for _ in range(8):    # each ring member: 8 requests on the old model ...
        _ring(feed, n=n, request={"model": "m-old"})
    for _ in range(6):    # ... then all of them move to the new one
        _ring(feed, n=n, request={"model": "m-new"})
    c = feed.cluster_of("ring-0")
    assert c.pivoted == n and all(m.pivot for m in c.members.values())
    hits = {h.signal.code: (h.value, h.detail) for h in cluster_signals(c, rules)}
    assert hits["CL_MODEL_PIVOT"] == (1.0, f"{n} of {n} accounts moved most of their traffic to a model they "
                                           "first used within the last 24 h")


def test_a_ring_on_one_model_has_no_pivot(rules):
    feed = Feed(rules)
    for _ in range(14):
        _ring(feed, n=4, request={"model": "m-old"})
    c = feed.cluster_of("ring-0")
    assert c.pivoted == 0 and "CL_MODEL_PIVOT" not in {h.signal.code for h in cluster_signals(c, rules)}


def test_cluster_volume_counts_requests_across_members(rules):
    s = rules.signals["CL_VOLUME"]
    c = ClusterState("c", T0)
    per = int(s.threshold) // 4 + 1  # four light-looking members, each a quarter of the threshold
    for k in range(4):
        c.add(Summary(f"m{k}", f"org-{k}", T0, True, True, per, 0), 2000)
    hits = {h.signal.code: (h.value, h.detail) for h in cluster_signals(c, rules)}
    assert hits["CL_VOLUME"][0] == 4 * per >= s.threshold
    assert hits["CL_VOLUME"][1].startswith(f"{4 * per} requests across 4 accounts")
    small = ClusterState("d", T0)
    for k in range(s.min_requests - 1):
        small.add(Summary(f"m{k}", f"org-{k}", T0, True, True, int(s.threshold), 0), 2000)
    assert "CL_VOLUME" not in {h.signal.code for h in cluster_signals(small, rules)}
