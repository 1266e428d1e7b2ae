"""Validates one raw gateway record against contract v1 and flattens it into an `Event`.

Hand-written rather than a generic JSON Schema validator because it runs once per request on the hot
path; tests/contracts checks that it accepts and rejects exactly what `schemas/gateway-request.schema.json`
does. Bad input is returned as a `Rejection` (code + message), never raised.

A record is first decoded by msgspec into typed structs built from the same field table (`_SPEC`), which
checks types, lengths, ranges and enums while it decodes, in one pass; what msgspec cannot express (the
timestamps, the IP address) is checked after it. A record that fails any of it takes the original path
(orjson, then `validate`), which assigns the rejection's code and message: so rejections are exactly what
they were, and tests/core/test_parse_typed.py holds the typed path to return only Events that path
returns too.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson

from app.ingest.event import Event

MAX_RECORD_BYTES = 1024 * 1024
MAX_FUTURE_MS = 24 * 3600 * 1000          # a gateway clock may drift, a day ahead is not drift
MAX_PAST_MS = 3 * 365 * 24 * 3600 * 1000  # older than ~3 years is a broken producer, not a replay
MAX_TOKENS = 50_000_000

TIERS = frozenset({"free", "build", "scale", "enterprise"})
CHANNELS = frozenset({"standard", "edu", "startup", "security_research", "enterprise", "reseller"})
KYC = frozenset({"none", "email", "card", "id_verified"})
EMAIL_CLASSES = frozenset({"corporate", "edu", "freemail", "disposable"})
ASN_TYPES = frozenset({"residential", "mobile", "datacenter", "cloud", "vpn", "proxy", "unknown"})
ACCESS_PATHS = frozenset({"api", "cloud_marketplace", "consumer_app", "ide_agent"})


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str      # not_utf8 | too_large | not_json | not_object | missing_field | wrong_type | bad_value
                   # | bad_timestamp | ts_out_of_range
    message: str
    event_id: str | None = None


class BadField(Exception):
    """A value that fails its check: the code and message of the Rejection it becomes. Raised out of nested
    field checks, and by `parse_ts` to the modules that read other inputs' timestamps with it."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message


# (kind, argument): "id" max length, "str" max length, "enum" allowed set, "cc" country code,
# "int" (min, max), "bool", "ts", "ip"
_SPEC: dict[str | None, tuple[tuple[str, str, str, Any], ...]] = {
    None: (
        ("org_id", "org_id", "id", 128),
        ("api_key_id", "api_key_id", "id", 128),
    ),
    "account": (
        ("created_at", "created_at_ms", "ts", None),
        ("tier", "tier", "enum", TIERS),
        ("signup_channel", "signup_channel", "enum", CHANNELS),
        ("kyc", "kyc", "enum", KYC),
        ("payment_fp", "payment_fp", "id", 128),
        ("billing_country", "billing_country", "cc", None),
        ("email_domain_class", "email_domain_class", "enum", EMAIL_CLASSES),
    ),
    "client": (
        ("ip", "ip", "ip", None),
        ("asn", "asn", "int", (0, 4_294_967_295)),
        ("asn_type", "asn_type", "enum", ASN_TYPES),
        ("country", "country", "cc", None),
        ("ja4", "ja4", "id", 128),
        ("user_agent", "user_agent", "str", 1024),
        ("device_id", "device_id", "id", 128),
        ("access_path", "access_path", "enum", ACCESS_PATHS),
    ),
    "request": (
        ("model", "model", "id", 128),
        ("prompt", "prompt", "str", MAX_RECORD_BYTES),
        ("system_prompt_hash", "system_prompt_hash", "id", 128),
        ("input_tokens", "input_tokens", "int", (0, MAX_TOKENS)),
        ("cache_read_tokens", "cache_read_tokens", "int", (0, MAX_TOKENS)),
        ("thinking", "thinking", "bool", None),
        ("tools", "tools", "int", (0, 10_000)),
        ("images", "images", "int", (0, 10_000)),
        ("turn", "turn", "int", (1, 1_000_000)),
    ),
    "response": (
        ("status", "status", "int", (100, 599)),
        ("output_tokens", "output_tokens", "int", (0, MAX_TOKENS)),
        ("thinking_tokens", "thinking_tokens", "int", (0, MAX_TOKENS)),
        ("latency_ms", "latency_ms", "int", (0, 24 * 3600 * 1000)),
    ),
}


