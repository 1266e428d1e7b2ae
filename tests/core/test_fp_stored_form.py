"""A fingerprint's stored form (`FpState.snapshot`): each member is the 9-element list it has always been
(last_ms, org, linkable, level, risky, young, own, eligible, throwaway), so changelogs and state snapshots
written before `FpMember` restore, and what restores snapshots to the same bytes."""

from __future__ import annotations

from pathlib import Path

import orjson
import yaml

from app.detect.fingerprint import FpMember, FpState
from app.detect.messages import Observation, Summary
from app.rules.load import compile_rules
from app.stages.base import Output
from app.stages.fingerprint import FingerprintStage
from tests.helpers import T0

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "app" / "rules" / "default.yaml"

# written by the positional member record (a payment method two new accounts of two orgs share)
STORED = (b'[3,%d,%d,2,0,{"a":[%d,"org-a",1,0,1,1,2,1,1],"b":[%d,"org-b",1,5,1,1,2,1,1]},1,0,"a",1]'
          % (T0, T0 + 1, T0, T0 + 1))


def test_a_stored_member_restores_to_its_fields_and_back_to_the_same_bytes():
    st = FpState.restore(orjson.loads(STORED))
    a = st.members["a"]
    assert isinstance(a, FpMember)
    assert (a.last_ms, a.org, a.linkable, a.level, a.risky, a.young, a.own, a.eligible, a.throwaway) == (
        T0, "org-a", 1, 0, 1, 1, 2, 1, 1)
    assert st.members["b"].level == 5
    assert orjson.dumps(st.snapshot()) == STORED


def test_the_stage_stores_members_as_lists():
    rules = compile_rules(yaml.safe_load(DEFAULT_YAML.read_text()), "default.yaml")
    stage = FingerprintStage(rules)
    out = Output()
    for i, (acct, org) in enumerate((("a", "org-a"), ("b", "org-b"))):
        s = Summary(acct, org, T0, True, True, 1, 0, False, risky=True, own=2, throwaway=True)
        stage.process(Observation("payment_fp", "pf-1", T0 + i, f"ev-{i}", s), out)
    st = stage.store.get(Observation("payment_fp", "pf-1", T0, "ev-0", s).key)
    stored = orjson.loads(orjson.dumps(st.snapshot()))
    assert stored[5] == {"a": [T0, "org-a", 1, 0, 1, 1, 2, 1, 1], "b": [T0 + 1, "org-b", 1, stored[5]["b"][3], 1, 1,
                                                                          2, 1, 1]}
    assert orjson.dumps(FpState.restore(stored).snapshot()) == orjson.dumps(stored)


def test_a_member_with_a_hosting_block_stores_hit_and_block_after_the_nine_fields():
    rules = compile_rules(yaml.safe_load(DEFAULT_YAML.read_text()), "default.yaml")
    stage = FingerprintStage(rules)
    s = Summary("a", "org-a", T0, True, True, 1, 0, risky=True, hosting_block=77)
    stage.process(Observation("payment_fp", "pf-2", T0, "ev-0", s), Output())
    st = stage.store.get("payment_fp:pf-2")
    stored = orjson.loads(orjson.dumps(st.snapshot()))
    assert stored[5]["a"][9:] == [0, 77]
    back = FpState.restore(stored)
    assert (back.members["a"].hit, back.members["a"].block) == (0, 77)
    assert orjson.dumps(back.snapshot()) == orjson.dumps(stored)
