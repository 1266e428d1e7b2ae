"""Evaluate's figures on a hand-built case, checked to the last digit."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from app.cli import main
from app.evaluate.metrics import EvaluateError, evaluate


def test_hand_built_case_is_scored_exactly(case) -> None:
    result = evaluate(*case)
    rows = {r.group: r for r in result.groups}
    a, b, x, y = rows["camp_a"], rows["camp_b"], rows["pop_x"], rows["pop_y"]
    assert (a.accounts, a.caught, a.events, a.leaked, a.ttd_s, a.blocked) == (2, 1, 6, 4, [20.0], 1)
    assert (b.accounts, b.caught, b.events, b.leaked, sorted(b.ttd_s)) == (3, 2, 5, 2, [0.0, 10.0])
    assert (b.replacements, b.replacements_first) == (2, 1)
    assert b.median_ttd_s == 5.0
    assert (x.accounts, x.caught, x.blocked, x.events, x.leaked) == (2, 1, 1, 3, 2)
    assert (y.accounts, y.caught, y.blocked, y.events, y.leaked, y.ttd_s) == (1, 1, 0, 2, 1, [500.0])
    assert [r.group for r in result.groups] == ["pop_x", "pop_y", "camp_a", "camp_b"]

    t = result.totals
    assert (t.campaign_accounts, t.campaign_caught, t.campaign_recall) == (5, 3, 0.6)
    assert (t.benign_accounts, t.benign_caught) == (3, 2)
    assert t.benign_fpr == pytest.approx(2 / 3, abs=0)
    assert t.benign_blocked == 1
    assert (t.campaign_events, t.leaked) == (11, 6)
    assert t.leak_ratio == 6 / 11
    assert t.median_ttd_s == 10.0
    assert (t.replacements, t.replacements_first, t.replacement_first_rate) == (2, 1, 0.5)
    assert (result.decisions_total, result.decisions_used) == (12, 8)
    assert result.unlabelled_accounts == 0


def test_leaked_series_counts_only_events_before_the_catch(case, t0: int) -> None:
    T0 = t0
    result = evaluate(*case, bin_minutes=1)
    # everything happens in the first minute, except c2's event at 100 s
    assert result.leaked_series["camp_a"] == {T0: 3, T0 + 60_000: 1}  # c1: 0, 10 s; c2: 0 s | 100 s
    assert result.leaked_series["camp_b"] == {T0: 1, T0 + 60_000: 1}  # c5 at 5 s | c4 at 70 s (caught at 80 s)
    assert result.events_series["camp_b"] == {T0: 2, T0 + 60_000: 3}  # c5 5 s, c3 50 s | c3 60, c4 70, 80 s


def test_cli_prints_totals_with_four_decimals_and_writes_json(case, tmp_path: Path, capsys) -> None:
    e, lab, d = case
    out = tmp_path / "out.json"
    assert main(["evaluate", "--events", str(e), "--labels", str(lab), "--decisions", str(d),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "campaign recall                        0.6000  (3/5)" in text
    assert "benign false-positive rate             0.6667  (2/3)" in text
    assert "benign accounts blocked                1" in text
    assert "leak ratio                             0.5455  (6/11)" in text
    assert "median time to detect                  10.0000 s" in text
    assert "replacements caught on first request   0.5000  (1/2)" in text
    doc = orjson.loads(out.read_bytes())
    assert doc["totals"]["campaign_recall"] == 0.6
    assert doc["totals"]["leaked"] == 6
    assert {g["group"]: g["caught"] for g in doc["groups"]} == {"pop_x": 1, "pop_y": 1, "camp_a": 1, "camp_b": 2}
    assert "caught" in doc["definitions"]


def test_unlabelled_accounts_are_reported_not_scored(case, t0: int) -> None:
    e, lab, d = case
    with e.open("ab") as f:
        f.write(orjson.dumps({"event_id": "e99", "ts": t0 + 3_000_000, "account_id": "stranger"}) + b"\n")
    result = evaluate(e, lab, d)
    assert result.unlabelled_accounts == 1
    assert result.totals.campaign_accounts == 5 and result.totals.benign_accounts == 3


def test_bad_lines_name_file_and_line(case) -> None:
    e, lab, d = case
    with d.open("ab") as f:
        f.write(b"{not json\n")
    with pytest.raises(EvaluateError, match=r"decisions\.jsonl:14"):
        evaluate(e, lab, d)


def test_missed_campaign_accounts_are_split_by_why(case) -> None:
    rows = {r.group: r for r in evaluate(*case).groups}
    a, b = rows["camp_a"], rows["camp_b"]
    # camp_a is detected at 20 s (c1's throttle); c2 sent again at 100 s, its own decision came at 150 s
    assert (a.missed_undetected, a.missed_before_detection, a.missed_not_reached) == (0, 0, 1)
    # camp_b is detected at 50 s (c3's challenge); c5's one request was at 5 s, its payment_fp decision is no
    # account decision
    assert (b.missed_undetected, b.missed_before_detection, b.missed_not_reached) == (0, 1, 0)
    # benign groups are not split
    assert (rows["pop_x"].missed_undetected, rows["pop_x"].missed_not_reached) == (0, 0)
    assert b.as_dict()["missed"] == {"undetected": 0, "before_detection": 1, "not_reached": 0}


def test_a_group_no_decision_named_is_undetected_and_the_table_says_why(tmp_path: Path, t0: int) -> None:
    from app.evaluate.table import render

    e, lab, d = tmp_path / "e.jsonl", tmp_path / "l.json", tmp_path / "d.jsonl"
    e.write_bytes(b"".join(orjson.dumps({"event_id": f"e{i}", "ts": t0 + i * 1000, "account_id": a}) + b"\n"
                           for i, a in enumerate(["q1", "q2", "q1", "k1", "k2", "k2"])))
    lab.write_bytes(orjson.dumps({"q1": {"cls": "campaign", "group": "quiet"},
                                  "q2": {"cls": "campaign", "group": "quiet"},
                                  "k1": {"cls": "campaign", "group": "caught"},
                                  "k2": {"cls": "campaign", "group": "caught"}}))
    # the only decision on quiet is shadow: it is never detected; k1 is decided after its one request
    d.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in [
        {"decision_id": "d1", "ts": t0, "scope": "account", "value": "q1", "action": "block", "mode": "shadow"},
        {"decision_id": "d2", "ts": t0 + 4000, "scope": "account", "value": "k2", "action": "challenge",
         "mode": "enforce"},
        {"decision_id": "d3", "ts": t0 + 9000, "scope": "account", "value": "k1", "action": "challenge",
         "mode": "enforce"}]))
    result = evaluate(e, lab, d)
    rows = {r.group: r for r in result.groups}
    assert (rows["quiet"].missed_undetected, rows["quiet"].missed_before_detection) == (2, 0)
    k = rows["caught"]
    assert (k.caught, k.missed_before_detection, k.missed_not_reached) == (1, 1, 0)
    text = render(result)
    assert re.search(r"^quiet\s+2\s+2\s+0\s+0$", text, re.M)
    assert re.search(r"^caught\s+1\s+0\s+1\s+0$", text, re.M)
