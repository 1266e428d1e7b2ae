"""Allowlist look-ups with expiry (entries come from the rules file and the optional allowlist file)."""

from __future__ import annotations

from app.rules.model import AllowEntry


class Allowlist:
    def __init__(self, entries: tuple[AllowEntry, ...]) -> None:
        self._by_key: dict[tuple[str, str], int | None] = {}
        for e in entries:
            prev = self._by_key.get((e.scope, e.value), 0)
            # the longest-lived entry for a key wins; None means no expiry
            if prev is None or e.expires_at_ms is None:
                self._by_key[(e.scope, e.value)] = None
            else:
                self._by_key[(e.scope, e.value)] = max(prev, e.expires_at_ms)

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def allows(self, scope: str, value: str | None, ts_ms: int) -> bool:
        if value is None or not self._by_key:
            return False
        key = (scope, value)
        if key not in self._by_key:
            return False
        exp = self._by_key[key]
        return exp is None or ts_ms < exp
