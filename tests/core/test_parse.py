"""Ingest validation: good records become Events, every kind of bad record a Rejection with a code."""

from __future__ import annotations

import pytest

from app.ingest.parse import MAX_RECORD_BYTES, Rejection, parse_record
from tests.helpers import T0, event, line

NOW = T0 + 3_600_000


def test_minimal_record_parses_with_rfc3339_and_epoch_ms():
    a = parse_record(line({"event_id": "e", "ts": "2026-02-01T12:00:00.123Z", "account_id": "a"}), NOW)
    b = parse_record(line({"event_id": "e", "ts": T0 + 123, "account_id": "a"}), NOW)
    assert not isinstance(a, Rejection)
    assert a.ts_ms == b.ts_ms == T0 + 123
    c = parse_record(line({"event_id": "e", "ts": "2026-02-01T14:00:00.123+02:00", "account_id": "a"}), NOW)
    assert c.ts_ms == T0 + 123


def test_full_record_flattens_groups_and_derives_ip_prefix():
    ev = parse_record(line(event(
        account={"created_at": "2026-01-30T00:00:00Z", "kyc": "email", "payment_fp": "pf1",
                 "billing_country": "US", "signup_channel": "edu"},
        client={"ip": "203.0.113.77", "asn": 64500, "asn_type": "residential", "ja4": "t13d", "country": "US"},
        request={"model": "m1", "prompt": "hello", "input_tokens": 10, "thinking": True, "turn": 1},
        response={"status": 200, "output_tokens": 42},
        org_id="org-1", unknown_field={"ignored": True},
    )), NOW)
    assert not isinstance(ev, Rejection)
    assert (ev.kyc, ev.payment_fp, ev.ip_prefix, ev.output_tokens, ev.org_id) == (
        "email", "pf1", "203.0.113.0/24", 42, "org-1")
    assert "hello" not in repr(ev)  # the prompt never reaches a log line through repr
    v6 = parse_record(line(event(client={"ip": "2001:db8:1:2::9"})), NOW)
    assert v6.ip_prefix == "2001:db8:1::/48"


@pytest.mark.parametrize(("raw", "code"), [
    (b"\xff\xfe\x00", "not_utf8"),
    (b"{not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (b'"text"', "not_object"),
    (line({"ts": T0, "account_id": "a"}), "missing_field"),
    (line({"event_id": "e", "account_id": "a"}), "missing_field"),
    (line({"event_id": "e", "ts": T0}), "missing_field"),
    (line({"event_id": "", "ts": T0, "account_id": "a"}), "bad_value"),
    (line({"event_id": "e", "ts": T0, "account_id": "x" * 129}), "bad_value"),
    (line({"event_id": 5, "ts": T0, "account_id": "a"}), "wrong_type"),
    (line({"event_id": "e", "ts": True, "account_id": "a"}), "wrong_type"),
    (line({"event_id": "e", "ts": "yesterday", "account_id": "a"}), "bad_timestamp"),
    (line({"event_id": "e", "ts": "2026-02-01T12:00:00", "account_id": "a"}), "bad_timestamp"),
    (line({"event_id": "e", "ts": NOW + 2 * 86_400_000, "account_id": "a"}), "ts_out_of_range"),
    (line({"event_id": "e", "ts": "2019-01-01T00:00:00Z", "account_id": "a"}), "ts_out_of_range"),
    (line(event(response={"output_tokens": -5})), "bad_value"),
    (line(event(response={"output_tokens": "12"})), "wrong_type"),
    (line(event(request={"input_tokens": 10**12})), "bad_value"),
    (line(event(request={"thinking": "yes"})), "wrong_type"),
    (line(event(client={"ip": "999.1.1.1"})), "bad_value"),
    (line(event(client={"asn_type": "satellite"})), "bad_value"),
    (line(event(account={"billing_country": "usa"})), "bad_value"),
    (line(event(client="not-an-object")), "wrong_type"),
    (line(event(request={"turn": 0})), "bad_value"),
])
def test_bad_records_are_rejected_with_a_reason(raw, code):
    r = parse_record(raw, NOW)
    assert isinstance(r, Rejection), r
    assert r.code == code, r.message
    assert r.message


def test_oversized_record_is_rejected_before_decoding():
    big = line(event(request={"prompt": "x" * (MAX_RECORD_BYTES + 10)}))
    r = parse_record(big, NOW)
    assert isinstance(r, Rejection) and r.code == "too_large"


def test_rejection_keeps_event_id_when_known():
    r = parse_record(line(event(7, response={"latency_ms": -1})), NOW)
    assert isinstance(r, Rejection) and r.event_id == "ev-acct-1-7"


def test_null_optional_fields_count_as_absent():
    ev = parse_record(line(event(org_id=None, client={"ip": None, "ja4": None}, request=None)), NOW)
    assert not isinstance(ev, Rejection) and ev.org_id is None and ev.ip is None


def test_a_number_without_a_fractional_part_is_an_integer_as_in_the_schema():
    ev = parse_record(line({**event(request={"tools": 3.0, "input_tokens": 12.0}), "ts": float(T0 + 5)}), NOW)
    assert not isinstance(ev, Rejection)
    assert (ev.ts_ms, ev.tools, ev.input_tokens) == (T0 + 5, 3, 12)
    assert all(type(v) is int for v in (ev.ts_ms, ev.tools, ev.input_tokens))
    bad = parse_record(line(event(request={"tools": 2.5})), NOW)
    assert isinstance(bad, Rejection) and bad.code == "wrong_type"


def test_a_huge_integral_float_is_not_turned_into_an_integer_past_64_bits():
    # 1e308 has no fractional part, but as an int it is a 309-digit number orjson could not write back
    # into state: it is rejected as the integer literal of that size would be
    for raw in (line({**event(), "ts": 1e308}),
                line(event(account={"created_at": 1e308, "kyc": "card"})),
                line(event(request={"tools": -1e300}))):
        assert isinstance(parse_record(raw, NOW), Rejection)
