"""Which request headers name which decision scopes, and the map keys they look up.

A decision on (scope, value) is held under the key "<scope>:<value>", the decision's own Kafka key
(contract v1). A scope name has no ':', so the first ':' splits a key unambiguously even when the value
has colons (an IPv6 prefix).
"""

from __future__ import annotations

import ipaddress

# header (lower case, as bytes: the HTTP server matches raw header names) -> the scope it names. The
# gateway sends the first three on every request and the others where it has them; x-device-id is not
# in issue 20's list, but device_id is a decision scope (a card or device ring's accounts are decided
# on it), so a gateway that knows the device can send it too.
SCOPE_HEADERS: dict[bytes, str] = {
    b"x-account-id": "account",
    b"x-api-key-id": "api_key",
    b"x-org-id": "org",
    b"x-payment-fp": "payment_fp",
    b"x-ja4": "ja4",
    b"x-client-ip": "ip_prefix",
    b"x-device-id": "device_id",
}
# the scopes schemas/decision.schema.json allows: every one is looked up (test_keys checks the two agree)
SCOPES = frozenset(SCOPE_HEADERS.values())

_PREFIXES: dict[str, str | None] = {}  # client IP -> its prefix (None: not an address); a client sends many
_CACHE_MAX = 1 << 16


def ip_prefix(ip: str) -> str | None:
    """The detector's ip_prefix of a client address: the /24 of an IPv4 address, the /48 of an IPv6 one
    (an IPv4-mapped IPv6 address is IPv6, as the detector sees it). None when `ip` is not an address.

    The same function as app/ingest/parse.py's `_ip_prefix`, rewritten here so that the enforcer does not
    import the detection core; tests/enforce/test_keys.py compares the two on a set of addresses."""
    prefix = _PREFIXES.get(ip, "")
    if prefix != "":
        return prefix
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        prefix = None
    else:
        if addr.version == 4:
            prefix = str(ipaddress.ip_network((int(addr) & 0xFFFFFF00, 24)))
        else:
            prefix = str(ipaddress.ip_network((int(addr) >> 80 << 80, 48)))
    if len(_PREFIXES) >= _CACHE_MAX:
        _PREFIXES.clear()
    _PREFIXES[ip] = prefix
    return prefix


def key_for(scope: str, value: str) -> str | None:
    """The map key a request header's value looks up, or None when the value names nothing (empty, or
    x-client-ip that is not an address)."""
    if not value:
        return None
    if scope == "ip_prefix":
        prefix = ip_prefix(value)
        return None if prefix is None else "ip_prefix:" + prefix
    return scope + ":" + value


def keys_from_headers(get) -> list[str]:
    """The keys a request looks up, in SCOPE_HEADERS order; `get(name: str) -> str | None` reads a header
    (for servers whose request headers are a mapping)."""
    keys = []
    for name, scope in SCOPE_HEADERS.items():
        value = get(name.decode())
        if value:
            key = key_for(scope, value.strip())
            if key is not None:
                keys.append(key)
    return keys
