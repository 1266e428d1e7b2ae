"""ClusterState's derived indexes (eviction heap, sorted first-request times, per-kind value orders)
give exactly what the brute-force definitions give: the same members, figures, values and
synchronised-start figure on random sequences of links, merges and snapshot/restore round trips."""

from __future__ import annotations

import random

import pytest

from app.detect.cluster import ClusterState, Member, max_values
from app.detect.messages import OWN_NETWORK, OWN_OTHER, Summary

SCOPES = ("payment_fp", "device_id", "template", "ip_prefix", "ja4")
TIES = ("payment_fp", "device_id", "template", "ip_prefix", "ja4", "harness", "")


class Brute(ClusterState):
    """The definitions: eviction by a scan for the smallest (first_ms, account), figures re-summed at
    the cap, values dropped by a scan in `fps` order, the synchronised start from a fresh sort."""
    __slots__ = ()

    def add(self, s: Summary, max_members: int, tie: str = "", strong_value: str = "", ts_ms: int = 0) -> bool:
        from app.detect.cluster import MAX_STRONG_VALUES, SCOPE_BITS

        m = self.members.get(s.account_id)
        bit = SCOPE_BITS.get(tie, 0)
        if m is None:
            m = self.members[s.account_id] = Member(s, bit, ts_ms)
            if strong_value:
                m.strong.append(strong_value)
            if len(self.members) > max_members:
                oldest = min(self.members, key=lambda k: (self.members[k].first_ms, k))
                del self.members[oldest]
            self.recompute()
            return True
        m.first_ms = min(m.first_ms, s.first_ms)
        m.org = m.org or (s.org or "")
        m.young = m.young or s.young
        m.risky = m.risky or s.risky
        m.throwaway = m.throwaway or s.throwaway
        m.n = max(m.n, s.n)
        m.flagged = max(m.flagged, s.flagged)
        if s.n and ts_ms >= m.seen_ms:
            m.own, m.pivot, m.seen_ms = s.own, s.pivot, ts_ms
        m.ties |= bit
        if strong_value and strong_value not in m.strong and len(m.strong) < MAX_STRONG_VALUES:
            m.strong.append(strong_value)
        self.recompute()
        return False

    def cap_fps(self, max_values: int, keep: str = "") -> None:
        over = len(self.fps) - max_values
        if over <= 0:
            return
        kept = {keep, self.pay_key, self.infra_key}
        drop = [k for k in self.fps if k.startswith("template:") and k not in kept][:over]
        if len(drop) < over:
            drop += [k for k in self.fps if not k.startswith("template:") and k not in kept][:over - len(drop)]
        for k in drop:
            del self.fps[k]

    def absorb(self, other: ClusterState, max_members: int) -> None:
        for acct, m in other.members.items():
            mine = self.members.get(acct)
            if mine is None:
                self.members[acct] = m
            else:
                mine.n, mine.flagged = max(mine.n, m.n), max(mine.flagged, m.flagged)
                if m.seen_ms > mine.seen_ms:
                    mine.own, mine.pivot, mine.seen_ms = m.own, m.pivot, m.seen_ms
                mine.young, mine.risky = mine.young or m.young, mine.risky or m.risky
                mine.throwaway = mine.throwaway or m.throwaway
                mine.ties |= m.ties
                mine.strong = list(dict.fromkeys(mine.strong + m.strong))[:4]
                if m.dec_until > mine.dec_until:
                    mine.dec_until, mine.dec_level = m.dec_until, m.dec_level
        while len(self.members) > max_members:
            del self.members[min(self.members, key=lambda k: (self.members[k].first_ms, k))]
        for k, v in other.fps.items():
            self.fps.setdefault(k, v)
        if other.pay_orgs > self.pay_orgs:
            self.pay_orgs, self.pay_key = other.pay_orgs, other.pay_key
        if other.infra_orgs > self.infra_orgs:
            self.infra_orgs, self.infra_key = other.infra_orgs, other.infra_key
        self.cap_fps(max_values(max_members))
        self.recompute()

    def sync_start(self, window_ms: int) -> int:
        return brute_sync(self, window_ms)


def brute_sync(c: ClusterState, window_ms: int) -> int:
    """Largest number of members whose first request falls inside one window [t - window, t]."""
    firsts = [m.first_ms for m in c.members.values()]
    return max((sum(1 for u in firsts if t - window_ms <= u <= t) for t in firsts), default=0)


def _summary(rng: random.Random, pool: int) -> Summary:
    k = rng.randrange(pool)
    return Summary(f"acct-{k:03d}", rng.choice([None, f"org-{k % 7}"]), rng.randrange(0, 50) * 1000,
                   rng.random() < 0.5, rng.random() < 0.5, rng.randrange(1, 40), rng.randrange(0, 5),
                   rng.random() < 0.3, rng.random() < 0.5, rng.choice([0, 0, 1, 2, 3]), throwaway=rng.random() < 0.2)


