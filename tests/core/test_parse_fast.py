"""The fast path of ingest validation agrees with the checked path: whenever it returns an Event, the
checked path (the original field-by-field `_check`) returns the same Event, and every record it declines
is one the checked path also has to look at."""

from __future__ import annotations

import copy
import random

import pytest

from app.ingest import parse
from app.ingest.parse import Rejection, _fast_event, _fast_ts, parse_ts
from tests.helpers import T0, event

NOW = T0 + 3_600_000

ODD_VALUES = [None, "", "x", 0, -1, 1.5, True, False, [], {}, "Z" * 200, 10**12, 2**40, 599, 100, 99,
              "2026-02-01T00:00:02.411Z", "2026-02-01T25:00:02.411Z", "2026-02-30T00:00:02.411Z",
              "2026-02-01t00:00:02.411+01:00", "2026-02-01T00:00:02Z", "2026-02-01T00:00:60.000Z",
              "2026-02-01T00:00:59.999Z", "2026-02-01T00:00:0٣.411Z", "1999-02-01T00:00:02.411Z",
              "10.0.0.1", "010.0.0.1", "256.1.1.1", "::1", "fe80::1%eth0", " 1.2.3.4", "US", "us", "USA",
              "free", "proxy", "api", T0]


def _checked(obj: dict):
    """The checked path alone (the fast path switched off)."""
    saved = parse._fast_event
    parse._fast_event = lambda o, n: None
    try:
        return parse.validate(obj, NOW)
    finally:
        parse._fast_event = saved


def _full() -> dict:
    return event(
        account={"created_at": "2026-01-30T00:00:00.000Z", "kyc": "email", "payment_fp": "pf1",
                 "billing_country": "US", "signup_channel": "edu", "tier": "free",
                 "email_domain_class": "edu"},
        client={"ip": "203.0.113.77", "asn": 64500, "asn_type": "residential", "ja4": "t13d", "country": "US",
                "user_agent": "ua", "device_id": "d1", "access_path": "api"},
        request={"model": "m1", "prompt": "hello", "system_prompt_hash": "h", "input_tokens": 10,
                 "cache_read_tokens": 0, "thinking": True, "tools": 0, "images": 1, "turn": 1},
        response={"status": 200, "output_tokens": 42, "thinking_tokens": 7, "latency_ms": 900},
        org_id="org-1", api_key_id="k1",
    )


def test_fast_path_takes_a_full_valid_record():
    obj = _full()
    fast = _fast_event(obj, NOW)
    assert fast is not None and fast == _checked(obj)


def mutated(base: dict, rng: random.Random, odd: list, extra_names: tuple[str, ...] = ()) -> dict:
    """A copy of `base` with 1-3 random damages: a field (or a whole group) set to an odd value or removed."""
    obj = copy.deepcopy(base)
    for _ in range(rng.randint(1, 3)):
        group = rng.choice([None, "account", "client", "request", "response"])
        target = obj if group is None else obj.get(group)
        if not isinstance(target, dict):
            obj[group] = rng.choice(odd)
            continue
        name = rng.choice([*target, "ts", "event_id", "account_id", *extra_names])
        if rng.random() < 0.2:
            target.pop(name, None)
        else:
            target[name] = rng.choice(odd)
    return obj


@pytest.mark.parametrize("seed", range(4))
def test_fast_path_never_disagrees_with_the_checked_path(seed):
    rng = random.Random(seed)
    base = _full()
    for _ in range(1500):
        obj = mutated(base, rng, ODD_VALUES)
        fast = _fast_event(obj, NOW)
        checked = _checked(obj)
        if fast is not None:
            assert not isinstance(checked, Rejection), obj
            assert fast == checked


@pytest.mark.parametrize("value", [
    "2026-02-01T00:00:02.411Z", "2026-02-01T23:59:59.999Z", "2024-02-29T12:30:00.000Z", "1970-01-01T00:00:00.001Z",
    "1969-12-31T23:59:59.999Z", "2026-02-01T00:00:60.000Z", "2026-02-30T00:00:02.411Z", "2026-02-01T24:00:00.000Z",
    "2026-02-01 00:00:02.411Z", "2026-02-01t00:00:02.411Z", "2026-02-01T00:00:02.41ZZ", "2026-02-01T00:00:0٣.411Z",
    "２026-02-01T00:00:02.411Z", "2026-02-01T00:00:02.411+00:00",
])
def test_fast_timestamps_equal_parse_ts_or_decline(value):
    fast = _fast_ts(value)
    try:
        slow = parse_ts(value, "ts")
    except parse.BadField:
        assert fast is None
    else:
        assert fast is None or fast == slow
