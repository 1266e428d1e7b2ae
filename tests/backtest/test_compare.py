"""`compare` on two replays' records written by hand: every kind of change, the timing of an unchanged outcome,
orgs, payment methods, the gate, and the three views of it (text, JSON, HTML)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.backtest.diff import Backtest, compare
from app.backtest.report import render as render_html
from app.backtest.run import Run
from app.backtest.table import render as render_text
from tests.backtest.test_outcome import T0, _alert, dec, write

ACCOUNTS = {  # account -> [org, events, first ts, last ts], as the base replay's engine counts them
    "a1": ["org-a", 3, T0, T0 + 60_000], "a2": ["org-a", 2, T0, T0 + 60_000], "a3": ["org-b", 1, T0, T0],
    "a4": ["org-b", 4, T0, T0 + 90_000], "a5": ["org-c", 1, T0 + 50_000, T0 + 50_000], "a6": [None, 1, T0, T0],
}


def _run(d: Path, name: str, decisions: list[dict], alerts: list[dict]) -> Run:
    out = d / name
    out.mkdir()
    write(out / "decisions.jsonl", decisions)
    write(out / "alerts.jsonl", alerts)
    return Run(name, out, 10, 10, 0, len(alerts), len(decisions), 0.1,
               ACCOUNTS if name == "base" else None)


@pytest.fixture
def bt(tmp_path: Path) -> Backtest:
    base = _run(tmp_path, "base", [
        dec("a1", 10, "throttle", alert="b-a1"), dec("a1", 20, "challenge", alert="b-a1"),
        dec("a2", 5, "block", alert="b-a2"), dec("a3", 30, "challenge", alert="b-a3"),
        dec("a4", 40, "throttle", alert="b-a4"), dec("pf1", 30, "challenge", scope="payment_fp"),
    ], [_alert("b-a1", "account", "a1", 75, ["a1"]), _alert("b-a2", "account", "a2", 90, ["a2"]),
        _alert("b-a3", "cluster", "cl-1", 72, ["a3"]), _alert("b-a4", "account", "a4", 56, ["a4"]),
        _alert("b-a5", "account", "a5", 41, ["a5"])])
    new = _run(tmp_path, "new", [
        dec("a1", 15, "block", alert="n-a1"), dec("a2", 5, "challenge", alert="n-a2"),
        dec("a4", 20, "throttle", alert="n-a4"), dec("a5", 50, "throttle", alert="n-a5"),
    ], [_alert("n-a1", "account", "a1", 95, ["a1"]), _alert("n-a2", "account", "a2", 80, ["a2"]),
        _alert("n-a3", "cluster", "cl-1", 60, ["a3"]), _alert("n-a4", "account", "a4", 58, ["a4"]),
        _alert("n-a5", "account", "a5", 56, ["a5"])])
    return compare(base, new, {"events": "e.jsonl", "records": 10, "base_rules": "old.yaml",
                               "new_rules": "new.yaml", "now": "2026-02-02T00:00:00.000Z", "processes": 1,
                               "content_jobs": 0, "seconds": 0.2}, None, fail_on_new_blocks=0)


def test_every_kind_of_change(bt: Backtest) -> None:
    got = {c.account: (c.kind, c.base.label if c.base else "none", c.new.label if c.new else "none")
           for c in bt.changes}
    assert got == {"a1": ("stronger", "challenge", "block"), "a2": ("weaker", "block", "challenge"),
                   "a3": ("released", "challenge", "none"), "a5": ("newly enforced", "none", "throttle")}
    assert bt.changes[0].account == "a1"  # newly blocked first
    assert bt.newly_blocked == 1 and bt.failed  # one newly blocked, none allowed
    assert bt.accounts == 6 and bt.outcomes["base"]["none"] == 2 and bt.outcomes["new"]["none"] == 2
    assert bt.transitions["challenge"]["block"] == 1 and bt.transitions["block"]["challenge"] == 1
    assert bt.transitions["challenge"]["none"] == 1 and bt.transitions["none"]["throttle"] == 1
    assert bt.transitions["throttle"]["throttle"] == 1 and bt.transitions["none"]["none"] == 1
    assert [(o.org, o.changed) for o in bt.orgs] == [("org-a", 2), ("org-b", 1), ("org-c", 1)]
    assert [(s.subject, s.kind) for s in bt.subject_changes] == [("payment_fp:pf1", "released")]
    assert bt.decisions["base"]["account challenge enforce"] == 2 and "account block enforce" in bt.decisions["new"]


def test_signals_come_from_the_deciding_decisions_alert(bt: Backtest) -> None:
    by = {c.account: c for c in bt.changes}
    assert by["a1"].signals["base"]["decision"]["action"] == "challenge"
    assert by["a1"].signals["base"]["alert"]["score"] == 75
    assert by["a1"].signals["new"]["alert"]["alert_id"] == "n-a1"
    # released: no decision under the new rules, so the strongest alert naming it (a cluster's)
    assert by["a3"].signals["new"] == {"basis": "strongest alert", "decision": None,
                                       "alert": by["a3"].signals["new"]["alert"]}
    assert by["a3"].signals["new"]["alert"]["alert_id"] == "n-a3"
    assert by["a5"].signals["base"]["alert"]["alert_id"] == "b-a5"


def test_the_same_outcome_enforced_earlier_is_timing_not_a_change(bt: Backtest) -> None:
    assert [(c.account, c.kind, c.shift_s) for c in bt.timing] == [("a4", "enforced earlier", -20.0)]
    assert bt.timing_counts == {"enforced earlier": 1, "enforced later": 0}
    assert bt.timing[0].signals["new"]["basis"] == "first decision"
    assert bt.timing[0].signals["new"]["alert"]["alert_id"] == "n-a4"


def test_text_json_and_html_show_it_all(bt: Backtest) -> None:
    text = render_text(bt)
    assert "4 accounts change outcome: 1 newly enforced, 1 released, 1 stronger, 1 weaker; 1 newly blocked" in text
    assert "1 more keep their outcome but are first enforced at another time: 1 earlier, 0 later" in text
    assert "a4  org org-b  enforced earlier by 20s: throttle" in text
    assert "a1  org org-a  stronger: challenge -> block  NEWLY BLOCKED" in text
    assert "payment_fp:pf1  released: challenge -> none" in text
    assert "gate: 1 newly blocked, at most 0 allowed: FAIL" in text
    doc = orjson.loads(orjson.dumps(bt.as_dict()))
    assert doc["changed"] == 4 and doc["gate"] == {"fail_on_new_blocks": 0, "failed": True}
    assert [c["account"] for c in doc["timing_changes"]] == ["a4"]
    assert doc["changes"][0]["outcome"]["new"]["first_enforced"] == "2026-02-01T00:00:15.000Z"
    html = render_html(bt)
    changes = html[html.index('<table id="changes"'):]
    changes = changes[:changes.index("</table>")]
    assert all(f'data-account="{a}"' in changes for a in ("a1", "a2", "a3", "a5"))
    assert 'data-account="a4"' not in changes and 'data-account="a4" data-change="enforced earlier"' in html
    assert 'class="card FAIL" data-metric="newly_blocked"' in html
