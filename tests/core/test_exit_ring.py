"""A ring's exit (rules `fingerprints.exit_ring`, app/detect/fingerprint.py `exit_ring`): an IP block of a VPN,
a proxy or a hosting network whose users are mostly accounts of three or more orgs with content-flagged
requests through it. A campaign's aged, card-verified accounts harvesting reasoning through a handful of VPN
exits (odd worlds 185, 221, 357) each score an alert and nothing more: established customers are never acted
on for what they share, and an IP block links only new, disposable or KYC-less accounts. Through a ring's exit
their flagged members are linked whoever they are, into a ring (a weak value: it never joins two clusters)
decided like a community on spread networks: aged members get a challenge at most. A residential proxy's exit
is a home or phone network's block its users send from abroad (`exit_ring.abroad`: a stealth campaign's aged
accounts, odd worlds 195 and 203). A commercial VPN's exit serves many unrelated customers, few of them
flagged; a home line at home or a campus NAT is no exit."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.detect.cluster import Value
from app.detect.fingerprint import FpState
from app.detect.messages import Link, Summary
from app.engine import Engine, Output
from app.errors import RulesError
from app.ingest.parse import Rejection, parse_record
from app.rules.load import compile_rules
from app.rules.model import Rules
from tests.helpers import T0, event, line
from tests.traffic import BENIGN_PROMPTS, TRACE_PROMPTS

MIN = 60_000
NOW = T0 + 40 * 86_400_000
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
# aged, card-verified, a freemail address: an established customer by every account figure
AGED = {"created_at": "2025-09-01T00:00:00Z", "kyc": "card", "email_domain_class": "freemail",
        "billing_country": "US"}


def doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


@pytest.fixture
def rules() -> Rules:
    return compile_rules(doc(), "default.yaml")


def block(asn_type: str, k: int, exits: int = 1) -> dict:
    """Address k of a /24 of a network of kind `asn_type` in the Netherlands: one /24, or with `exits` two,
    the accounts taking them in turn, each of its own operator."""
    if k % exits:
        return {"ip": f"91.7.2.{10 + k}", "asn": 60068, "asn_type": asn_type, "country": "NL"}
    return {"ip": f"45.8.3.{10 + k}", "asn": 9009, "asn_type": asn_type, "country": "NL"}


def run(rules: Rules, n: int = 5, asn_type: str = "vpn", orgs: int | None = None, bystanders: int = 0,
        rounds: int = 4, cards: dict[str, str] | None = None, exits: int = 1, billing: str = "US") -> list[Output]:
    """`n` aged accounts (of `orgs` orgs, their own each by default), each on its own card, send `rounds`
    trace-elicitation requests in turn, a minute apart, through one /24 of kind `asn_type`; `bystanders` more
    accounts of their own orgs send ordinary requests through it in the same turns, each turn first (the exit's
    other customers). `cards`: an account's card, when not its own; `exits`: the /24s they take in turn;
    `billing`: the accounts' billing country (the blocks are in the Netherlands)."""
    eng = Engine(rules)
    outs, i = [], 0
    for r in range(rounds):
        for k in [*range(n, n + bystanders), *range(n)]:
            acct = f"h{k}" if k < n else f"b{k}"
            prompt = (TRACE_PROMPTS[(k + r) % 2].format(n=31 + 7 * r + k) if k < n
                      else BENIGN_PROMPTS[(k + r) % 4].format(n=3 + r + k, c="DE"))
            card = (cards or {}).get(acct, "card-" + acct)
            raw = event(i, acct, ts_ms=T0 + i * MIN, account={**AGED, "payment_fp": card, "billing_country": billing},
                        client={"ja4": "t13d_common", **block(asn_type, k, exits)},
                        request={"prompt": prompt, "thinking": True})
            raw["org_id"] = f"org-{k % orgs}" if orgs and k < n else "org-" + acct
            i += 1
            e = parse_record(line(raw), NOW)
            assert not isinstance(e, Rejection), e
            outs.append(eng.process(e))
    return outs


