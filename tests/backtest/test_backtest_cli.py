"""`distill-guard backtest` on the hand-made traffic (tests/backtest/case.py): no changes under identical rules,
the exact changed accounts of known rule changes (checked against two plain replays), their signals, the
exit-3 gate, the allowlist, the JSON and HTML outputs, both ways of running the replays, progress, and
exit 2 on bad arguments."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
import yaml

from app.settings import DEFAULT_RULES
from tests.backtest.case import HEAVY, LONE, NOW
from tests.backtest.conftest import Hand, backtest, expected_changes, plain_outcomes, plain_replay

FLAGS = ("--now", NOW)


def _json(hand: Hand, rules: Path, tmp_path: Path, *flags: str, **kw) -> tuple[int, dict, str, str]:
    out = tmp_path / "bt.json"
    code, stdout, stderr = backtest(hand.events, "--rules", str(rules), "--json", str(out), *FLAGS, *flags, **kw)
    return code, orjson.loads(out.read_bytes()), stdout, stderr


def _changes(doc: dict) -> dict[str, tuple[str, str]]:
    return {c["account"]: (c["base"], c["new"]) for c in doc["changes"]}


@pytest.fixture(scope="module")
def loosen(hand: Hand, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, str, str]:
    return _json(hand, hand.rules("loosen"), tmp_path_factory.mktemp("loosen"))


def test_identical_rules_change_nothing(hand: Hand, tmp_path: Path) -> None:
    code, doc, stdout, _ = _json(hand, DEFAULT_RULES, tmp_path, "--fail-on-new-blocks", "0")
    assert code == 0
    assert doc["changed"] == 0 and doc["changes"] == [] and doc["newly_blocked"] == 0
    assert doc["outcomes"]["base"] == doc["outcomes"]["new"]
    assert doc["decisions"]["base"] == doc["decisions"]["new"]
    off_diagonal = [n for a, row in doc["transitions"].items() for b, n in row.items() if a != b]
    assert not any(off_diagonal)
    # the ring is blocked and the heavy accounts throttled under both: the runs did decide things
    assert doc["outcomes"]["base"]["block"] == 8 and doc["outcomes"]["base"]["throttle"] == 2
    assert doc["meta"]["records"] == hand.lines and doc["meta"]["replays"]["base"]["dead_letters"] == 2
    assert "0 accounts change outcome" in stdout


def test_loosened_rules_change_exactly_the_expected_accounts(hand: Hand, loosen, tmp_path: Path) -> None:
    code, doc, stdout, _ = loosen
    assert code == 0
    got = _changes(doc)
    assert got == {HEAVY[0]: ("throttle", "block"), HEAVY[1]: ("throttle", "block"),
                   LONE[0]: ("none", "throttle"), LONE[1]: ("none", "throttle")}
    # ... which is what two plain replays of the file say
    base = plain_outcomes(plain_replay(hand.events, DEFAULT_RULES, tmp_path / "base"))
    new = plain_outcomes(plain_replay(hand.events, hand.rules("loosen"), tmp_path / "new"))
    assert got == expected_changes(base, new)
    kinds = {c["account"]: c["change"] for c in doc["changes"]}
    assert kinds == {HEAVY[0]: "stronger", HEAVY[1]: "stronger", LONE[0]: "newly enforced",
                     LONE[1]: "newly enforced"}
    assert doc["counts"] == {"newly enforced": 2, "released": 0, "stronger": 2, "weaker": 0}
    assert doc["newly_blocked"] == 2
    assert doc["outcomes"]["new"]["throttle"] - doc["outcomes"]["base"]["throttle"] == 0  # 2 in, 2 up
    assert doc["transitions"]["throttle"]["block"] == 2 and doc["transitions"]["none"]["throttle"] == 2
    for acct in got:
        assert acct in stdout


def test_signals_under_both_rule_sets(loosen) -> None:
    _, doc, stdout, _ = loosen
    by = {c["account"]: c for c in doc["changes"]}
    heavy = by[HEAVY[0]]["signals"]
    # base: the throttle at score 55 and its alert's figures; new: the block and its alert
    assert heavy["base"]["basis"] == "decision"
    assert heavy["base"]["decision"]["action"] == "throttle"
    assert "ACCT_TRACE_ELICIT" in heavy["base"]["decision"]["reasons"]
    assert heavy["base"]["alert"]["score"] == 55.0
    assert heavy["base"]["alert"]["alert_id"] == heavy["base"]["decision"]["alert_id"]
    trace = next(r for r in heavy["base"]["alert"]["reasons"] if r["code"] == "ACCT_TRACE_ELICIT")
    assert trace["value"] == 1.0 and trace["threshold"] == 0.3
    assert heavy["new"]["decision"]["action"] == "block" and heavy["new"]["alert"]["score"] >= 85
    # lone: no decision under the base rules, so its strongest alert (45, below the throttle step)
    lone = by[LONE[0]]["signals"]
    assert lone["base"]["basis"] == "strongest alert" and lone["base"]["decision"] is None
    assert lone["base"]["alert"]["score"] == 45.0 and lone["base"]["alert"]["value"] == LONE[0]
    assert lone["new"]["decision"]["action"] == "throttle"
    assert by[LONE[0]]["org"] == "org-lone" and by[LONE[0]]["events"] == 6
    assert doc["orgs"][0]["org"] == "org-lone" and doc["orgs"][0]["changes"]["newly enforced"] == 2
    assert "strongest account alert score 45" in stdout
    assert "ACCT_TRACE_ELICIT 1 [0.3]" in stdout


def test_tightened_rules_release(hand: Hand, tmp_path: Path) -> None:
    code, doc, _, _ = _json(hand, hand.rules("tighten"), tmp_path)
    assert code == 0
    assert _changes(doc) == {HEAVY[0]: ("throttle", "none"), HEAVY[1]: ("throttle", "none")}
    assert doc["counts"]["released"] == 2
    new = doc["changes"][0]["signals"]["new"]
    assert new["basis"] == "strongest alert"
    assert "NOT_DECIDED_ESTABLISHED_CUSTOMER" in [r["code"] for r in new["alert"]["reasons"]]


@pytest.mark.parametrize(("limit", "code"), [(0, 3), (1, 3), (2, 0), (5, 0)])
def test_fail_on_new_blocks_exits_3_only_above_n(hand: Hand, limit: int, code: int) -> None:
    got, stdout, _ = backtest(hand.events, "--rules", str(hand.rules("loosen")), *FLAGS,
                              "--fail-on-new-blocks", str(limit))
    assert got == code  # two accounts are newly blocked
    assert f"gate: 2 newly blocked, at most {limit} allowed: {'FAIL' if code else 'ok'}" in stdout


def test_without_the_gate_new_blocks_exit_0(loosen) -> None:
    code, doc, _, _ = loosen
    assert code == 0 and doc["newly_blocked"] == 2 and doc["gate"] == {"fail_on_new_blocks": None, "failed": False}


def test_allowlist_applies_to_both_rule_sets(hand: Hand, tmp_path: Path) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text(yaml.safe_dump([{"scope": "account", "value": HEAVY[0], "reason": "test"}]))
    code, doc, _, _ = _json(hand, hand.rules("loosen"), tmp_path, "--allowlist", str(allow))
    assert code == 0
    assert _changes(doc) == {HEAVY[1]: ("throttle", "block"), LONE[0]: ("none", "throttle"),
                             LONE[1]: ("none", "throttle")}


def test_allowlisted_in_the_new_rules_only_is_released_with_shadow_signals(hand: Hand, tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_RULES.read_text())
    doc["allowlist"] = [{"scope": "account", "value": HEAVY[0], "reason": "a customer we know"}]
    rules = tmp_path / "allow-heavy.yaml"
    rules.write_text(yaml.safe_dump(doc))
    code, out, _, _ = _json(hand, rules, tmp_path)
    assert code == 0
    assert _changes(out) == {HEAVY[0]: ("throttle", "none")}
    new = out["changes"][0]["signals"]["new"]
    assert new["basis"] == "shadow decision" and new["decision"]["mode"] == "shadow"
    assert out["changes"][0]["outcome"]["new"]["shadow_action"] == "throttle"


def test_report_names_the_changed_accounts(hand: Hand, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    code, _, stderr = backtest(hand.events, "--rules", str(hand.rules("loosen")), *FLAGS, "--report", str(report))
    assert code == 0 and f"report: {report}" in stderr
    text = report.read_text(encoding="utf-8")
    changes = text[text.index('<table id="changes"'):]
    changes = changes[:changes.index("</table>")]
    for acct in (*HEAVY, *LONE):
        assert f'data-account="{acct}"' in changes
    assert changes.count("data-account=") == 4
    assert text.count("data:image/png;base64,") >= 2
    assert 'data-metric="newly_blocked"><div class="v">2<' in text
    assert "ACCT_TRACE_ELICIT" in text and "newly blocked" in text


def test_two_processes_give_what_one_gives(hand: Hand, loosen, tmp_path: Path) -> None:
    code, doc, _, stderr = _json(hand, hand.rules("loosen"), tmp_path, "--processes", "2", "--content-jobs", "0",
                                 fast=False)
    assert code == 0 and "at once, in two processes" in stderr
    one = loosen[1]
    assert doc["meta"]["processes"] == 2 and one["meta"]["processes"] == 1
    for key in ("changes", "outcomes", "transitions", "decisions", "orgs", "counts"):
        assert doc[key] == one[key], key


def test_progress_counts_records_per_rule_set(hand: Hand, tmp_path: Path) -> None:
    from app.backtest.run import Job, Progress, run_both
    from app.rules.load import load_rules
    from tests.backtest.conftest import NOW_MS

    rules = load_rules(DEFAULT_RULES)
    for processes in (1, 2):
        stream = io.StringIO()
        progress = Progress(hand.lines, stream, first_s=0.0, every_s=0.0)
        jobs = [Job(name, hand.events, rules, tmp_path / f"{processes}-{name}", NOW_MS, 0, None, name == "base")
                for name in ("base", "new")]
        runs = run_both(jobs, processes, progress)
        text = stream.getvalue()
        assert [r.name for r in runs] == ["base", "new"]
        assert runs[0].accounts is not None and len(runs[0].accounts) == 8 + 2 + 2 + 30
        for name in ("base", "new"):
            assert f"{name} done: {hand.lines} records, {hand.lines - 2} events, 2 dead letters" in text
        if processes == 1:  # the engine reports every 256 records
            assert f"base 256/{hand.lines} records" in text and f"new 512/{hand.lines} records" in text
        else:  # the parent reads both counters
            assert f"/{hand.lines} records" in text and " new " in text


# --- bad arguments: exit 2 with a clear message, before any replay --------------------------------------------------
def _bad_rules(tmp_path: Path, mutate) -> Path:
    doc = yaml.safe_load(DEFAULT_RULES.read_text())
    mutate(doc)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_invalid_new_rules_name_the_file_and_field(hand: Hand, tmp_path: Path) -> None:
    bad = _bad_rules(tmp_path, lambda d: d["signals"]["FP_PAYMENT_SHARED"].update(threshold="three"))
    out = tmp_path / "never.json"
    code, stdout, stderr = backtest(hand.events, "--rules", str(bad), "--json", str(out))
    assert code == 2 and stdout == ""
    assert f"invalid new rules: {bad}: signals.FP_PAYMENT_SHARED.threshold" in stderr
    assert not out.exists()


def test_invalid_base_rules_name_the_file_and_field(hand: Hand, tmp_path: Path) -> None:
    bad = _bad_rules(tmp_path, lambda d: d["signals"].update(ACCT_BOGUS={"family": "x", "weight": 1, "threshold": 1}))
    code, _, stderr = backtest(hand.events, "--rules", str(DEFAULT_RULES), "--base-rules", str(bad))
    assert code == 2 and f"invalid base rules: {bad}: signals.ACCT_BOGUS" in stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--rules", "{missing}"), "cannot read"),
    (("--rules", "{default}", "--fail-on-new-blocks", "-1"), "--fail-on-new-blocks must be 0 or more"),
    (("--rules", "{default}", "--content-jobs", "many"), "--content-jobs must be 'auto' or >= 0"),
    (("--rules", "{default}", "--processes", "3"), "--processes must be 1, 2 or auto"),
    (("--rules", "{default}", "--now", "yesterday"), "--now"),
    (("--rules", "{default}", "--labels", "{missing}"), "--labels"),
    (("--rules", "{default}", "--labels", "{badlabels}"), "needs cls benign|campaign"),
    (("--rules", "{default}", "--report", "{dir}"), "is a directory"),
    (("--rules", "{default}", "--allowlist", "{badallow}"), "invalid base rules"),
])
def test_bad_arguments_exit_2(hand: Hand, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    bad_labels = tmp_path / "labels.json"
    bad_labels.write_bytes(orjson.dumps({"heavy-0": {"cls": "villain", "group": "x"}}))
    bad_allow = tmp_path / "allow.yaml"
    bad_allow.write_text(yaml.safe_dump([{"scope": "planet", "value": "mars"}]))
    subs = {"missing": str(tmp_path / "nope.yaml"), "default": str(DEFAULT_RULES), "badlabels": str(bad_labels),
            "dir": str(tmp_path), "badallow": str(bad_allow)}
    argv = [a.format(**subs) for a in args]
    code, stdout, stderr = backtest(hand.events, *argv, fast=False)
    assert code == 2, stderr
    assert message in stderr and stderr.startswith("distill-guard backtest: ")
    assert stdout == ""


def test_missing_events_and_missing_rules_option_exit_2(hand: Hand, tmp_path: Path) -> None:
    code, _, stderr = backtest(tmp_path / "none.jsonl", "--rules", str(DEFAULT_RULES))
    assert code == 2 and "none.jsonl: no such file" in stderr
    code, _, stderr = backtest(hand.events)  # --rules is required (argparse)
    assert code == 2 and "--rules" in stderr
    code, _, stderr = backtest(hand.events, "--rules", str(DEFAULT_RULES), "--fail-on-new-blocks", "two")
    assert code == 2 and "invalid int value" in stderr
