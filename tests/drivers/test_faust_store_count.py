"""Walks over a table's RocksDB partition databases, a slice per call, never the whole table at once
(app/drivers/faust_store.py): the state gauge's exact key count (FaustStore.count_keys) and the expiry
sweep (FaustStore.sweep)."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import rocksdict

from app.drivers.faust_store import FaustStore, _KeyCounter
from app.state.store import Provenance

OFFSET_KEY = b"__faust\0offset__"


class _Data:
    """The parts of Faust's rocksdict-backed store the walks use: partition databases by number, all of
    them held (as for a global table)."""

    offset_key = OFFSET_KEY
    use_rocksdict = True
    table = SimpleNamespace(is_global=True)

    def __init__(self, dbs: list) -> None:
        self.dbs = dbs  # partition i is dbs[i]
        self._key_index: dict = {}

    @property
    def _dbs(self) -> dict:
        return dict(enumerate(self.dbs))

    def _db_for_partition(self, p: int):
        return self.dbs[p]


class _Table:
    def __init__(self, data) -> None:
        self.data = data


def _db(tmp_path, name: str, keys: int, overwrites: int = 1):
    db = rocksdict.Rdict(str(tmp_path / name), options=rocksdict.Options(raw_mode=True))
    for j in range(overwrites):
        wb = rocksdict.WriteBatch(raw_mode=True)
        for i in range(keys):
            wb.put(b'"%s-%d"' % (name.encode(), i), b"v%d" % j)
        db.write(wb)
    db.put(OFFSET_KEY, b"123")  # Faust's persisted changelog offset: not a state key
    return db


def test_the_count_is_exact_and_taken_a_slice_per_call(tmp_path):
    dbs = [_db(tmp_path, "p0", 2_500, overwrites=20), _db(tmp_path, "p1", 0), _db(tmp_path, "p2", 1_001)]
    # what RocksDB's estimate would have said: every overwrite still in the memtable counts
    assert dbs[0].property_int_value("rocksdb.estimate-num-keys") > 10 * 2_500
    counter = _KeyCounter()
    data = _Data(dbs)
    results = [counter.step(data, 700) for _ in range(5)]
    assert results[:4] == [None] * 4  # 3,504 entries at 700 a call: the pass completes on the sixth
    assert counter.step(data, 700) == 3_501
    assert counter.step(data, 700) == 3_501  # a new pass has started; the last total stands meanwhile
    for db in dbs:
        db.close()


def test_a_store_reports_its_count_and_starts_over_when_a_database_goes(tmp_path):
    dbs = [_db(tmp_path, "a", 30), _db(tmp_path, "b", 12)]
    store = FaustStore("accounts", _Table(_Data(dbs)), restore=lambda s: s)
    assert store.count_keys(budget=1_000) == 42
    store.clear_cache()  # a rebalance: the partitions held may differ
    dbs[1].close()
    assert store.count_keys(budget=1_000) == 42  # the failed pass is dropped, the last total kept
    dbs[1] = _db(tmp_path, "c", 5)
    assert store.count_keys(budget=1_000) == 35
    dbs[0].close()
    dbs[1].close()


def test_other_stores_are_counted_exactly_with_len():
    class Plain:
        data = object()

        def __len__(self) -> int:
            return 7

    assert FaustStore("clusters", Plain(), restore=lambda s: s).count_keys() == 7


# -- the expiry sweep over the same partition databases (FaustStore.sweep)
class _Snap:
    def __init__(self, last_ms: int) -> None:
        self.last_ms = last_ms


def _state_db(tmp_path, name: str, lasts: dict[str, int]):
    db = rocksdict.Rdict(str(tmp_path / name), options=rocksdict.Options(raw_mode=True))
    for key, last in lasts.items():
        db.put(orjson.dumps(key), orjson.dumps({"p": {}, "s": [last]}))
    db.put(OFFSET_KEY, b"7")
    return db


def test_a_sweep_pass_walks_a_slice_per_call_and_deletes_each_key_in_its_own_partition(tmp_path, monkeypatch):
    import app.drivers.faust_store as fs

    monkeypatch.setattr(fs, "SWEEP_BUDGET", 3)
    p0 = _state_db(tmp_path, "s0", {"a1": 100, "a2": 5_000, "a3": 90, "a4": 4_000})
    p1 = _state_db(tmp_path, "s1", {"b1": 10, "b2": 6_000})
    store = FaustStore("accounts", _Table(_Data([p0, p1])), restore=lambda s: _Snap(s[0]))
    running = Provenance(SimpleNamespace(message=SimpleNamespace(partition=5)), "r", 1)  # the input being processed
    removed = [store.sweep(watermark_ms=3_000, ttl_ms=2_000, max_keys=10, prov=running) for _ in range(3)]
    # 8 entries (two offset keys, last in each database) at 3 a call: a1 a2 a3 | a4 offset b1 | b2 offset;
    # the idle ones are a1, a3 and b1
    assert removed == [2, 1, 0]
    assert store._sweeping is None  # the pass has ended
    deleted = {k: owner.message.partition for k, (obj, _, owner) in store._dirty.items() if obj is None}
    assert deleted == {"a1": 0, "a3": 0, "b1": 1}
    assert store.sweep(watermark_ms=3_100, ttl_ms=2_000, max_keys=10) == 0  # next pass only after ttl/8
    p0.close()
    p1.close()


def test_the_key_cap_evicts_the_oldest_live_keys_once_the_pass_has_seen_them_all(tmp_path):
    p0 = _state_db(tmp_path, "c0", {"x1": 3_000, "x2": 2_500, "x3": 2_900})
    p1 = _state_db(tmp_path, "c1", {"y1": 2_600, "y2": 2_950})
    store = FaustStore("fingerprints", _Table(_Data([p0, p1])), restore=lambda s: _Snap(s[0]))
    store.put("x3", _Snap(3_000))  # touched by the batch in flight: not the sweep's to judge
    assert store.sweep(watermark_ms=3_000, ttl_ms=2_000, max_keys=2) == 2
    deleted = {k: owner.message.partition for k, (obj, _, owner) in store._dirty.items() if obj is None}
    assert deleted == {"x2": 0, "y1": 1}  # the oldest of the four live keys beyond the cap of two
    p0.close()
    p1.close()


def test_the_faust_store_internals_the_walks_read_are_there():
    """The walks (`_active_partitions`, `_Walk`) read Faust's rocksdict store: its partition databases, the
    key of its persisted offset and how it picks the partitions this worker holds; an upgrade of
    faust-streaming that renames them must fail here."""
    import inspect

    from faust.stores.rocksdb import Store

    src = inspect.getsource(Store)
    assert "self._dbs = {}" in src and "def _dbs_for_actives(self)" in src
    assert Store.offset_key == OFFSET_KEY
    actives = inspect.getsource(Store._dbs_for_actives)
    assert "self.app.assignor.assigned_actives()" in actives and "self.table.changelog_topic_name" in actives
