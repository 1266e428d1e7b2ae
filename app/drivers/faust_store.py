"""`StateStore` over a Faust table: values are orjson-encoded snapshots in the table (and so in its
changelog topic and RocksDB), with a bounded cache of decoded objects in front.

The cache is dropped on every rebalance, because after one the table may hold state another worker
wrote. Expiry stays lazy in the stages; `sweep` deletes idle keys in a scan that runs at most once
per eighth of the TTL of event time, since it walks the whole local table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from app.errors import StateError


class FaustStore:
    def __init__(self, name: str, table: Any, restore: Callable[[list], Any], cache_max: int = 200_000) -> None:
        self.name = name
        self.table = table
        self._restore = restore
        self._cache: dict[str, Any] = {}
        self._cache_max = cache_max
        self._last_sweep_ms = 0
        self.bytes_written = 0

    def clear_cache(self) -> None:
        self._cache.clear()

    def get(self, key: str) -> Any | None:
        obj = self._cache.get(key)
        if obj is not None:
            return obj
        raw = self.table.get(key)
        if raw is None:
            return None
        try:
            obj = self._restore(orjson.loads(raw))
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise StateError(self.name, key, str(exc)) from exc
        self._remember(key, obj)
        return obj

    def _remember(self, key: str, obj: Any) -> None:
        c = self._cache
        if len(c) >= self._cache_max:
            for k in list(c)[: self._cache_max // 4]:  # drop the oldest quarter
                del c[k]
        c[key] = obj

    def put(self, key: str, value: Any) -> None:
        raw = orjson.dumps(value.snapshot())
        self.bytes_written += len(raw)
        self.table[key] = raw
        self._remember(key, value)

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        if key in self.table:
            del self.table[key]

    def __len__(self) -> int:
        return len(self.table)

    def sweep(self, watermark_ms: int, ttl_ms: int, max_keys: int) -> int:
        if watermark_ms - self._last_sweep_ms < ttl_ms // 8:
            return 0
        self._last_sweep_ms = watermark_ms
        cutoff = watermark_ms - ttl_ms
        idle: list[tuple[int, str]] = []
        live: list[tuple[int, str]] = []
        for key, raw in list(self.table.items()):
            last = self._restore(orjson.loads(raw)).last_ms
            (idle if last < cutoff else live).append((last, key))
        victims = [k for _, k in idle]
        if len(live) > max_keys:
            live.sort()
            victims += [k for _, k in live[: len(live) - max_keys]]
        for key in victims:
            self.delete(key)
        return len(victims)