def decided(outs: list[Output]) -> dict[str, str]:
    """account -> its highest enforcing action."""
    order = ("allow", "throttle", "challenge", "block")
    best: dict[str, str] = {}
    for o in outs:
        for d in o.decisions:
            if d.scope == "account" and order.index(d.action) > order.index(best.get(d.value, "allow")):
                best[d.value] = d.action
    return best


def test_aged_harvesters_through_a_vpn_exit_are_challenged_at_most(rules):
    er = rules.fingerprints.exit_ring
    assert er is not None and (er.min_orgs, er.min_share) == (3, 0.5)
    assert er.asn_types == {"vpn", "proxy"}
    acts = decided(run(rules))
    assert set(acts) == {f"h{k}" for k in range(5)}
    # aged and card-verified: a challenge at most, whatever the ring's score
    assert set(acts.values()) <= {"throttle", "challenge"}


def test_a_pair_on_one_card_among_them_is_decided_on_the_exits_it_shares(rules):
    # eight accounts through two exits of two operators, h0 on one and h1 on the other paying with one card
    # (odd world 221): a community of two, which a weak value never joins to a ring. Its own figures (two
    # members, flagged content) score 40, no decision; a ring's exit it links through counts as shared
    # infrastructure whoever its members are (FP_SHARED_UNRELATED)
    pair = {"h0": "card-pair", "h1": "card-pair"}
    outs = run(rules, n=8, exits=2, cards=pair, rounds=8)
    assert set(decided(outs)) == {f"h{k}" for k in range(8)}
    alerts = [a for o in outs for a in o.alerts if a.scope == "cluster" and "h0" in a.accounts]
    assert alerts and "FP_SHARED_UNRELATED" in {r.code for r in alerts[-1].reasons}
    d = doc()
    d["fingerprints"]["exit_ring"]["min_orgs"] = 0
    assert decided(run(compile_rules(d, "off.yaml"), n=8, exits=2, cards=pair, rounds=8)) == {}


def test_without_the_rule_each_is_an_alert_and_nothing_more():
    d = doc()
    d["fingerprints"]["exit_ring"]["min_orgs"] = 0
    off = compile_rules(d, "off.yaml")
    assert off.fingerprints.exit_ring is None
    outs = run(off)
    assert decided(outs) == {}
    # each has an account alert of its own: the content is flagged
    assert {a.value for o in outs for a in o.alerts if a.scope == "account"} >= {"h0", "h1"}


@pytest.mark.parametrize("why,kw", [
    ("the same accounts each on a home line of one provider's /24 at home (no exit)",
     {"asn_type": "residential", "billing": "NL"}),
    ("... or on their phones at home (no exit)", {"asn_type": "mobile", "billing": "NL"}),
    ("a hotel's block abroad whose guests are mostly unflagged", {"asn_type": "residential", "bystanders": 7}),
    ("a campus NAT's block (no exit)", {"asn_type": "unknown"}),
    ("a cloud tenancy's block (an eval vendor's NAT carrying its client projects' orgs)", {"asn_type": "cloud"}),
    ("two orgs' accounts only (a team behind its VPN)", {"orgs": 2}),
    ("a commercial VPN's exit whose users are mostly unflagged customers", {"bystanders": 7}),
])
def test_no_ring_without_an_exit_mostly_flagged_accounts_of_three_orgs_use(rules, why, kw):
    assert decided(run(rules, **kw)) == {}, why


@pytest.mark.parametrize("asn_type", ["residential", "mobile"])
def test_aged_harvesters_through_a_residential_proxy_exit_abroad_are_challenged_at_most(rules, asn_type):
    # a stealth campaign's aged, card-verified accounts, billed in the US, each sending from a home or phone
    # network's block in the Netherlands that they are most of the users of (odd world 203)
    assert rules.fingerprints.exit_ring is not None and rules.fingerprints.exit_ring.abroad
    acts = decided(run(rules, asn_type=asn_type))
    assert set(acts) == {f"h{k}" for k in range(5)}
    assert set(acts.values()) <= {"throttle", "challenge"}
    d = doc()
    d["fingerprints"]["exit_ring"]["abroad"] = False
    assert decided(run(compile_rules(d, "home-only.yaml"), asn_type=asn_type)) == {}


