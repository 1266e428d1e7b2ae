"""The keyed state protocol the core talks to, and its in-memory implementation.

Values are the core's state objects; each has `last_ms` (event time it was last touched). Expiry is
lazy (a stage treats a value idle for longer than its TTL as absent, so results do not depend on when
a sweep runs) plus a sweep that deletes idle keys and enforces the key cap, oldest first.

Every write carries the `Provenance` of the input that makes it: a driver hands it to a stage's `process`
call, the stage hands it to each `put`, `delete` and `sweep` that input causes. The in-memory store ignores
it; the worker's store records it (which input owns the key, and the key's applied position per source)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol


class Provenance(NamedTuple):
    """The input a state write comes from, in the driver's terms: `owner` its own object for the input (the
    worker: the Faust event, whose partition the written keys belong to), `source` which of its inputs and
    `position` where in that input (-1: none). Opaque to the core."""
    owner: Any = None
    source: str = ""
    position: int = -1


NO_PROVENANCE = Provenance()  # replay, tests: nothing to record


class StateStore(Protocol):
    name: str

    def get(self, key: str) -> Any | None: ...
    def put(self, key: str, value: Any, prov: Provenance = NO_PROVENANCE) -> None: ...
    def delete(self, key: str, prov: Provenance = NO_PROVENANCE) -> None: ...
    def __len__(self) -> int: ...
    def sweep(self, watermark_ms: int, ttl_ms: int, max_keys: int, prov: Provenance = NO_PROVENANCE) -> int: ...


class DictStore:
    """A dict kept in touch order (put moves a key to the end), so expiry and the key cap pop from the
    front in O(expired) instead of scanning every key."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._d: dict[str, Any] = {}

    def get(self, key: str) -> Any | None:
        return self._d.get(key)

    def put(self, key: str, value: Any, prov: Provenance = NO_PROVENANCE) -> None:
        d = self._d
        d.pop(key, None)  # re-inserted at the end: touch order
        d[key] = value

    def delete(self, key: str, prov: Provenance = NO_PROVENANCE) -> None:
        self._d.pop(key, None)

    def __len__(self) -> int:
        return len(self._d)

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._d.items())

    def sweep(self, watermark_ms: int, ttl_ms: int, max_keys: int, prov: Provenance = NO_PROVENANCE) -> int:
        d = self._d
        cutoff = watermark_ms - ttl_ms
        victims: list[str] = []
        for key in d:  # front = least recently touched; stop at the first live key under the cap
            if len(d) - len(victims) > max_keys or d[key].last_ms < cutoff:
                victims.append(key)
            else:
                break
        for key in victims:
            del d[key]
        removed = len(victims)
        return removed
