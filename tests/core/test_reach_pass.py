"""`attribution.reach` skips members before making their tie (issue 18): its `tie_cap` must be the cap
`member_tie` gives, for every kind of tie and every setting of the caps; and its reach index must leave
every pass's decisions as they are by the definition."""

from __future__ import annotations

import itertools
import random

import pytest
import yaml

from app.allowlist import Allowlist
from app.detect.cluster import ClusterState, Live, Member
from app.detect.messages import OWN_CONTENT, OWN_HARNESS, OWN_HARVEST, OWN_NETWORK, OWN_PAYMENT, OWN_POOL, Summary
from app.policy.attribution import (
    flagged_values,
    member_decision,
    member_evidence,
    member_tie,
    reach,
    tie_cap,
    value_decisions,
    view,
)
from app.policy.decide import LEVELS
from app.rules.load import compile_rules
from app.rules.model import AllowEntry
from app.settings import DEFAULT_RULES

CAPS = ("none", "throttle", "challenge", "block")


def member(ties: int, risky: bool, strong: list[str], home: bool = False) -> Member:
    m = Member.__new__(Member)
    m.ties, m.risky, m.strong, m.own, m.payment, m.home, m.throwaway = ties, risky, strong, 0, False, home, False
    return m


def rules(assoc: str, established: str, strong: str, weak: str):
    d = yaml.safe_load(DEFAULT_RULES.read_text())
    a = d["policy"].setdefault("attribution", {})
    a.update(association_max_action=assoc, established_association_max_action=established,
             own_strong_max_action=strong, own_weak_max_action=weak)
    return compile_rules(d, "<test>")


@pytest.mark.parametrize("assoc,established", [("challenge", "challenge"), ("none", "throttle"),
                                               ("throttle", "none"), ("challenge", "throttle")])
def test_tie_cap_is_member_ties_cap(assoc, established):
    r = rules(assoc, established, "block", "challenge")
    bad = {"payment_fp:x"}
    for ties, risky, home, ev in itertools.product((1, 8, 9), (True, False), (False, True),
                                                   (OWN_PAYMENT, OWN_CONTENT, OWN_NETWORK | OWN_PAYMENT, OWN_POOL,
                                                    OWN_POOL | OWN_PAYMENT, OWN_POOL | OWN_HARVEST, OWN_HARVEST,
                                                    OWN_CONTENT | OWN_HARVEST, OWN_POOL | OWN_CONTENT, OWN_HARNESS,
                                                    OWN_HARNESS | OWN_CONTENT, 0)):
        m = member(ties, risky, ["payment_fp:x"], home)
        for aged in (None, "throttle", "challenge", "block"):
            assert tie_cap(m, ev, r, aged) == member_tie(m, bad, r, ev, aged).cap, (ties, risky, ev, aged)


def naive_reach(c: ClusterState, ts: int, rules, allow: Allowlist, only: str | None = None) -> list:
    """`reach` by its definition: every member's tie made afresh, the flagged values from a scan."""
    live = c.live
    if live is None or ts >= live.until_ms:
        return []
    bad, v = flagged_values(c, rules), view(c, rules)
    out = []
    for acct, m in ([(only, c.members[only])] if only in c.members else []) if only else sorted(c.members.items()):
        d = member_decision(c, acct, m, member_tie(m, bad, rules, member_evidence(c, m, v), v.aged_cap), ts, rules,
                            allow, late=only is not None or ts != live.ts_ms)
        if d is not None:
            out.append(d)
            if only is None and len(out) >= rules.policy.fanout_max_accounts:
                break
    return out if only else out + value_decisions(c, bad, ts, rules, allow)


