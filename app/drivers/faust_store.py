"""`StateStore` over a Faust table, built for batches and for redelivery after a crash.

Stored form: orjson `{"p": {source: position}, "s": snapshot}` in the table (and so in its changelog
topic and RocksDB), with a bounded cache of decoded objects in front.

- Writes are buffered: `put`/`delete` mark the key dirty together with the input event that owns it
  (its partition is the key's table partition) and its applied positions, both from the write's
  `Provenance` (the Faust event, the input's source and position: the driver hands it to the stage's
  `process` call, the stage to each write); when the driver flushes (after a batch, or after several:
  the worker's `DG_STATE_FLUSH_MS`) `detach` serialises each dirty key once, however many inputs changed
  it since the last flush, and `write` stores them after the outputs of those inputs are delivered and
  before the inputs are acknowledged, so a committed offset always has its state in the changelog.
- `p` is the position of the last input applied to the key, per input source (an offset, or offset
  and index within a bundle). After a crash Faust re-delivers everything past the last committed
  offset; the driver skips inputs a key has already applied (`applied`), so nothing counts twice.

The cache is dropped on every rebalance, because after one the table may hold state another worker
wrote; dirty and detached entries stay, with their positions (they are this worker's newer values).
Expiry stays lazy in the stages; `sweep` deletes idle keys in a pass over the local table that starts at
most once per eighth of the TTL of event time and walks a slice of keys per call, deleting each key in its
own partition."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson

from app.drivers.faust_compat import (
    TP,
    aiokafka_producer,
    changelog_sent_callback,
    open_partition_dbs,
    partition_db,
    rocksdict_index,
)
from app.errors import StateError
from app.state.store import NO_PROVENANCE, Provenance

NOTHING = -1
SWEEP_BUDGET = 20_000  # keys an expiry sweep walks per call (tens of ms), then it goes on at the next call
COUNT_BUDGET = 5_000  # keys the state gauge walks per table and call (every 10 s): a few ms of the event loop


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
        # key -> (object or None to delete, applied positions, owning event): changed since the last detach
        self._dirty: dict[str, tuple[Any, dict[str, int], Any]] = {}
        # detached, not written yet: key -> (object or None, applied positions, detach sequence)
        self._pending: dict[str, tuple[Any, dict[str, int], int]] = {}
        self._seq = 0
        self._cache_max = cache_max
        self._last_sweep_ms = 0
        self._sweeping: _SweepPass | None = None
        self._read: Callable[[str], bytes | None] | None = None  # table reads (see _rocks_reader)
        self.bytes_written = 0
        self._counter = _KeyCounter()

    def clear_cache(self) -> None:
        self._cache.clear()
        self._pos.clear()
        self._counter.restart()  # the partitions held may have changed
        self._sweeping = None

    def _held(self, key: str) -> tuple[Any, dict[str, int], Any] | None:
        """A key's newest entry not written yet, dirty or detached: (object or None, applied positions, ...).
        The cache may have let such a key go, never its entry here."""
        return self._dirty.get(key) or self._pending.get(key)

    def _load(self, key: str) -> Any | None:
        held = self._held(key)
        if held is not None:
            return held[0]
        obj = self._cache.get(key)
        if obj is not None:
            return obj
        if self._read is None:
            self._read = _rocks_reader(self.table)
        raw = self._read(key)
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
        return self._positions(key).get(source, NOTHING)

    def _positions(self, key: str) -> dict[str, int]:
        """The applied positions of a key held (dirty, detached or cached)."""
        held = self._held(key)
        return held[1] if held is not None else self._pos.get(key, {})

    def _remember(self, key: str, obj: Any, pos: dict[str, int]) -> None:
        c = self._cache
        if len(c) >= self._cache_max:
            for k in list(c)[: self._cache_max // 4]:  # drop the oldest quarter (dirty keys stay in _dirty)
                del c[k]
                self._pos.pop(k, None)
        c[key] = obj
        self._pos[key] = pos

    def put(self, key: str, value: Any, prov: Provenance = NO_PROVENANCE) -> None:
        pos = self._positions(key)
        if prov.position > pos.get(prov.source, NOTHING):
            pos[prov.source] = prov.position
        self._remember(key, value, pos)
        self._dirty[key] = (value, pos, prov.owner)

    def delete(self, key: str, prov: Provenance = NO_PROVENANCE) -> None:
        self._cache.pop(key, None)
        self._pos.pop(key, None)
        self._dirty[key] = (None, {}, prov.owner)

    def pending(self) -> int:
        return len(self._dirty)

    def detach(self) -> Detached:
        """The writes since the last detach, serialised now (the next batch may change the objects before
        they are written), grouped by owning partition. Until `write` has run, reads of those keys are
        served from memory."""
        self._seq += 1
        d = Detached(self._seq)
        if not self._dirty:
            return d
        by_partition: dict[int, tuple[Any, list[tuple[str, bytes | None]]]] = {}
        dumps = orjson.dumps
        for key, (obj, pos, event) in self._dirty.items():
            p = event.message.partition
            if p not in by_partition:
                by_partition[p] = (event, [])
            raw = None if obj is None else dumps({"p": pos, "s": obj.snapshot()})
            by_partition[p][1].append((key, raw))
            self._pending[key] = (obj, pos, d.seq)
        self._dirty.clear()
        d.groups = list(by_partition.values())
        return d

    async def write(self, d: Detached, enter: Callable[[Any], None], producer: Any) -> int:
        """Write what `detach` took, in detach order: to the local store, and to the changelog topic in
        the partition of the event that owns each key. `enter(event)` makes that event Faust's current
        one (RocksDB picks the partition database by it); `producer` is the app's Faust producer.

        This is what `table[key] = value` does, minus its per-write overhead: each partition's group of
        writes goes to RocksDB as one write batch and to the changelog as whole record batches (one
        delivery future per batch, not per record; key JSON-encoded, as Faust encodes a `str` key, value
        raw), and the changelog offset Faust keeps per partition (to know at start-up how much of the
        changelog its local store already has) is recorded once per batch, from its last record. A store
        or producer without those batch interfaces (the memory store of the tests) takes the writes one
        by one."""
        table = self.table
        data = table.data
        topic = table.changelog_topic.get_topic_name()
        dumps = orjson.dumps
        rocks = _rocks_batches(data)
        batches = aiokafka_producer(producer)
        n = 0
        for event, writes in d.groups:
            enter(event)
            p = event.message.partition
            records = [(dumps(key), raw) for key, raw in writes]
            for _, raw in records:
                if raw is not None:
                    self.bytes_written += len(raw)
            if rocks is not None:
                rocks(data, p, records)
            else:
                for key, raw in writes:
                    if raw is None:
                        if key in data:
                            del data[key]
                    else:
                        data[key] = raw
            if batches is not None:
                await _send_batches(batches, topic, p, records, data)
            else:
                last = None
                for kb, raw in records:
                    last = await producer.send(topic, kb, raw, p, None, None)
                if last is not None:
                    last.add_done_callback(changelog_sent_callback(table))
            n += len(records)
        for _, writes in d.groups:
            for key, _ in writes:
                entry = self._pending.get(key)
                if entry is not None and entry[2] <= d.seq:
                    del self._pending[key]  # no later batch has it in flight: the table serves it now
        return n

    def __len__(self) -> int:
        return len(self.table)

    def count_keys(self, budget: int = COUNT_BUDGET) -> int | None:
        """Keys held, for the state gauge, counted a slice at a time: `len` of a RocksDB-backed table walks
        every key in Python (seconds on the event loop at a million keys), and RocksDB's own estimate
        counts each overwrite still in a memtable (50,000 for 1,000 keys written 50 times). Each call
        walks at most `budget` keys on from where the previous one stopped and returns the total of the
        last complete pass (None until the first pass completes). Other stores: the exact count."""
        data = self.table.data
        if _active_partitions(data) is None:
            return len(self)
        try:
            return self._counter.step(data, budget)
        except Exception:  # a partition database closed by a rebalance: the next pass starts over
            self._counter.restart()
            return self._counter.total

    def sweep(self, watermark_ms: int, ttl_ms: int, max_keys: int, prov: Provenance = NO_PROVENANCE) -> int:
        """Delete keys idle past `ttl_ms` of event time and the oldest beyond `max_keys`. A pass starts
        at most once per eighth of the TTL; over a RocksDB-backed table it walks SWEEP_BUDGET keys per
        call (the stages call every `sweep_every_events` inputs) instead of the whole table at once (a
        stall of seconds on the event loop at a million keys), and deletes each key in its own
        partition (`prov`, the input that runs the sweep, owns the deletes only over a store without
        partition databases). Expiry stays lazy in the stages, so when a key goes changes no result."""
        sw = self._sweeping
        if sw is None:
            if watermark_ms - self._last_sweep_ms < ttl_ms // 8:
                return 0
            self._last_sweep_ms = watermark_ms
            parts = _active_partitions(self.table.data)
            if parts is None:
                return self._sweep_whole(watermark_ms - ttl_ms, max_keys, prov)
            sw = self._sweeping = _SweepPass(watermark_ms - ttl_ms, max_keys, _Walk(parts))
        try:
            done = self._sweep_step(sw, SWEEP_BUDGET)
        except Exception:  # a partition database closed by a rebalance: the next pass starts over
            self._sweeping = None
            return 0
        if not done:
            return sw.take_removed()
        self._sweeping = None
        if len(sw.live) > sw.max_keys:
            sw.live.sort()
            for _, key, p in sw.live[: len(sw.live) - sw.max_keys]:
                self._delete_in(key, p)
                sw.removed += 1
        return sw.take_removed()

    def _sweep_step(self, sw: _SweepPass, budget: int) -> bool:
        """Walk up to `budget` keys of the pass; True when it has walked them all."""
        loads, restore = orjson.loads, self._restore
        for p, kb, it in sw.walk.take(budget, self.table.data.offset_key):
            key = loads(kb)
            if key in self._dirty or key in self._pending:
                continue  # touched by a batch in flight: live
            last = restore(loads(it.value())["s"]).last_ms
            if last < sw.cutoff:
                self._delete_in(key, p)
                sw.removed += 1
            else:
                sw.live.append((last, key, p))
        return sw.walk.done

    def _sweep_whole(self, cutoff: int, max_keys: int, prov: Provenance) -> int:
        """The sweep over a store without partition databases (the memory store of the tests)."""
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
            self.delete(key, prov)
        return len(victims)

    def _delete_in(self, key: str, partition: int) -> None:
        """Delete `key` in `partition` (a sweep runs while some other partition's input is current)."""
        self._cache.pop(key, None)
        self._pos.pop(key, None)
        self._dirty[key] = (None, {}, _PartitionOwner(partition))


class _PartitionOwner:
    """Stands in for the input event that owns a key the sweep deletes: `write` needs its partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@dataclass(slots=True)
class _SweepPass:
    cutoff: int
    max_keys: int
    walk: _Walk
    live: list[tuple[int, str, int]] = field(default_factory=list)  # (last_ms, key, partition) for the cap
    removed: int = 0

    def take_removed(self) -> int:
        n, self.removed = self.removed, 0
        return n


def _active_partitions(data: Any) -> list[tuple[int, Any]] | None:
    """(partition, database) of the partitions this worker holds, for a rocksdict-backed Faust store (as
    Faust's own `_dbs_for_actives` selects them); None for any other store."""
    dbs = open_partition_dbs(data)
    if dbs is None:
        return None
    table = data.table
    if table.is_global:
        return sorted(dbs.items())
    actives = data.app.assignor.assigned_actives()
    topic = table.changelog_topic_name
    return sorted((p, db) for p, db in dbs.items() if TP(topic, p) in actives)


class _Walk:
    """A walk over (partition, database) pairs a slice at a time, each slice going on after the last key
    the one before it walked."""

    def __init__(self, parts: list[tuple[int, Any]]) -> None:
        self.parts = parts  # still to walk, the first one from `after`
        self.after: bytes | None = None

    @property
    def done(self) -> bool:
        return not self.parts

    def take(self, budget: int, skip: bytes) -> Iterator[tuple[int, bytes, Any]]:
        """(partition, key, iterator at that key) for up to `budget` keys, the key `skip` (Faust's
        persisted offset) walked but not given."""
        while budget > 0 and self.parts:
            p, db = self.parts[0]
            it = db.iter()
            if self.after is None:
                it.seek_to_first()
            else:
                it.seek(self.after)
                if it.valid() and it.key() == self.after:
                    it.next()
            kb = None
            while budget > 0 and it.valid():
                kb = it.key()
                budget -= 1
                if kb != skip:
                    yield p, kb, it
                it.next()
            if it.valid():
                self.after = kb
            else:
                self.parts.pop(0)
                self.after = None


class _KeyCounter:
    """The state gauge's pass over the partition databases of a rocksdict-backed Faust store."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.restart()

    def restart(self) -> None:
        self._walk: _Walk | None = None
        self._n = 0

    def step(self, data: Any, budget: int) -> int | None:
        if self._walk is None:
            self._walk = _Walk(_active_partitions(data) or [])
        for _ in self._walk.take(budget, data.offset_key):
            self._n += 1
        if self._walk.done:
            self.total = self._n
            self.restart()
        return self.total


# ----------------------------------------------------------------------------- batch paths into Faust
# Faust (0.11-0.15) writes a table key with one RocksDB put and sends its changelog record with one
# producer call each; both have batch forms underneath, used here when present.


def _rocks_reader(table: Any) -> Callable[[str], bytes | None]:
    """`table.get`, minus Faust's mapping layers when the table is rocksdict-backed: the key encoded as
    Faust encodes a `str` key and read from the current event's partition database, as Faust's own
    read does for a partitioned table."""
    data = table.data
    index = rocksdict_index(data)
    if index is None or table.is_global or table.use_partitioner:
        return table.get
    from faust.streams import current_event

    dumps = orjson.dumps
    slow = table.get

    def read(key: str) -> bytes | None:
        event = current_event()
        if event is None:
            return slow(key)
        p = event.message.partition
        kb = dumps(key)
        raw = partition_db(data, p).get(kb)
        if raw is not None:
            index[kb] = p
        return raw

    return read


def _rocks_batches(data: Any) -> Callable[[Any, int, list[tuple[bytes, bytes | None]]], None] | None:
    """A writer of one partition's records as a single rocksdict WriteBatch, or None when `data` is not
    Faust's rocksdict-backed store (then the caller writes key by key through the table)."""
    index = rocksdict_index(data)
    if index is None:
        return None
    import rocksdict

    def write(store: Any, partition: int, records: list[tuple[bytes, bytes | None]]) -> None:
        wb = rocksdict.WriteBatch(raw_mode=True)
        for kb, raw in records:
            if raw is None:
                wb.delete(kb)
                index.pop(kb, None)
            else:
                wb.put(kb, raw)
                index[kb] = partition
        partition_db(store, partition).write(wb)

    return write


async def _send_batches(ak: Any, topic: str, partition: int, records: list[tuple[bytes, bytes | None]],
                        data: Any) -> None:
    """`records` to `topic`/`partition` in as few record batches as fit; each acknowledged batch records
    the offset of its last record as the local store's persisted changelog offset."""
    tp = TP(topic, partition)

    async def flush(batch: Any, count: int) -> None:
        batch.close()  # exactly these records: nothing sent elsewhere may join it (the offset below)
        fut = await ak.send_batch(batch, topic, partition=partition)

        def persisted(f: Any) -> None:
            if not f.cancelled() and f.exception() is None:
                data.set_persisted_offset(tp, f.result().offset + count - 1)

        fut.add_done_callback(persisted)

    batch, count = ak.create_batch(), 0
    for kb, raw in records:
        if batch.append(key=kb, value=raw, timestamp=None) is None:  # full
            await flush(batch, count)
            batch, count = ak.create_batch(), 0
            batch.append(key=kb, value=raw, timestamp=None)  # an empty batch takes any one record
        count += 1
    if count:
        await flush(batch, count)
