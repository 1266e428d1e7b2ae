"""`settled` (app/policy/decide.py) says `decide` returns (None, None) and leaves the policy memory as it is
exactly when it does: the cluster stage skips making the subject on it. Checked over random memories,
times, assessments, gates, caps, allowlisting and both modes."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from app.emit.records import Reason
from app.policy.decide import Subject, decide, settled, step_plan
from app.rules.load import compile_rules
from app.score.assess import assess
from tests.core.test_policy import Mem, hits, rules_doc

MIN = 60_000
T = 1_000 * MIN
RULES = compile_rules(rules_doc())
SHADOW_DOC = rules_doc()
SHADOW_DOC["mode"] = "shadow"
SHADOW_RULES = compile_rules(SHADOW_DOC)
SUBJ = Subject("cluster", "cl-1", ("a", "b"), 2, T - 60 * MIN, cluster_id="cl-1")
GATE = Reason("NOT_DECIDED_OWN_EVIDENCE", 1, 2, "one member has evidence of its own")

times = st.integers(T - 30 * MIN, T + 30 * MIN)
hit = st.tuples(st.sampled_from(["volume", "content", "behaviour", "infra", "network"]),
                st.sampled_from([0, 5, 15, 20, 25, 35, 45, 60]), st.booleans())


@settings(max_examples=3000, deadline=None)
@given(until=times, level=st.integers(-1, 2), alert=times, offences=st.lists(times, max_size=3), ts=times,
       hs=st.lists(hit, min_size=1, max_size=5), gate=st.booleans(), cap=st.sampled_from([None, "throttle",
       "challenge", "block"]), allowlisted=st.booleans(), shadow_mode=st.booleans())
def test_settled_is_decide_doing_nothing(until, level, alert, offences, ts, hs, gate, cap, allowlisted,
                                         shadow_mode):
    rules = SHADOW_RULES if shadow_mode else RULES
    mem = Mem(until, level, sorted(offences), alert, "throttle" if until > T else "")
    a = assess([h for fam, w, sh in hs for h in hits((fam, w), shadow=sh)])
    kw = {"allowlisted": allowlisted, "max_action": cap, "gate": GATE if gate else None}
    before = copy.deepcopy(mem)
    quiet = settled(mem, a, step_plan(a, rules), ts, rules, **kw)
    assert mem == before  # settled itself changes nothing
    out = decide(mem, SUBJ, a, ts, rules, plan=step_plan(a, rules), **kw)
    assert quiet == (out == (None, None) and mem == before)
    # the plan is what decide makes without one
    assert decide(copy.deepcopy(before), SUBJ, a, ts, rules, **kw) == out


def test_settled_cases():
    """One of each: below the alert level, a live decision covering the step, the cooldown, a fresh alert."""
    rules = RULES
    big = assess(hits(("content", 45), ("infra", 45)))  # a block's score over two families
    low = assess(hits(("content", 30)))
    assert settled(Mem(), low, step_plan(low, rules), T, rules)
    live = Mem(T + 60 * MIN, 2, [T - MIN], T - 20 * MIN, "block")
    assert settled(live, big, step_plan(big, rules), T, rules)
    assert not settled(Mem(), big, step_plan(big, rules), T, rules)
    cooling = Mem(0, -1, [], T - MIN, "")
    assert settled(cooling, big, step_plan(big, rules), T, rules, gate=GATE)
    assert not settled(cooling, big, step_plan(big, rules), T + 16 * MIN, rules, gate=GATE)