def _summary(rng: random.Random, pool: int) -> Summary:
    k = rng.randrange(pool)
    return Summary(f"a{k:03d}", f"org-{k % 5}", rng.randrange(0, 50) * 1000, rng.random() < 0.5,
                   rng.random() < 0.5, rng.randrange(1, 40), rng.randrange(0, 11), risky=rng.random() < 0.6,
                   own=rng.choice((0, 0, 0, OWN_CONTENT, OWN_NETWORK, OWN_CONTENT | OWN_NETWORK)),
                   hosting_block=rng.choice((0, 0, k % 3 + 1, k % 9 + 1)), net=rng.choice((0, 7, k + 1)),
                   asn=rng.choice((0, 64500, 64500 + k % 4)), home=rng.random() < 0.4)


def _again(m: Member, acct: str) -> Summary:
    """A summary that changes nothing of member `m`'s figures (the link may bring a new strong value, or a
    harvest template's evidence)."""
    return Summary(acct, m.org, m.first_ms, m.young, False, m.n, m.flagged, m.pivot, m.risky, m.own, False, m.block,
                   m.net, m.asn, home=m.home)


def _more(rng: random.Random, m: Member, acct: str) -> Summary:
    """A summary that changes only figures a member's reach does not read (`_reach_moved`), and its request
    count (read only with flagged requests), and its network."""
    return Summary(acct, m.org, m.first_ms - rng.randrange(0, 2) * 1000, rng.random() < 0.5, False,
                   m.n + rng.randrange(0, 5), m.flagged, rng.random() < 0.5, m.risky, m.own, False, m.block,
                   rng.choice((m.net, 7, 8)), rng.choice((m.asn, 64500, 64509)), home=m.home)


def _moved(rng: random.Random, m: Member, acct: str) -> Summary:
    """A summary that changes only whether member `m` is at home (`at_home` reads it) and its network."""
    return Summary(acct, m.org, m.first_ms, m.young, False, m.n, m.flagged, m.pivot, m.risky, m.own, False, m.block,
                   rng.choice((m.net, 7, 8, 9)), m.asn, home=m.home if rng.random() < 0.5 else not m.home)


@pytest.mark.parametrize("seed", range(8))
def test_reach_with_its_index_is_reach_by_definition(seed):
    """A cluster's reach index (the members a pass walks, the flagged values) gives exactly the decisions and
    member records of passes that make every tie afresh, on random links (some changing only a member's
    strong values, some with a payment ring or a harvest template's evidence), removals, merges, lifts, new
    live decisions, rules and allowlists, and passes between them."""
    rng = random.Random(seed)
    rule_sets = [rules("challenge", "challenge", "block", "challenge"), rules("throttle", "none", "block", "block"),
                 rules("challenge", "throttle", "challenge", "throttle")]
    r = rule_sets[0]
    allow = Allowlist(())
    max_members, pool = rng.choice([(8, 16), (40, 60)])
    c = ClusterState("c", 0)
    ts, passes, views = 0, 0, set()
    for step in range(800):
        ts += rng.randrange(0, 3000)
        x = rng.random()
        if x < 0.3:
            tie = rng.choice(("payment_fp", "device_id", "harness", "ip_prefix", "ja4", "template"))
            strong = tie in ("payment_fp", "device_id", "harness")
            fp = f"{'template:sys' if tie == 'harness' else tie}:v{rng.randrange(12)}"
            c.add(_summary(rng, pool), max_members, tie, fp if strong else "", ts, strong and rng.random() < 0.1,
                  rng.random() < 0.1)
        elif x < 0.4 and c.members:
            acct = rng.choice(sorted(c.members))
            m = c.members[acct]
            c.add(_again(m, acct), max_members, "device_id", f"device_id:v{rng.randrange(12)}", max(ts, m.seen_ms),
                  False, rng.random() < 0.2)
        elif x < 0.42 and c.members:  # news of a member that only its cluster's figures read (or its count)
            acct = rng.choice(sorted(c.members))
            m = c.members[acct]
            c.add(_more(rng, m, acct), max_members, "template", "", max(ts, m.seen_ms))
        elif x < 0.43 and c.members:  # a member that goes away from home, or moves to another line
            acct = rng.choice(sorted(c.members))
            m = c.members[acct]
            c.add(_moved(rng, m, acct), max_members, "template", "", max(ts, m.seen_ms))
        elif x < 0.44 and c.members:
            c.remove(rng.choice(sorted(c.members)))
        elif x < 0.48 and c.members:
            acct = rng.choice(sorted(c.members))
            c.lift(acct, c.members[acct])
        elif x < 0.5:
            other = ClusterState("d", 0)
            for _ in range(rng.randrange(1, 6)):
                other.add(_summary(rng, pool * 2), max_members, "device_id", f"device_id:v{rng.randrange(12)}", ts)
            c.absorb(other, max_members)
        elif x < 0.54 or c.live is None:
            c.live = Live(f"dc-{step}", rng.choice(LEVELS), rng.randrange(5, 600), ("CL_SIZE", "CL_CONTENT"),
                          f"al-{step}", "enforce", ts)
        elif x < 0.56:
            r = rng.choice(rule_sets)
        elif x < 0.58:
            names = rng.sample(sorted(c.members), min(2, len(c.members)))
            allow = Allowlist(tuple(AllowEntry("account", a) for a in names))
        ref = ClusterState.restore(c.snapshot())  # no index
        only = rng.choice(sorted(c.members)) if c.members and rng.random() < 0.3 else None
        want = [d.wire() for d in naive_reach(ref, ts, r, allow, only)]
        got = [d.wire() for d in reach(c, ts, r, allow, only)]
        assert got == want, step
        assert c.snapshot() == ref.snapshot(), step
        passes += bool(want)
        views.add(view(ref, r))
    assert passes > 20 and len(views) > 1