def test_a_commercial_vpn_exit_with_some_other_customers_is_still_a_ring_while_they_are_fewer(rules):
    # five flagged accounts of five orgs and three ordinary customers: 5 of 8 kept are flagged (>= 0.5)
    acts = decided(run(rules, bystanders=3))
    assert set(acts) == {f"h{k}" for k in range(5)}


def test_a_rules_file_without_asn_types_counts_vpn_and_proxy_blocks_only_and_no_block_abroad():
    d = doc()
    del d["fingerprints"]["exit_ring"]["asn_types"]
    er = compile_rules(d, "no-types.yaml").fingerprints.exit_ring
    assert er is not None and er.asn_types == {"vpn", "proxy"}
    del d["fingerprints"]["exit_ring"]["abroad"]
    er = compile_rules(d, "no-abroad.yaml").fingerprints.exit_ring
    assert er is not None and not er.abroad  # a home or phone network's block is an exit only when told


@pytest.mark.parametrize("knob,value,where", [
    ("min_orgs", 2, "fingerprints.exit_ring.min_orgs"),
    ("min_share", 0, "fingerprints.exit_ring.min_share"),
    ("min_share", 1.5, "fingerprints.exit_ring"),
    ("asn_types", ["vpn", "residential"], "fingerprints.exit_ring.asn_types"),
    ("surplus", 1, "fingerprints.exit_ring"),
    ("abroad", "yes", "fingerprints.exit_ring.abroad"),
])
def test_knobs_are_validated(knob, value, where):
    d = doc()
    d["fingerprints"]["exit_ring"][knob] = value
    with pytest.raises(RulesError) as e:
        compile_rules(d, "bad.yaml")
    assert where in str(e.value)


def test_the_verdict_travels_on_the_summary_the_link_and_in_stored_values():
    s = Summary("a", "o", T0, False, False, 3, 0, veiled=True)
    assert s.wire()[14:] == ["", 0, 0, 0, 0, 1] and Summary.unwire(s.wire()) == s
    assert not Summary.unwire(s.wire()[:19]).veiled
    link = Link("ip_prefix:45.8.3.0/24", T0, "e", s, "a", 5, 5, False, 0, False, 0, False, True)
    assert link.wire_ref(0)[11:] == [0, 1]
    back = Link.unwire_ref(link.wire_ref(0), [s])
    assert back == link and back.fp_exit and not back.fp_unrelated
    # a link of an earlier version (twelve fields) is not a ring's exit; one without either flag stores eleven
    assert not Link.unwire_ref(link.wire_ref(0)[:12], [s]).fp_exit
    assert len(Link("k", T0, "e", s, "a", 1, 1).wire_ref(0)) == 11
    f = FpState(T0)
    assert len(f.snapshot()) == 10
    f.exit = True
    back_fp = FpState.restore(f.snapshot())
    assert back_fp.exit and not back_fp.unrelated and not back_fp.harvest
    v = Value(5, 5, 0, T0, False, False, True)
    assert Value.restore(v.snapshot()).exit and not Value.restore(v.snapshot()).unrelated
    assert len(Value(5, 5, 0, T0).snapshot()) == 6


def test_explain_names_a_rings_exit(tmp_path, capsys, rules):
    import orjson

    from app.cli import main

    path = tmp_path / "events.jsonl"
    with path.open("wb") as f:
        i = 0
        for r in range(4):
            for k in range(5):
                raw = event(i, f"h{k}", ts_ms=T0 + i * MIN, account={**AGED, "payment_fp": f"card-h{k}"},
                            client={"ja4": "t13d_common", **block("vpn", k)},
                            request={"prompt": TRACE_PROMPTS[(k + r) % 2].format(n=31 + 7 * r + k), "thinking": True})
                raw["org_id"] = f"org-h{k}"
                f.write(line(raw) + b"\n")
                i += 1
    assert main(["explain", "--json", "--events", str(path), "--now", str(NOW), "h0"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    (row,) = [r for r in out["fingerprints"] if r["scope"] == "ip_prefix"]
    assert row["status"] == "linking" and "a ring's exit: 5 of the 5 accounts kept" in row["why"]
