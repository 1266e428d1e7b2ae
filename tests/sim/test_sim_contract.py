"""Every simulated event is a valid contract-v1 gateway request event, and carries nothing else."""

from __future__ import annotations

import json
import re
from pathlib import Path

from jsonschema import Draft202012Validator, FormatChecker

ROOT = Path(__file__).resolve().parents[2]
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# The field names and enums of contracts.md, closed (no extra fields): stricter than the project schema,
# which ignores unknown fields, so a typo in a field name fails here.
_E = {"type": "string"}
CONTRACT_V1_STRICT = {
    "type": "object", "additionalProperties": False, "required": ["event_id", "ts", "account_id"],
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "ts": {"type": "string", "pattern": TS.pattern},
        "account_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "org_id": _E, "api_key_id": _E,
        "account": {"type": "object", "additionalProperties": False, "properties": {
            "created_at": {"type": "string", "pattern": TS.pattern},
            "tier": {"enum": ["free", "build", "scale", "enterprise"]},
            "signup_channel": {"enum": ["standard", "edu", "startup", "security_research", "enterprise", "reseller"]},
            "kyc": {"enum": ["none", "email", "card", "id_verified"]},
            "payment_fp": _E, "billing_country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "email_domain_class": {"enum": ["corporate", "edu", "freemail", "disposable"]}}},
        "client": {"type": "object", "additionalProperties": False, "properties": {
            "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
            "asn": {"type": "integer", "minimum": 1},
            "asn_type": {"enum": ["residential", "mobile", "datacenter", "cloud", "vpn", "proxy", "unknown"]},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"}, "ja4": _E, "user_agent": _E, "device_id": _E,
            "access_path": {"enum": ["api", "cloud_marketplace", "consumer_app", "ide_agent"]}}},
        "request": {"type": "object", "additionalProperties": False, "properties": {
            "model": _E, "prompt": {"type": "string", "maxLength": 2000}, "system_prompt_hash": _E,
            "input_tokens": {"type": "integer", "minimum": 0}, "cache_read_tokens": {"type": "integer", "minimum": 0},
            "thinking": {"type": "boolean"}, "tools": {"type": "integer", "minimum": 0},
            "images": {"type": "integer", "minimum": 0}, "turn": {"type": "integer", "minimum": 1}}},
        "response": {"type": "object", "additionalProperties": False, "properties": {
            "status": {"type": "integer"}, "output_tokens": {"type": "integer", "minimum": 0},
            "thinking_tokens": {"type": "integer", "minimum": 0}, "latency_ms": {"type": "integer", "minimum": 0}}},
    },
}


def test_every_event_validates_against_the_project_schema(smoke_events: list[dict]) -> None:
    schema = json.loads((ROOT / "schemas" / "gateway-request.schema.json").read_text(encoding="utf-8"))
    project = Draft202012Validator(schema, format_checker=FormatChecker())
    strict = Draft202012Validator(CONTRACT_V1_STRICT, format_checker=FormatChecker())
    for ev in smoke_events:
        for v in (project, strict):
            err = next(v.iter_errors(ev), None)
            assert err is None, f"{ev['event_id']}: {list(err.absolute_path)}: {err.message}"


def test_event_ids_unique_and_time_ordered(smoke_events: list[dict]) -> None:
    ids = [e["event_id"] for e in smoke_events]
    assert len(set(ids)) == len(ids)
    ts = [e["ts"] for e in smoke_events]
    assert ts == sorted(ts)  # fixed-width UTC strings sort in time order
    assert all(TS.match(t) for t in ts)


def test_smoke_is_small_but_varied(smoke_events: list[dict]) -> None:
    assert 15_000 <= len(smoke_events) <= 25_000
    paths = {e["client"]["access_path"] for e in smoke_events}
    assert paths == {"api", "cloud_marketplace", "consumer_app", "ide_agent"}
    assert {e["client"]["asn_type"] for e in smoke_events} >= {"residential", "mobile", "cloud", "datacenter"}
    assert any(e["request"]["images"] > 0 for e in smoke_events)
    assert any(e["request"]["tools"] > 0 for e in smoke_events)
    assert any(e["response"]["status"] != 200 for e in smoke_events)
    assert any(":" in e["client"]["ip"] for e in smoke_events)  # some IPv6


def test_new_model_appears_only_after_release(smoke_events: list[dict]) -> None:
    new = [e["ts"] for e in smoke_events if e["request"]["model"] == "atlas-4-pro"]
    assert new and min(new) >= "2026-02-01T10:00:00.000Z"
    after = [e for e in smoke_events if e["ts"] >= "2026-02-01T14:00:00.000Z"]
    assert sum(e["request"]["model"] == "atlas-4-pro" for e in after) / len(after) > 0.2


def test_common_ja4s_carry_most_traffic_with_a_long_tail(smoke_events: list[dict]) -> None:
    from collections import Counter

    counts = Counter(e["client"]["ja4"] for e in smoke_events)
    top = sum(n for _, n in counts.most_common(8))
    assert top / len(smoke_events) > 0.8
    assert len(counts) > 20  # plus rarer ones
