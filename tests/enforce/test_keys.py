"""Headers to map keys: the enforcer's own ip_prefix against the detector's, the scopes against the
contract, and the enforcer's independence from the detection core."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.enforce.keys import SCOPE_HEADERS, SCOPES, ip_prefix, key_for, keys_from_headers
from app.ingest.parse import _ip_prefix as core_ip_prefix
from tests.conftest import ROOT

ADDRESSES = [
    "1.2.3.4", "1.2.3.255", "1.2.3.0", "0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.100.200",
    "2001:db8::1", "2001:db8:abcd:12::1", "2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", "::1", "::",
    "fe80::1", "::ffff:1.2.3.4", "2606:4700:4700::1111", "2001:0db8:0000:0000:0000:0000:0000:0001",
    "64:ff9b::c000:221",
]


@pytest.mark.parametrize("ip", ADDRESSES)
def test_ip_prefix_is_the_detectors(ip: str) -> None:
    assert ip_prefix(ip) == core_ip_prefix(ip, "client.ip")


@pytest.mark.parametrize("bad", ["", "1.2.3", "1.2.3.4.5", "300.1.1.1", "not-an-ip", "1.2.3.4:443", "[::1]"])
def test_not_an_address_names_no_prefix(bad: str) -> None:
    assert ip_prefix(bad) is None
    assert key_for("ip_prefix", bad) is None


def test_every_decision_scope_has_a_header(schemas) -> None:
    assert set(schemas["decision"]["properties"]["scope"]["enum"]) == SCOPES
    assert len(SCOPE_HEADERS) == len(SCOPES)


def test_keys_are_the_decisions_kafka_keys() -> None:
    headers = {"x-account-id": "acct-1", "x-api-key-id": "key-1", "x-org-id": "org-1", "x-payment-fp": "pf",
               "x-ja4": "t13d1516h2_8daaf6152771_e5627efa2ab1", "x-client-ip": "2001:db8:1:2::9",
               "x-device-id": "dev-1"}
    assert keys_from_headers(headers.get) == [
        "account:acct-1", "api_key:key-1", "org:org-1", "payment_fp:pf",
        "ja4:t13d1516h2_8daaf6152771_e5627efa2ab1", "ip_prefix:2001:db8:1::/48", "device_id:dev-1"]
    assert keys_from_headers({"x-account-id": "", "x-client-ip": "junk"}.get) == []


def test_enforcer_does_not_import_the_detection_core() -> None:
    code = ("import sys, json; import app.enforce.cli, app.enforce.service; app.enforce.cli.kafka_options; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('app'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    modules = set(json.loads(out.stdout))
    assert modules >= {"app.enforce.service", "app.enforce.table", "app.enforce.http"}
    assert modules <= {"app", "app.enforce", "app.enforce.cli", "app.enforce.service", "app.enforce.table",
                       "app.enforce.http", "app.enforce.keys", "app.enforce.metrics"}, modules
