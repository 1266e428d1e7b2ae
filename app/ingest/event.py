"""The validated gateway request event (contract v1), flattened into one frozen, slotted value.

A msgspec Struct rather than a frozen dataclass: built once per request on the hot path, and a frozen
dataclass's generated __init__ sets each of its 35 fields through object.__setattr__. Its fields are
strings, integers and booleans only, so it never holds a reference cycle and the garbage collector need
not track it (gc=False). Fields, order, defaults, equality, hashing and immutability are as they were.
"""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, frozen=True, gc=False):
    event_id: str
    ts_ms: int
    account_id: str
    org_id: str | None = None
    api_key_id: str | None = None
    # account
    created_at_ms: int | None = None
    tier: str | None = None
    signup_channel: str | None = None
    kyc: str | None = None
    payment_fp: str | None = None
    billing_country: str | None = None
    email_domain_class: str | None = None
    # client
    ip: str | None = None
    ip_prefix: str | None = None  # derived: /24 for IPv4, /48 for IPv6
    asn: int | None = None
    asn_type: str | None = None
    country: str | None = None
    ja4: str | None = None
    user_agent: str | None = None
    device_id: str | None = None
    access_path: str | None = None
    # request; `prompt` is read by the content stage and never stored or emitted
    model: str | None = None
    prompt: str | None = None
    system_prompt_hash: str | None = None
    input_tokens: int | None = None
    cache_read_tokens: int | None = None
    thinking: bool | None = None
    tools: int | None = None
    images: int | None = None
    turn: int | None = None
    # response
    status: int | None = None
    output_tokens: int | None = None
    thinking_tokens: int | None = None
    latency_ms: int | None = None

    def __repr__(self) -> str:  # never let the prompt reach a log line through a repr
        return f"Event(event_id={self.event_id!r}, ts_ms={self.ts_ms}, account_id={self.account_id!r})"
