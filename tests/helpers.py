"""Builders for test events (contract v1 JSON) shared by the test modules."""

from __future__ import annotations

from typing import Any

import orjson

T0 = 1_769_947_200_000  # 2026-02-01T12:00:00Z


def event(i: int = 0, acct: str = "acct-1", ts_ms: int | None = None, **groups: Any) -> dict:
    ev: dict[str, Any] = {"event_id": f"ev-{acct}-{i}", "ts": T0 + i * 1000 if ts_ms is None else ts_ms,
                          "account_id": acct}
    for name, value in groups.items():
        if isinstance(value, dict) and isinstance(ev.get(name), dict):
            ev[name].update(value)
        else:
            ev[name] = value
    return ev


def line(obj: Any) -> bytes:
    return orjson.dumps(obj)
