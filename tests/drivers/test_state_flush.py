"""Held state (DG_STATE_FLUSH_MS): a stage's outputs go out batch by batch, its changed state is written
and its inputs acknowledged only when a flush is due, in that order, each changed key once
(app/drivers/worker.py `_run_batch`, app/drivers/faust_store.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest

from app.drivers.faust_store import FaustStore
from app.drivers.worker import Worker, _StageCtx
from app.rules.load import load_rules
from app.settings import DEFAULT_RULES, Settings
from app.state.store import Provenance


class _Stream:
    def __init__(self, log: list) -> None:
        self.log = log

    async def ack(self, event) -> None:
        self.log.append(("ack", event))


class _Store:
    """Records what the worker asks of a store: puts since the last detach, detaches, writes."""

    def __init__(self, name: str, log: list) -> None:
        self.name, self.log, self.dirty = name, log, []

    def pending(self) -> int:
        return len(self.dirty)

    def detach(self):
        taken, self.dirty = self.dirty, []
        return taken

    async def write(self, detached, enter, producer) -> int:
        self.log.append(("write", self.name, detached))
        return len(detached)


@pytest.fixture
def harness(tmp_path):
    def make(flush_ms: int, batch_max: int = 2000):
        w = Worker(Settings(store="memory://", data_dir=tmp_path, metrics_port=0, state_flush_ms=flush_ms,
                            batch_max=batch_max), load_rules(DEFAULT_RULES))
        log: list = []
        store = _Store("accounts", log)

        async def batch_fn(events: list):
            for e in events:
                store.dirty.append(e)  # each input changes one key
                log.append(("out", e))  # its outputs: sent (and acknowledged) within the batch
            return [], [], len(events)

        ctx = _StageCtx(_Stream(log), batch_fn, [store])
        w._stage_ctx["fingerprints"] = ctx
        made.append(w)
        return w, ctx, log

    made: list = []
    yield make
    for w in made:
        w.close()


def _drain(ctx) -> None:
    async def wait():
        while ctx.inflight:
            await ctx.inflight.popleft()
    return wait()


def test_outputs_go_out_at_once_and_state_waits_for_the_flush(harness):
    w, ctx, log = harness(1000)
    async def main():
        await w._run_batch("fingerprints", ctx, ["e1", "e2"], [])
        await w._run_batch("fingerprints", ctx, ["e3"], ["d1"])  # d1: a duplicate of e1 the guard dropped
        await _drain(ctx)
        assert log == [("out", "e1"), ("out", "e2"), ("out", "e3")]  # nothing written, nothing acked
        assert ctx.held == ["e1", "e2", "e3", "d1"]
        await w._flush_held(due_only=True)  # not due yet: held for under a second
        await _drain(ctx)
        assert len(log) == 3
        ctx.held_since -= 1.5
        await w._flush_held(due_only=True)
        await _drain(ctx)
        assert log[3:] == [("write", "accounts", ["e1", "e2", "e3"]),  # every change, in one write
                           ("ack", "e1"), ("ack", "e2"), ("ack", "e3"), ("ack", "d1")]
        assert ctx.held == [] and ctx.held_since is None

    asyncio.run(main())
    assert w.metrics.state_flushes.labels("fingerprints")._value.get() == 1


def test_a_batch_arriving_after_the_interval_flushes_with_it(harness):
    w, ctx, log = harness(1000)
    async def main():
        await w._run_batch("fingerprints", ctx, ["e1"], [])
        ctx.held_since -= 2.0
        await w._run_batch("fingerprints", ctx, ["e2"], [])
        await _drain(ctx)
        assert log == [("out", "e1"), ("out", "e2"), ("write", "accounts", ["e1", "e2"]),
                       ("ack", "e1"), ("ack", "e2")]

    asyncio.run(main())


def test_zero_writes_after_every_batch(harness):
    w, ctx, log = harness(0)
    async def main():
        await w._run_batch("fingerprints", ctx, ["e1"], [])
        await w._run_batch("fingerprints", ctx, ["e2"], ["d0"])
        await _drain(ctx)
        # the next batch is computed while the previous one finishes: one write and its acks per batch
        assert [x for x in log if x[0] != "out"] == [("write", "accounts", ["e1"]), ("ack", "e1"),
                                                     ("write", "accounts", ["e2"]), ("ack", "e2"),
                                                     ("ack", "d0")]

    asyncio.run(main())


def test_held_inputs_are_bounded_and_a_rebalance_flushes_them(harness):
    w, ctx, log = harness(60_000, batch_max=1)  # held at most STREAM_BUFFER_BATCHES (4) x batch_max inputs
    async def main():
        for i in range(4):
            await w._run_batch("fingerprints", ctx, [f"e{i}"], [])
        await _drain(ctx)
        assert [x for x in log if x[0] != "out"] == [("write", "accounts", ["e0", "e1", "e2", "e3"]),
                                                     ("ack", "e0"), ("ack", "e1"), ("ack", "e2"),
                                                     ("ack", "e3")]
        log.clear()
        await w._run_batch("fingerprints", ctx, ["e4"], [])
        w.app.rebalancing = True  # Faust's flag while a rebalance is under way
        await w._flush_held(due_only=True)
        await _drain(ctx)
        assert log == [("out", "e4"), ("write", "accounts", ["e4"]), ("ack", "e4")]
        w.app.rebalancing = False
        log.clear()
        await w._run_batch("fingerprints", ctx, ["e5"], [])
        await w._flush_held(due_only=False)  # what dropping the caches on a rebalance does first
        await _drain(ctx)
        assert log == [("out", "e5"), ("write", "accounts", ["e5"]), ("ack", "e5")]

    asyncio.run(main())


class _Table:
    """A Faust table as FaustStore reads it when no RocksDB is behind it: `data` a mapping."""

    def __init__(self) -> None:
        self.data: dict = {}


class _Obj:
    def __init__(self, v: int) -> None:
        self.v, self.last_ms = v, 0

    def snapshot(self) -> list:
        return [self.v]

    @classmethod
    def restore(cls, s: list) -> _Obj:
        return cls(s[0])


def _at(offset: int, partition: int = 0) -> Provenance:
    """The provenance of the input at `offset` of source "r"."""
    return Provenance(SimpleNamespace(message=SimpleNamespace(partition=partition)), "r", offset)


def test_a_key_changed_by_many_inputs_is_serialised_once_with_its_latest_position():
    store = FaustStore("t", _Table(), _Obj.restore, cache_max=8)
    for off in range(5):  # five batches, no flush between them
        store.put("hot", _Obj(off), _at(off))
    d = store.detach()
    [(_, writes)] = d.groups
    assert [(k, orjson.loads(raw)) for k, raw in writes] == [("hot", {"p": {"r": 4}, "s": [4]})]


def test_positions_of_held_keys_survive_the_cache_letting_them_go():
    """Dirty and detached keys keep their applied positions even when the bounded cache drops them (or a
    rebalance clears it): a re-delivered input they already applied must still be skipped."""
    store = FaustStore("t", _Table(), _Obj.restore, cache_max=8)
    store.put("k", _Obj(1), _at(7))
    for i in range(20):  # pushes "k" out of the cache (and its positions out of the cache's map)
        store.put(f"other{i}", _Obj(i), _at(100 + i))
    assert "k" not in store._cache
    assert store.applied("k", "r") == 7
    store.detach()
    store.clear_cache()
    assert store.applied("k", "r") == 7  # detached, not written yet: still known
    store.put("k", store.get("k"), _at(8))
    [(_, writes)] = [g for g in store.detach().groups]
    assert dict((k, orjson.loads(raw)["p"]) for k, raw in writes)["k"] == {"r": 8}


def test_before_faust_waits_for_acknowledgements_the_worker_flushes_what_it_holds(harness):
    """On stop and on a rebalance Faust waits until every input it handed on is acknowledged; held
    inputs are, once the transport's hook has written their state (else the worker would hang)."""
    w, ctx, log = harness(60_000)

    async def main():
        await w._run_batch("fingerprints", ctx, ["e1", "e2"], [])
        await _drain(ctx)
        assert ctx.held == ["e1", "e2"]
        await w.app.transport.before_wait_empty()
        await _drain(ctx)
        assert log[2:] == [("write", "accounts", ["e1", "e2"]), ("ack", "e1"), ("ack", "e2")]

    asyncio.run(main())
