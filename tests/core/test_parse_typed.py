"""The typed path of ingest (msgspec decodes and validates in one pass) returns exactly what the original
path (orjson, then `validate`) returns: an Event only when that path returns the same Event, and every
record it declines goes to that path, which assigns the rejection's code and message."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ingest import parse
from app.ingest.parse import Rejection, _checked_record, _typed_event, parse_record
from tests.core.test_parse_fast import NOW, ODD_VALUES, _full, mutated
from tests.helpers import line

# Values JSON can carry that orjson and msgspec might read differently: integers past 64 bits, integral
# floats, escapes, non-ASCII, control characters, a trailing newline in a country code.
RAW_ODD = [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**30), 1.0, 1e3, -0.0, 0,
           "US\n", "U", "ÜS", "é" * 128, "é" * 129, "x" * 128, "x" * 129, "\u2028", "a\u0000b", "😀" * 3,
           "free ", "FREE", "2026-02-01T00:00:02.411Z\n", "1.2.3.4\n", "1.2.3.4", "2001:db8::1", True, None]


def _same(raw: bytes) -> None:
    typed = _typed_event(raw, NOW)
    checked = _checked_record(raw, NOW)
    if typed is not None:
        assert not isinstance(checked, Rejection), (raw, checked)
        assert typed == checked, raw
    assert parse_record(raw, NOW) == checked, raw


def test_a_full_valid_record_takes_the_typed_path():
    raw = line(_full())
    ev = _typed_event(raw, NOW)
    assert ev is not None and ev == _checked_record(raw, NOW)
    assert ev.ip_prefix == "203.0.113.0/24" and ev.created_at_ms is not None and ev.thinking is True


@pytest.mark.parametrize("seed", range(6))
def test_typed_path_never_disagrees_with_the_original_path(seed):
    rng = random.Random(seed)
    base = _full()
    odd = ODD_VALUES + RAW_ODD
    taken = 0
    for _ in range(1500):
        obj = mutated(base, rng, odd, ("unknown_field",))
        raw = json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode()  # json writes integers of any size
        taken += _typed_event(raw, NOW) is not None
        _same(raw)
    assert taken > 100  # the comparison covered Events, not only rejections


@pytest.mark.parametrize("raw", [
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"event_id":"f"}',  # duplicate key: the last wins
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":{"ip":"1.2.3.4"},"client":null}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":null,"client":{"ip":"1.2.3.4"}}',
    b'{"event\\u005fid":"e","account_id":"a","ts":1769904000000}',  # an escaped key
    b'{"event_id":"\\ud800","account_id":"a","ts":1769904000000}',  # a lone surrogate
    b'{"event_id":"\\ud83d\\ude00","account_id":"a","ts":1769904000000}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"request":{"prompt":"\\u0000"}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000}  ',
    b'{"event_id":"e","account_id":"a","ts":1769904000000} x',
    b'\xef\xbb\xbf{"event_id":"e","account_id":"a","ts":1769904000000}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000.0}',
    b'{"event_id":"e","account_id":"a","ts":1.769904e12}',
    b'{"event_id":"e","account_id":"a","ts":"2026-02-01T00:00:00.000+00:00"}',
    b'{"event_id":"e","account_id":"a","ts":"2026-02-01T00:00:00Z"}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"account":{"created_at":18446744073709551616}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"account":{"created_at":-9223372036854775809}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"account":{"created_at":18446744073709551615}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":{"asn":4294967296}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":{"country":"US\\n"}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"request":{"thinking":1}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"request":{"tools":true}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"response":[]}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":{"ip":"fe80::1%eth0"}}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":{"ip":"1.2.3.4","ip":"::1"}}',
    b'{"event_id":"e","account_id":"a","ts":null}', b'{"event_id":"e","ts":1769904000000}', b'[]', b'"x"',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"account":{"tier":"free","tier":"gold"}}',
    b'\xff', b'', b'{', b'null',
    # nesting past Python's recursion limit in a field msgspec skips: it raises RecursionError, not DecodeError
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"extra":' + b'[' * 1100 + b']' * 1100 + b'}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"extra":' + b'{"a":' * 5000 + b'1' + b'}' * 5000 + b'}',
    b'{"event_id":"e","account_id":"a","ts":1769904000000,"account":' + b'[' * 30000 + b']' * 30000 + b'}',
])
def test_edge_records(raw):
    _same(raw)


def test_rejections_keep_their_codes_and_messages():
    raw = b'{"event_id":"e","account_id":"a","ts":1769904000000,"client":{"asn":4294967296}}'
    assert parse_record(raw, NOW) == Rejection("bad_value", "client.asn: 4294967296 outside [0, 4294967295]", "e")
    raw = b'{"event_id":"e","account_id":"a","ts":1769904000000,"request":{"thinking":1}}'
    assert parse_record(raw, NOW) == Rejection("wrong_type", "request.thinking: expected boolean, got int", "e")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(max_size=20), st.sampled_from(ODD_VALUES + RAW_ODD))
_groups = {group: st.fixed_dictionaries({}, optional={field: _scalars for field, _, _, _ in specs})
           for group, specs in parse._SPEC.items() if group is not None}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(
    {"event_id": st.one_of(st.text(min_size=1, max_size=5), _scalars),
     "account_id": st.one_of(st.text(min_size=1, max_size=5), _scalars),
     "ts": st.one_of(st.integers(NOW - 10**11, NOW + 10**8), st.sampled_from(ODD_VALUES), _scalars)},
    optional={"org_id": _scalars, "api_key_id": _scalars, **{g: st.one_of(s, _scalars) for g, s in _groups.items()}}))
def test_typed_path_agrees_on_arbitrary_records(obj):
    _same(json.dumps(obj).encode())
