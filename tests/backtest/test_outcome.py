"""Outcomes read from decision records written by hand: the strongest enforcing action and when, lifts, shadow
decisions, wider scopes, the kind of a change, and the alerts shown for an account."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.backtest.diff import NEWLY_ENFORCED, RELEASED, STRONGER, WEAKER, change_kind
from app.backtest.outcome import Outcome, RecordsError, collect_alerts, read_decisions, signals
from app.emit.records import iso_ms

T0 = 1_769_904_000_000  # 2026-02-01T00:00:00Z


def dec(acct: str, s: int, action: str, mode: str = "enforce", scope: str = "account", alert: str = "a0",
        reasons: tuple[str, ...] = ("R",)) -> dict:
    return {"decision_id": f"d-{acct}-{s}-{action}-{mode}", "ts": iso_ms(T0 + s * 1000), "scope": scope,
            "value": acct, "action": action, "ttl_s": 60, "expires_at": iso_ms(T0 + (s + 60) * 1000),
            "reasons": list(reasons), "alert_id": alert, "mode": mode}


def write(path: Path, records: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records) + b"\n")
    return path


def test_strongest_enforcing_action_and_when(tmp_path: Path) -> None:
    r = read_decisions(write(tmp_path / "d.jsonl", [
        dec("a", 30, "challenge", alert="late"),
        dec("a", 10, "throttle"),
        dec("a", 20, "challenge", alert="early", reasons=("X", "Y")),   # earlier, same action: sets the outcome
        dec("a", 5, "block", mode="shadow"),                            # shadow: never the outcome
        dec("b", 1, "block", mode="shadow"),
        dec("c", 2, "lift"),
    ]))
    a = r.accounts["a"]
    assert (a.action, a.first_ts, a.action_ts, a.enforcing) == ("challenge", T0 + 10_000, T0 + 20_000, 3)
    assert a.decision is not None and a.decision["alert_id"] == "early" and a.decision["reasons"] == ["X", "Y"]
    assert a.shadow_action == "block" and a.lifted_ts is None
    b = r.accounts["b"]
    assert b.action is None and b.label == "none" and b.shadow_action == "block"
    assert r.accounts["c"].action is None
    assert r.decisions[("account", "challenge", "enforce")] == 2
    assert r.decisions[("account", "block", "shadow")] == 2 and r.decisions[("account", "lift", "enforce")] == 1


def test_a_lift_ends_the_last_enforcing_decision_only(tmp_path: Path) -> None:
    r = read_decisions(write(tmp_path / "d.jsonl", [
        dec("lifted", 10, "block"), dec("lifted", 20, "lift"),
        dec("again", 10, "block"), dec("again", 20, "lift"), dec("again", 30, "throttle"),
    ]))
    lifted, again = r.accounts["lifted"], r.accounts["again"]
    assert lifted.action == "block" and lifted.lifted_ts == T0 + 20_000
    assert lifted.as_dict()["lifted_at"] == iso_ms(T0 + 20_000)
    assert again.action == "block" and again.lifted_ts is None  # enforced again after the lift


def test_wider_scopes_are_kept_apart(tmp_path: Path) -> None:
    r = read_decisions(write(tmp_path / "d.jsonl", [dec("pf-1", 1, "challenge", scope="payment_fp"),
                                                     dec("a", 1, "throttle")]))
    assert set(r.accounts) == {"a"} and set(r.others) == {"payment_fp:pf-1"}
    assert r.others["payment_fp:pf-1"].action == "challenge"


def test_unreadable_records_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(orjson.dumps(dec("a", 1, "throttle")) + b"\n{oops\n")
    with pytest.raises(RecordsError, match=r"d\.jsonl:2: not JSON"):
        read_decisions(path)
    write(path, [dec("a", 1, "ban")])
    with pytest.raises(RecordsError, match="unknown action 'ban'"):
        read_decisions(path)


def _o(action: str | None) -> Outcome | None:
    if action is None:
        return None
    o = Outcome()
    o.action = action
    return o


@pytest.mark.parametrize(("base", "new", "kind"), [
    (None, None, None), ("block", "block", None), (None, "throttle", NEWLY_ENFORCED),
    ("challenge", None, RELEASED), ("throttle", "block", STRONGER), ("block", "challenge", WEAKER),
])
def test_change_kinds(base: str | None, new: str | None, kind: str | None) -> None:
    assert change_kind(_o(base), _o(new)) == kind
    shadow_only = Outcome()
    shadow_only.shadow_action = "block"
    assert change_kind(shadow_only, _o(new)) == change_kind(None, _o(new))  # shadow is not an outcome


def _alert(aid: str, scope: str, value: str, score: float, accounts: list[str]) -> dict:
    return {"alert_id": aid, "ts": iso_ms(T0), "subject": {"scope": scope, "value": value}, "severity": "low",
            "score": score, "reasons": [{"code": "C", "value": 1, "threshold": 0.5, "detail": "d"}],
            "accounts": accounts, "account_count": len(accounts), "mode": "enforce"}


def test_signals_are_the_deciding_alert_else_the_strongest_naming_the_account(tmp_path: Path) -> None:
    alerts = write(tmp_path / "a.jsonl", [
        _alert("own-40", "account", "quiet", 40, ["quiet"]),
        _alert("cl-90", "cluster", "cl-1", 90, ["quiet", "member"]),
        _alert("own-50", "account", "quiet", 50, ["quiet"]),
        _alert("deciding", "account", "decided", 60, ["decided"]),
    ])
    decided = read_decisions(write(tmp_path / "d.jsonl", [dec("decided", 1, "throttle", alert="deciding")]))
    idx = collect_alerts(alerts, {"deciding"}, {"quiet", "member", "decided"})
    s = signals(decided.accounts["decided"], idx, "decided")
    assert s["basis"] == "decision" and s["alert"]["alert_id"] == "deciding" and s["decision"]["action"] == "throttle"
    # an account's own alert beats a cluster's, the strongest of them wins
    assert signals(None, idx, "quiet")["alert"]["alert_id"] == "own-50"
    assert signals(None, idx, "member")["alert"]["alert_id"] == "cl-90"
    none = signals(None, idx, "stranger")
    assert none == {"basis": "none", "decision": None, "alert": None}


def test_plan_runs_two_processes_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.backtest import run

    big, small = run.PARALLEL_MIN_BYTES, run.PARALLEL_MIN_BYTES - 1
    monkeypatch.setattr(run, "usable_cpus", lambda: 2.0)
    assert run.plan("auto", "auto", big) == (2, 0)      # both cores replaying, none left for content
    assert run.plan("auto", "auto", small) == (1, 1)    # one replay at a time, a content process beside it
    assert run.plan("1", "0", big) == (1, 0) and run.plan("2", "3", small) == (2, 3)
    monkeypatch.setattr(run, "usable_cpus", lambda: 1.0)
    assert run.plan("auto", "auto", big) == (1, 0)
    monkeypatch.setattr(run, "usable_cpus", lambda: 8.0)
    assert run.plan("auto", "auto", big) == (2, 3)
    for bad in (("0", "auto"), ("two", "auto"), ("auto", "-1"), ("auto", "x")):
        with pytest.raises(ValueError):
            run.plan(*bad, big)
