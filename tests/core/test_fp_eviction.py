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


@pytest.mark.parametrize("seed", range(12))
def test_the_count_of_linkable_members_is_the_count_of_them(seed):
    """`FpState.n_linkable`, which lets a value that does not link yet skip scanning its members, is the
    number of members with `linkable` set after every observation: members come, change, turn linkable and
    back, get evicted at the cap, the value changes kind; and after a restore."""
    rng = random.Random(seed)
    rules = load_rules(DEFAULT_RULES)
    scope, value = rng.choice((("ja4", "t13d"), ("payment_fp", "pm_1"), ("template", "m1:ab"),
                               ("template", "sys:cafe")))
    fp = FpState(0)
    linked = most = 0
    for step in range(600):
        acct = f"a{rng.randrange(80)}"
        young = rng.random() < 0.7
        s = Summary(acct, f"org-{rng.randrange(30)}", 0, young, rng.random() < 0.5, rng.randrange(1, 40),
                    rng.randrange(3), risky=young or rng.random() < 0.3, own=rng.choice((0, 0, 1, 2)),
                    throwaway=rng.random() < 0.3)
        linked += len(fp_observe(fp, Observation(scope, value, step, f"e{step}", s, rng.random() < 0.3), rules))
        assert fp.n_linkable == sum(m.linkable for m in fp.members.values()), step
        most = max(most, fp.n_linkable)
        if step % 150 == 149:
            fp = FpState.restore(fp.snapshot())
    assert (most >= 2 and linked > 0) or fp.popular  # the count was exercised, unless the value went popular
