"""The enforcer's HTTP answers, through its real server on a loopback port and real HTTP clients
(http.client, and raw sockets for what a library would hide: pipelining, malformed requests)."""

from __future__ import annotations

import asyncio
import http.client
import re
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.enforce.service import EnforcerService, parse_listen
from tests.enforce.records import decision


class Server:
    """An EnforcerService whose server runs on an event loop in a thread; the map is changed on that loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.service = self.call(lambda: EnforcerService("unused:9092", "unused"))
        _, self.port = asyncio.run_coroutine_threadsafe(
            self.service.start_server("127.0.0.1", 0), self.loop).result(10)

    def call(self, fn):
        async def run():
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def apply(self, rec: dict) -> str:
        return self.call(lambda: self.service.table.apply(rec))

    def request(self, path: str = "/check", headers: dict | None = None, method: str = "GET",
                body: bytes | None = None, conn: http.client.HTTPConnection | None = None):
        c = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        if conn is None:
            c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body

    def raw(self, data: bytes, expect_close: bool = True) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(data)
            out = b""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    break
                if not chunk:
                    break
                out += chunk
                if not expect_close and out.count(b"HTTP/1.1") >= data.count(b"HTTP/1.1"):
                    break
            return out

    def close(self) -> None:
        async def stop():
            self.service.server.close()
            await asyncio.sleep(0.05)  # connection_lost of the clients' closed connections
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def srv():
    s = Server()
    yield s
    s.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def test_allow_without_a_decision(srv: Server) -> None:
    status, headers, body = srv.request("/check", {"x-account-id": "a1", "x-org-id": "o1"})
    assert status == 200 and body == b""
    assert "x-distill-guard-decision-id" not in headers and "x-distill-guard-action" not in headers


def test_block_and_challenge_are_403_with_action_and_decision_id(srv: Server) -> None:
    blk = decision("account", "a1", "block", now_ms())
    chal = decision("api_key", "k2", "challenge", now_ms())
    srv.apply(blk)
    srv.apply(chal)
    status, headers, body = srv.request("/check/v1/messages", {"x-account-id": "a1"})
    assert status == 403 and headers["x-distill-guard-action"] == "block"
    assert headers["x-distill-guard-decision-id"] == blk["decision_id"] and body
    status, headers, _ = srv.request("/check/v1/messages", {"x-account-id": "a2", "x-api-key-id": "k2"})
    assert status == 403 and headers["x-distill-guard-action"] == "challenge"
    assert headers["x-distill-guard-decision-id"] == chal["decision_id"]


def test_throttle_is_429_with_retry_after_past_limit_rpm(srv: Server) -> None:
    thr = decision("org", "o1", "throttle", now_ms(), limit_rpm=2)
    srv.apply(thr)
    for _ in range(2):
        status, headers, _ = srv.request("/check", {"x-account-id": "a1", "x-org-id": "o1"})
        assert status == 200
        assert headers["x-distill-guard-decision-id"] == thr["decision_id"]
        assert headers["x-distill-guard-action"] == "throttle"
    status, headers, _ = srv.request("/check", {"x-account-id": "a1", "x-org-id": "o1"})
    assert status == 429 and headers["x-distill-guard-action"] == "throttle"
    assert headers["x-distill-guard-decision-id"] == thr["decision_id"]
    assert 29 <= int(headers["retry-after"]) <= 30


@pytest.mark.parametrize("header, value, scope, decided", [
    ("x-client-ip", "10.1.2.77", "ip_prefix", "10.1.2.0/24"),
    ("x-client-ip", "2001:db8:aa:bb::5", "ip_prefix", "2001:db8:aa::/48"),
    ("x-payment-fp", "pf_9", "payment_fp", "pf_9"),
    ("x-ja4", "t13d1516h2_8daaf6152771_e5627efa2ab1", "ja4", "t13d1516h2_8daaf6152771_e5627efa2ab1"),
    ("x-device-id", "dev-7", "device_id", "dev-7"),
])
def test_optional_headers_reach_their_scopes(srv: Server, header, value, scope, decided) -> None:
    d = decision(scope, decided, "block", now_ms())
    srv.apply(d)
    status, headers, _ = srv.request("/check", {"x-account-id": "clean", header: value})
    assert status == 403 and headers["x-distill-guard-decision-id"] == d["decision_id"]


def test_any_path_and_method_under_check_only(srv: Server) -> None:
    srv.apply(decision("account", "a1", "block", now_ms()))
    h = {"x-account-id": "a1"}
    for path in ("/check", "/check/", "/check/v1/messages?beta=true", "/check?x=1"):
        assert srv.request(path, h)[0] == 403, path
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"):
        assert srv.request("/check/v1/messages", h, method=method)[0] == 403, method
    for path in ("/", "/checkout", "/v1/messages", "/healthzz"):
        assert srv.request(path, h)[0] == 404, path


def test_keep_alive_with_bodies(srv: Server) -> None:
    srv.apply(decision("account", "a1", "block", now_ms()))
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        for i in range(5):
            who = "a1" if i % 2 else "a2"
            status, _, _ = srv.request("/check/v1/messages", {"x-account-id": who}, method="POST",
                                       body=b'{"prompt": "x"}' * (i * 1000), conn=conn)
            assert status == (403 if who == "a1" else 200)
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(srv: Server) -> None:
    srv.apply(decision("account", "bad", "block", now_ms()))
    reqs = b"".join(f"GET /check HTTP/1.1\r\nhost: x\r\nx-account-id: {a}\r\n\r\n".encode()
                    for a in ("ok1", "bad", "ok2", "bad"))
    out = srv.raw(reqs, expect_close=False)
    assert re.findall(rb"HTTP/1\.1 (\d{3})", out) == [b"200", b"403", b"200", b"403"]


def test_a_body_split_across_reads_is_skipped(srv: Server) -> None:
    srv.apply(decision("account", "bad", "block", now_ms()))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST /check HTTP/1.1\r\nx-account-id: ok\r\ncontent-length: 10\r\n\r\n01234")
        time.sleep(0.1)
        s.sendall(b"56789GET /check HTTP/1.1\r\nx-account-id: bad\r\n\r\n")
        out = b""
        while out.count(b"HTTP/1.1 ") < 2:
            out += s.recv(65536)
    assert re.findall(rb"HTTP/1\.1 (\d{3})", out) == [b"200", b"403"]


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /check\r\n\r\n", b"400"),
    (b"GARBAGE\r\nx-account-id a1\r\n\r\n", b"400"),
    (b"GET /check HTTP/1.1\r\ncontent-length: lots\r\n\r\n", b"400"),
    (b"POST /check HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"501"),
    (b"GET /check HTTP/1.1\r\nx-pad: " + b"a" * 70_000, b"431"),
])
def test_bad_requests_are_refused_and_closed(srv: Server, request_bytes: bytes, status: bytes) -> None:
    out = srv.raw(request_bytes)
    assert out.split(b" ")[1] == status and b"connection: close" in out


def test_http_10_and_connection_close_close_after_the_answer(srv: Server) -> None:
    for req in (b"GET /check HTTP/1.0\r\n\r\n", b"GET /check HTTP/1.1\r\nconnection: close\r\n\r\n"):
        out = srv.raw(req)  # returns once the server closed
        assert out.startswith(b"HTTP/1.1 200") and b"connection: close" in out


def test_healthz_is_503_until_caught_up(srv: Server) -> None:
    assert srv.request("/healthz")[0] == 503
    srv.call(lambda: setattr(srv.service, "ready", True))
    assert srv.request("/healthz")[0] == 200


def test_metrics_count_checks_by_answer(srv: Server) -> None:
    srv.apply(decision("account", "blk", "block", now_ms()))
    srv.apply(decision("account", "thr", "throttle", now_ms(), limit_rpm=1))
    srv.apply(decision("account", "sh", "block", now_ms(), mode="shadow"))
    for who in ("ok", "ok", "blk", "thr", "thr", "thr", "sh"):
        srv.request("/check", {"x-account-id": who})
    status, headers, body = srv.request("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    checks = {s.labels["answer"]: s.value for s in fams["distill_guard_enforcer_checks"].samples
              if s.name.endswith("_total")}
    assert checks == {"allow": 4, "throttle": 2, "challenge": 0, "block": 1}
    latency = {s.labels.get("le"): s.value for s in fams["distill_guard_enforcer_check_seconds"].samples
               if s.name.endswith("_bucket")}
    assert latency["+Inf"] == 7
    decisions = {s.labels["outcome"]: s.value for s in fams["distill_guard_enforcer_decisions"].samples
                 if s.name.endswith("_total")}
    assert decisions["applied"] == 2 and decisions["shadow"] == 1
    assert fams["distill_guard_enforcer_live_entries"].samples[0].value == 2
    assert "process_resident_memory_bytes" in fams


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8181") == ("127.0.0.1", 8181)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":8181") == ("0.0.0.0", 8181)
    for bad in ("8181", "host:", "host:port", "h:70000"):
        with pytest.raises(ValueError):
            parse_listen(bad)
