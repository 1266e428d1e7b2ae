"""System-prompt popularity judged by who uses the value (app/detect/fingerprint.py, rules
`fingerprints.campaign_prompt`): a campaign's harness prompt shared by hundreds of mostly new/unverified
accounts links its members, established ones included; an IDE's, an SDK's or a consumer app's prompt used
by established customers stays popular; a university's shared eval prompt may link but is never decided."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import yaml

from app.detect.fingerprint import popularity
from app.detect.messages import Observation, Summary
from app.engine import Engine
from app.errors import RulesError
from app.ingest.parse import Rejection, parse_record
from app.rules.load import compile_rules
from app.rules.model import Rules
from app.stages.base import Output
from app.stages.fingerprint import FingerprintStage
from tests.helpers import T0, event, line

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
SYS = "sys:5eed0fca11ab1e00"


def doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


@pytest.fixture
def rules() -> Rules:
    return compile_rules(doc(), "default.yaml")


def summary(acct: str, org: str | None, *, young: bool) -> Summary:
    return Summary(acct, org, T0, young, False, 1, 0)


def feed(rules: Rules, users: list[tuple[str, str | None, bool]], value: str = SYS,
         scope: str = "template") -> tuple[FingerprintStage, list]:
    """Each user (account, org, young) makes one request with the value, one millisecond apart."""
    stage, out = FingerprintStage(rules), Output()
    for k, (acct, org, yg) in enumerate(users):
        stage.process(Observation(scope, value, T0 + k, f"ev-{acct}", summary(acct, org, young=yg)), out)
    return stage, out.links


def mix(n: int, every_established: int, prefix: str, orgs: int | None = None) -> list[tuple[str, str | None, bool]]:
    """n accounts; every `every_established`-th is established (0: none), the others new. Account k
    belongs to org k, or to org k mod `orgs`."""
    return [(f"{prefix}{k:05d}", f"org-{prefix}{k % orgs if orgs else k}",
             not (every_established and k % every_established == every_established - 1)) for k in range(n)]


# -------------------------------------------------------------------------------- campaign: links
def test_campaign_system_prompt_links_past_popular_accounts_established_members_included(rules):
    cp = rules.fingerprints.campaign_prompt
    assert rules.fingerprints.popular_accounts == 150 and cp is not None and cp.link_established
    # 300 accounts of 300 orgs, one in four established (card-verified, aged): the agentic harvester
    users = mix(300, 4, "camp")
    stage, links = feed(rules, users)
    st = stage.store.get("template:" + SYS)
    assert not st.popular and st.linking and (st.distinct, st.established) == (300, 75)
    linked = {lk.summary.account_id for lk in links}
    established = {a for a, _, yg in users if not yg}
    assert linked == {a for a, _, _ in users}           # every member, however late it came
    assert established <= linked                         # the aged, verified ones too, like a shared card
    late = [lk for lk in links if lk.summary.account_id == "camp00299"]
    assert late and late[-1].fp_accounts == rules.fingerprint.max_members  # members kept are capped
    code, figure, threshold, detail = popularity(st, "template", SYS, rules)
    assert (code, figure, threshold) == ("FP_CAMPAIGN_PROMPT", 0.75, cp.min_young_share)
    assert "225 of 300 accounts" in detail


def test_established_members_wait_for_min_accounts(rules):
    cp = rules.fingerprints.campaign_prompt
    # below min_accounts a system prompt is a weak value, as any template: it links only new/unverified
    # members with abuse evidence of their own, and these have none
    users = mix(cp.min_accounts - 1, 4, "small")
    _, links = feed(rules, users)
    assert links == []
    # the min_accounts-th account makes it a harness: everyone is linked, the established members too
    _, links = feed(rules, mix(cp.min_accounts, 4, "small"))
    assert {lk.summary.account_id for lk in links} == {a for a, _, _ in mix(cp.min_accounts, 4, "small")}


def test_link_established_off_keeps_the_prompt_linkable_for_new_members_only():
    d = doc()
    d["fingerprints"]["campaign_prompt"]["link_established"] = False
    r = compile_rules(d)
    users = mix(300, 4, "camp")
    stage, links = feed(r, users)
    assert not stage.store.get("template:" + SYS).popular
    assert {lk.summary.account_id for lk in links} == {a for a, _, yg in users if yg}


# ------------------------------------------------------------------------ hard negatives: no links
def test_ide_system_prompt_of_established_customers_is_popular_and_links_nothing(rules):
    # an IDE's agent prompt: 2,000 established accounts of 1,900 orgs, one user in sixteen new
    users = mix(2000, 0, "ide", orgs=1900)
    users = [(a, org, k % 16 == 5) for k, (a, org, _) in enumerate(users)]
    stage, links = feed(rules, users)
    st = stage.store.get("template:" + SYS)
    assert links == [] and st.popular and not st.linking
    code, figure, _, _ = popularity(st, "template", SYS, rules)
    assert code == "FP_POPULAR_ESTABLISHED" and figure == 1875


def test_ide_prompt_whose_first_users_are_new_stops_linking_once_its_customers_arrive(rules):
    # a cold start: the first users of the day happen to be new accounts (they link), then the
    # established customers arrive and the value goes popular: nothing links any more
    users = [(f"new{k}", f"org-n{k}", True) for k in range(5)] + [(a, o, False) for a, o, _ in mix(400, 0, "ide")]
    stage, out = FingerprintStage(rules), Output()
    for k, (acct, org, yg) in enumerate(users):
        before = len(out.links)
        stage.process(Observation("template", SYS, T0 + k, f"e{k}", summary(acct, org, young=yg)), out)
        if k >= 10:
            assert len(out.links) == before, acct
    assert stage.store.get("template:" + SYS).popular


def test_consumer_app_prompt_used_by_a_quarter_new_accounts_is_popular(rules):
    # the consumer app's default prompt: thousands of users, 25% new or unverified (the sim's figure)
    users = [(a, o, k % 4 == 0) for k, (a, o, _) in enumerate(mix(3000, 0, "app"))]
    stage, links = feed(rules, users)
    assert stage.store.get("template:" + SYS).popular
    assert all(lk.summary.young for lk in links) and len(links) <= 2  # the first minute's new users at most


def test_sdk_prompt_past_max_accounts_is_popular_whoever_uses_it(rules):
    cp = rules.fingerprints.campaign_prompt
    users = mix(cp.max_accounts + 1, 0, "sdk")   # every user new: still too common to mean anything
    stage, out = FingerprintStage(rules), Output()
    for k, (acct, org, yg) in enumerate(users):
        stage.process(Observation("template", SYS, T0 + k, f"e{k}", summary(acct, org, young=yg)), out)
    st = stage.store.get("template:" + SYS)
    assert st.popular
    assert popularity(st, "template", SYS, rules)[0] == "FP_POPULAR_ACCOUNTS"
    more = Output()
    stage.process(Observation("template", SYS, T0 + 10**6, "e-late", summary("late", "org-late", young=True)), more)
    assert more.links == []


def test_only_system_prompts_are_judged_by_their_users(rules):
    # a MinHash template key or an IP block of 300 new accounts is popular by count as before: a prompt
    # family or a network is shared by strangers; the harness's system prompt is the campaign's own
    for scope, value in (("template", "m0:1234abcd"), ("ip_prefix", "198.51.100.0/24"), ("ja4", "t13d_x")):
        stage, links = feed(rules, mix(300, 4, "camp"), value=value, scope=scope)
        st = stage.store.get(f"{scope}:{value}")
        assert st.popular
        assert len({lk.summary.account_id for lk in links}) < 150
        assert all(lk.summary.young for lk in links)


def test_without_campaign_prompt_rules_a_busy_system_prompt_is_popular():
    d = doc()
    del d["fingerprints"]["campaign_prompt"]
    r = compile_rules(d)
    assert r.fingerprints.campaign_prompt is None
    stage, links = feed(r, mix(300, 4, "camp"))
    assert stage.store.get("template:" + SYS).popular
    assert all(lk.summary.young for lk in links)


@pytest.mark.parametrize(("change", "field"), [
    ({"min_young_share": 0.5}, "fingerprints.campaign_prompt.min_young_share"),
    ({"min_accounts": 151}, "fingerprints.campaign_prompt"),
    ({"max_accounts": 150}, "fingerprints.campaign_prompt"),
    ({"min_young_share": 1.5}, "fingerprints.campaign_prompt.min_young_share"),
    ({"surplus": 1}, "fingerprints.campaign_prompt"),
])
def test_campaign_prompt_rules_are_validated(change, field):
    d = doc()
    d["fingerprints"]["campaign_prompt"].update(change)
    with pytest.raises(RulesError) as e:
        compile_rules(d, "r.yaml")
    assert field in str(e.value)


# ----------------------------------------------------------- benign trap: a university's eval prompt
MIN = 60_000
NOW = T0 + 40 * 86_400_000
GSM = ("Q: Natalia sold clips to {n} of her friends in April, and then she sold half as many clips in May. "
       "How many clips did Natalia sell altogether in April and May? A: Let's think step by step.")


def test_university_eval_prompt_shared_by_hundreds_of_students_behind_one_nat_is_not_decided(rules):
    # threat model, benign trap: "think step by step" benchmark sweeps, many new edu accounts behind one
    # university NAT, one shared eval-harness system prompt. By make-up the prompt looks like a
    # campaign's (every user new and unverified, each student its own org): it links them, but a shared
    # prompt is not a campaign: nothing is decided without members with abuse evidence of their own.
    eng = Engine(rules)
    decisions, alerts = [], []
    n_students = 180
    for rnd in range(3):
        for k in range(n_students):
            i = rnd * n_students + k
            raw = event(i, f"student-{k}", ts_ms=T0 + i * MIN // 20,
                        org_id=f"org-student-{k}",
                        account={"created_at": "2026-01-26T15:00:00Z", "kyc": "email", "signup_channel": "edu",
                                 "email_domain_class": "edu", "billing_country": "GB"},
                        client={"ip": f"192.0.2.{k % 250}", "asn_type": "residential", "country": "GB",
                                "ja4": "t13d1516h2_python_requests", "access_path": "api"},
                        request={"model": "m-new", "prompt": GSM.format(n=40 + i), "thinking": True,
                                 "system_prompt_hash": SYS.removeprefix("sys:")},
                        response={"status": 200, "output_tokens": 600, "thinking_tokens": 900})
            ev = parse_record(line(raw), NOW)
            assert not isinstance(ev, Rejection), ev
            out = eng.process(ev)
            decisions += out.decisions
            alerts += out.alerts
    st = eng.fingerprints.store.get("template:" + SYS)
    # linkable by make-up (distinct counts an evicted member again when it comes back: an upper bound)
    assert st.distinct >= n_students and not st.popular
    assert popularity(st, "template", SYS, rules)[0] == "FP_CAMPAIGN_PROMPT"
    assert [d for d in decisions if d.mode == "enforce" and d.action != "lift"] == []   # ... never decided
    assert all(a.severity in ("low", "medium") for a in alerts)


# ------------------------------------------------------------------ explain states the same verdict
def test_explain_states_the_verdict_the_fingerprint_stage_applies(rules):
    from app.explain.document import _fp_status
    from app.explain.trace import FpTrack

    def status(stage: FingerprintStage, scope: str, value: str) -> tuple[str, str]:
        return _fp_status(FpTrack(scope, value, T0, T0, state=stage.store.get(f"{scope}:{value}")), rules)

    stage, _ = feed(rules, mix(300, 4, "camp"))            # the harness prompt: links everyone
    code, why = status(stage, "template", SYS)
    assert code == "linking" and why.startswith("links every account behind it (225 of 300 accounts")
    assert "300 of the 48 kept" not in why and "48 of the 48 kept" in why
    ide = [(a, org, k % 16 == 5) for k, (a, org, _) in enumerate(mix(2000, 0, "ide", orgs=1900))]
    stage, _ = feed(rules, ide)                             # the IDE's prompt: popular, by its users
    code, why = status(stage, "template", SYS)
    assert code == "popular" and "established" in why and "half or more" in why
    stage, _ = feed(rules, mix(300, 4, "camp"), value="m0:1234abcd")  # a MinHash key: popular by count
    code, why = status(stage, "template", "m0:1234abcd")
    assert code == "popular" and "300 accounts use it (> popular_accounts 150)" in why
    stage, _ = feed(rules, mix(6, 2, "ring"), value="pf-ring", scope="payment_fp")  # a card links everyone
    code, why = status(stage, "payment_fp", "pf-ring")
    assert code == "linking" and "every account behind it" in why and "6 of the 6 kept, 6 orgs" in why


# ------------------------------------------------------- a verdict that does not flip near its threshold
def hover(n: int) -> list[tuple[str, str | None, bool]]:
    """Five new accounts, then established and new ones in turn, three established to four new: the new or
    unverified share of the prompt's users hovers about 0.6 (0.56 to 0.64 from the 20th user on), the way
    a campaign of aged, bought accounts mixed with new ones sits on the threshold."""
    out = [(f"h{k:04d}", f"org-h{k}", True) for k in range(5)]
    pattern = [False, True, False, True, False, True, True]
    for k in range(5, n):
        out.append((f"h{k:04d}", f"org-h{k}", pattern[(k - 5) % len(pattern)]))
    return out


def verdicts(rules: Rules, users: list[tuple[str, str | None, bool]]) -> tuple[list[bool], list]:
    stage, out = FingerprintStage(rules), Output()
    strong = []
    for k, (acct, org, yg) in enumerate(users):
        stage.process(Observation("template", SYS, T0 + k, f"e{k}", summary(acct, org, young=yg)), out)
        st = stage.store.get("template:" + SYS)
        strong.append(st.strong and not st.popular)
    return strong, out.links


def flips(strong: list[bool]) -> int:
    return sum(a != b for a, b in pairwise(strong))


def test_a_campaign_prompt_near_its_young_share_stays_strong_once_judged_so(rules):
    cp = rules.fingerprints.campaign_prompt
    assert cp.keep_young_share == 0.5 < cp.min_young_share
    users = hover(120)
    strong, links = verdicts(rules, users)
    # judged a harness with its third user, kept while more than half of its users are new or unverified
    assert strong[:2] == [False, False] and all(strong[2:])
    # each member is linked once: no flip links the value's members again
    per_member = {}
    for lk in links:
        per_member[lk.summary.account_id] = per_member.get(lk.summary.account_id, 0) + 1
    assert set(per_member) == {a for a, _, _ in users} and max(per_member.values()) == 1
    st = FingerprintStage(rules)
    for k, (acct, org, yg) in enumerate(users):
        st.process(Observation("template", SYS, T0 + k, f"e{k}", summary(acct, org, young=yg)), Output())
    fp = st.store.get("template:" + SYS)
    share = (fp.distinct - fp.established) / fp.distinct
    assert share < cp.min_young_share
    code, figure, _, detail = popularity(fp, "template", SYS, rules)
    assert code == "FP_CAMPAIGN_PROMPT" and figure == round(share, 4)
    assert "judged so at >= 0.6, kept while > 0.5" in detail


def test_without_keep_young_share_the_same_prompt_flips_and_links_its_members_again():
    d = doc()
    del d["fingerprints"]["campaign_prompt"]["keep_young_share"]
    r = compile_rules(d)
    assert r.fingerprints.campaign_prompt.keep_young_share == 1.0
    strong, links = verdicts(r, hover(120))
    assert flips(strong) >= 6
    assert len(links) > len({lk.summary.account_id for lk in links}) + 40


def test_a_kept_prompt_goes_popular_once_half_its_users_are_established(rules):
    # a product's prompt whose first users were new: kept while new users outnumber the established ones,
    # popular (links nothing) as soon as half are established
    users = [(f"n{k}", f"org-n{k}", True) for k in range(10)] + [(f"e{k}", f"org-e{k}", False) for k in range(30)]
    strong, links = verdicts(rules, users)
    assert all(strong[2:19]) and not any(strong[19:])    # 10 new of 19 users kept; 10 of 20 is half
    st = FingerprintStage(rules)
    for k, (acct, org, yg) in enumerate(users):
        st.process(Observation("template", SYS, T0 + k, f"e{k}", summary(acct, org, young=yg)), Output())
    assert st.store.get("template:" + SYS).popular
    assert {lk.summary.account_id for lk in links} <= {a for a, _, _ in users[:19]}


@pytest.mark.parametrize("keep", [0.4, 1.5])
def test_keep_young_share_is_validated(keep):
    d = doc()
    d["fingerprints"]["campaign_prompt"]["keep_young_share"] = keep
    with pytest.raises(RulesError) as e:
        compile_rules(d, "r.yaml")
    assert "fingerprints.campaign_prompt" in str(e.value)
