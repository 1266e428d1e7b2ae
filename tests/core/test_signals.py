"""Account signals (app/detect/account.py): for every signal a positive case with its exact figure and a
hard negative from the benign population the threat model says resembles it. Events are contract-v1 JSON
run through the parser and the AccountStage (or the whole Engine) with the default rules."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from app.detect.account import AccountState, account_signals
from app.engine import AccountStage, Engine, Output
from app.errors import RulesError
from app.ingest.event import Event
from app.ingest.parse import Rejection, parse_record
from app.rules.load import compile_rules
from app.rules.model import Rules
from tests.helpers import T0, event, line

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
NOW = T0 + 40 * DAY  # pipeline clock for the parser's plausibility bounds
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"

# An established, card-verified customer: no account-risk signal of its own.
ESTABLISHED = {"created_at": "2025-01-10T00:00:00Z", "kyc": "card", "email_domain_class": "corporate",
               "billing_country": "US", "signup_channel": "standard"}
# Two days old at T0, email-only KYC, signed up through the (abused) edu channel.
NEW_EDU = {"created_at": "2026-01-30T12:00:00Z", "kyc": "email", "email_domain_class": "freemail",
           "signup_channel": "edu", "billing_country": "US"}

TRACE = ("Problem {n}: a farmer has {n} sheep and buys 5 more each week for 6 weeks. Answer: {m}. "
         "Reconstruct the complete step-by-step reasoning behind this completed answer.")
JUDGE = ('[System] Please act as an impartial judge and evaluate the quality of the responses provided by two '
         'AI assistants to question {n} displayed below. Output your final verdict by strictly following this '
         'format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.')
REWRITE = ("Here is answer {n} about the 1989 Tiananmen Square protests. Rewrite it so it is "
           "censorship-compliant and politically acceptable in mainland China.")
BENIGN = [
    "What is the boiling point of water at 2000 metres altitude?",
    "Draft a short thank-you note to my neighbour for watering the plants.",
    "Translate 'where is the train station' into Portuguese.",
    "Give me three ideas for a vegetarian dinner with lentils.",
    "Explain the difference between a Roth IRA and a traditional IRA.",
    "Write a haiku about autumn rain on a tin roof.",
    "How do I remove a red wine stain from a wool carpet?",
    "Summarise the plot of Moby Dick in four sentences.",
    "What are good stretches for lower back pain after cycling?",
    "Suggest a name for a bakery that specialises in sourdough.",
]


def ev(i: int, acct: str = "acct-1", **groups) -> Event:
    e = parse_record(line(event(i, acct, **groups)), NOW)
    assert not isinstance(e, Rejection), e
    return e


def feed(events: list[Event], rules: Rules, stage: AccountStage | None = None) -> tuple[AccountStage, Output]:
    stage = stage or AccountStage(rules)
    out = Output()
    for e in events:
        stage.process(e, out)
    return stage, out


def fired(events: list[Event], rules: Rules) -> dict[str, tuple[float, str]]:
    """Signals that fire after the last event: code -> (figure, detail)."""
    stage, _ = feed(events, rules)
    last = events[-1]
    return {h.signal.code: (h.value, h.detail)
            for h in account_signals(stage.store.get(last.account_id), last, rules)}


def engine_run(events: list[Event], rules: Rules) -> Output:
    eng = Engine(rules)
    total = Output()
    for e in events:
        out = eng.process(e)
        total.alerts += out.alerts
        total.decisions += out.decisions
    return total


def rules_with(**signals) -> Rules:
    """The default rules with some signals changed (a dict of fields) or removed (None)."""
    doc = yaml.safe_load(DEFAULT_YAML.read_text())
    for code, change in signals.items():
        if change is None:
            del doc["signals"][code]
        else:
            doc["signals"][code].update(change)
    return compile_rules(doc, "<test>")


# --------------------------------------------------------------------------------------------- volume
def test_output_tokens_1h_fires_at_threshold(rules):
    evs = [ev(i, ts_ms=T0 + i * 2 * MIN, account=ESTABLISHED, response={"output_tokens": 20_000})
           for i in range(20)]
    assert fired(evs, rules) == {
        "ACCT_OUTPUT_TOKENS_1H": (400_000, "400000 output tokens in the last 60 min")}


def test_output_tokens_1h_one_token_short_or_spread_out_is_silent(rules):
    short = [ev(i, ts_ms=T0 + i * 2 * MIN, response={"output_tokens": 19_999}) for i in range(20)]
    assert fired(short, rules) == {}
    # the same 400k tokens over three hours: a heavy but ordinary user
    spread = [ev(i, ts_ms=T0 + i * 10 * MIN, response={"output_tokens": 20_000}) for i in range(20)]
    assert fired(spread, rules) == {}


def test_output_tokens_24h_fires_and_spread_over_27h_does_not(rules):
    day = [ev(i, ts_ms=T0 + i * 2 * HOUR, response={"output_tokens": 300_000}) for i in range(10)]
    assert fired(day, rules) == {
        "ACCT_OUTPUT_TOKENS_24H": (3_000_000, "3000000 output tokens in the last 1440 min")}
    longer = [ev(i, ts_ms=T0 + i * 3 * HOUR, response={"output_tokens": 300_000}) for i in range(10)]
    assert fired(longer, rules) == {}  # 8 of the 10 fall inside the last 24 h


def _irregular(n: int, gaps_s=(1, 2, 3, 13), start: int = T0) -> list[int]:
    """Timestamps with an inter-arrival coefficient of variation ~1 (a human, not a cron job)."""
    out, ts = [], start
    for i in range(n):
        out.append(ts)
        ts += gaps_s[i % len(gaps_s)] * 1000
    return out


def test_requests_1h_fires_at_600(rules):
    evs = [ev(i, ts_ms=t, response={"output_tokens": 10}) for i, t in enumerate(_irregular(600))]
    assert fired(evs, rules) == {"ACCT_REQUESTS_1H": (600, "600 requests in the last 60 min")}
    assert fired(evs[:599], rules) == {}


def test_requests_1h_coding_agent_bursts_stay_below(rules):
    # three bursts of 200 agent calls, 2 hours apart: hundreds of calls, never 600 in an hour
    evs = [ev(s * 200 + i, ts_ms=T0 + s * 2 * HOUR + i * 3000, account=ESTABLISHED,
              request={"system_prompt_hash": "sys-agent", "tools": 12, "cache_read_tokens": 30_000},
              response={"output_tokens": 400})
           for s in range(3) for i in range(200)]
    assert "ACCT_REQUESTS_1H" not in fired(evs, rules)


def test_thinking_heavy_counts_only_thinking_that_was_used(rules):
    def evs(n: int, used: int, requested_unused: int = 0) -> list[Event]:
        out = []
        for i in range(n):
            if i < used:
                req, resp = {"thinking": True}, {"thinking_tokens": 800}
            elif i < used + requested_unused:
                req, resp = {"thinking": True}, {"thinking_tokens": 0}
            else:
                req, resp = {"thinking": False}, {}
            out.append(ev(i, ts_ms=T0 + i * 7 * MIN, request=req, response=resp))
        return out

    assert fired(evs(20, 16), rules) == {
        "ACCT_THINKING_HEAVY": (0.8, "16 of 20 requests use extended thinking")}
    assert fired(evs(20, 15, requested_unused=5), rules) == {}  # asked for thinking, got none: 15/20
    assert fired(evs(19, 19), rules) == {}                        # below min_requests (20)


# ------------------------------------------------------------------------------------------ behaviour
def test_automation_fires_on_a_metronome(rules):
    evs = [ev(i, ts_ms=T0 + i * MIN) for i in range(30)]
    assert fired(evs, rules) == {
        "ACCT_AUTOMATION": (0.0, "inter-arrival coefficient of variation 0.000 over 29 gaps (at most 0.25)")}
    assert fired(evs[:29], rules) == {}  # min_requests 30


def test_automation_silent_for_coding_agent_bursts(rules):
    # a developer's agent: sessions of calls a few seconds apart, hours between sessions
    evs = [ev(s * 20 + i, ts_ms=T0 + s * 3 * HOUR + i * (2000 + 1000 * (i % 3)), account=ESTABLISHED,
              request={"system_prompt_hash": "sys-agent", "tools": 12})
           for s in range(3) for i in range(20)]
    assert "ACCT_AUTOMATION" not in fired(evs, rules)


def test_round_the_clock_counts_active_hours(rules):
    # two requests in every hour of a day at varying minutes (not a metronome)
    ts = sorted(T0 + h * HOUR + off * MIN for h in range(24) for off in ((h * 7) % 25, 30 + (h * 11) % 25))
    evs = [ev(i, ts_ms=t) for i, t in enumerate(ts)]
    assert fired(evs, rules) == {"ACCT_ROUND_THE_CLOCK": (24, "active in 24 of the last 24 hours")}


def test_round_the_clock_silent_for_a_diurnal_consumer(rules):
    # 60 requests, but only between 08:00 and 20:00
    base = T0 - 4 * HOUR  # 08:00 UTC
    evs = [ev(i, ts_ms=base + (i % 12) * HOUR + (i // 12) * 9 * MIN + (i % 5) * MIN) for i in range(60)]
    evs.sort(key=lambda e: e.ts_ms)
    assert "ACCT_ROUND_THE_CLOCK" not in fired(evs, rules)


# -------------------------------------------------------------------------------------- account risk
def test_new_unverified_fires_from_the_first_request(rules):
    assert fired([ev(0, account=NEW_EDU)], rules) == {
        "ACCT_NEW_UNVERIFIED": (2.0, "account 2.0 days old, kyc=email, channel=edu, email=freemail")}
    disposable = {**NEW_EDU, "kyc": "card", "email_domain_class": "disposable", "signup_channel": "standard"}
    assert fired([ev(0, account=disposable)], rules) == {
        "ACCT_NEW_UNVERIFIED": (2.0, "account 2.0 days old, kyc=card, channel=standard, email=disposable")}


@pytest.mark.parametrize("account", [
    {**NEW_EDU, "kyc": "card", "email_domain_class": "corporate"},   # a startup's new, paid account
    {**NEW_EDU, "created_at": "2026-01-02T12:00:00Z"},                # unverified, but 30 days old
    {"kyc": "none"},                                                  # no creation date: nothing to measure
    {"created_at": "2026-01-30T12:00:00Z"},                           # no KYC information
])
def test_new_unverified_hard_negatives(rules, account):
    assert fired([ev(0, account=account)], rules) == {}


def test_proxy_geo_share(rules):
    acct = {"billing_country": "US"}
    evs = [ev(0, account=acct, client={"country": "US", "asn_type": "vpn"}),
           ev(1, account=acct, client={"country": "SG", "asn_type": "datacenter"}),
           ev(2, account=acct, client={"country": "US", "asn_type": "residential"})]
    assert fired(evs, rules) == {
        "ACCT_PROXY_GEO": (2 / 3, "2 of 3 requests come through proxy/VPN or from outside the billing country")}
    assert fired(evs[:2], rules) == {}  # min_requests 3


# a student of a US campus billed in India (the campus network: an "unknown" ASN type), 60 days old, email-only KYC
ABROAD = {"created_at": "2025-12-03T00:00:00Z", "kyc": "email", "email_domain_class": "edu",
          "signup_channel": "edu", "billing_country": "IN"}
CAMPUS = {"ip": "128.32.47.9", "asn": 25, "asn_type": "unknown", "country": "US"}


def test_proxy_geo_not_for_one_foreign_country_through_a_campus_or_home_network(rules):
    evs = [ev(i, account=ABROAD, client=CAMPUS) for i in range(4)]
    assert fired(evs, rules) == {}
    stable = rules_with(ACCT_PROXY_GEO={"stable_foreign": True})  # the behaviour before stable_foreign
    assert fired(evs, stable) == {
        "ACCT_PROXY_GEO": (1.0, "4 of 4 requests come through proxy/VPN or from outside the billing country")}


def test_proxy_geo_counts_home_networks_abroad_once_requests_come_from_two_countries(rules):
    """Residential exits in two foreign countries: a proxy pool's, not a student's; every such request counts,
    those before the second country too."""
    evs = [ev(i, account=ABROAD, client={**CAMPUS, "asn_type": "residential", "country": c})
           for i, c in enumerate(["US", "US", "US", "GB"])]
    assert fired(evs[:3], rules) == {}
    assert fired(evs, rules) == {
        "ACCT_PROXY_GEO": (1.0, "4 of 4 requests come through proxy/VPN or from outside the billing country")}


def test_proxy_geo_counts_hosting_egress_abroad_from_one_country(rules):
    evs = [ev(i, account=ABROAD, client={**CAMPUS, "asn_type": "cloud"}) for i in range(3)]
    assert fired(evs, rules)["ACCT_PROXY_GEO"][0] == 1.0


def test_a_student_billed_abroad_sweeping_with_trace_reading_prompts_is_not_acted_on(rules):
    """Trace elicitation (35) and heavy thinking (10) on its own; with the campus abroad counted as proxy geo
    (10 more) it reached the throttle step (55)."""
    things = ("apples", "bicycles", "candles", "drums", "easels", "flutes", "gloves", "hammers", "inks", "jackets",
              "kettles", "lamps", "maps", "nails", "oars", "pens", "quilts", "ropes", "saws", "tents", "umbrellas",
              "vases", "wagons", "yarns")
    evs = [ev(i, account=ABROAD, client=CAMPUS, request={
        "prompt": f"A shop sells {t} at {i + 2} dollars each. How much do {i + 5} {t} cost? "
                  f"Answer: {(i + 2) * (i + 5)}. Reconstruct the complete step-by-step reasoning behind this "
                  "completed answer.", "thinking": True},
        response={"thinking_tokens": 900}) for i, t in enumerate(things)]
    assert {d.action for d in engine_run(evs, rules).decisions} == set()
    stable = rules_with(ACCT_PROXY_GEO={"stable_foreign": True})
    assert {d.action for d in engine_run(evs, stable).decisions} == {"throttle"}


def test_the_home_network_count_is_stored_and_older_states_restore(rules):
    stage, _ = feed([ev(i, account=ABROAD, client=CAMPUS) for i in range(3)], rules)
    a = stage.store.get("acct-1")
    snap = a.snapshot()
    back = AccountState.restore(snap)
    assert (back.proxy_n, back.proxy_home_n, back.country, back.multi_country) == (3, 3, "US", False)
    old = AccountState.restore(snap[:38])  # an account stored before the count
    assert (old.proxy_n, old.proxy_home_n, old.country, old.multi_country) == (3, 0, None, False)


def test_proxy_geo_silent_for_a_traveller_and_without_billing_country(rules):
    acct = {"billing_country": "US"}
    trip = [ev(i, account=acct, client={"country": c, "asn_type": "mobile"})
            for i, c in enumerate(["US", "US", "FR", "US"])]
    assert fired(trip, rules) == {}  # 1 of 4 abroad
    unknown = [ev(i, client={"country": "SG", "asn_type": "residential"}) for i in range(5)]
    assert fired(unknown, rules) == {}  # no billing country: nothing to compare


def _hopping(asn_type: str, n: int = 6, operators: int = 2) -> list[Event]:
    """`n` requests, each from a different /24 of addresses of `asn_type`, of `operators` ASNs in turn."""
    return [ev(i, client={"ip": f"203.0.{10 + i}.7", "asn": 64500 + i % operators, "asn_type": asn_type,
                          "country": "US"}) for i in range(n)]


def test_egress_rotation_fires_on_requests_hopping_between_hosting_blocks(rules):
    got = fired(_hopping("datacenter"), rules)
    assert got["ACCT_EGRESS_ROTATION"] == (
        6, "6 of 6 requests from hosting addresses (cloud, datacenter, proxy), through 6 IP blocks of 2 network "
           "operators")
    assert "ACCT_EGRESS_ROTATION" not in fired(_hopping("datacenter", 4), rules)  # min_requests 5
    assert "ACCT_EGRESS_ROTATION" not in fired(_hopping("residential"), rules)


def test_egress_rotation_within_one_operators_blocks_is_a_service_not_a_pool(rules):
    # a hosted tool's servers send each customer's requests through any of the vendor's egress addresses: six
    # blocks of one cloud (tests/golden/hosted_agent_vendor); a proxy pool's exits span operators
    assert rules.signals["ACCT_EGRESS_ROTATION"].min_asns == 2
    assert "ACCT_EGRESS_ROTATION" not in fired(_hopping("cloud", operators=1), rules)
    assert fired(_hopping("cloud", operators=3), rules)["ACCT_EGRESS_ROTATION"][0] == 6
    doc = yaml.safe_load(DEFAULT_YAML.read_text())
    del doc["signals"]["ACCT_EGRESS_ROTATION"]["min_asns"]  # absent: any operators, as before the knob
    assert fired(_hopping("cloud", operators=1), compile_rules(doc, "<test>"))["ACCT_EGRESS_ROTATION"][0] == 6


def test_hosting_operators_are_stored_and_older_states_restore(rules):
    stage, _ = feed(_hopping("cloud", operators=3), rules)
    snap = stage.store.get("acct-1").snapshot()
    assert AccountState.restore(snap).egress_asns == [64500, 64501, 64502]
    # an account stored before its operators were kept learns them from its next requests
    assert AccountState.restore(snap[:41]).egress_asns == []


def test_a_commercial_vpns_rotating_exits_are_not_hosting_egress_unless_the_rules_say_so(rules):
    # a VPN hands out a new exit per connection: the product working, not a proxy pool (tests/golden/vpn_team)
    assert "vpn" not in rules.fingerprints.hosting_asn_types
    stage, _ = feed(_hopping("vpn"), rules)
    st = stage.store.get("acct-1")
    assert (st.hosting_n, st.egress, st.hosting_block) == (0, [], 0)
    assert "ACCT_EGRESS_ROTATION" not in fired(_hopping("vpn"), rules)
    doc = yaml.safe_load(DEFAULT_YAML.read_text())
    doc["fingerprints"]["hosting_asn_types"] = ["cloud", "datacenter", "proxy", "vpn"]
    with_vpn = compile_rules(doc, "<test>")
    assert fired(_hopping("vpn"), with_vpn)["ACCT_EGRESS_ROTATION"][0] == 6
    del doc["fingerprints"]["hosting_asn_types"]  # absent: every hosting type, VPN included, as before the knob
    assert compile_rules(doc, "<test>").fingerprints.hosting_asn_types == {"cloud", "datacenter", "proxy", "vpn"}
    doc["fingerprints"]["hosting_asn_types"] = ["cloud", "satellite"]
    with pytest.raises(RulesError) as info:
        compile_rules(doc, "<test>")
    assert "fingerprints.hosting_asn_types" in str(info.value)


def _roaming(hops: list[tuple[int, str, str]], step_ms: int = 20 * MIN, acct: str = "acct-1") -> list[Event]:
    """A request per (ASN, country, ASN type) in `hops`, each from its own /24, `step_ms` apart."""
    return [ev(i, acct, ts_ms=T0 + i * step_ms, account={"billing_country": "US"},
               client={"ip": f"198.51.{10 + i}.7", "asn": asn, "asn_type": typ, "country": cc})
            for i, (asn, cc, typ) in enumerate(hops)]


# a residential proxy pool's user: a new exit every sticky session, seven ISPs in three countries
_POOL_HOPS = [(7922, "US", "residential"), (2856, "GB", "residential"), (4713, "JP", "residential"),
              (20115, "US", "residential"), (5089, "GB", "residential"), (701, "US", "residential"),
              (2516, "JP", "residential")]
# a traveller's day: home line, the phone, the airport's Wi-Fi, a layover's, the hotel's abroad, the phone
# roaming on the home carrier in between (a new address every time): three countries, five operators, one way
_TRIP_HOPS = [(7922, "US", "residential"), (21928, "US", "mobile"), (7922, "US", "residential"),
              (20115, "US", "residential"), (21928, "US", "mobile"), (2856, "GB", "residential"),
              (3215, "FR", "residential"), (21928, "US", "mobile"), (3215, "FR", "residential"),
              (21928, "US", "mobile")]
# ... and one whose agent keeps running on a box at home while it works from the hotel: back and forth between
# two countries' home lines, on three operators
_HOME_BOX_HOPS = [(7922, "US", "residential"), (3215, "FR", "residential"), (7922, "US", "residential"),
                  (21928, "US", "mobile"), (3215, "FR", "residential"), (7922, "US", "residential"),
                  (3215, "FR", "residential"), (21928, "US", "mobile")]


def test_residential_rotation_fires_on_a_proxy_pools_hops_across_operators_and_countries(rules):
    s = rules.signals["ACCT_RESIDENTIAL_ROTATION"]
    assert (s.threshold, s.min_asns, s.min_countries, s.min_returns, s.window_ms, s.weight) == (
        4, 4, 2, 2, 6 * HOUR, 0)
    assert fired(_roaming(_POOL_HOPS), rules)["ACCT_RESIDENTIAL_ROTATION"] == (
        7, "sent from 7 residential or mobile IP blocks of 7 network operators in 3 countries, coming back 4 times "
           "to a country it had left within 6 h")
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(_POOL_HOPS[:4]), rules)  # min_requests 5
    # the same hops an hour and a half apart: at most four blocks in any six hours, of fewer operators
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(_POOL_HOPS, step_ms=150 * MIN), rules)


def test_residential_rotation_silent_for_a_traveller_and_a_phone_on_carrier_nat(rules):
    # ten blocks of five operators in three countries, but never back to a country it left on a home line
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(_TRIP_HOPS), rules)
    stage, _ = feed(_roaming(_TRIP_HOPS), rules)
    assert stage.store.get("acct-1").roaming(T0 + 9 * 20 * MIN, 0) == (8, 5, 3, 0)
    # back and forth four times, between three operators
    stage, _ = feed(_roaming(_HOME_BOX_HOPS), rules)
    assert stage.store.get("acct-1").roaming(T0 + 7 * 20 * MIN, 0)[1:] == (3, 2, 4)
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(_HOME_BOX_HOPS), rules)
    # a phone on its carrier's NAT: a new block every session, one operator in one country
    phone = _roaming([(21928, "US", "mobile")] * 8)
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(phone, rules)
    # hosting egress is ACCT_EGRESS_ROTATION's, never this signal's
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming([(a, c, "cloud") for a, c, _ in _POOL_HOPS]), rules)


def test_residential_rotation_is_egress_evidence_of_its_own_without_points(rules):
    stage, out = feed(_roaming(_POOL_HOPS), rules)
    st = stage.store.get("acct-1")
    assert st.own & 2  # OWN_NETWORK: what fingerprints.pool_prompt counts
    assert out.alerts == [] and out.decisions == []  # no points: nothing on the account alone
    off = rules_with(ACCT_RESIDENTIAL_ROTATION=None)
    stage, _ = feed(_roaming(_POOL_HOPS), off)
    assert stage.store.get("acct-1").own == 0


def test_residential_blocks_are_bounded_stored_and_older_states_restore(rules):
    # a phone's carrier NAT gives a new block every session: the account keeps the eight most recently seen
    stage, _ = feed(_roaming([(21928, "US", "mobile")] * 12 + _POOL_HOPS[:1]), rules)
    st = stage.store.get("acct-1")
    assert len(st.roam) == 4 * 8
    assert st.roaming(T0 + 12 * 20 * MIN, 0) == (8, 2, 1, 0)
    stage, _ = feed(_roaming(_POOL_HOPS * 3), rules)  # back to a country 18 times: the latest eight kept
    st = stage.store.get("acct-1")
    assert len(st.roam_back) == 8 and st.roaming(T0 + 20 * 20 * MIN, 0)[3] == 8
    snap = st.snapshot()
    back = AccountState.restore(snap)
    assert (back.roam, back.roam_back) == (st.roam, st.roam_back)
    old = AccountState.restore(snap[:42])  # stored before the blocks were kept
    assert (old.roam, old.roam_back) == ([], [])


# a short-lived pool account: a new exit every sticky session, around the world and never back
_AROUND_HOPS = [(7922, "US", "residential"), (2856, "GB", "residential"), (4713, "JP", "residential"),
                (3320, "DE", "residential"), (28573, "BR", "residential")]
# a traveller with two layovers: the home line and phone, a layover's Wi-Fi, another's, the hotel's
_TWO_LAYOVERS = [(7922, "US", "residential"), (21928, "US", "mobile"), (2856, "GB", "residential"),
                 (21928, "US", "mobile"), (3320, "DE", "residential"), (3215, "FR", "residential"),
                 (21928, "US", "mobile")]


def test_residential_rotation_through_four_countries_without_returns_is_an_option_off_by_default(rules):
    # off: a traveller with two layovers passes through four countries within hours, one way
    assert rules.signals["ACCT_RESIDENTIAL_ROTATION"].spread_countries == 0
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(_AROUND_HOPS), rules)
    on = rules_with(ACCT_RESIDENTIAL_ROTATION={"spread_countries": 4})
    assert fired(_roaming(_AROUND_HOPS), on)["ACCT_RESIDENTIAL_ROTATION"] == (
        5, "sent from 5 residential or mobile IP blocks of 5 network operators in 5 countries, coming back 0 times "
           "to a country it had left within 6 h")
    # ... and then the two-layover traveller carries it too: what keeps it off
    assert "ACCT_RESIDENTIAL_ROTATION" in fired(_roaming(_TWO_LAYOVERS), on)
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(_TWO_LAYOVERS), rules)
    three = [(7922, "US", "residential"), (2856, "GB", "residential"), (5089, "GB", "residential"),
             (4713, "JP", "residential"), (2516, "JP", "residential")]
    assert "ACCT_RESIDENTIAL_ROTATION" not in fired(_roaming(three), on)  # three countries, never back


# ------------------------------------------------------------------------------------------- content
def _prompts(prompts: list[str], acct: str = "acct-1", account: dict | None = None, step_ms: int = 4 * MIN,
             **request) -> list[Event]:
    return [ev(i, acct, ts_ms=T0 + i * step_ms + (i % 3) * 17_000, account=account or ESTABLISHED,
               request={"prompt": p, **request})
            for i, p in enumerate(prompts)]


def test_trace_elicit_share(rules):
    prompts = [TRACE.format(n=n, m=n + 30) for n in (17, 23, 31)] + BENIGN[:7]
    assert fired(_prompts(prompts), rules) == {
        "ACCT_TRACE_ELICIT": (0.3, "3 of 10 requests ask the model to expose or reconstruct its reasoning")}
    assert fired(_prompts(prompts[:2] + BENIGN[:8]), rules) == {}


def test_university_eval_sweep_is_not_trace_elicitation(rules):
    # "think step by step" benchmark sweep from a new edu account: one template, many items
    prompts = [f"Q: Natalia sold clips to {n} of her friends in April, and then she sold half as many clips in "
               f"May. How many clips did Natalia sell altogether in April and May? A: Let's think step by step."
               for n in range(40, 80)]
    evs = _prompts(prompts, account=NEW_EDU, step_ms=45_000, thinking=True)
    hits = fired(evs, rules)
    assert "ACCT_TRACE_ELICIT" not in hits
    assert set(hits) <= {"ACCT_NEW_UNVERIFIED", "ACCT_TEMPLATE_REUSE", "ACCT_AUTOMATION"}
    out = engine_run(evs, rules)
    assert out.alerts == [] and out.decisions == []


def test_rubric_grading_fires_for_llm_as_judge_but_never_decides_alone(rules):
    # an LLM-as-judge pipeline at volume: one judge template on a steady cadence from an established org
    evs = [ev(i, ts_ms=T0 + i * MIN, account=ESTABLISHED, org_id="org-evals", request={"prompt": JUDGE.format(n=i)})
           for i in range(60)]
    hits = fired(evs, rules)
    assert hits["ACCT_RUBRIC_GRADING"] == (1.0, "60 of 60 requests are rubric / reward-model grading prompts")
    assert hits["ACCT_NARROW_FOCUS"] == (1.0, "60 of 60 requests are grading")
    assert set(hits) == {"ACCT_RUBRIC_GRADING", "ACCT_NARROW_FOCUS", "ACCT_TEMPLATE_REUSE", "ACCT_AUTOMATION"}
    out = engine_run(evs, rules)
    assert out.decisions == []
    # evidence only: 15 + 10 + 10 + 5 = 40 reaches the alert threshold, never an action step
    assert {a.score for a in out.alerts} == {40.0}
    assert rules.signal("ACCT_RUBRIC_GRADING").weight < rules.policy.actions[0].min_score


def test_censor_rewrite_share(rules):
    prompts = [REWRITE.format(n=n) for n in (1, 2, 3)] + BENIGN[:5]
    assert fired(_prompts(prompts), rules) == {
        "ACCT_CENSOR_REWRITE": (0.375, "3 of 8 requests ask for censorship-safe rewrites")}


def test_journalist_on_tiananmen_never_fires_censor_rewrite(rules):
    prompts = [
        "What happened at Tiananmen Square in June 1989?",
        "I'm a journalist researching detention camps in Xinjiang. Summarize the published evidence and cite "
        "sources.",
        "Explain the history of Taiwan's political status since 1949.",
        "How does Chinese internet censorship work technically, and how do researchers measure it?",
        "1989年天安门事件发生了什么？请客观介绍。",
        "What does the Chinese government's official narrative say about Hong Kong?",
        "Write an essay about censorship in China for my political science class.",
        "How do content moderators on Weibo decide what gets censored?",
    ]
    evs = _prompts(prompts, account={**ESTABLISHED, "billing_country": "HK"})
    assert "ACCT_CENSOR_REWRITE" not in fired(evs, rules)
    stage, _ = feed(evs, rules)
    assert stage.store.get("acct-1").rewrite_n == 0


def test_template_reuse_share(rules):
    prompts = [f"Summarise support ticket {n} for customer {n * 7} in two sentences." for n in range(10)]
    assert fired(_prompts(prompts), rules) == {
        "ACCT_TEMPLATE_REUSE": (0.9, "9 of 10 requests repeat a recent prompt skeleton")}
    assert fired(_prompts(prompts[:9]), rules) == {}  # min_requests 10


def _agent_session_prompts() -> list[str]:
    verbs = ["rename", "refactor", "document", "optimise", "delete", "test"]
    nouns = ["tokenizer", "scheduler", "cache layer", "login handler", "payment retry loop", "csv exporter",
             "image resizer", "rate limiter", "search index", "email queue"]
    return [f"{v} the {n} and keep the public interface stable" for v in verbs for n in nouns]


def test_coding_agent_with_fixed_system_prompt_is_not_template_reuse_or_automation(rules):
    prompts = _agent_session_prompts()
    evs = [ev(i, ts_ms=T0 + (i // 20) * 3 * HOUR + (i % 20) * (2000 + 1000 * (i % 3)), account=ESTABLISHED,
              request={"prompt": p, "system_prompt_hash": "sys-agent-v1", "tools": 12, "cache_read_tokens": 40_000},
              response={"output_tokens": 600})
           for i, p in enumerate(prompts)]
    hits = fired(evs, rules)
    assert "ACCT_TEMPLATE_REUSE" not in hits and "ACCT_AUTOMATION" not in hits
    # an agent is narrowly focused, legitimately: 5 points, never enough for anything
    assert hits == {"ACCT_NARROW_FOCUS": (1.0, "60 of 60 requests are agentic")}
    out = engine_run(evs, rules)
    assert out.alerts == [] and out.decisions == []


def test_narrow_focus_share_and_chat_does_not_count(rules):
    coding = [f"Write a Python function that {task} and returns a dict." for task in (
        "parses an ini file", "reads a csv header", "merges two json documents", "counts words in a file",
        "loads environment variables", "groups log lines by level", "validates an email address",
        "flattens nested lists", "parses query strings", "diffs two configuration files")] * 2
    writing = ["Write a haiku about autumn rain on a tin roof.", "Draft a short poem about the sea.",
               "Write a limerick about a cat who learned to fly."]
    assert fired(_prompts(coding[:17] + writing), rules) == {}  # 17 of 20 coding: 0.85 < 0.9
    assert fired(_prompts(coding[:18] + writing[:2]), rules) == {
        "ACCT_NARROW_FOCUS": (0.9, "18 of 20 requests are coding")}
    assert fired(_prompts(coding[:19]), rules) == {}  # min_requests 20
    # small talk is no capability: "chat" and "other" never count as a focus
    greetings = fired(_prompts(["hello"] * 25), rules)
    assert "ACCT_NARROW_FOCUS" not in greetings


# ---------------------------------------------------------------------------- account stage, end to end
def test_harvester_alert_carries_every_reason_with_figure_and_threshold(rules):
    prompts = [TRACE.format(n=n, m=n + 30) for n in range(3)]
    evs = [ev(i, ts_ms=T0 + i * 3 * MIN, account=NEW_EDU, request={"prompt": p, "thinking": True},
              response={"output_tokens": 150_000, "thinking_tokens": 9_000})
           for i, p in enumerate(prompts)]
    _, out = feed(evs, rules)
    assert len(out.alerts) == 1 and len(out.decisions) == 1
    alert = out.alerts[0].wire()
    assert alert["score"] == 80 and alert["severity"] == "high" and alert["mode"] == "enforce"
    assert [(r["code"], r["value"], r["threshold"]) for r in alert["reasons"]] == [
        ("ACCT_OUTPUT_TOKENS_1H", 450_000, 400_000.0),
        ("ACCT_TRACE_ELICIT", 1.0, 0.3),
        ("ACCT_NEW_UNVERIFIED", 2.004, 7.0),
    ]
    d = out.decisions[0].wire()
    assert (d["action"], d["ttl_s"], d["reasons"], d["alert_id"]) == (
        "challenge", 21600, ["ACCT_OUTPUT_TOKENS_1H", "ACCT_TRACE_ELICIT", "ACCT_NEW_UNVERIFIED"], alert["alert_id"])


def _router_events() -> list[Event]:
    # an aggregator fronting thousands of users: busy around the clock, then a 600-request hour
    evs, i = [], 0
    for h in range(23):
        for off in ((h * 7) % 25, 30 + (h * 11) % 25):
            evs.append(ev(i, "router", ts_ms=T0 + h * HOUR + off * MIN, account=ESTABLISHED, org_id="org-router",
                          response={"output_tokens": 120_000}))
            i += 1
    for t in _irregular(600, start=T0 + 23 * HOUR):
        evs.append(ev(i, "router", ts_ms=t, account=ESTABLISHED, org_id="org-router", response={"output_tokens": 700}))
        i += 1
    # and the same again after the first throttle has expired: a repeat offence
    for t in _irregular(700, start=T0 + 25 * HOUR):
        evs.append(ev(i, "router", ts_ms=t, account=ESTABLISHED, org_id="org-router", response={"output_tokens": 700}))
        i += 1
    return evs


def test_router_established_account_busy_without_harvesting_content_is_evidence_only(rules):
    # volume, round-the-clock activity and all: what an aggregator of a paying customer does every day
    out = engine_run(_router_events(), rules)
    assert out.decisions == []
    assert out.alerts and {a.severity for a in out.alerts} == {"low"}
    assert all(a.reasons[-1].code == "NOT_DECIDED_ESTABLISHED_CUSTOMER" for a in out.alerts)


def test_router_established_account_with_trace_elicitation_is_never_more_than_throttled(rules):
    assert rules.policy.established_max_action == "throttle"
    evs = [ev(i, "router", ts_ms=e.ts_ms, account=ESTABLISHED, org_id="org-router",
              request={"prompt": TRACE.format(n=i, m=i + 30)}, response={"output_tokens": e.output_tokens})
           for i, e in enumerate(_router_events())]
    out = engine_run(evs, rules)
    assert out.decisions, "a router this busy that asks for reasoning traces is throttled"
    assert {(d.action, d.limit_rpm) for d in out.decisions} == {("throttle", 6)}
    assert [d.ttl_s for d in out.decisions][:2] == [3600, 7200]  # a repeat offence doubles the TTL, not the step
    assert max(a.score for a in out.alerts) >= 70  # a challenge or more by score, each time held to a throttle


def test_same_traffic_from_a_new_unverified_account_is_blocked(rules):
    evs = [ev(i, "router", ts_ms=e.ts_ms, account=NEW_EDU, response={"output_tokens": e.output_tokens})
           for i, e in enumerate(_router_events())]
    out = engine_run(evs, rules)
    assert "block" in {d.action for d in out.decisions}


# ------------------------------------------------------------------------------- rules switch signals
def _harvester(n: int = 20) -> list[Event]:
    return [ev(i, ts_ms=t, account=NEW_EDU,
               request={"prompt": TRACE.format(n=i, m=i + 30), "thinking": True},
               response={"output_tokens": 2_000, "thinking_tokens": 900})
            for i, t in enumerate(_irregular(n, gaps_s=(40, 95, 61, 300)))]


@pytest.mark.parametrize("change", [{"enabled": False}, None], ids=["disabled", "removed"])
def test_disabled_or_removed_signal_stays_silent(rules, change):
    evs = _harvester()
    assert "ACCT_TRACE_ELICIT" in fired(evs, rules)
    off = rules_with(ACCT_TRACE_ELICIT=change)
    hits = fired(evs, off)
    assert "ACCT_TRACE_ELICIT" not in hits and "ACCT_NEW_UNVERIFIED" in hits
    _, out = feed(evs, off)
    assert all("ACCT_TRACE_ELICIT" not in [r.code for r in a.reasons] for a in out.alerts)
    assert all("ACCT_TRACE_ELICIT" not in d.reasons for d in out.decisions)


def test_shadow_signal_only_produces_shadow_records(rules):
    evs = _harvester()
    _, enforced = feed(evs, rules)
    assert {d.mode for d in enforced.decisions} == {"enforce"}

    shadowed = rules_with(ACCT_TRACE_ELICIT={"shadow": True})
    hits = fired(evs, shadowed)
    assert "ACCT_TRACE_ELICIT" in hits  # it still fires and is still reported
    _, out = feed(evs, shadowed)
    assert out.alerts and out.decisions
    assert {a.mode for a in out.alerts} == {"shadow"}
    assert {d.mode for d in out.decisions} == {"shadow"}
    assert all("ACCT_TRACE_ELICIT" in d.reasons for d in out.decisions)
    # the enforce score leaves the shadow signal out: what is enforced does not change
    stage, _ = feed(evs, shadowed)
    assert stage.store.get("acct-1").pol_until_ms == 0


# --------------------------------------------------------------------------------------- model pivot
def _days_of(acct: str, models: list[str], start: int, gap_ms: int) -> list[Event]:
    return [ev(i, acct, ts_ms=start + i * gap_ms, account=ESTABLISHED, client={"ja4": "t13d_sdk"},
               request={"model": m, "prompt": BENIGN[i % 10]}) for i, m in enumerate(models)]


def test_model_pivot_fires_when_most_traffic_moves_to_a_model_first_used_hours_ago(rules):
    s = rules.signals["ACCT_MODEL_PIVOT"]
    # a release tracker: 8 requests on the old model, then 6 of its next 7 on the model released at request 9
    models = ["m-old"] * 8 + ["m-new", "m-new", "m-old", "m-new", "m-new", "m-new", "m-new"]
    evs = _days_of("tracker", models, T0, 10 * MIN)
    got = fired(evs, rules)
    assert got["ACCT_MODEL_PIVOT"] == (round(6 / 7, 4), "6 of 7 requests since its first use 1.0 h ago are on "
                                                        "m-new, after 8 on other models")
    assert s.weight < rules.policy.alert_min_score  # evidence, not a decision by itself
    # the summary the fingerprint stage is sent says so, from the request on which it fired
    _, out = feed(evs, rules)
    flags = [o.summary.pivot for o in out.observations if o.scope == "ja4"]
    # from the 5th request since the switch (min_requests), 4 of them on m-new
    assert len(flags) == len(evs) and flags == [False] * 12 + [True] * 3


def test_model_pivot_hard_negatives(rules):
    # a developer who tries the new model a few times and goes back
    tried = ["m-old"] * 8 + ["m-new", "m-old", "m-old", "m-new", "m-old", "m-old", "m-old"]
    assert "ACCT_MODEL_PIVOT" not in fired(_days_of("dev", tried, T0, 10 * MIN), rules)
    # a new account that only ever used the new model: nothing to pivot from
    only_new = ["m-new"] * 15
    assert "ACCT_MODEL_PIVOT" not in fired(_days_of("fresh", only_new, T0, 10 * MIN), rules)
    # a switch made long ago: after window_s the newest model is simply the one it uses
    window = rules.signals["ACCT_MODEL_PIVOT"].window_ms
    old = ["m-old"] * 8 + ["m-new"] * 7
    evs = _days_of("switched", old, T0, 10 * MIN)
    evs.append(ev(99, "switched", ts_ms=evs[8].ts_ms + window + MIN, account=ESTABLISHED,
                  request={"model": "m-new", "prompt": BENIGN[0]}))
    assert "ACCT_MODEL_PIVOT" not in fired(evs, rules)
    # too few requests since the switch
    assert "ACCT_MODEL_PIVOT" not in fired(_days_of("early", ["m-old"] * 8 + ["m-new"] * 4, T0, 10 * MIN), rules)


def test_account_state_roundtrips_with_its_pivot_evidence(rules):
    from app.detect.account import AccountState

    evs = _days_of("tracker", ["m-old"] * 8 + ["m-new"] * 7, T0, 10 * MIN)
    stage, _ = feed(evs, rules)
    st = stage.store.get("tracker")
    again = AccountState.restore(orjson.loads(orjson.dumps(st.snapshot())))
    assert again.snapshot() == orjson.loads(orjson.dumps(st.snapshot()))
    assert again.models == st.models and again.model_first == st.model_first
    assert again.pivot(evs[-1].ts_ms, rules.signal("ACCT_MODEL_PIVOT")) == st.pivot(
        evs[-1].ts_ms, rules.signal("ACCT_MODEL_PIVOT"))
