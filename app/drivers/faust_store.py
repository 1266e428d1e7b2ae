"""`StateStore` over a Faust table, built for batches and for redelivery after a crash.

Stored form: orjson `{"p": {source: position}, "s": snapshot}` in the table (and so in its changelog
topic and RocksDB), with a bounded cache of decoded objects in front.

- Writes are buffered: `put`/`delete` mark the key dirty together with the input event that owns it
  (its partition is the key's table partition); at the end of a batch `detach` serialises each dirty
  key once, and `write` stores them after the batch's outputs are delivered and before the batch is
  acknowledged, so a committed offset always has its state in the changelog.
- `p` is the position of the last input applied to the key, per input source (an offset, or offset
  and index within a bundle). After a crash Faust re-delivers everything past the last committed
  offset; the driver skips inputs a key has already applied (`applied`), so nothing counts twice.

The cache is dropped on every rebalance, because after one the table may hold state another worker
wrote; dirty entries stay (they are this worker's newer values). Expiry stays lazy in the stages;
`sweep` deletes idle keys in a scan that runs at most once per eighth of the TTL of event time, since
it walks the whole local table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import StateError

NOTHING = -1


@dataclass(slots=True)
class Detached:
    """One batch's state writes, taken by `FaustStore.detach` and written by `FaustStore.write`."""
    seq: int
    groups: list[tuple[Any, list[tuple[str, bytes | None]]]] = field(default_factory=list)


class FaustStore:
    def __init__(self, name: str, table: Any, restore: Callable[[list], Any], cache_max: int = 200_000) -> None:
        self.name = name
        self.table = table
        self._restore = restore
        self._cache: dict[str, Any] = {}
        self._pos: dict[str, dict[str, int]] = {}   # cached keys' applied positions
        self._dirty: dict[str, tuple[Any, Any]] = {}  # key -> (object or None to delete, owning event)
        self._pending: dict[str, tuple[int, Any]] = {}  # detached, not written yet: key -> (batch, object)
        self._seq = 0
        self._cache_max = cache_max
        self._last_sweep_ms = 0
        self.bytes_written = 0
        # set by the driver before each input: the event that owns the keys touched, and its position
        self.event: Any = None
        self.source = ""
        self.position = NOTHING

    def clear_cache(self) -> None:
        self._cache.clear()
        self._pos.clear()

    def _load(self, key: str) -> Any | None:
        dirty = self._dirty.get(key)
        if dirty is not None:
            return dirty[0]
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        obj = self._cache.get(key)
        if obj is not None:
            return obj
        raw = self.table.get(key)
        if raw is None:
            return None
        try:
            doc = orjson.loads(raw)
            obj = self._restore(doc["s"])
            pos = doc["p"]
        except (orjson.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            raise StateError(self.name, key, str(exc)) from exc
        self._remember(key, obj, pos)
        return obj

    def get(self, key: str) -> Any | None:
        return self._load(key)

    def applied(self, key: str, source: str) -> int:
        """Position of the last input from `source` applied to `key` (-1 when none)."""
        if self._load(key) is None:
            return NOTHING
        return self._pos.get(key, {}).get(source, NOTHING)

    def _remember(self, key: str, obj: Any, pos: dict[str, int]) -> None:
        c = self._cache
        if len(c) >= self._cache_max:
            for k in list(c)[: self._cache_max // 4]:  # drop the oldest quarter (dirty keys stay in _dirty)
                del c[k]
                self._pos.pop(k, None)
        c[key] = obj
        self._pos[key] = pos

    def put(self, key: str, value: Any) -> None:
        pos = self._pos.get(key)
        if pos is None:
            pos = {}
        if self.position > pos.get(self.source, NOTHING):
            pos[self.source] = self.position
        self._remember(key, value, pos)
        self._dirty[key] = (value, self.event)

    def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        self._pos.pop(key, None)
        self._dirty[key] = (None, self.event)

    def pending(self) -> int:
        return len(self._dirty)

    def detach(self) -> Detached:
        """The batch's writes, serialised now (the next batch may change the objects before they are
        written), grouped by owning partition. Until `write` has run, reads of those keys are served
        from memory."""
        self._seq += 1
        d = Detached(self._seq)
        if not self._dirty:
            return d
        by_partition: dict[int, tuple[Any, list[tuple[str, bytes | None]]]] = {}
        dumps = orjson.dumps
        for key, (obj, event) in self._dirty.items():
            p = event.message.partition
            if p not in by_partition:
                by_partition[p] = (event, [])
            raw = None if obj is None else dumps({"p": self._pos.get(key, {}), "s": obj.snapshot()})
            by_partition[p][1].append((key, raw))
            self._pending[key] = (d.seq, obj)
        self._dirty.clear()
        d.groups = list(by_partition.values())
        return d

    async def write(self, d: Detached, enter: Callable[[Any], None], producer: Any) -> int:
        """Write what `detach` took, in detach order: to the local store, and to the changelog topic in
        the partition of the event that owns each key. `enter(event)` makes that event Faust's current
        one (RocksDB picks the partition database by it); `producer` is the app's Faust producer.

        This is what `table[key] = value` does, minus its per-write overhead: the changelog records go
        straight to the producer (key JSON-encoded, as Faust encodes a `str` key, value raw) instead of
        one by one through Faust's producer buffer, and the offset Faust keeps per partition (to know at
        start-up how much of the changelog it already has) is recorded once per partition, from the last
        record."""
        table = self.table
        data = table.data
        topic = table.changelog_topic.get_topic_name()
        send = producer.send
        dumps = orjson.dumps
        n = 0
        for event, writes in d.groups:
            enter(event)
            p = event.message.partition
            last = None
            for key, raw in writes:
                if raw is None:
                    if key in data:
                        del data[key]
                else:
                    self.bytes_written += len(raw)
                    data[key] = raw
                last = await send(topic, dumps(key), raw, p, None, None)
                n += 1
            if last is not None:
                last.add_done_callback(table._on_changelog_sent)
        for _, writes in d.groups:
            for key, _ in writes:
                entry = self._pending.get(key)
                if entry is not None and entry[0] <= d.seq:
                    del self._pending[key]  # no later batch has it in flight: the table serves it now
        return n

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
            if key in self._dirty or key in self._pending:
                continue  # touched by a batch in flight: live
            last = self._restore(orjson.loads(raw)["s"]).last_ms
            (idle if last < cutoff else live).append((last, key))
        victims = [k for _, k in idle]
        if len(live) > max_keys:
            live.sort()
            victims += [k for _, k in live[: len(live) - max_keys]]
        for key in victims:
            self.delete(key)
        return len(victims)