def test_a_count_that_takes_pooled_content_away_is_noted_for_the_index():
    """A member's request count reaches its reach only through its flagged requests' share of them (pooled
    content evidence): a member whose count grows past that share loses its evidence, and the reach index
    (which notes only changes its passes read: `_reach_moved`) stops counting its strong value as flagged, so a
    later holder of that value is not reached by association through it."""
    r = rules("challenge", "challenge", "block", "challenge")
    allow = Allowlist(())
    c = ClusterState("c", 0)

    def link(acct: str, n: int, flagged: int, value: str, ts: int) -> None:
        c.add(Summary(acct, f"org-{acct}", 1000, True, True, n, flagged, risky=True), 50, "device_id", value, ts)

    for acct in ("a1", "a2", "a3"):
        link(acct, 10, 5, f"device_id:{acct}", 1000)
    link("x", 10, 2, "device_id:vx", 1000)  # 2 of 10 flagged: content evidence while the community's is pooled
    link("y", 5, 0, "device_id:vx", 1000)   # no evidence: reached by association through x's value
    c.live = Live("dc-1", "challenge", 600, ("CL_SIZE", "CL_CONTENT"), "al-1", "enforce", 2000)
    assert view(c, r).pool_share is not None
    got = reach(c, 2000, r, allow)
    assert "y" in {d.value for d in got}
    v = view(c, r)
    link("x", 11, 2, "device_id:vx", 3000)  # 2 of 11: below the share now; the pool, and the view, stay
    assert view(c, r) == v
    link("z", 1, 0, "device_id:vx", 3000)
    ref = ClusterState.restore(c.snapshot())
    want = [d.wire() for d in naive_reach(ref, 4000, r, allow)]
    assert [d.wire() for d in reach(c, 4000, r, allow)] == want
    assert "z" not in {d["value"] for d in want}


