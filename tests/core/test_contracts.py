"""The hand-written input validator and schemas/gateway-request.schema.json accept and reject the same
records; every record the project emits validates against its schema."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from app.emit.records import Alert, DeadLetter, Decision, Reason
from app.ingest.parse import Rejection, validate
from tests.helpers import T0

NOW = T0 + 3_600_000

TIMESTAMPS = ["2026-02-01T12:00:00.123Z", "2026-02-01T12:00:00Z", "2026-02-01T13:00:00+01:00",
              T0, T0 + 5, "2026-02-01 12:00:00Z", "2026-02-01T12:00:00", "02/01/2026", "", 1.5, None, True]
IPS = ["203.0.113.7", "2001:db8::1", "::1", "10.0.0.256", "not-an-ip", "", 7]
STRINGS = ["x", "", "a" * 128, "a" * 129, 3, None, ["list"]]
INTS = [0, 1, 599, 600, -1, 50_000_000, 50_000_001, 10**12, True, 1.0, "5", None]
ENUM_VALUES = ["residential", "cloud", "edu", "email", "free", "enterprise", "api", "ide_agent", "corporate",
               "disposable", "bogus", "", None, 1]
CC = ["US", "CN", "us", "USA", "", None, 12]


def group(fields: dict) -> st.SearchStrategy:
    return st.one_of(
        st.fixed_dictionaries({}, optional={k: st.sampled_from(v) for k, v in fields.items()}),
        st.sampled_from(["not-an-object", 5, None, []]),
    )


records = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.sampled_from(STRINGS),
        "ts": st.sampled_from(TIMESTAMPS),
        "account_id": st.sampled_from(STRINGS),
        "org_id": st.sampled_from(STRINGS),
        "account": group({"created_at": TIMESTAMPS, "tier": ENUM_VALUES, "signup_channel": ENUM_VALUES,
                          "kyc": ENUM_VALUES, "payment_fp": STRINGS, "billing_country": CC,
                          "email_domain_class": ENUM_VALUES}),
        "client": group({"ip": IPS, "asn": INTS, "asn_type": ENUM_VALUES, "country": CC, "ja4": STRINGS,
                         "access_path": ENUM_VALUES}),
        "request": group({"model": STRINGS, "prompt": ["hi", "", None, 4], "thinking": [True, False, "yes"],
                          "tools": INTS, "turn": INTS, "input_tokens": INTS}),
        "response": group({"status": INTS, "output_tokens": INTS, "latency_ms": INTS}),
    },
)


@pytest.fixture(scope="module")
def gateway_validator(schemas):
    return Draft202012Validator(schemas["gateway-request"], format_checker=Draft202012Validator.FORMAT_CHECKER)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records)
def test_validator_and_schema_agree(gateway_validator, rec):
    ours = validate(rec, NOW)
    schema_ok = gateway_validator.is_valid(rec)
    ours_ok = not isinstance(ours, Rejection)
    assert ours_ok == schema_ok, (rec, ours, [e.message for e in gateway_validator.iter_errors(rec)])


def test_schema_rejects_the_parse_tests_bad_samples(gateway_validator):
    bad = [{"ts": T0, "account_id": "a"}, {"event_id": "", "ts": T0, "account_id": "a"},
           {"event_id": "e", "ts": T0, "account_id": "a", "response": {"output_tokens": -1}},
           {"event_id": "e", "ts": "yesterday", "account_id": "a"}]
    for rec in bad:
        assert not gateway_validator.is_valid(rec)
        assert isinstance(validate(rec, NOW), Rejection)


def _check(schema: dict, record: dict) -> None:
    v = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(record)]
    assert not errors, errors


def test_emitted_record_types_validate(schemas):
    reason = Reason("ACCT_TRACE_ELICIT", 0.5, 0.3, "5 of 10 requests")
    alert = Alert("al_1", T0, "account", "a1", "high", 72.5, (reason,), ("a1",), 1, T0 - 1000, T0, "enforce")
    _check(schemas["alert"], alert.wire())
    for action, rpm in (("throttle", 6), ("challenge", None), ("block", None), ("lift", None)):
        d = Decision("dc_1", T0, "account", "a1", action, 3600, ("ACCT_TRACE_ELICIT",), "al_1", "enforce",
                     limit_rpm=rpm, cluster_id="cl_1")
        _check(schemas["decision"], d.wire())
    for payload in (b'{"a": 1}', b"\xff\xfe" * 5000, "é".encode() * 5000):
        dl = DeadLetter(T0, {"topic": "gateway.requests", "partition": 0, "offset": 9}, "not_json", "bad", payload)
        _check(schemas["dlq"], dl.wire())
        assert len(dl.wire()["payload"]) <= 4096


def test_decision_schema_rejects_throttle_without_limit(schemas):
    d = Decision("dc_1", T0, "account", "a1", "throttle", 60, ("X_Y",), "al_1", "enforce", limit_rpm=None)
    w = d.wire()
    assert not Draft202012Validator(schemas["decision"]).is_valid(w)
