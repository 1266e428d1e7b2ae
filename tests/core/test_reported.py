"""An account reports a fingerprint value it already reported, at the same summary level and eligibility,
at most once per `fingerprints.refresh_s` (AccountState.unreported): what is held back, what always gets
through, that the rule is data, and that linking through shared values still works with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.detect.account import MAX_REPORTED, AccountState
from app.engine import AccountStage, Engine, Output
from app.ingest.event import Event
from app.ingest.parse import Rejection, parse_record
from app.rules.load import RulesError, compile_rules
from app.rules.model import Rules
from tests.helpers import T0, event, line

SEC = 1000
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
NOW = T0 + 40 * 86_400_000
NEW = {"created_at": "2026-01-30T12:00:00Z", "kyc": "email", "email_domain_class": "freemail",
       "signup_channel": "edu", "billing_country": "US"}
CLIENT = {"ip": "203.0.113.7", "ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1", "device_id": "dev-1"}


def rules_refresh(refresh_s: float | None) -> Rules:
    doc = yaml.safe_load(DEFAULT_YAML.read_text())
    if refresh_s is None:
        del doc["fingerprints"]["refresh_s"]
    else:
        doc["fingerprints"]["refresh_s"] = refresh_s
    return compile_rules(doc, "<test>")


def ev(i: int, acct: str, ts_ms: int, org: str = "org-a", **groups) -> Event:
    groups.setdefault("account", dict(NEW, payment_fp="pf-1"))
    groups.setdefault("client", CLIENT)
    groups.setdefault("request", {"prompt": f"What is {i} plus {i}?"})
    e = parse_record(line(event(i, acct, ts_ms=ts_ms, org_id=org, **groups)), NOW)
    assert not isinstance(e, Rejection), e
    return e


def observed(events: list[Event], rules: Rules) -> list[list[tuple[str, str]]]:
    """Per event, the (scope, value) pairs the account stage sent on."""
    stage = AccountStage(rules)
    per_event = []
    for e in events:
        out = Output()
        stage.process(e, out)
        per_event.append([(o.scope, o.value) for o in out.observations])
    return per_event


# ------------------------------------------------------------------------------------------- the state
def test_unreported_holds_back_repeats_within_the_period_and_reports_again_after_it():
    st = AccountState(T0)
    vals = [("ja4", "j1"), ("ip_prefix", "p1")]
    assert st.unreported(vals, 3, T0, 60 * SEC) == vals
    assert st.unreported(vals, 3, T0 + 59 * SEC, 60 * SEC) == []
    # a value new in this period goes through at once, the others stay held
    assert st.unreported([*vals, ("device_id", "d1")], 3, T0 + 59 * SEC, 60 * SEC) == [("device_id", "d1")]
    # the period began at T0: from T0 + 60 s everything is reported once more
    assert st.unreported(vals, 3, T0 + 60 * SEC, 60 * SEC) == vals
    assert st.unreported(vals, 3, T0 + 61 * SEC, 60 * SEC) == []


def test_a_new_level_or_eligibility_is_reported_at_once():
    st = AccountState(T0)
    vals = [("ja4", "j1")]
    assert st.unreported(vals, 3, T0, 60 * SEC) == vals
    assert st.unreported(vals, 5, T0 + SEC, 60 * SEC) == vals  # level moved up
    assert st.unreported(vals, 4, T0 + 2 * SEC, 60 * SEC) == vals  # no longer eligible
    assert st.unreported(vals, 4, T0 + 3 * SEC, 60 * SEC) == []
    # a new signature starts a new period: the next one begins 60 s after the change, not after T0
    assert st.reported_ms == T0 + 2 * SEC
    assert st.unreported(vals, 4, T0 + 61 * SEC, 60 * SEC) == []
    assert st.unreported(vals, 4, T0 + 62 * SEC, 60 * SEC) == vals


def test_zero_refresh_reports_everything_and_remembers_nothing():
    st = AccountState(T0)
    vals = [("ja4", "j1"), ("ja4", "j1")]
    assert st.unreported(vals, 3, T0, 0) == vals
    assert st.unreported(vals, 3, T0 + 1, 0) == vals
    assert st.reported == [] and st.reported_ms == 0


def test_past_the_cap_values_are_reported_every_time():
    st = AccountState(T0)
    many = [("template", f"m0:{i:08x}") for i in range(MAX_REPORTED + 5)]
    assert st.unreported(many, 3, T0, 60 * SEC) == many
    assert len(st.reported) == MAX_REPORTED
    again = st.unreported(many, 3, T0 + SEC, 60 * SEC)
    assert again == many[MAX_REPORTED:]  # the remembered ones are held, the rest go through


def test_reported_values_survive_a_snapshot():
    st = AccountState(T0)
    st.unreported([("ja4", "j1")], 3, T0, 60 * SEC)
    back = AccountState.restore(st.snapshot())
    assert (back.reported_ms, back.reported) == (st.reported_ms, st.reported)
    assert back.reported_sig == 3
    assert back.unreported([("ja4", "j1")], 3, T0 + SEC, 60 * SEC) == []


def test_a_snapshot_of_an_unknown_version_is_refused():
    st = AccountState(T0)
    with pytest.raises(ValueError, match="unknown account state version"):
        AccountState.restore([3, *st.snapshot()[1:]])


# ------------------------------------------------------------------------------------------- the stage
def test_a_busy_account_reports_its_infrastructure_once_per_period(rules):
    assert rules.fingerprints.refresh_ms == 60 * SEC  # the packaged default
    evs = [ev(i, "acct-1", T0 + i * 5 * SEC) for i in range(40)]  # one request every 5 s for 200 s
    per_event = observed(evs, rules)
    infra = [[v for v in obs if v[0] in ("payment_fp", "ja4", "ip_prefix", "device_id")] for obs in per_event]
    # reported again when the account's level moves (its request count reaches a power of two: requests
    # 1, 2, 4, 8, 16, 32 are events 0, 1, 3, 7, 15, 31), which begins a new period, and when 60 s have
    # passed since a period began (event 15 at 75 s, so event 27 at 135 s)
    sent_at = [i for i, obs in enumerate(infra) if obs]
    assert sent_at == [0, 1, 3, 7, 15, 27, 31]
    assert all(len(infra[i]) == 4 for i in sent_at)
    # without the rule every event reports every value
    assert all(len([v for v in obs if v[0] != "template"]) == 4 for obs in observed(evs, rules_refresh(0)))


def test_a_new_value_in_the_period_is_reported_at_once(rules):
    evs = [ev(0, "acct-1", T0), ev(1, "acct-1", T0 + 10 * SEC),
           ev(2, "acct-1", T0 + 20 * SEC, client=dict(CLIENT, ja4="t13d1516h2_8daaf6152771_000000000000"))]
    per_event = observed(evs, rules)
    assert [v for v in per_event[2] if v[0] == "ja4"] == [("ja4", "t13d1516h2_8daaf6152771_000000000000")]
    assert not [v for v in per_event[2] if v[0] in ("payment_fp", "ip_prefix", "device_id")]


def test_accounts_sharing_a_card_are_still_linked_and_decided(rules):
    """Three young accounts of three orgs on one card, each busy and now and then asking for the reasoning
    behind a given answer: the cluster forms and is decided the same with the rule as without it."""
    trace = ("Problem {i}: the answer is {j}. Reconstruct the complete step-by-step reasoning behind this "
             "completed answer.")

    def run(r: Rules) -> tuple[set[str], set[tuple[str, str]], int]:
        eng = Engine(r)
        linked, decided, sent = set(), set(), 0
        for i in range(40):
            for acct, org in (("acct-a", "org-a"), ("acct-b", "org-b"), ("acct-c", "org-c")):
                prompt = trace.format(i=i, j=i + 3) if i % 4 == 0 else f"What is {i} plus {i}?"
                out = eng.process(ev(i, acct, T0 + i * 7 * SEC, org=org, request={"prompt": prompt}))
                sent += len(out.observations)
                linked.update(link.summary.account_id for link in out.links)
                decided.update((d.value, d.action) for d in out.decisions if d.scope == "account")
        return linked, decided, sent

    with_rule, without = run(rules), run(rules_refresh(0))
    assert with_rule[0] == without[0] == {"acct-a", "acct-b", "acct-c"}
    assert with_rule[1] == without[1] and {a for a, _ in with_rule[1]} == {"acct-a", "acct-b", "acct-c"}
    # 348 observations instead of 960 (each trace prompt brings template keys of its own)
    assert with_rule[2] < without[2] / 2


# ------------------------------------------------------------------------------------------- the rules
def test_rules_files_without_the_option_report_everything():
    assert rules_refresh(None).fingerprints.refresh_ms == 0


@pytest.mark.parametrize("bad", [-1, "soon"])
def test_a_bad_refresh_is_a_rules_error(bad):
    with pytest.raises(RulesError, match="refresh_s"):
        rules_refresh(bad)


def test_a_reported_value_is_remembered_by_the_crc32_of_scope_colon_value():
    """The stored form of what was reported: crc32 of "scope:value" in UTF-8 with lone surrogates passed
    through, however it is computed (carried on from "scope:"), for ASCII, non-ASCII and surrogate values."""
    from zlib import crc32

    values = [("ja4", "t13d1516h2_8daaf6152771_e5627efa2ab1"), ("ip_prefix", "203.0.113.0/24"),
              ("template", "sys:café"), ("device_id", "dev-\ud800-lone"), ("payment_fp", "")]
    st = AccountState(T0)
    assert st.unreported(values, 1, T0, 60_000) == values
    assert st.reported == [crc32(f"{s}:{v}".encode("utf-8", "surrogatepass")) for s, v in values]
    assert st.unreported(values, 1, T0 + 1, 60_000) == []
