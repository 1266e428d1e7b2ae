"""Simulated accounts: opaque ids, the contract's `account` block pre-encoded once, helpers to draw knobs."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import orjson

from app.sim.timing import format_ts


class Ids:
    """Opaque random-looking identifiers; the prefix names the kind of id, never the group it belongs to."""

    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self, prefix: str, bits: int = 64) -> str:
        return f"{prefix}_{self._rng.getrandbits(bits):0{bits // 4}x}"


def weighted(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, [weights[k] for k in keys])[0]


@dataclass(slots=True)
class Account:
    id: str
    org_id: str
    keys: list[str]
    country: str
    created_ms: int
    payment_fp: str | None
    frag: orjson.Fragment
    # per-account behaviour and identity carried by the generator, never emitted
    replacement: bool = False
    state: dict = field(default_factory=dict)


def make_account(*, ids: Ids, org_id: str, keys: list[str], created_ms: int, tier: str, channel: str, kyc: str,
                 payment_fp: str | None, billing_country: str, email_class: str, country: str,
                 replacement: bool = False) -> Account:
    block = {"created_at": format_ts(created_ms), "tier": tier, "signup_channel": channel, "kyc": kyc}
    if payment_fp is not None:
        block["payment_fp"] = payment_fp
    block["billing_country"] = billing_country
    block["email_domain_class"] = email_class
    return Account(ids("acct"), org_id, keys, country, created_ms, payment_fp, orjson.Fragment(orjson.dumps(block)),
                   replacement)