def _fp(rng: random.Random) -> str:
    return f"{rng.choice(SCOPES)}:v{rng.randrange(120)}"


def _figures(c: ClusterState) -> tuple:
    return (c.n_sum, c.flagged_sum, c.young, c.risky, c.own, c.network, c.pivoted, c.pay_orgs, c.pay_key,
            c.infra_orgs, c.infra_key)


_TALLIES = ("n_sum", "flagged_sum", "flagged_members", "young", "risky", "own", "network", "pivoted", "blocks",
            "hosted", "hosted_plain", "hosted_no_net", "plain_blocks", "nonet_blocks", "nets", "netted", "asns",
            "throwaways")


def _tallies(c: ClusterState) -> dict:
    return {k: getattr(c, k) for k in _TALLIES}


def _compare(new: ClusterState, old: Brute, window_ms: int) -> None:
    # the running figures kept link by link (a member counted out and in only when its figures change) are
    # those counted afresh over the members
    assert _tallies(new) == _tallies(ClusterState.restore(new.snapshot()))
    assert {k: m.snapshot() for k, m in new.members.items()} == {k: m.snapshot() for k, m in old.members.items()}
    assert list(new.members) == list(old.members)          # same dict order
    assert [(k, v.snapshot()) for k, v in new.fps.items()] == [(k, v.snapshot()) for k, v in old.fps.items()]
    assert _figures(new) == _figures(old)
    # the counts kept up to date since the last rebuild, for the window in use
    assert ClusterState.sync_start(_fresh(new), window_ms) == brute_sync(old, window_ms)
    assert new._counts == [sum(1 for u in new._firsts if t - window_ms <= u <= t) for t in new._firsts]
    for w in (0, 3000):  # another window: counted afresh
        other = ClusterState.restore(new.snapshot())
        assert ClusterState.sync_start(_fresh(other), w) == brute_sync(old, w)
    heads = sorted((m.first_ms, k) for k, m in new.members.items())
    assert new._firsts == [f for f, _ in heads]
    assert list(new._tmpl) == [k for k in new.fps if k.startswith("template:")]
    assert list(new._other) == [k for k in new.fps if not k.startswith("template:")]


def _fresh(c: ClusterState) -> ClusterState:
    c.sync = -1
    return c


@pytest.mark.parametrize("seed", range(12))
def test_random_links_merges_and_roundtrips_match_the_definitions(seed):
    rng = random.Random(seed)
    max_members = rng.choice([3, 5, 8, 20])
    window_ms = rng.choice([0, 2000, 5000, 20_000])
    pool = max_members * rng.choice([2, 4])
    new, old = ClusterState("c", 0), Brute("c", 0)
    for step in range(400):
        r = rng.random()
        if r < 0.6:
            s = _summary(rng, pool)
            tie = rng.choice(TIES)
            strong = _fp(rng) if tie in ("payment_fp", "device_id", "harness") else ""
            ts = rng.randrange(0, 400) * 1000
            assert new.add(s, max_members, tie, strong, ts) == old.add(s, max_members, tie, strong, ts)
        elif r < 0.65 and new.members:  # a ring member leaves for a community
            acct = rng.choice(sorted(new.members))
            new.remove(acct)
            del old.members[acct]
            old.recompute()
        elif r < 0.9:
            key, accounts, orgs, ts = _fp(rng), rng.randrange(1, 9), rng.randrange(1, 6), step * 1000
            risky, strong = rng.randrange(0, orgs + 1), rng.random() < 0.5
            limit = rng.choice([4, 10, max_values(max_members)])
            new.note_fp(key, accounts, orgs, risky, limit, ts, strong)
            old.note_fp(key, accounts, orgs, risky, limit, ts, strong)
        elif r < 0.95:  # merge another cluster into this one
            n2, o2 = ClusterState("d", 0), Brute("d", 0)
            for _ in range(rng.randrange(1, 2 * max_members)):
                s = _summary(rng, pool * 2)
                n2.add(s, max_members)
                o2.add(s, max_members)
                key, orgs = _fp(rng), rng.randrange(1, 6)
                n2.note_fp(key, 1, orgs, orgs, 200, step)
                o2.note_fp(key, 1, orgs, orgs, 200, step)
            new.absorb(n2, max_members)
            old.absorb(o2, max_members)
        else:  # the worker's tables: state leaves and comes back through its wire form
            new = ClusterState.restore(new.snapshot())
        _compare(new, old, window_ms)


