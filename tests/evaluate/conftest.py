"""The hand-built evaluation case: eight accounts, sixteen events and twelve decisions written by hand.

Expected figures (see test_evaluate_metrics.py): campaign recall 3/5, benign false positives 2/3, one benign
account blocked, 6 of 11 campaign events leaked, median time to detect 10 s, 1 of 2 replacements caught on
its first request.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

T0 = 1_769_904_000_000  # 2026-02-01T00:00:00Z


def iso(seconds: float) -> str:
    from app.sim.timing import format_ts

    return format_ts(T0 + int(seconds * 1000))


def ev(i: int, acct: str, seconds: float, ts_style: str = "iso") -> dict:
    ts: str | int = iso(seconds)
    if ts_style == "ms":
        ts = T0 + int(seconds * 1000)
    elif ts_style == "offset":  # same instant, written with a +02:00 offset
        from datetime import UTC, datetime, timedelta, timezone

        dt = datetime.fromtimestamp((T0 + seconds * 1000) / 1000, UTC).astimezone(timezone(timedelta(hours=2)))
        ts = dt.isoformat(timespec="milliseconds")
    return {"event_id": f"e{i}", "ts": ts, "account_id": acct}


def dec(acct: str, seconds: float, action: str = "throttle", mode: str = "enforce", scope: str = "account",
        ts_ms: bool = False) -> dict:
    ts: str | int = T0 + int(seconds * 1000) if ts_ms else iso(seconds)
    return {"decision_id": f"d-{acct}-{seconds}-{action}-{mode}-{scope}", "ts": ts, "scope": scope, "value": acct,
            "action": action, "ttl_s": 600, "expires_at": iso(seconds + 600), "reasons": ["test"],
            "alert_id": "a1", "mode": mode}


LABELS = {
    "c1": {"cls": "campaign", "group": "camp_a"},
    "c2": {"cls": "campaign", "group": "camp_a"},
    "c3": {"cls": "campaign", "group": "camp_b", "replacement": True},
    "c4": {"cls": "campaign", "group": "camp_b", "replacement": True},
    "c5": {"cls": "campaign", "group": "camp_b"},
    "b1": {"cls": "benign", "group": "pop_x"},
    "b2": {"cls": "benign", "group": "pop_x"},
    "b3": {"cls": "benign", "group": "pop_y"},
}

EVENTS = [
    ev(1, "c1", 0), ev(2, "b1", 0), ev(3, "b3", 0, "ms"), ev(4, "c2", 0), ev(5, "c5", 5), ev(6, "c1", 10),
    ev(7, "b2", 10), ev(8, "c1", 20, "offset"), ev(9, "c1", 30), ev(10, "b1", 40), ev(11, "c3", 50),
    ev(12, "c3", 60), ev(13, "c4", 70), ev(14, "c4", 80), ev(15, "c2", 100), ev(16, "b3", 1000),
]

DECISIONS = [
    dec("c1", 5, "block", mode="shadow"),          # shadow: ignored
    dec("c1", 20, "throttle"),                      # c1 caught at 20 s (its third event)
    dec("c1", 25, "block"),                         # later: not the catch time, but c1 counts as blocked
    dec("c2", 150, "block"),                        # after c2's last event (100 s): not caught
    dec("c3", 50, "challenge", ts_ms=True),         # on c3's first request (epoch-ms ts)
    dec("c4", 80, "throttle"),                      # c4 caught on its second request
    dec("c5", 1, "block", scope="payment_fp"),      # wider scope: ignored (only account decisions count)
    dec("c5", 2, "lift"),                           # lift: not enforcing
    dec("b1", 40, "block"),                         # benign caught and blocked at its last event
    dec("b2", 10, "throttle", mode="shadow"),       # shadow: b2 not caught
    dec("b3", 500, "throttle"),                     # b3 caught at 500 s ...
    dec("b3", 2000, "block"),                       # ... and the block after its last event does not count
]


def write_case(d: Path) -> tuple[Path, Path, Path]:
    e, lab, dd = d / "events.jsonl", d / "labels.json", d / "decisions.jsonl"
    e.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in EVENTS))
    lab.write_bytes(orjson.dumps(LABELS))
    dd.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in DECISIONS) + b"\n")  # a blank line is fine
    return e, lab, dd


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path, Path]:
    return write_case(tmp_path)


@pytest.fixture
def t0() -> int:
    return T0
