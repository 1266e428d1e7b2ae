"""The explain tests' traffic file: tests.traffic (two heavy harvesters, a card-sharing ring, thirty ordinary
users) plus a bystander on the ring's TLS fingerprint, a canary in every prompt, and two dead-lettered lines
that name an account."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from app.emit.records import iso_ms
from app.ingest.parse import parse_ts
from tests.helpers import T0, event, line
from tests.traffic import build

CANARY = "CANARY-7f3a9c-do-not-print"
NOW = "2026-02-02T00:00:00Z"   # the pipeline clock for plausibility checks (T0 + 12 h)
NOW_MS = T0 + 12 * 3_600_000


@dataclass(frozen=True)
class Traffic:
    path: Path
    roles: dict[str, str]
    alerts: list
    decisions: list
    lines: int


def _bystander(i: int) -> dict:
    """A new, unverified account of its own org that shares only the ring's rare TLS fingerprint and asks
    ordinary questions: it joins the ring's cluster, and must not be implicated by it."""
    ts = T0 + 90_000 + i * 300_000
    return {"event_id": f"bystander-{i}", "ts": iso_ms(ts), "account_id": "bystander",
            "account": {"created_at": iso_ms(T0 - 86_400_000), "kyc": "email", "signup_channel": "standard",
                        "payment_fp": "pf-bystander", "billing_country": "US", "email_domain_class": "freemail"},
            "org_id": "org-bystander",
            "client": {"ip": f"192.0.2.{i + 1}", "asn_type": "residential", "country": "US",
                       "ja4": "t13d_rare_ring", "access_path": "api"},
            "request": {"model": "model-a", "prompt": f"Suggest {i + 2} names for a bakery", "input_tokens": 20},
            "response": {"status": 200, "output_tokens": 80, "latency_ms": 400}}


def write(path: Path) -> tuple[dict[str, str], int]:
    records, roles = build(T0)
    evs = [orjson.loads(value) for _, value in records] + [_bystander(i) for i in range(6)]
    roles["bystander"] = "benign"
    evs.sort(key=lambda e: parse_ts(e["ts"], "ts"))
    out = []
    for ev in evs:
        ev["request"]["prompt"] += f" {CANARY}"
        out.append(orjson.dumps(ev))
    # dead letters naming heavy-0: a bad timestamp (line 6), a negative count with the canary as prompt (line 10)
    out.insert(5, line(event(0, "heavy-0") | {"ts": "not-a-time"}))
    out.insert(9, line(event(1, "heavy-0", request={"prompt": CANARY}, response={"output_tokens": -1})))
    path.write_bytes(b"\n".join(out) + b"\n")
    return roles, len(out)