def test_eviction_order_is_smallest_first_request_then_account():
    c = ClusterState("c", 0)
    for acct, first in [("b", 5), ("a", 5), ("c", 1), ("d", 9)]:
        c.add(Summary(acct, None, first, True, True, 1, 0), 4)
    c.add(Summary("d", None, 0, True, True, 1, 0), 4)     # d's first request is now the earliest
    evicted = []
    for k, first in enumerate([20, 21, 22, 23]):
        before = set(c.members)
        c.add(Summary(f"n{k}", None, first, True, True, 1, 0), 4)
        evicted += sorted(before - set(c.members))
    assert evicted == ["d", "c", "a", "b"]
    assert len(c._oldest) <= 2 * len(c.members) + 64


def test_sync_start_from_the_sorted_list_equals_a_fresh_sort():
    rng = random.Random(1)
    c = ClusterState("c", 0)
    for step in range(600):
        c.add(Summary(f"a{rng.randrange(200)}", None, rng.randrange(10**6), True, True, 1, 0), 50)
        w = 60_000 if step < 400 else rng.choice([0, 1000, 60_000, 300_000])  # kept, then rebuilt
        assert ClusterState.sync_start(_fresh(c), w) == brute_sync(c, w)


@pytest.mark.parametrize("seed", range(6))
def test_rev_changes_whenever_what_the_assessment_reads_changes(seed):
    """The cluster stage reuses a cluster's signals, assessment and attribution gate, and attribution its
    view, while `rev` stays the same: whatever those read must not change without it changing."""
    from app.detect.cluster import cluster_signals, quiet, request_outcome
    from app.policy.attribution import cluster_gate, pooled, view
    from app.rules.load import load_rules
    from app.settings import DEFAULT_RULES

    rules = load_rules(DEFAULT_RULES)
    rng = random.Random(seed)
    max_members = rng.choice([5, 8, 20])
    pool = max_members * 2
    c = ClusterState("c", 0)
    last: tuple | None = None
    last_quiet: tuple | None = None
    share = rules.policy.attribution.own_content_min_share
    for step in range(400):
        r = rng.random()
        if r < 0.7:
            s = _summary(rng, pool)
            tie = rng.choice(TIES)
            c.add(s, max_members, tie, _fp(rng) if tie in ("payment_fp", "device_id", "harness") else "",
                  rng.randrange(0, 400) * 1000, rng.random() < 0.1, pool_share=share)
        elif r < 0.8 and c.members:
            # a member's request counts alone move (a new level of its summary), maybe with a new weak tie:
            # `quiet` stays the same
            acct = rng.choice(sorted(c.members))
            m = c.members[acct]
            n = m.n + rng.choice([0, 1, 5, 40, 400, 3000])  # the totals cross CL_VOLUME's and CL_CONTENT's
            s = Summary(acct, m.org or None, m.first_ms, m.young, True, n,
                        min(n, m.flagged + rng.choice([0, 0, 1, 4, 30, 300])), m.pivot, m.risky, m.own,
                        throwaway=m.throwaway, hosting_block=m.block, net=m.net, asn=m.asn, home=m.home)
            tie = rng.choice(["", "", "template", "ip_prefix", "ja4", "payment_fp"])  # a weak tie is quiet too
            c.add(s, max_members, tie, _fp(rng) if tie == "payment_fp" else "", m.seen_ms, pool_share=share)
        elif r < 0.83 and c.members:
            c.remove(rng.choice(sorted(c.members)))
        elif r < 0.97:
            orgs = rng.randrange(1, 6)
            key = rng.choice(list(c.fps)) if c.fps and rng.random() < 0.5 else _fp(rng)  # news of a kept value
            c.note_fp(key, rng.randrange(1, 9), orgs, rng.randrange(0, orgs + 1), max_values(max_members),
                      step * 1000, rng.random() < 0.5)
        else:
            other = ClusterState("d", 0)
            for _ in range(rng.randrange(1, max_members)):
                other.add(_summary(rng, pool * 2), max_members)
            c.absorb(other, max_members)
        fresh = ClusterState.restore(c.snapshot())  # nothing cached
        now = (c.rev, cluster_signals(fresh, rules), cluster_gate(fresh, rules),
               view(ClusterState.restore(c.snapshot()), rules))
        assert view(c, rules) == now[3]
        # without texts (the stage's first assessment): the same hits and gate, with empty details
        bare = ClusterState.restore(c.snapshot())
        hits, gate = cluster_signals(bare, rules, texts=False), cluster_gate(bare, rules, texts=False)
        assert [(h.signal, h.value, "") for h in now[1]] == [(h.signal, h.value, h.detail) for h in hits]
        assert (gate is None) == (now[2] is None)
        assert gate is None or (gate.code, gate.value, gate.threshold, gate.detail) == (
            now[2].code, now[2].value, now[2].threshold, "")
        assert bare.snapshot() == fresh.snapshot() and bare.rev == fresh.rev  # the same effects on the cluster
        assert c.sync_start(60_000) == brute_sync(c, 60_000)  # kept while the first requests stay the same
        if last is not None and last[0] == c.rev:
            assert now == last, step
        last = now
        # ... and reuses them (their texts made again) while only members' request counts moved (`quiet`) and
        # what reads them gives the same: the signals on the request totals, the pooled content verdict and,
        # under it, the flagged members' pooled evidence (`rev_f`)
        content = pooled(fresh, rules)
        key = (quiet(c), request_outcome(fresh, rules), content, c.rev_f if content else None)
        got = ([h.signal.code for h in now[1]], None if now[2] is None else (now[2].code, now[2].value), now[3],
               {a: fresh.evidence_of(m, now[3].spread, now[3].pool_share) for a, m in fresh.members.items()})
        if last_quiet is not None and last_quiet[0] == key:
            assert got == last_quiet[1], step
        last_quiet = (key, got)


