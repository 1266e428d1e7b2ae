"""A weak value (an IP block, a JA4, a prompt template) links new, disposable or KYC-less accounts with evidence
of their own, and also any account whose own egress rotates through home and phone networks only
(`ACCT_RESIDENTIAL_ROTATION`: `OWN_NETWORK` without a hosting block ever): an aged, bought account hopping
between a residential pool's exits, the exits its campaign's new accounts share. An aged account without that
evidence is not linked (a campus NAT's students), nor one whose egress rotates through hosting networks (a
router fronting its users, a hosted tool's customers)."""

from __future__ import annotations

import pytest

from app.detect.messages import OWN_CONTENT, OWN_NETWORK, Observation, Summary
from app.stages.base import Output
from app.stages.fingerprint import FingerprintStage
from tests.helpers import T0

EXIT = "81.2.3.0/24"


def ring(k: int) -> Summary:
    """A campaign's new account k, its own org, with content evidence of its own."""
    return Summary(f"new{k}", f"org-new{k}", T0, True, True, 4, 2, risky=True, own=OWN_CONTENT)


def aged(name: str, own: int = 0, hosting_block: int = 0) -> Summary:
    """An aged, verified account of its own org (established, not risky)."""
    return Summary(name, f"org-{name}", T0, False, False, 40, 0, own=own, hosting_block=hosting_block)


def linked_on_exit(rules, summaries: list[Summary]) -> set[str]:
    stage, out = FingerprintStage(rules), Output()
    for k, s in enumerate(summaries):
        stage.process(Observation("ip_prefix", EXIT, T0 + 1000 * k, f"ev{k}", s), out)
    return {lk.summary.account_id for lk in out.links}


@pytest.mark.parametrize(("member", "linked"), [
    (aged("pool", own=OWN_NETWORK), True),                         # hops between a residential pool's exits
    (aged("router", own=OWN_NETWORK, hosting_block=77), False),    # rotates through hosting networks
    (aged("student"), False),                                      # behind the campus NAT, no evidence
    (aged("flagged", own=OWN_CONTENT), False),                     # aged with content evidence: not by a weak value
])
def test_who_a_weak_value_links_beside_the_rings_new_accounts(rules, member, linked):
    got = linked_on_exit(rules, [ring(0), ring(1), member, ring(2)])
    assert {"new0", "new1", "new2"} <= got
    assert (member.account_id in got) is linked


def test_aged_accounts_rotating_on_one_exit_alone_are_not_linked(rules):
    # an exit mostly established accounts use is popular (a hotel's Wi-Fi, travellers rotating through it):
    # rotation makes an aged account linkable, not the value linking
    assert linked_on_exit(rules, [aged("a", own=OWN_NETWORK), aged("b", own=OWN_NETWORK),
                                  aged("c", own=OWN_NETWORK)]) == set()
