"""Bundles between the worker's stages: split by size, nothing lost or reordered, summaries shared."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest

from app.detect.messages import Link, Observation, Summary
from app.drivers.worker import BUNDLE_BITS, BUNDLE_MAX_BYTES, _unbundle, bundles


def _summary(i: int) -> Summary:
    return Summary(f"acct-{i}", f"org-{i % 7}", 1_700_000_000_000 + i, bool(i % 2), False, i, i % 3)


def _obs(i: int, value_len: int = 40, summary: Summary | None = None) -> Observation:
    s = summary if summary is not None else _summary(i)
    return Observation("device_id", f"dev-{i}-" + "x" * value_len, 1_700_000_000_000 + i, f"ev-{i}", s)


class _Event:  # what _unbundle reads of a Faust event (it keeps a weak reference to make it current)
    def __init__(self, value: bytes, offset: int) -> None:
        self.message = SimpleNamespace(value=value, offset=offset)


def _at(items: list, ts: float) -> list[float]:
    return [ts] * len(items)


def _decode(records: list[bytes], message: type = Observation, first_offset: int = 0) -> list:
    """Items out of records as the receiving stage reads them (positions checked too)."""
    events = [_Event(r, first_offset + k) for k, r in enumerate(records)]
    out = []
    for event, pos, _ts, item in _unbundle(events, message):
        assert pos >> BUNDLE_BITS == event.message.offset
        out.append(item)
    return out


def test_a_large_batch_is_split_under_the_limit_and_keeps_every_item_in_order():
    items = [_obs(i, 200) for i in range(5000)]  # ~1.9 MB as one record: over the producer's 1 MiB
    out = bundles(items, _at(items, 1234.5), max_bytes=BUNDLE_MAX_BYTES)
    assert len(out) > 1
    assert all(len(b) <= BUNDLE_MAX_BYTES for b in out)
    assert all(orjson.loads(b)[0] == 1234.5 for b in out)
    assert _decode(out) == items


def test_small_batches_stay_one_record_and_empty_gives_none():
    items = [_obs(i) for i in range(10)]
    out = bundles(items, _at(items, 1.0))
    assert len(out) == 1 and _decode(out) == items
    assert bundles([], []) == []


def test_an_item_larger_than_the_limit_goes_alone():
    big, small = _obs(1, 5000), _obs(2)
    out = bundles([small, big, small], [0.0] * 3, max_bytes=1000)
    assert [len(orjson.loads(b)[1]) for b in out] == [1, 1, 1]
    assert _decode(out) == [small, big, small]


def test_one_events_observations_carry_its_summary_once_per_record():
    s1, s2 = _summary(1), _summary(2)
    items = [_obs(i, summary=s1) for i in range(6)] + [_obs(i, summary=s2) for i in range(6, 9)] + [_obs(9, summary=s1)]
    out = bundles(items, _at(items, 5.0))
    assert len(out) == 1
    _, wires, summaries, _ = orjson.loads(out[0])
    assert summaries == [s1.wire(), s2.wire()]
    assert [w[4] for w in wires] == [0] * 6 + [1] * 3 + [0]
    decoded = _decode(out)
    assert decoded == items
    assert decoded[0].summary is decoded[9].summary  # decoded once, shared like the sender's


def test_a_split_record_repeats_the_summaries_it_refers_to():
    s = _summary(3)
    items = [_obs(i, 300, summary=s) for i in range(40)]
    out = bundles(items, _at(items, 0.0), max_bytes=2000)
    assert len(out) > 3 and all(len(b) <= 2000 for b in out)
    for b in out:
        assert orjson.loads(b)[2] == [s.wire()]
    assert _decode(out) == items


def test_links_travel_the_same_way():
    s = _summary(4)
    links = [Link(f"ja4:t13d{i}", 1_700_000_000_000 + i, f"ev-{i}", s, "acct-0", 3 + i, 2) for i in range(5)]
    assert _decode(bundles(links, _at(links, 9.0)), Link) == links


def _stamped(records: list[bytes], message: type = Observation) -> list[tuple[float, object]]:
    return [(ts, item) for _, _, ts, item in _unbundle([_Event(r, k) for k, r in enumerate(records)], message)]


def test_each_item_carries_its_own_source_timestamp_to_the_next_stage():
    items = [_obs(i) for i in range(6)]
    stamps = [100.0, 100.25, 100.5, 100.0, 101.123, 100.75]
    out = bundles(items, stamps)
    assert len(out) == 1 and orjson.loads(out[0])[3] == [0, 250, 500, 0, 1123, 750]  # ms after the oldest
    got = _stamped(out)
    assert [x for _, x in got] == items
    assert [ts for ts, _ in got] == [pytest.approx(t, abs=5e-4) for t in stamps]


def test_split_records_keep_every_items_timestamp_with_it_and_stay_under_the_limit():
    s = _summary(5)
    items = [_obs(i, 300, summary=s) for i in range(40)]
    stamps = [50.0 + i / 7 for i in range(40)]
    out = bundles(items, stamps, max_bytes=2000)
    assert len(out) > 3 and all(len(b) <= 2000 for b in out)
    got = _stamped(out)
    assert [x for _, x in got] == items
    assert [ts for ts, _ in got] == [pytest.approx(t, abs=5e-4) for t in stamps]


def test_links_carry_the_timestamp_of_the_observation_that_made_them():
    s = _summary(6)
    links = [Link(f"ja4:t13d{i}", 1_700_000_000_000 + i, f"ev-{i}", s, "acct-0", 3, 2) for i in range(3)]
    got = _stamped(bundles(links, [7.5, 7.5, 8.0]), Link)
    assert got == [(7.5, links[0]), (7.5, links[1]), (8.0, links[2])]


def test_records_of_pre_release_forms_are_not_read():
    """Only the form `bundles` writes is read: the pre-release forms (summaries inline; no stamps) stop the
    stage with an error instead of being guessed at."""
    s = _summary(7)
    items = [_obs(i, summary=s) for i in range(3)]
    inline = b"[7.0,[" + b",".join(orjson.dumps(x.wire()) for x in items) + b"]]"
    unstamped = (b"[42.0,[" + b",".join(orjson.dumps(x.wire_ref(0)) for x in items) + b"],["
                 + orjson.dumps(s.wire()) + b"]]")
    for old in (inline, unstamped):
        with pytest.raises(ValueError):
            _stamped([old])


def test_the_record_head_is_the_oldest_stamp_so_no_offset_is_negative():
    items = [_obs(i) for i in range(4)]
    out = bundles(items, [9.5, 9.25, 9.75, 9.25])
    head, _, _, offsets = orjson.loads(out[0])
    assert head == 9.25 and offsets == [250, 0, 500, 0]


def test_a_stamp_for_every_item_or_the_call_fails():
    items = [_obs(i) for i in range(3)]
    with pytest.raises(ValueError):
        bundles(items, [1.0, 2.0])
