"""A card shared across orgs by holders who share no network (rules `fingerprints.unrelated_card`,
app/detect/fingerprint.py `unrelated_holders`): every holder it keeps, of three or more orgs, last sent from a
hosting block no other holder sent from, the blocks of two or more network operators. Each holder then has
evidence of its own (a payment ring's, `PAYMENT_RING`: a challenge at most for an aged, verified account) and
FP_PAYMENT_SHARED counts its orgs. A lab's grant card is held behind the campus address, a team's behind the
office or a VPN's shared exits, a household's on one line, a remote company's new hires' on one provider's
cloud machines: none of them is such a card (issue 17: "a card shared across orgs is evidence only together
with new, disposable or otherwise unrelated holders")."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.detect.cluster import Value
from app.detect.messages import Link, Summary
from app.engine import Engine, Output
from app.errors import RulesError
from app.ingest.parse import Rejection, parse_record
from app.rules.load import compile_rules
from app.rules.model import Rules
from tests.helpers import T0, event, line

MIN = 60_000
NOW = T0 + 40 * 86_400_000
DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"
AGED = {"created_at": "2025-12-20T00:00:00Z", "kyc": "card", "email_domain_class": "freemail"}


def doc() -> dict:
    return yaml.safe_load(DEFAULT_YAML.read_text())


@pytest.fixture
def rules() -> Rules:
    return compile_rules(doc(), "default.yaml")


def run(rules: Rules, holders: list[tuple[str, dict]], rounds: int = 3, card: str = "card-u",
        verified: frozenset[str] = frozenset(), opened: dict[str, str] | None = None) -> list[Output]:
    """Each holder (account, client) of its own org, aged (opened on `opened`'s day if given) and
    card-verified (ID-verified if in `verified`), sends `rounds` requests in turn, a minute apart, paying with
    `card`."""
    eng = Engine(rules)
    outs, i = [], 0
    for _ in range(rounds):
        for acct, client in holders:
            kyc = {"kyc": "id_verified"} if acct in verified else {}
            if opened and acct in opened:
                kyc["created_at"] = opened[acct]
            raw = event(i, acct, ts_ms=T0 + i * MIN, account={**AGED, "payment_fp": card, **kyc},
                        client={"ja4": "t13d_common", **client}, request={"prompt": f"Refactor module {i}"})
            raw["org_id"] = "org-" + acct
            i += 1
            e = parse_record(line(raw), NOW)
            assert not isinstance(e, Rejection), e
            outs.append(eng.process(e))
    return outs


def decided(outs: list[Output]) -> dict[str, tuple[str, str]]:
    return {d.value: (d.action, d.reasons[-1]) for o in outs for d in o.decisions if d.scope == "account"}


def cloud(k: int, asn: int) -> dict:
    """Holder k's own cloud exit, its own /24 of operator `asn`, in one of three countries."""
    return {"ip": f"34.{10 + k}.{k}.7", "asn": asn, "asn_type": "cloud", "country": ("US", "DE", "SG")[k % 3]}


def test_a_card_whose_holders_each_send_from_their_own_proxy_exit_is_a_ring(rules):
    uc = rules.fingerprints.unrelated_card
    assert uc is not None and (uc.min_orgs, uc.min_asns, uc.min_countries) == (3, 2, 2)
    # four aged, card-verified accounts of four orgs on one card, each on its own cloud exit of two operators:
    # bought accounts behind a proxy pool's sticky exits (odd world 189's agentic harvester)
    holders = [(f"ring-{k}", cloud(k, 16509 + k % 2)) for k in range(4)]
    outs = run(rules, holders)
    acts = decided(outs)
    assert set(acts) == {f"ring-{k}" for k in range(4)}
    # aged and verified: a challenge at most, whatever the cluster's score
    assert {a for a, _ in acts.values()} <= {"throttle", "challenge"}
    assert {r for _, r in acts.values()} <= {"PAYMENT_RING", "ASSOCIATION"}
    alerts = [a for o in outs for a in o.alerts if a.scope == "cluster"]
    pay = [r for a in alerts for r in a.reasons if r.code == "FP_PAYMENT_SHARED"]
    assert pay and "holders who each send from their own hosting network, none shared" in pay[-1].detail


@pytest.mark.parametrize("why,holders", [
    ("a lab's grant card behind the campus address",
     [(f"student-{k}", {"ip": "128.232.0.10", "asn": 786, "asn_type": "unknown", "country": "GB"})
      for k in range(5)]),
    ("a team's card behind its VPN's exits (not hosting egress)",
     [(f"eng-{k}", {"ip": f"185.{k}.4.4", "asn": 9009 + k % 2, "asn_type": "vpn", "country": "NL"})
      for k in range(5)]),
    ("a household's card on one home line",
     [(f"home-{k}", {"ip": "81.2.69.160", "asn": 2856, "asn_type": "residential", "country": "GB"})
      for k in range(3)]),
    ("a remote company's new hires, each on a cloud machine of one provider",
     [(f"hire-{k}", cloud(k, 16509)) for k in range(6)]),
    ("holders on cloud machines of two providers, two of them behind one block",
     [(f"dev-{k}", {**cloud(k, 16509 + k % 2), "ip": "34.99.1.1" if k < 2 else cloud(k, 0)["ip"]})
      for k in range(5)]),
    ("two orgs' holders only",
     [(f"pair-{k}", cloud(k, 16509 + k % 2)) for k in range(2)]),
    ("a red team's card, each researcher on a cloud box of its own provider, all in one country (odd world 131)",
     [(f"red-{k}", {**cloud(k, 396982 + k), "country": "US"}) for k in range(4)]),
])
def test_cards_of_colleagues_households_and_one_providers_machines_are_not_rings(rules, why, holders):
    outs = run(rules, holders)
    assert decided(outs) == {}, why
    pay = [r for o in outs for a in o.alerts for r in a.reasons if r.code == "FP_PAYMENT_SHARED"]
    assert all("own hosting network" not in r.detail for r in pay), why


def test_a_security_programmes_verified_researchers_in_two_countries_are_not_a_ring(rules):
    # odd world 153: three researchers of a red-team programme, each its own org on a cloud box of its own
    # provider, in Singapore and the US, two of them ID-verified: every network test of a ring holds
    team = [("red-0", {**cloud(0, 16509), "country": "SG"}), ("red-1", {**cloud(1, 63949), "country": "US"}),
            ("red-2", {**cloud(2, 15169), "country": "US"})]
    assert decided(run(rules, team, verified=frozenset({"red-0", "red-1"}))) == {}
    # ... and with one of them verified it is one (max_verified_share 0.5): a ring may buy a verified account
    assert set(decided(run(rules, team, verified=frozenset({"red-0"})))) == {"red-0", "red-1", "red-2"}
    d = doc()
    d["fingerprints"]["unrelated_card"]["max_verified_share"] = None
    anyone = compile_rules(d, "any.yaml")
    assert set(decided(run(anyone, team, verified=frozenset({"red-0", "red-1"})))) == {"red-0", "red-1", "red-2"}


# odd world 369: a security programme's researchers of four orgs on one programme card, three on cloud boxes of
# their own in the US (billed in Canada), one of them ID-verified, and one abroad (here a cloud box in the
# Netherlands), their accounts opened 616, 212, 116 and 20 days before (T0 is 2026-02-01)
PROGRAMME = [("res-0", {**cloud(0, 16509), "country": "US"}), ("res-1", {**cloud(1, 63949), "country": "US"}),
             ("res-2", {**cloud(2, 15169), "country": "US"}), ("res-3", {**cloud(3, 14061), "country": "NL"})]
OPENED = {"res-0": "2024-05-31T00:00:00Z", "res-1": "2025-07-04T00:00:00Z", "res-2": "2025-10-08T00:00:00Z",
          "res-3": "2026-01-12T00:00:00Z"}


def test_established_researchers_opened_months_apart_are_not_a_ring(rules):
    uc = rules.fingerprints.unrelated_card
    assert uc is not None and uc.max_established_spread_days == 90
    assert decided(run(rules, PROGRAMME, verified=frozenset({"res-1"}), opened=OPENED)) == {}
    # the same holders opened within a month of each other are a ring's batch (odd world 195's agentic
    # harvester: established accounts opened 17 to 20 days apart, each on its own cloud exit)
    batch = {a: f"2025-12-{10 + 5 * k:02d}T00:00:00Z" for k, a in enumerate(OPENED)}
    assert set(decided(run(rules, PROGRAMME, verified=frozenset({"res-1"}), opened=batch))) == set(OPENED)
    # ... and so are holders opened months apart of whom one is new: a ring's fresh account among bought ones
    fresh = {**OPENED, "res-3": "2026-01-30T00:00:00Z"}
    assert set(decided(run(rules, PROGRAMME, verified=frozenset({"res-1"}), opened=fresh))) == set(OPENED)
    # without the knob the programme's card is a ring's
    d = doc()
    d["fingerprints"]["unrelated_card"]["max_established_spread_days"] = None
    anyone = compile_rules(d, "any.yaml")
    assert set(decided(run(anyone, PROGRAMME, verified=frozenset({"res-1"}), opened=OPENED))) == set(OPENED)


def test_without_the_rule_the_same_ring_is_left_alone():
    d = doc()
    d["fingerprints"]["unrelated_card"]["min_orgs"] = 0
    off = compile_rules(d, "off.yaml")
    assert off.fingerprints.unrelated_card is None
    assert decided(run(off, [(f"ring-{k}", cloud(k, 16509 + k % 2)) for k in range(4)])) == {}


@pytest.mark.parametrize("knob,value,where", [
    ("min_orgs", 2, "fingerprints.unrelated_card.min_orgs"),
    ("min_asns", 1, "fingerprints.unrelated_card.min_asns"),
    ("min_countries", 0, "fingerprints.unrelated_card"),
    ("max_verified_share", 1.5, "fingerprints.unrelated_card"),
    ("max_established_spread_days", -1, "fingerprints.unrelated_card"),
    ("surplus", 1, "fingerprints.unrelated_card"),
])
def test_knobs_are_validated(knob, value, where):
    d = doc()
    d["fingerprints"]["unrelated_card"][knob] = value
    with pytest.raises(RulesError) as e:
        compile_rules(d, "bad.yaml")
    assert where in str(e.value)


def test_the_flag_travels_on_the_link_and_in_the_clusters_stored_value():
    s = Summary("a", "o", T0, False, False, 3, 0, country="DE")
    assert Summary.unwire(s.wire()) == s and Summary.unwire(s.wire()[:14]).country == ""
    v = Summary("a", "o", T0, False, False, 3, 0, verified=True)
    assert Summary.unwire(v.wire()) == v and not Summary.unwire(v.wire()[:15]).verified
    # the opening day travels after `abroad`, which is stored unset then; a record without it has none
    c = Summary("a", "o", T0, False, False, 3, 0, country="DE", created_day=20_500)
    assert c.wire()[14:] == ["DE", 0, 0, 0, 20_500] and Summary.unwire(c.wire()) == c
    assert Summary.unwire(c.wire()[:18]).created_day == 0
    link = Link("payment_fp:c", T0, "e", s, "a", 3, 3, True, 0, False, 0, True)
    back = Link.unwire_ref(link.wire_ref(0), [s])
    assert back == link and back.fp_unrelated
    # a link of an earlier version (eleven fields) is not a ring's card
    assert not Link.unwire_ref(link.wire_ref(0)[:11], [s]).fp_unrelated
    # a card value keeps its holders' verified identity, and its verdict, through a restore
    from app.detect.fingerprint import FpMember, FpState
    m = FpMember(T0, "o", 1, 0, 0, 0, 0, 0, 0, verified=1)
    assert FpMember(*m.snapshot()).verified == 1
    opened = FpMember(T0, "o", 1, 0, 0, 0, 0, 0, 0, created=20_500)
    assert len(opened.snapshot()) == 17 and FpMember(*opened.snapshot()).created == 20_500
    assert len(FpMember(T0, "o", 1, 0, 0, 0, 0, 0, 0).snapshot()) == 9
    f = FpState(T0)
    assert len(f.snapshot()) == 10 and not FpState.restore(f.snapshot()).unrelated
    f.unrelated = True
    assert FpState.restore(f.snapshot()).unrelated and not FpState.restore(f.snapshot()).harvest
    v = Value(3, 3, 3, T0, True, True)
    assert Value.restore(v.snapshot()).unrelated
    plain = Value(3, 3, 0, T0, True)
    assert len(plain.snapshot()) == 6 and not Value.restore(plain.snapshot()).unrelated


def _explain_card(tmp_path, capsys, holders: list[tuple[str, dict]], acct: str) -> str:
    """`distill-guard explain --json` on `acct` after `run`'s traffic: the card's row's `why`."""
    import orjson

    from app.cli import main

    path = tmp_path / "events.jsonl"
    with path.open("wb") as f:
        i = 0
        for _ in range(3):
            for a, client in holders:
                raw = event(i, a, ts_ms=T0 + i * MIN, account={**AGED, "payment_fp": "card-u"},
                            client={"ja4": "t13d_common", **client}, request={"prompt": f"Refactor module {i}"})
                raw["org_id"] = "org-" + a
                f.write(line(raw) + b"\n")
                i += 1
    assert main(["explain", "--json", "--events", str(path), "--now", str(NOW), acct]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    (row,) = [r for r in doc["fingerprints"] if r["scope"] == "payment_fp"]
    return row["why"]


def test_explain_says_a_rings_card_is_one_and_a_labs_is_not(tmp_path, capsys):
    ring = [(f"ring-{k}", cloud(k, 16509 + k % 2)) for k in range(4)]
    assert "a ring's card" in _explain_card(tmp_path, capsys, ring, "ring-0")
    lab = [(f"student-{k}", {"ip": "128.232.0.10", "asn": 786, "asn_type": "unknown", "country": "GB"})
           for k in range(4)]
    why = _explain_card(tmp_path, capsys, lab, "student-0")
    assert why.startswith("links every account behind it") and "ring" not in why


def test_the_holders_before_the_card_turned_a_rings_have_its_evidence_too(rules):
    """One-session holders arriving twenty minutes apart (odd world 195's agentic harvester: 10-17 aged
    accounts per card, each sending a dozen requests in one two-minute session): the card is a ring's once
    its third holder's org arrives, and its first two holders, linked while it was not, are linked again as
    what it is now. The community then has three holders with evidence of their own and is decided while the
    third holder's session lasts, instead of an hour later when a fourth holder comes."""
    eng = Engine(rules)
    seen: dict[str, tuple[int, int]] = {}
    acts: dict[str, int] = {}
    i = 0
    for k in range(3):
        acct = f"ring-{k}"
        for j in range(3):
            ts = T0 + k * 20 * MIN + j * 30_000
            raw = event(i, acct, ts_ms=ts, account={**AGED, "payment_fp": "card-u"},
                        client={"ja4": "t13d_common", **cloud(k, 16509 + k % 2)},
                        request={"prompt": f"Refactor module {i}"})
            raw["org_id"] = "org-" + acct
            i += 1
            e = parse_record(line(raw), NOW)
            assert not isinstance(e, Rejection), e
            first, _ = seen.get(acct, (ts, ts))
            seen[acct] = (first, ts)
            for d in eng.process(e).decisions:
                if d.scope == "account":
                    acts.setdefault(d.value, ts)
    # every holder is reached, the third within its own session
    assert set(acts) == {"ring-0", "ring-1", "ring-2"}
    assert acts["ring-2"] <= seen["ring-2"][1]
