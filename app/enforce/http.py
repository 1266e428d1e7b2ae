"""The enforcer's HTTP/1.1 server: Envoy ext_authz "HTTP service" checks, /healthz and /metrics.

A minimal asyncio server of our own rather than aiohttp: on one core it answers about three times as many
checks at a lower p99 (`python -m app.bench.enforcer --ab`, figures in docs/enforcer.md), and a check
needs little of HTTP: a request line, a few headers, a body to skip. What it implements:
- HTTP/1.1 keep-alive (HTTP/1.0 and `Connection: close` close after the answer) and pipelining (answers
  in order, written together);
- bodies with Content-Length are read and ignored (ext_authz sends one only with `with_request_body`);
  `Transfer-Encoding: chunked` is refused with 501 and the connection closed (Envoy buffers a body it
  forwards to an authorization service and sends it with a Content-Length);
- a request head over 64 KiB is answered 431, a malformed one 400; both close the connection;
- reading pauses while the client does not read its answers (transport flow control).

Routes: any method on /check, /check/... or /check?... (Envoy appends the original path to the
path_prefix) -> the map's answer; GET /healthz -> 200 once the topic has been read to the end offsets it
had at start, 503 before; GET /metrics -> Prometheus text; anything else -> 404.
"""

from __future__ import annotations

import asyncio
import time

from app.enforce.keys import SCOPE_HEADERS, key_for
from app.enforce.table import Verdict

MAX_HEAD = 64 * 1024

STATUS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
          431: "Request Header Fields Too Large", 501: "Not Implemented", 503: "Service Unavailable"}
ACTION_STATUS = {"allow": 200, "throttle": 429, "challenge": 403, "block": 403}


def answer_headers(v: Verdict) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the answer to a check (shared with the aiohttp variant in the bench)."""
    status = ACTION_STATUS[v.action]
    if v.entry is None:
        return status, [], b""
    headers = [("x-distill-guard-action", v.entry.action), ("x-distill-guard-decision-id", v.entry.decision_id)]
    if v.action == "throttle":
        headers.append(("retry-after", str(v.retry_after_s)))
    body = b"" if status == 200 else f"distill-guard: {v.action}\n".encode()
    return status, headers, body


def _response(status: int, headers: list[tuple[str, str]] = (), body: bytes = b"", close: bool = False,
              content_type: str | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {STATUS[status]}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if content_type:
        lines.append(f"content-type: {content_type}")
    lines.append(f"content-length: {len(body)}")
    if close:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


_ALLOW = _response(200)
_ALLOW_CLOSE = _response(200, close=True)


class _Request:
    __slots__ = ("close", "keys", "method", "path", "skip")


class CheckProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, service) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.skip = 0  # body bytes of the current request still to discard
        self.closing = False
        self.paused = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.transport = None

    def pause_writing(self) -> None:
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.paused:
            self.paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.skip:
            if len(data) <= self.skip:
                self.skip -= len(data)
                return
            data = data[self.skip:]
            self.skip = 0
        buf = self.buf + data if self.buf else data
        out: list[bytes] = []
        while buf:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._fail(out, 431)
                    return
                break
            started = time.perf_counter()
            req = self._parse(buf[:end])
            if req is None:
                self._fail(out, 400)
                return
            if req.skip < 0:
                self._fail(out, 501)
                return
            body_end = end + 4 + req.skip
            if body_end > len(buf):
                self.skip = body_end - len(buf)
                buf = b""
            else:
                buf = buf[body_end:]
            out.append(self.service.respond(req, started))
            if req.close:
                self.closing = True
                break
        self.buf = buf
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.closing:
            self.transport.close()

    def _fail(self, out: list[bytes], status: int) -> None:
        out.append(_response(status, close=True))
        self.transport.write(b"".join(out))
        self.closing = True
        self.buf = b""
        self.transport.close()

    @staticmethod
    def _parse(head: bytes) -> _Request | None:
        """The request line and the headers a check uses; None when malformed. `skip` is the body length,
        -1 for a chunked body."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return None
        req = _Request()
        req.method, req.path = parts[0], parts[1]
        req.close = parts[2] == b"HTTP/1.0"
        req.skip = 0
        keys = []
        for line in lines[1:]:
            colon = line.find(b":")
            if colon <= 0:
                return None
            name = line[:colon].lower()
            scope = SCOPE_HEADERS.get(name)
            if scope is not None:
                value = line[colon + 1:].strip()
                if value:
                    key = key_for(scope, value.decode("utf-8", "surrogateescape"))
                    if key is not None:
                        keys.append(key)
            elif name == b"content-length":
                try:
                    req.skip = int(line[colon + 1:])
                except ValueError:
                    return None
                if req.skip < 0:
                    return None
            elif name == b"connection":
                value = line[colon + 1:].strip().lower()
                if value == b"close":
                    req.close = True
                elif value == b"keep-alive":
                    req.close = False
            elif name == b"transfer-encoding":
                req.skip = -1
        req.keys = keys
        return req


def render_answer(v: Verdict, close: bool) -> bytes:
    if v.entry is None:
        return _ALLOW_CLOSE if close else _ALLOW
    status, headers, body = answer_headers(v)
    return _response(status, headers, body, close=close, content_type="text/plain" if body else None)


def render_plain(status: int, body: bytes, close: bool, content_type: str = "text/plain") -> bytes:
    return _response(status, (), body, close=close, content_type=content_type)