@pytest.mark.parametrize("move", ["leaves_home", "turns_throwaway"])
def test_a_member_at_home_that_leaves_is_noted_for_the_index_and_a_throwaway_stays_at_home(move):
    """A ring member at home with content evidence only is not reached (`at_home`, `home_weak_max_action`); once
    it sends from elsewhere (a VPN: not at home) its tie's cap is the ring's, and the reach index (which a pass
    set it aside in) takes it up again: a summary changing only its home flag is noted (`_reach_moved`). One
    that turns out a throwaway account (a disposable email) is still at home: not reached, by the index or
    by a naive pass."""
    r = rules("challenge", "challenge", "block", "challenge")
    assert r.policy.attribution.home_weak_max_action == "none"
    allow = Allowlist(())
    c = ClusterState("c", 0, "ring")
    for k in range(4):
        c.add(Summary(f"r{k}", f"org-{k}", 1000, True, True, 10, 5, risky=True, own=OWN_CONTENT, net=10 + k,
                      home=k == 0), 50, "template", "", 1000)
    c.live = Live("dc-1", "challenge", 600, ("CL_SIZE", "CL_CONTENT"), "al-1", "enforce", 2000)
    first = {d.value for d in reach(c, 2000, r, allow)}
    assert first == {"r1", "r2", "r3"}  # r0 is at home on its own line
    home = move != "leaves_home"
    c.add(Summary("r0", "org-0", 1000, True, True, 10, 5, risky=True, own=OWN_CONTENT, net=10, home=home,
                  throwaway=move == "turns_throwaway"), 50, "template", "", 3000)
    ref = ClusterState.restore(c.snapshot())
    want = [d.wire() for d in naive_reach(ref, 4000, r, allow)]
    assert [d["value"] for d in want] == ([] if home else ["r0"])
    assert [d.wire() for d in reach(c, 4000, r, allow)] == want


@pytest.mark.parametrize("holds", [True, False])
def test_a_link_of_a_member_holding_the_live_decision_sets_up_no_pass(holds, monkeypatch):
    """The cluster stage tests `_Pass.holds` itself before a one-member pass: a member holding the live decision
    at its action's level until its end gets no pass (it would give nothing); one that does not gets its pass,
    and its decision."""
    import app.stages.cluster as stage_mod
    from app.detect.messages import Link
    from app.stages.base import Output
    from app.stages.cluster import ClusterStage, IndexEntry

    r = compile_rules(yaml.safe_load(DEFAULT_RULES.read_text()), "<test>")
    t0 = 1_769_947_200_000
    st = ClusterStage(r)
    c = ClusterState("cl-x", t0)
    card = "payment_fp:v"

    def summ(acct: str, own: int) -> Summary:
        # not throwaway: the card is no payment ring, and b's link brings no evidence (no full pass)
        return Summary(acct, f"org-{acct}", t0, True, True, 3, 0, risky=True, own=own)

    for acct, own in (("a", OWN_CONTENT), ("b", 0)):
        c.add(summ(acct, own), 2000, "payment_fp", card, t0)
        st.index.put("a:" + acct, IndexEntry(c.cid, t0))
    c.note_fp(card, 2, 2, 2, 64, t0, True)
    st.index.put("f:" + card, IndexEntry(c.cid, t0))
    c.live = live = Live("dc-x", "block", 86_400, ("CL_SIZE",), "al-x", "enforce", t0)
    c.pol_until_ms, c.pol_level, c.pol_alert_ms, c.pol_action = live.until_ms, LEVELS.index("block"), t0, "block"
    st.clusters.put(c.cid, c)
    b = c.members["b"]
    if holds:  # association reaches b at most as a challenge; holding the block, it holds anything less
        b.dec_until, b.dec_level = live.until_ms, LEVELS.index("block")
    calls = []

    def counted(*args, **kw):
        calls.append(kw.get("only"))
        return reach(*args, **kw)

    monkeypatch.setattr(stage_mod.attribution, "reach", counted)
    out = Output()
    st.process(Link(card, t0 + 60_000, "ev-1", summ("b", 0), "a", 2, 2, True, 2), out)
    if holds:
        assert calls == [] and out.decisions == []
    else:
        assert calls == ["b"]
        assert [(d.value, d.action) for d in out.decisions] == [("b", "challenge")]