_I64 = 2.0**63  # orjson reads integers up to 64 bits; a float converted to an int is held to the signed range


def _integral(value: Any) -> Any:
    """An int for a float without a fractional part inside the signed 64-bit range (JSON Schema's integer:
    1.0 and 1.7e12 are integers; 1e308 is no value to keep in state), else `value` as it is."""
    if isinstance(value, float) and value.is_integer() and -_I64 <= value < _I64:
        return int(value)
    return value


def parse_ts(value: Any, field: str) -> int:
    """RFC 3339 string with an offset, or integer epoch milliseconds, to epoch milliseconds; `BadField`
    when it is neither."""
    if isinstance(value, bool):
        raise BadField("wrong_type", f"{field}: expected RFC 3339 string or epoch milliseconds, got bool")
    value = _integral(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if len(value) < 20 or len(value) > 40 or value[10] not in "Tt":
            raise BadField("bad_timestamp", f"{field}: not an RFC 3339 date-time: {value[:40]!r}")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise BadField("bad_timestamp", f"{field}: not an RFC 3339 date-time: {value[:40]!r}") from None
        if dt.tzinfo is None:
            raise BadField("bad_timestamp", f"{field}: RFC 3339 needs an offset (Z or ±hh:mm): {value!r}")
        return int(dt.timestamp() * 1000 + (0.5 if dt.timestamp() >= 0 else -0.5))
    raise BadField("wrong_type", f"{field}: expected RFC 3339 string or epoch milliseconds, "
                             f"got {type(value).__name__}")


def _ip_prefix(value: str, field: str) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise BadField("bad_value", f"{field}: not an IPv4/IPv6 address: {value[:64]!r}") from None
    if ip.version == 4:
        return str(ipaddress.ip_network((int(ip) & 0xFFFFFF00, 24)))
    return str(ipaddress.ip_network((int(ip) >> 80 << 80, 48)))


_PREFIXES: dict[str, str] = {}  # client IP -> its prefix: a client sends many requests
_MINUTES: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM" -> epoch ms of that minute
_CACHE_MAX = 1 << 16


def _cached_prefix(ip: str) -> str:
    """`_ip_prefix(ip, "client.ip")`, remembered (only successes: a bad address raises every time)."""
    prefix = _PREFIXES.get(ip)
    if prefix is None:
        prefix = _ip_prefix(ip, "client.ip")
        if len(_PREFIXES) >= _CACHE_MAX:
            _PREFIXES.clear()
        _PREFIXES[ip] = prefix
    return prefix


def _fast_ts(value: str) -> int | None:
    """`parse_ts` of the gateway's own form "YYYY-MM-DDTHH:MM:SS.mmmZ" without datetime: the minute is
    parsed once by `parse_ts` and remembered, seconds and milliseconds are added. None for anything
    else (or an invalid minute): the caller then takes the general path, which reports errors."""
    if len(value) != 24 or value[23] != "Z" or value[16] != ":" or value[19] != "." or not value.isascii():
        return None
    sec, ms = value[17:19], value[20:23]
    if not (sec.isdigit() and ms.isdigit()) or sec > "59":
        return None
    minute = value[:16]
    base = _MINUTES.get(minute)
    if base is None:
        try:
            base = parse_ts(minute + ":00.000Z", "ts")
        except BadField:
            return None
        if len(_MINUTES) >= _CACHE_MAX:
            _MINUTES.clear()
        _MINUTES[minute] = base
    return base + int(sec) * 1000 + int(ms)


def _check(kind: str, arg: Any, value: Any, field: str) -> Any:
    if kind == "id" or kind == "str":
        if not isinstance(value, str):
            raise BadField("wrong_type", f"{field}: expected string, got {type(value).__name__}")
        if kind == "id" and not value:
            raise BadField("bad_value", f"{field}: must not be empty")
        if len(value) > arg:
            raise BadField("bad_value", f"{field}: longer than {arg} characters")
        return value
    if kind == "int":
        value = _integral(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadField("wrong_type", f"{field}: expected integer, got {type(value).__name__}")
        lo, hi = arg
        if value < lo or value > hi:
            raise BadField("bad_value", f"{field}: {value} outside [{lo}, {hi}]")
        return value
    if kind == "enum":
        if not isinstance(value, str):
            raise BadField("wrong_type", f"{field}: expected string, got {type(value).__name__}")
        if value not in arg:
            raise BadField("bad_value", f"{field}: {value[:40]!r} is not one of {sorted(arg)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadField("wrong_type", f"{field}: expected boolean, got {type(value).__name__}")
        return value
    if kind == "cc":
        if not isinstance(value, str):
            raise BadField("wrong_type", f"{field}: expected string, got {type(value).__name__}")
        if len(value) != 2 or not ("A" <= value[0] <= "Z" and "A" <= value[1] <= "Z"):
            raise BadField("bad_value", f"{field}: {value[:8]!r} is not an ISO 3166 alpha-2 code")
        return value
    if kind == "ts":
        return parse_ts(value, field)
    if kind == "ip":
        if not isinstance(value, str):
            raise BadField("wrong_type", f"{field}: expected string, got {type(value).__name__}")
        return value
    raise AssertionError(kind)  # pragma: no cover - _SPEC is static


def _required_id(obj: dict, name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise BadField("missing_field", f"{name}: required")
    if not isinstance(value, str):
        raise BadField("wrong_type", f"{name}: expected string, got {type(value).__name__}")
    if not value or len(value) > 128:
        raise BadField("bad_value", f"{name}: must be 1-128 characters")
    return value


# _SPEC split by group and kind for the fast path: (group or None, ids, strs, ints, enums, bools, ccs, tss, ips)
def _fast_spec(group: str | None) -> tuple:
    by_kind: dict[str, list] = {k: [] for k in ("id", "str", "int", "enum", "bool", "cc", "ts", "ip")}
    for name, attr, kind, arg in _SPEC[group]:
        by_kind[kind].append((name, attr, arg) if arg is not None else (name, attr))
    return (group, *map(tuple, by_kind.values()))


_FAST_SPEC = tuple(_fast_spec(g) for g in _SPEC)


def _fast_event(obj: dict, now_ms: int) -> Event | None:
    """The Event for a record that passes every check, else None (the checked path then finds the
    error). Same checks as `_check`, written as one loop per kind with exact type tests: no call per
    field and no exception machinery for the records that are fine, which is nearly all of them."""
    eid, acct, ts = obj.get("event_id"), obj.get("account_id"), obj.get("ts")
    if type(eid) is not str or type(acct) is not str or not 0 < len(eid) <= 128 or not 0 < len(acct) <= 128:
        return None
    if type(ts) is str:
        ts = _fast_ts(ts)
    elif type(ts) is not int:
        return None
    if ts is None or ts > now_ms + MAX_FUTURE_MS or ts < now_ms - MAX_PAST_MS:
        return None
    fields: dict[str, Any] = {"event_id": eid, "account_id": acct, "ts_ms": ts}
    for group, ids, strs, ints, enums, bools, ccs, tss, ips in _FAST_SPEC:
        if group is None:
            src = obj
        else:
            src = obj.get(group)
            if src is None:
                continue
            if type(src) is not dict:
                return None
        get = src.get
        for name, attr, most in ids:
            v = get(name)
            if v is not None:
                if type(v) is not str or not 0 < len(v) <= most:
                    return None
                fields[attr] = v
        for name, attr, most in strs:
            v = get(name)
            if v is not None:
                if type(v) is not str or len(v) > most:
                    return None
                fields[attr] = v
        for name, attr, (lo, hi) in ints:
            v = get(name)
            if v is not None:
                if type(v) is not int or not lo <= v <= hi:
                    return None
                fields[attr] = v
        for name, attr, allowed in enums:
            v = get(name)
            if v is not None:
                if type(v) is not str or v not in allowed:
                    return None
                fields[attr] = v
        for name, attr in bools:
            v = get(name)
            if v is not None:
                if type(v) is not bool:
                    return None
                fields[attr] = v
        for name, attr in ccs:
            v = get(name)
            if v is not None:
                if type(v) is not str or len(v) != 2 or not ("A" <= v[0] <= "Z" and "A" <= v[1] <= "Z"):
                    return None
                fields[attr] = v
        for name, attr in tss:
            v = get(name)
            if v is not None:
                if type(v) is str:
                    v = _fast_ts(v)
                    if v is None:
                        return None
                elif type(v) is not int:
                    return None
                fields[attr] = v
        for name, attr in ips:
            v = get(name)
            if v is not None:
                if type(v) is not str:
                    return None
                prefix = _PREFIXES.get(v)
                if prefix is None:
                    try:
                        prefix = _cached_prefix(v)
                    except BadField:
                        return None
                fields[attr] = v
                fields["ip_prefix"] = prefix
    return Event(**fields)


def validate(obj: Any, now_ms: int) -> Event | Rejection:
    """Validate a decoded JSON value. `now_ms` is the driver's reference time for plausibility bounds."""
    if type(obj) is dict:
        ev = _fast_event(obj, now_ms)
        if ev is not None:
            return ev
    if not isinstance(obj, dict):
        return Rejection("not_object", f"expected a JSON object, got {type(obj).__name__}")
    event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
    try:
        fields: dict[str, Any] = {
            "event_id": _required_id(obj, "event_id"),
            "account_id": _required_id(obj, "account_id"),
        }
        if obj.get("ts") is None:
            raise BadField("missing_field", "ts: required")
        ts = parse_ts(obj["ts"], "ts")
        if ts > now_ms + MAX_FUTURE_MS:
            raise BadField("ts_out_of_range", f"ts: more than a day in the future of the pipeline clock ({ts})")
        if ts < now_ms - MAX_PAST_MS:
            raise BadField("ts_out_of_range", f"ts: more than three years in the past ({ts})")
        fields["ts_ms"] = ts
        for group, specs in _SPEC.items():
            if group is None:
                src = obj
                prefix = ""
            else:
                src = obj.get(group)
                if src is None:
                    continue
                if not isinstance(src, dict):
                    raise BadField("wrong_type", f"{group}: expected object, got {type(src).__name__}")
                prefix = group + "."
            for name, attr, kind, arg in specs:
                value = src.get(name)
                if value is not None:
                    fields[attr] = _check(kind, arg, value, prefix + name)
        if "ip" in fields:
            fields["ip_prefix"] = _cached_prefix(fields["ip"])
    except BadField as bad:
        return Rejection(bad.code, bad.message, event_id)
    return Event(**fields)


# ------------------------------------------------------------------------------------------- typed path
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # orjson's integers: it reads anything wider as a float (rejected)


def _typed(kind: str, arg: Any) -> Any:
    """The msgspec type of one `_SPEC` field: what `_check` accepts, or None (null counts as absent)."""
    if kind == "id":
        t: Any = Annotated[str, msgspec.Meta(min_length=1, max_length=arg)]
    elif kind == "str":
        t = Annotated[str, msgspec.Meta(max_length=arg)]
    elif kind == "int":
        t = Annotated[int, msgspec.Meta(ge=arg[0], le=arg[1])]
    elif kind == "enum":
        t = Literal[tuple(sorted(arg))]
    elif kind == "bool":
        t = bool
    elif kind == "cc":  # the length bounds keep "US\n" out: "$" also matches before a final newline
        t = Annotated[str, msgspec.Meta(min_length=2, max_length=2, pattern="^[A-Z][A-Z]$")]
    elif kind == "ts":
        t = str | int  # checked after decoding (_fast_ts, the pipeline clock's bounds)
    elif kind == "ip":
        t = str  # checked after decoding (_cached_prefix)
    else:  # pragma: no cover - _SPEC is static
        raise AssertionError(kind)
    return t | None


def _struct(name: str, specs: tuple, head: list | None = None) -> type:
    fields = [*(head or []), *((field, _typed(kind, arg), None) for field, _, kind, arg in specs)]
    return msgspec.defstruct(name, fields, kw_only=True)


_GROUP_TYPES = {group: _struct(f"_{group.title()}", specs) for group, specs in _SPEC.items() if group is not None}
_Record = _struct("_Record", _SPEC[None], [
    ("event_id", Annotated[str, msgspec.Meta(min_length=1, max_length=128)]),
    ("account_id", Annotated[str, msgspec.Meta(min_length=1, max_length=128)]),
    ("ts", str | int),
    *((group, t | None, None) for group, t in _GROUP_TYPES.items()),
])
_decode = msgspec.json.Decoder(_Record).decode
_DecodeError = msgspec.DecodeError  # ValidationError is one too
# a group the record leaves out (or sends as null): every field absent
_NO_ACCOUNT, _NO_CLIENT, _NO_REQUEST, _NO_RESPONSE = (_GROUP_TYPES[g]() for g in ("account", "client", "request",
                                                                                   "response"))


def _typed_event(raw: bytes, now_ms: int) -> Event | None:
    """The Event for a record msgspec decodes and every remaining check passes, else None (the original
    path then decides). Same result as orjson + `validate` for every record it returns an Event for."""
    try:
        rec = _decode(raw)
    except (_DecodeError, RecursionError):  # msgspec's nesting limit is Python's recursion limit
        return None
    ts = rec.ts
    if type(ts) is str:
        ts = _fast_ts(ts)
        if ts is None:
            return None
    if ts > now_ms + MAX_FUTURE_MS or ts < now_ms - MAX_PAST_MS:
        return None
    created = ip = prefix = None
    a, c, q, r = rec.account, rec.client, rec.request, rec.response
    if a is None:
        a = _NO_ACCOUNT
    else:
        created = a.created_at
        if created is not None:
            if type(created) is str:
                created = _fast_ts(created)
                if created is None:
                    return None
            elif not _INT_MIN <= created <= _INT_MAX:
                return None
    if c is None:
        c = _NO_CLIENT
    else:
        ip = c.ip
        if ip is not None:
            prefix = _PREFIXES.get(ip)
            if prefix is None:
                try:
                    prefix = _cached_prefix(ip)
                except BadField:
                    return None
    if q is None:
        q = _NO_REQUEST
    if r is None:
        r = _NO_RESPONSE
    # positional, in Event's field order (tests/core/test_parse_typed.py compares every field)
    return Event(
        rec.event_id, ts, rec.account_id, rec.org_id, rec.api_key_id,
        created, a.tier, a.signup_channel, a.kyc, a.payment_fp, a.billing_country, a.email_domain_class,
        ip, prefix, c.asn, c.asn_type, c.country, c.ja4, c.user_agent, c.device_id, c.access_path,
        q.model, q.prompt, q.system_prompt_hash, q.input_tokens, q.cache_read_tokens, q.thinking, q.tools, q.images,
        q.turn,
        r.status, r.output_tokens, r.thinking_tokens, r.latency_ms,
    )


def parse_record(raw: bytes, now_ms: int) -> Event | Rejection:
    """Decode and validate one raw record (a Kafka message value or a JSONL line, without newline)."""
    if len(raw) > MAX_RECORD_BYTES:
        return Rejection("too_large", f"record is {len(raw)} bytes, limit {MAX_RECORD_BYTES}")
    ev = _typed_event(raw, now_ms)
    return ev if ev is not None else _checked_record(raw, now_ms)


def _checked_record(raw: bytes, now_ms: int) -> Event | Rejection:
    """The original path: orjson, then `validate`, which names what is wrong with a record."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return Rejection("not_utf8", f"record is not valid UTF-8 at byte {uexc.start}")
        return Rejection("not_json", f"not JSON: {exc}"[:300])
    return validate(obj, now_ms)
