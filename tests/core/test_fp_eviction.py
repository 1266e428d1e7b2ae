"""A value at its member cap evicts the member least recently seen, on a tie the first in member order
(`FpState.evict_oldest`, kept as a heap): the same member, every time, as the definition
``min(members, key=lambda k: members[k].last_ms)`` picks, through out-of-order and equal timestamps,
updates of members already kept, and a snapshot/restore in between (the heap is not stored)."""

from __future__ import annotations

import random

import pytest

from app.detect.fingerprint import FpMember, FpState
from app.detect.fingerprint import observe as fp_observe
from app.detect.messages import Observation, Summary
from app.rules.load import load_rules
from app.settings import DEFAULT_RULES


def _member(ts: int) -> FpMember:
    return FpMember(ts, "", 0, -1, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("seed", range(40))
def test_the_heap_evicts_what_the_definition_evicts(seed):
    rng = random.Random(seed)
    cap = rng.choice((1, 2, 3, 5, 8))
    fp, ref = FpState(0), {}  # ref: account -> last_ms, evicted by the definition
    evicted = 0
    for step in range(400):
        acct = f"a{rng.randrange(3 * cap + 2)}"
        ts = rng.choice((rng.randrange(50), step // 2, step // 2))  # out of order, and many ties
        m = fp.members.get(acct)
        if m is None:
            m = fp.members[acct] = _member(ts)
            fp.note(acct, m, True)
            ref[acct] = ts
            if len(fp.members) > cap:
                gone = min(ref, key=ref.__getitem__)
                del ref[gone]
                assert fp.evict_oldest() is not m or gone == acct
                evicted += 1
        elif ts > m.last_ms:
            m.last_ms = ref[acct] = ts
            fp.note(acct, m, False)
        assert list(fp.members) == list(ref), step
        assert all(fp.members[a].last_ms == t for a, t in ref.items())
        if step == 200:  # a restored value has no heap: it is made again, the same
            fp = FpState.restore(fp.snapshot())
            assert fp.heap is None
    assert evicted > 0


def test_observe_keeps_the_most_recent_members_and_drops_the_anchor_it_evicts():
    rules = load_rules(DEFAULT_RULES)
    cap = rules.fingerprint.max_members
    fp = FpState(0)

    def see(acct: str, ts: int) -> None:
        s = Summary(acct, f"org-{acct}", ts, True, True, 1, 0)
        fp_observe(fp, Observation("ja4", "t13d", ts, f"e-{acct}-{ts}", s), rules)

    for i in range(cap):
        see(f"a{i}", 1_000 + i)
    see("a0", 5_000)  # seen again: now the most recent
    fp.anchor = "a1"
    see("new", 6_000)  # one over the cap: a1 (least recently seen) goes, and with it the anchor
    assert "a1" not in fp.members and "a0" in fp.members and len(fp.members) == cap
    assert fp.anchor != "a1"
    see("new2", 6_000)
    assert "a2" not in fp.members and len(fp.members) == cap
