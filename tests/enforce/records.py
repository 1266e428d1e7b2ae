"""Decision records for the enforcer's tests, in the wire form of contract v1 (the tests validate them
against schemas/decision.schema.json)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

_ids = itertools.count(1)


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def decision(scope: str, value: str, action: str, ts_ms: int, ttl_s: int = 3600, *, limit_rpm: int = 6,
             mode: str = "enforce", decision_id: str | None = None) -> dict:
    rec = {
        "decision_id": decision_id or f"dc_test{next(_ids):06d}",
        "ts": iso(ts_ms),
        "scope": scope,
        "value": value,
        "action": action,
        "ttl_s": ttl_s,
        "expires_at": iso(ts_ms + ttl_s * 1000),
        "reasons": ["LIFT_ALLOWLIST" if action == "lift" else "ACCT_TEST"],
        "alert_id": "al_test",
        "mode": mode,
    }
    if action == "throttle":
        rec["limit_rpm"] = limit_rpm
    return rec
