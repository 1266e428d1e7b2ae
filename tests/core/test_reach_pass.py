"""`attribution.reach` skips members before making their tie (issue 18): its `tie_cap` must be the cap
`member_tie` gives, for every kind of tie and every setting of the caps."""

from __future__ import annotations

import itertools

import pytest
import yaml

from app.detect.cluster import Member
from app.detect.messages import OWN_CONTENT, OWN_NETWORK, OWN_PAYMENT
from app.policy.attribution import member_tie, tie_cap
from app.rules.load import compile_rules
from app.settings import DEFAULT_RULES

CAPS = ("none", "throttle", "challenge", "block")


def member(ties: int, risky: bool, strong: list[str]) -> Member:
    m = Member.__new__(Member)
    m.ties, m.risky, m.strong, m.own, m.payment = ties, risky, strong, 0, False
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
    for ties, risky, ev in itertools.product((1, 8, 9), (True, False),
                                             (OWN_PAYMENT, OWN_CONTENT, OWN_NETWORK | OWN_PAYMENT, 0)):
        m = member(ties, risky, ["payment_fp:x"])
        assert tie_cap(m, ev, r) == member_tie(m, bad, r, ev).cap, (ties, risky, ev)