@pytest.mark.parametrize("seed", range(8))
def test_running_figures_follow_members_whose_network_and_evidence_change(seed):
    """A member already in the cluster is counted out and in again only when its figures change (`add`): the
    running figures, hosting blocks, networks and operators included, stay those counted afresh, through
    summaries with new or unchanged egress, evidence, rings and stubs, removals and harness marks."""
    rng = random.Random(seed)
    c = ClusterState("c", 0)
    spread = 2 + seed % 3
    for step in range(600):
        k = rng.randrange(12)
        r = rng.random()
        if r < 0.85:
            s = Summary(f"acct-{k:02d}", f"org-{k % 4}", 1000 * k, rng.random() < 0.3, rng.random() < 0.5,
                        rng.choice([0, rng.randrange(1, 30)]), rng.randrange(0, 3), rng.random() < 0.2,
                        rng.random() < 0.4, rng.choice([0, 0, OWN_NETWORK, OWN_OTHER, OWN_NETWORK | OWN_OTHER]),
                        rng.random() < 0.5, rng.choice([0, 0, 11, 22, 33]), rng.choice([0, 5, 6, 7]),
                        rng.choice([0, 100, 200]))
            c.add(s, 10, rng.choice(TIES), rng.choice(["", "payment_fp:p1", "template:sys:h1"]),
                  rng.randrange(0, 50) * 1000, rng.random() < 0.1, rng.random() < 0.1, rng.random() < 0.1)
        elif r < 0.93 and c.members:
            c.remove(rng.choice(sorted(c.members)))
        else:
            c.note_fp("template:sys:h1", 3, 3, 0, 64, step, True)
            c.mark_harness("template:sys:h1")
        assert _tallies(c) == _tallies(ClusterState.restore(c.snapshot())), step
        # the pool's blocks and the members behind them, kept link by link for one spread, are those counted
        # afresh
        blocks = c.blocks
        assert c.shared_blocks(spread) == {b for b, n in blocks.items() if n >= spread}, step
        assert c.own_count(spread) == c.own + sum(n for b, n in c.plain_blocks.items() if blocks[b] >= spread)
        assert c.network_count(spread) == c.network + sum(n for b, n in c.nonet_blocks.items()
                                                          if blocks[b] >= spread)


def test_cluster_signals_look_signals_up_again_under_other_rules():
    """cluster_signals keeps the signals it reads per rules object (`_signals`): under another rules object, at
    the same id or not, it reads that one's (a threshold raised, a signal disabled)."""
    import dataclasses

    from app.detect.cluster import _signals_of, cluster_signal, cluster_signals
    from app.rules.load import load_rules
    from app.settings import DEFAULT_RULES

    rules = load_rules(DEFAULT_RULES)
    c = ClusterState("c", 0)
    for k in range(12):
        c.add(Summary(f"a{k}", f"org-{k}", 1000 * k, True, True, 5, 0), 50, "device_id", "device_id:d", 1000)
    size = rules.signals["CL_SIZE"]
    assert "CL_SIZE" in {h.signal.code for h in cluster_signals(c, rules)}
    higher = dataclasses.replace(rules, signals={**rules.signals, "CL_SIZE": dataclasses.replace(size, threshold=99)})
    off = dataclasses.replace(rules, signals={**rules.signals, "CL_SIZE": dataclasses.replace(size, enabled=False)})
    assert "CL_SIZE" not in {h.signal.code for h in cluster_signals(c, higher)}
    assert cluster_signal(higher, "CL_SIZE").threshold == 99 and cluster_signal(off, "CL_SIZE") is None
    assert "CL_SIZE" in {h.signal.code for h in cluster_signals(c, rules)}
    # a rules object that took a forgotten one's id is not served the old one's signals
    _signals_of[id(rules)] = (higher, {})
    assert cluster_signal(rules, "CL_SIZE") is size
