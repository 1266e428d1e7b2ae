"""The worker's input order guard: offsets that never arrived are filled in from the broker before
anything after them, duplicates are dropped."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from app.drivers.order import Fill, InputOrder

P0, P1 = ("t", 0), ("t", 1)


def _key(rec):
    return rec


def _guard(committed: dict | None = None) -> InputOrder:
    c = committed or {}
    return InputOrder(lambda tp: c.get(tp))


def test_in_order_records_pass_untouched():
    g = _guard({P0: 10})
    recs = [(P0, 10), (P1, 0), (P0, 11), (P1, 1)]
    out = g.admit(recs, _key)
    assert out.items == recs and out.duplicates == 0 and out.fills == 0


def test_skipped_offsets_are_filled_in_before_the_record_after_them():
    g = _guard({P0: 0})
    out = g.admit([(P0, 0), (P0, 1), (P0, 5), (P1, 3), (P0, 6)], _key)
    assert out.items == [(P0, 0), (P0, 1), Fill(P0, 2, 5), (P0, 5), (P1, 3), (P0, 6)]
    assert out.fills == 1


def test_a_hole_at_the_start_of_an_assignment_is_found_from_the_committed_offset():
    g = _guard({P0: 100})
    assert g.admit([(P0, 130), (P0, 131)], _key).items == [Fill(P0, 100, 130), (P0, 130), (P0, 131)]


def test_without_a_committed_offset_the_first_record_sets_the_position():
    g = _guard()
    assert g.admit([(P0, 42), (P0, 43)], _key).items == [(P0, 42), (P0, 43)]


def test_duplicates_are_dropped():
    g = _guard({P0: 0})
    out = g.admit([(P0, 0), (P0, 1), (P0, 1), (P0, 0), (P0, 2)], _key)
    assert out.items == [(P0, 0), (P0, 1), (P0, 2)] and out.duplicates == 2
    assert out.dropped == [(P0, 1), (P0, 0)]  # handed back to be acknowledged, in delivery order


def test_an_overdue_fill_shrinks_to_what_its_stage_has_not_processed_meanwhile():
    g = _guard({P0: 10})
    g.admit([(P0, 10)], _key)
    fill = Fill(P0, 11, 20)
    assert g.remaining(fill) == fill
    g.admit([(P0, 11), (P0, 12), (P0, 13)], _key)  # the records were slow, not lost: some came
    assert g.remaining(fill) == Fill(P0, 14, 20)
    g.admit([(P0, x) for x in range(14, 25)], _key)
    assert g.remaining(fill) is None
    assert _guard({P1: 3}).remaining(Fill(P1, 3, 9)) == Fill(P1, 3, 9)  # nothing seen yet: all of it


def test_reset_checks_the_committed_offset_again():
    committed = {P0: 0}
    g = _guard(committed)
    g.admit([(P0, 0), (P0, 1)], _key)
    committed[P0] = 50  # another worker had the partition meanwhile
    g.reset()
    out = g.admit([(P0, 2)], _key)
    assert out.items == [] and out.duplicates == 1


def test_a_lost_last_record_is_filled_once_the_partition_stays_stuck():
    g = _guard({P0: 0})
    g.admit([(P0, 0), (P0, 1)], _key)  # 2 and 3 were read by the consumer but never delivered
    assert g.overdue([P0], lambda tp: 3) == []  # first look: maybe still on its way
    assert g.overdue([P0], lambda tp: 3) == [Fill(P0, 2, 4)]  # no progress since
    assert g.admit([(P0, 2), (P0, 3)], _key).items == [(P0, 2), (P0, 3)]  # the driver's read
    assert g.overdue([P0], lambda tp: 3) == [] and g.overdue([P0], lambda tp: 3) == []  # caught up


def test_a_fill_the_broker_has_nothing_for_is_not_asked_again():
    g = _guard({P0: 0})
    g.admit([(P0, 0)], _key)
    g.overdue([P0], lambda tp: 2)
    assert g.overdue([P0], lambda tp: 2) == [Fill(P0, 1, 3)]
    g.filled(P0, 3)  # read: no records there (transaction markers)
    assert g.overdue([P0], lambda tp: 2) == [] and g.overdue([P0], lambda tp: 2) == []


def test_a_partition_whose_first_record_was_lost_is_filled_from_its_committed_offset():
    g = _guard({P0: 7})
    read = {P0: 7}
    assert g.overdue([P0, P1], read.get) == []
    assert g.overdue([P0, P1], read.get) == [Fill(P0, 7, 8)]


def test_a_partition_that_moves_or_has_nothing_new_is_never_overdue():
    g = _guard({P0: 0})
    g.admit([(P0, 0)], _key)
    assert g.overdue([P0], lambda tp: 0) == [] and g.overdue([P0], lambda tp: 0) == []  # nothing read beyond
    g.overdue([P0], lambda tp: 5)
    g.admit([(P0, 1)], _key)
    assert g.overdue([P0], lambda tp: 5) == []  # moved since the last look


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 80), seed=st.integers(0, 2**32 - 1), drop_p=st.floats(0, 0.6), dup_p=st.floats(0, 0.3),
       missing=st.sets(st.integers(0, 79), max_size=10))
def test_whatever_is_lost_or_repeated_every_record_is_processed_once_in_order(n, seed, drop_p, dup_p, missing):
    """A topic of offsets 0..n-1 without the `missing` ones (markers, compaction); a consumer that
    loses and repeats records at random; the driver reads fills from the topic and checks for overdue
    partitions at the end: every record of the topic is processed once, in offset order, and every
    record delivered is either processed or handed back as a dropped duplicate (acknowledged)."""
    rnd = random.Random(seed)
    topic = [o for o in range(n) if o not in missing]
    g = _guard({P0: 0})
    done: list[int] = []

    def run(items) -> None:
        for x in items:
            if isinstance(x, Fill):
                done.extend(o for o in topic if x.start <= o < x.end)  # the driver's own read
            else:
                done.append(x[1])

    delivered = []
    for off in topic:
        if rnd.random() >= drop_p:
            delivered.append((P0, off))
            if rnd.random() < dup_p:
                delivered.append((P0, off))
    accounted = 0
    for i in range(0, len(delivered), 7):
        adm = g.admit(delivered[i:i + 7], _key)
        run(adm.items)
        accounted += sum(not isinstance(x, Fill) for x in adm.items) + len(adm.dropped)
    assert accounted == len(delivered)
    for _ in range(2):  # the topic's end: lost records with nothing after them
        for fill in g.overdue([P0], lambda tp: topic[-1] if topic else None):
            fetched = [(P0, o) for o in topic if fill.start <= o < fill.end]
            run(g.admit(fetched, _key).items)
            g.filled(P0, fill.end)
    assert done == topic


def test_the_faust_internals_the_worker_guard_reads_are_there():
    """The worker's guard reads Faust's committed and read offsets and takes over its gap recording
    (app/drivers/faust_compat.py: committed_offset, read_offset, queued, take_over_gaps; and the worker's
    _read_range); an upgrade of faust-streaming that renames them must fail here, not quietly weaken the
    guard."""
    import inspect

    from faust.channels import Channel
    from faust.transport.consumer import Consumer
    from faust.types.tuples import ConsumerMessage

    src = inspect.getsource(Consumer)
    for name in ("_committed_offset", "_read_offset", "_gap"):  # per-partition mappings, read with .get
        assert f"self.{name} = defaultdict(" in src, name
    assert list(inspect.signature(Consumer._add_gap).parameters) == ["self", "tp", "offset_from", "offset_to"]
    assert inspect.iscoroutinefunction(Consumer._add_gap)
    # a stage with records queued is not looked at for overdue records (worker._queued)
    assert "self._queue = queue" in inspect.getsource(Channel.__init__)
    assert "self._queue = self.app.FlowControlQueue(" in inspect.getsource(Channel.queue.fget)
    assert list(inspect.signature(ConsumerMessage).parameters)[:9] == [
        "topic", "partition", "offset", "timestamp", "timestamp_type", "headers", "key", "value", "checksum"]
