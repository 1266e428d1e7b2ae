"""`distill-guard explain`: the facts it states about an account agree with what replay emits, and the
prompt text never reaches its output."""

from __future__ import annotations

import orjson
import pytest

from app.cli import main
from tests.explain.case import CANARY, NOW, NOW_MS, Traffic


def _account_decisions(traffic: Traffic, acct: str) -> list:
    return [d for d in traffic.decisions if d.scope == "account" and d.value == acct]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["explain", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _text(doc: dict) -> str:
    """The text view of a document: what the CLI prints without --json (checked on two accounts below)."""
    from app.explain.text import render

    return render(doc)


def test_heavy_account_shows_the_volume_signal_with_figure_threshold_and_replays_decisions(
        traffic: Traffic, explained, rules) -> None:
    doc = explained("heavy-0")
    assert doc["header"]["requests"] == 120
    # the timeline names the request at which 1 h output tokens started to fire, with the figure
    point = next(p for p in doc["timeline"] if "ACCT_OUTPUT_TOKENS_1H" in p["added"])
    sig = next(s for s in point["signals"] if s["code"] == "ACCT_OUTPUT_TOKENS_1H")
    threshold = rules.signals["ACCT_OUTPUT_TOKENS_1H"].threshold
    assert (sig["threshold"], sig["weight"], sig["fires_when"]) == (
        threshold, rules.signals["ACCT_OUTPUT_TOKENS_1H"].weight, ">=")
    assert sig["value"] == 9000 * point["request"] >= threshold  # 9,000 output tokens per request, 25 s apart
    assert 9000 * (point["request"] - 1) < threshold             # ... and it fires on the first request over
    assert point["score_enforce"] >= sig["weight"]
    row = next(s for s in doc["signals"] if s["code"] == "ACCT_OUTPUT_TOKENS_1H")
    assert row["first_fired"] == point["ts"] and row["firing_at_last_request"]

    expected = _account_decisions(traffic, "heavy-0")
    assert expected, "the fixture's heavy harvester must be decided by replay"
    assert [x["decision"]["decision_id"] for x in doc["decisions"]] == [d.decision_id for d in expected]
    assert [x["decision"] for x in doc["decisions"]] == [d.wire() for d in expected]
    own = [x for x in doc["decisions"] if x["origin"] == "account"]
    assert own
    for x in own:  # the reason codes are exactly the signals the trace saw fire at that request
        assert [s["code"] for s in x["rule"]["signals"]] == x["decision"]["reasons"]
        assert x["rule"]["policy_step"]["action"] in ("throttle", "challenge", "block")
    alert_ids = {a.alert_id for a in traffic.alerts if a.scope == "account" and a.value == "heavy-0"}
    assert {x["alert"]["alert_id"] for x in doc["alerts"]} == alert_ids
    assert doc["summary"]["first_enforcing"]["decision_id"] == expected[0].decision_id


def test_heavy_account_text_names_the_signal_figure_and_decisions(traffic: Traffic, cli, explained) -> None:
    code, out, err = cli("heavy-0")
    assert code == 0, err
    assert out == _text(explained("heavy-0"))
    assert "ACCT_OUTPUT_TOKENS_1H" in out and ">= 400000" in out
    for d in _account_decisions(traffic, "heavy-0"):
        assert d.decision_id in out
    assert "line 6 bad_timestamp" in out and "line 10 bad_value" in out  # its dead letters, by line only


def test_ring_account_shows_its_cluster_and_the_shared_card(traffic: Traffic, explained, cli) -> None:
    doc = explained("ring-3")
    expected = _account_decisions(traffic, "ring-3")
    assert [x["decision"]["decision_id"] for x in doc["decisions"]] == [d.decision_id for d in expected]
    member_decisions = [d for d in expected if "CLUSTER_MEMBER" in d.reasons]
    assert member_decisions, "the fixture's ring must be decided as a cluster"
    c = doc["cluster"]
    assert c is not None and c["member_at_end"]
    assert c["cluster_id"] == member_decisions[-1].cluster_id
    # the bystander shares only the ring's JA4, a weak value, and has no evidence of its own: not a member
    assert c["size"] == 8 and c["kind"] == "community"
    assert c["memberships"][0]["kind"] == "joined" and c["memberships"][0]["via"]
    tie = c["member"]["tie"]
    assert (tie["kind"], tie["max_action"]) == ("own_strong", "block")
    assert "payment_fp" in c["member"]["linked_through"]
    # its evidence path: the card, held by the other ring accounts, each with abuse evidence of its own
    (step,) = tie["evidence_path"]
    assert step["value"] == "payment_fp:pf-shared-ring" and len(step["members_with_own_evidence"]) == 5
    fired = {s["code"]: s for s in c["signals"] if s["fired"]}
    assert fired["FP_PAYMENT_SHARED"]["value"] == 8
    assert {"value": "payment_fp:pf-shared-ring", "accounts": 8, "orgs": 8, "strong": True,
            "its_own": True} in c["linking_values"]
    card = next(f for f in doc["fingerprints"] if f["scope"] == "payment_fp")
    assert (card["value"], card["accounts"], card["orgs"], card["status"], card["links_its_cluster"]) == (
        "pf-shared-ring", 8, 8, "linking", True)

    # each fanned-out decision points at the cluster alert replay emitted, with its figures
    alerts = {a.alert_id: a for a in traffic.alerts}
    for x in doc["decisions"]:
        if x["origin"] == "cluster":
            alert = alerts[x["decision"]["alert_id"]]
            assert alert.scope == "cluster" and alert.cluster_id == x["decision"]["cluster_id"]
            got = x["rule"]["cluster_alert"]
            assert got["alert_id"] == alert.alert_id
            assert got["reasons"] == [r.wire() for r in alert.reasons]
    assert c["decisions"] and all(cd["member"]["tie"]["kind"] != "none" for cd in c["decisions"])

    code, out, err = cli("ring-3")
    assert code == 0, err
    assert c["cluster_id"] in out and "pf-shared-ring" in out and "FP_PAYMENT_SHARED" in out
    assert "attribution: own_strong (at most block)" in out
    assert "payment_fp:pf-shared-ring: held with evidence by" in out


def test_bystander_on_the_rings_ja4_is_not_linked_at_all(traffic: Traffic, explained) -> None:
    doc = explained("bystander")
    assert doc["decisions"] == [] and not _account_decisions(traffic, "bystander")
    # a JA4 is a weak value: it links only accounts with abuse evidence of their own, and the bystander
    # asks ordinary questions, so it is in no cluster the ring's evidence could reach it through
    assert doc["cluster"] is None
    (ja4,) = [f for f in doc["fingerprints"] if f["scope"] == "ja4"]
    assert ja4["value"] == "t13d_rare_ring" and "with abuse evidence of their own" in ja4["why"]
    # its JA4 is not decided with the ring: a limiter keyed by JA4 would hit the bystander
    # (contract v1: every account behind a decided value gets that decision)
    assert not [d for d in traffic.decisions if (d.scope, d.value) == ("ja4", "t13d_rare_ring")]
    assert doc["fingerprint_decisions"] == []
    out = _text(doc)
    assert "not linked into any cluster" in out and "t13d_rare_ring" in out


def test_member_dropped_at_the_cluster_cap_is_explained(traffic: Traffic, rules) -> None:
    from dataclasses import replace

    from app.explain.runner import explain_file
    from app.explain.text import render

    small = replace(rules, cluster=replace(rules.cluster, max_members=5))
    doc = explain_file(traffic.path, "ring-0", small, now_ms=NOW_MS)
    c = doc["cluster"]
    assert [m["kind"] for m in c["memberships"]][:2] == ["joined", "dropped"]
    assert c["member_at_end"] and not c["member_record_at_end"] and c["size"] == 5 and c["member"] is None
    assert "at its member cap (5, oldest first request first)" in render(doc)


def test_benign_account_shows_no_decision(traffic: Traffic, explained) -> None:
    acct = "user-0"
    assert traffic.roles[acct] == "benign"
    assert not _account_decisions(traffic, acct)
    doc = explained(acct)
    assert doc["decisions"] == [] and doc["summary"]["decisions"] == 0
    assert doc["summary"]["first_enforcing"] is None and doc["cluster"] is None
    assert not any(s["firing_at_last_request"] for s in doc["signals"] if s["family"] in ("volume", "content"))
    out = _text(doc)
    assert "no decision names this account" in out and "not linked into any cluster" in out


def test_json_parses_and_states_the_same_facts_as_the_text(cli, explained) -> None:
    doc = explained("ring-3")
    code, text, _ = cli("ring-3")
    assert code == 0
    for x in doc["decisions"]:
        d = x["decision"]
        assert d["decision_id"] in text and d["alert_id"] in text
        assert f"{d['action']}" in text and f"ttl {d['ttl_s']}s" in text
    for p in doc["timeline"]:
        assert p["ts"] in text
        for s in p["signals"]:
            assert s["code"] in text and s["detail"] in text
    for f in doc["fingerprints"]:
        if f["scope"] != "template":
            assert f["value"] in text
    h = doc["header"]
    assert h["first_event"] in text and h["last_event"] in text and f"{h['requests']}," in text
    assert doc["cluster"]["cluster_id"] in text


@pytest.mark.parametrize("acct", ["heavy-0", "ring-3", "user-0", "bystander"])
def test_prompt_text_never_reaches_the_output(cli, explained, acct: str) -> None:
    outputs = [orjson.dumps(explained(acct)).decode(), _text(explained(acct))]
    if acct in ("heavy-0", "ring-3"):
        outputs += list(cli(acct)[1:]) + list(cli(acct, "--json")[1:])
    for out in outputs:
        assert CANARY not in out
        assert "sourdough" not in out and "chain of thought" not in out and "bakery" not in out


def test_explain_does_not_change_what_replay_emits(traffic: Traffic, rules) -> None:
    from app.drivers.replay import replay
    from app.emit.sinks import ListSink
    from app.explain.trace import TracingEngine

    sink = ListSink()
    replay(traffic.path, rules, sink, now_ms=NOW_MS, engine=TracingEngine(rules, "ring-3"))
    assert sink.decisions == traffic.decisions and sink.alerts == traffic.alerts


def test_unknown_account_exits_1_and_missing_file_exits_2(traffic: Traffic, tmp_path, capsys) -> None:
    code, out, err = _run(capsys, "nobody-here", "--events", str(traffic.path), "--now", NOW)
    assert (code, out) == (1, "") and "'nobody-here' has no valid event" in err
    # an id that occurs in the file only inside others: replayed, then refused with suggestions
    code, _, err = _run(capsys, "ring-", "--events", str(traffic.path), "--now", NOW)
    assert code == 1 and "similar ids: ring-" in err
    code, out, err = _run(capsys, "heavy-0", "--events", str(tmp_path / "missing.jsonl"))
    assert (code, out) == (2, "") and "missing.jsonl: no such file" in err
    code, _, err = _run(capsys, "heavy-0", "--events", str(traffic.path), "--now", "yesterday-ish")
    assert code == 2 and err


def test_progress_is_reported_and_the_runner_returns_what_the_cli_prints(traffic: Traffic, rules,
                                                                          explained) -> None:
    from app.explain.runner import explain_file

    calls: list[int] = []
    doc = explain_file(traffic.path, "ring-3", rules, now_ms=NOW_MS, progress=lambda n, _s: calls.append(n),
                       every=100)
    assert calls == list(range(100, traffic.lines + 1, 100))
    assert doc == explained("ring-3")


def test_allowlisted_account_is_explained_as_such(traffic: Traffic, tmp_path, capsys) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("- {scope: account, value: heavy-1, reason: test}\n")
    code, out, err = _run(capsys, "heavy-1", "--events", str(traffic.path), "--now", NOW, "--json",
                          "--allowlist", str(allow))
    assert code == 0, err
    doc = orjson.loads(out)
    assert doc["decisions"] and all(x["decision"]["mode"] == "shadow" for x in doc["decisions"])
    assert any("allowlisted" in n for x in doc["decisions"] for n in x["rule"]["notes"])
    assert doc["summary"]["first_enforcing"] is None


def test_a_harness_run_through_a_pool_is_explained_with_its_figures(rules) -> None:
    # twelve aged accounts of a harvester on its harness prompts through a data-centre pool (the golden case
    # aged_harness_pool): the prompts link every member, and `explain` says why, with the figures
    from pathlib import Path

    from app.explain.runner import explain_file
    from app.explain.text import render

    path = Path(__file__).resolve().parents[1] / "golden" / "aged_harness_pool" / "events.jsonl"
    first = orjson.loads(path.read_bytes().split(b"\n", 1)[0])
    doc = explain_file(path, first["account_id"], rules, now_ms=1_769_990_400_000)
    prompts = [f for f in doc["fingerprints"] if f["scope"] == "template" and f["value"].startswith("sys:")]
    assert prompts and all(f["status"] == "linking" for f in prompts)
    assert all("links every account behind it" in f["why"] and "rotate" in f["why"]
               and "network operators: a harness run through a proxy pool" in f["why"] for f in prompts)
    assert doc["cluster"] is not None and doc["decisions"]
    assert "a harness run through a proxy pool" in render(doc)


def test_a_values_verdict_changes_are_named_for_what_they_are() -> None:
    """The FINGERPRINTS section's change list (app/explain/trace.py): a system prompt turning strong or weak
    says so with the verdict's figures; a value that stops linking or stops being popular says that, not that
    its state expired (what an earlier wording claimed for every change it did not know)."""
    from app.detect.fingerprint import FpState
    from app.explain.trace import _status_change

    st = FpState(0)
    st.linking, st.strong = True, True
    assert _status_change((False, True, False), st, "7 of 10 new") == (
        "turned strong (links every member): 7 of 10 new")
    st.strong = False
    assert _status_change((False, True, True), st, "11 accounts, 6 new") == (
        "turned weak (links members with evidence of their own): 11 accounts, 6 new")
    assert _status_change((False, False, False), st, "") == "started linking"
    st.linking = False
    assert _status_change((False, True, False), st, "") == "stopped linking"
    assert _status_change((True, False, False), st, "3 accounts") == "no longer popular (3 accounts)"
    st.popular = True
    assert _status_change((False, True, True), st, "") == "became popular (links nothing from here on)"
