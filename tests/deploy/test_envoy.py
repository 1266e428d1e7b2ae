"""deploy/envoy/envoy.yaml: Envoy's own config schema, and agreement with the enforcer it calls.

No Envoy binary can be installed here (Debian packages none; no registry this project installs from ships
one), so the schema check is the next best: `envoy-check` (tests/deploy/envoycheck, built with Go into
.tools/bin on first use) loads the file as Envoy does, protobuf JSON into envoy.config.bootstrap.v3 from
go-control-plane v1.40.0 (unknown fields, enum values and @type URLs are errors), unpacks every typed_config
and runs protoc-gen-validate's rules on all of it. Then the cross-file facts no schema sees: the ext_authz
cluster is the enforcer's default address, the headers Envoy forwards are the ones the enforcer reads, the
ones it passes back are the ones the enforcer sets, and a request shaped as Envoy sends it gets the answer
the enforcer gives.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from app.enforce.http import answer_headers
from app.enforce.keys import SCOPE_HEADERS
from app.enforce.service import DEFAULT_LISTEN, EnforcerService, parse_listen
from app.enforce.table import Entry, Verdict

from .conftest import DEPLOY, REPO, TOOLS_BIN, load_yaml

ENVOY_FILE = DEPLOY / "envoy" / "envoy.yaml"
CHECKER_SRC = Path(__file__).parent / "envoycheck"


@pytest.fixture(scope="session")
def envoy_check() -> str:
    """.tools/bin/envoy-check, (re)built when older than its sources."""
    out = TOOLS_BIN / "envoy-check"
    sources = [CHECKER_SRC / n for n in ("main.go", "go.mod", "go.sum")]
    if out.exists() and out.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return str(out)
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is missing: it builds tests/deploy/envoycheck (see tests/deploy/README.md)", pytrace=False)
    proc = subprocess.run([go, "build", "-C", str(CHECKER_SRC), "-o", str(out), "."], capture_output=True,
                          text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.fail(f"building envoy-check failed:\n{proc.stderr}", pytrace=False)
    return str(out)


def _check(envoy_check: str, config: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run([envoy_check], input=json.dumps(config), capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return load_yaml(ENVOY_FILE)


def _hcm(config: dict) -> dict:
    [listener] = config["static_resources"]["listeners"]
    [chain] = listener["filter_chains"]
    [hcm] = chain["filters"]
    assert hcm["name"] == "envoy.filters.network.http_connection_manager"
    return hcm["typed_config"]


def _filters(config: dict) -> dict[str, dict]:
    return {f["name"]: f["typed_config"] for f in _hcm(config)["http_filters"]}


def _clusters(config: dict) -> dict[str, dict]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_envoy_config_passes_envoys_schema(envoy_check: str, config: dict) -> None:
    proc = _check(envoy_check, config)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("breakage", ["unknown field", "bad enum", "port out of range", "empty cluster",
                                      "unknown type"])
def test_envoy_check_rejects_broken_configs(envoy_check: str, config: dict, breakage: str) -> None:
    """The checker itself can fail: each of these is a config Envoy refuses."""
    c = copy.deepcopy(config)
    filters = _filters(c)
    ext = filters["envoy.filters.http.ext_authz"]
    if breakage == "unknown field":
        ext["http_service"]["path_prefx"] = ext["http_service"].pop("path_prefix")
    elif breakage == "bad enum":
        filters["envoy.filters.http.header_mutation"]["mutations"]["request_mutations"][0]["append"][
            "append_action"] = "OVERWRITE"
    elif breakage == "port out of range":
        _clusters(c)["distill_guard_enforcer"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0][
            "endpoint"]["address"]["socket_address"]["port_value"] = 70000
    elif breakage == "empty cluster":
        ext["http_service"]["server_uri"]["cluster"] = ""
    else:
        ext["@type"] = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuth"
    proc = _check(envoy_check, c)
    assert proc.returncode == 1 and proc.stderr, breakage


def test_filter_order(config: dict) -> None:
    names = [f["name"] for f in _hcm(config)["http_filters"]]
    assert names == ["envoy.filters.http.header_mutation", "envoy.filters.http.ext_authz",
                     "envoy.filters.http.router"], "x-client-ip is set before the check; the router is last"


def test_ext_authz_calls_the_enforcers_default_address(config: dict) -> None:
    ext = _filters(config)["envoy.filters.http.ext_authz"]
    service = ext["http_service"]
    host, port = parse_listen(DEFAULT_LISTEN)
    assert service["server_uri"]["uri"] == f"http://{host}:{port}"
    cluster = _clusters(config)[service["server_uri"]["cluster"]]
    [endpoint] = [e["endpoint"] for group in cluster["load_assignment"]["endpoints"]
                  for e in group["lb_endpoints"]]
    assert endpoint["address"]["socket_address"] == {"address": host, "port_value": port}
    assert cluster["load_assignment"]["cluster_name"] == cluster["name"]
    assert cluster["health_checks"][0]["http_health_check"]["path"] == "/healthz"
    assert cluster["common_lb_config"]["healthy_panic_threshold"]["value"] == 0
    assert service["path_prefix"] == "/check"
    for route in _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]:
        assert route["route"]["cluster"] in _clusters(config)


def test_forwarded_headers_are_the_ones_the_enforcer_reads(config: dict) -> None:
    ext = _filters(config)["envoy.filters.http.ext_authz"]
    forwarded = {p["exact"] for p in ext["allowed_headers"]["patterns"]}
    assert forwarded == {h.decode() for h in SCOPE_HEADERS}
    assert {p["exact"] for p in ext["disallowed_headers"]["patterns"]} >= {"authorization"}
    assert "authorization_request" not in ext["http_service"], "allowed_headers there is deprecated"
    [mutation] = _filters(config)["envoy.filters.http.header_mutation"]["mutations"]["request_mutations"]
    assert mutation["append"]["header"] == {"key": "x-client-ip",
                                            "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}
    assert mutation["append"]["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD", "a client cannot pick its IP"
    assert _hcm(config)["use_remote_address"] is True


def test_headers_passed_back_are_the_ones_the_enforcer_sets(config: dict) -> None:
    response = _filters(config)["envoy.filters.http.ext_authz"]["http_service"]["authorization_response"]
    to_client = {p["exact"] for p in response["allowed_client_headers"]["patterns"]}
    to_upstream = {p["exact"] for p in response["allowed_upstream_headers"]["patterns"]}
    now = time.time() * 1000
    set_on_denial: set[str] = set()
    for action, rank in (("block", 0), ("challenge", 1), ("throttle", 2)):
        entry = Entry("account:a", rank, "dc_x", int(now), int(now) + 60_000, 6 if rank == 2 else None)
        set_on_denial |= {k for k, _ in answer_headers(Verdict(action, entry, 5))[1]}
    assert to_client == set_on_denial
    allow_within_throttle = Entry("account:a", 2, "dc_x", int(now), int(now) + 60_000, 6)
    assert to_upstream == {k for k, _ in answer_headers(Verdict("allow", allow_within_throttle))[1]}


def test_failure_mode_is_explicit(config: dict) -> None:
    ext = _filters(config)["envoy.filters.http.ext_authz"]
    assert ext["failure_mode_allow"] is True and ext["failure_mode_allow_header_add"] is True
    text = ENVOY_FILE.read_text(encoding="utf-8")
    assert "fail OPEN" in text and "failure_mode_allow: false" in text, "the header documents the choice"
    timeout = ext["http_service"]["server_uri"]["timeout"]
    assert timeout.endswith("s") and float(timeout[:-1]) <= 0.5


def test_a_check_as_envoy_sends_it(config: dict) -> None:
    """The request Envoy's HTTP ext_authz client builds from this config (the original method, the
    path_prefix + the original path, Host, Content-Length: 0 and only the allowed headers), sent to a real
    enforcer server: its answer is the map's."""
    import http.client

    ext = _filters(config)["envoy.filters.http.ext_authz"]
    allowed = {p["exact"] for p in ext["allowed_headers"]["patterns"]}
    original = {"x-account-id": "acct-9", "x-org-id": "org-1", "authorization": "Bearer sk-secret",
                "x-client-ip": "203.0.113.7", "content-type": "application/json"}
    sent = {k: v for k, v in original.items() if k in allowed} | {"content-length": "0", "host": "api"}

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        async def start():
            service = EnforcerService("unused:9092", "unused")
            now = int(time.time() * 1000)
            service.table.apply({"decision_id": "dc_envoy", "ts": _iso(now), "scope": "ip_prefix",
                                 "value": "203.0.113.0/24", "action": "challenge", "ttl_s": 600,
                                 "reasons": ["CL_EGRESS"], "alert_id": "al_x", "mode": "enforce"}, now)
            _, port = await service.start_server("127.0.0.1", 0)
            return service, port

        service, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", ext["http_service"]["path_prefix"] + "/v1/messages", headers=sent)
        r = conn.getresponse()
        r.read()
        conn.close()
        assert r.status == 403
        assert r.getheader("x-distill-guard-action") == "challenge"
        assert r.getheader("x-distill-guard-decision-id") == "dc_envoy"

        async def stop():
            service.server.close()
            await asyncio.sleep(0.05)
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def test_envoy_check_sources_are_pinned() -> None:
    mod = (CHECKER_SRC / "go.mod").read_text(encoding="utf-8")
    assert "github.com/envoyproxy/go-control-plane/envoy v1.40.0" in mod
    assert (CHECKER_SRC / "go.sum").exists()
    assert REPO in CHECKER_SRC.parents
