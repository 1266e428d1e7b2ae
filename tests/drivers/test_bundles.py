"""Bundles between the worker's stages: split by size, nothing lost or reordered."""

from __future__ import annotations

import orjson

from app.detect.messages import Observation, Summary
from app.drivers.worker import BUNDLE_MAX_BYTES, bundles


def _obs(i: int, value_len: int = 40) -> Observation:
    s = Summary(f"acct-{i}", f"org-{i % 7}", 1_700_000_000_000 + i, bool(i % 2), False, i, i % 3)
    return Observation("device_id", f"dev-{i}-" + "x" * value_len, 1_700_000_000_000 + i, f"ev-{i}", s)


def test_a_large_batch_is_split_under_the_limit_and_keeps_every_item_in_order():
    items = [_obs(i, 200) for i in range(5000)]  # ~1.9 MB as one record: over the producer's 1 MiB
    out = bundles(items, 1234.5, max_bytes=BUNDLE_MAX_BYTES)
    assert len(out) > 1
    assert all(len(b) <= BUNDLE_MAX_BYTES for b in out)
    decoded = []
    for b in out:
        ts, wires = orjson.loads(b)
        assert ts == 1234.5
        decoded += [Observation.unwire(w) for w in wires]
    assert decoded == items


def test_small_batches_stay_one_record_and_empty_gives_none():
    items = [_obs(i) for i in range(10)]
    out = bundles(items, 1.0)
    assert len(out) == 1 and [Observation.unwire(w) for w in orjson.loads(out[0])[1]] == items
    assert bundles([], 1.0) == []


def test_an_item_larger_than_the_limit_goes_alone():
    big, small = _obs(1, 5000), _obs(2)
    out = bundles([small, big, small], 0.0, max_bytes=1000)
    assert [len(orjson.loads(b)[1]) for b in out] == [1, 1, 1]
