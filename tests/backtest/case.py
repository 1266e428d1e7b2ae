"""The backtest tests' hand-made traffic: tests.traffic (two heavy harvesters throttled on their own
behaviour at score 55, a ring of eight on one card, blocked as a cluster, thirty ordinary users), two "lone"
accounts of one org whose trace-elicitation prompts score 45 (an alert, below the throttle step), and two
lines that are dead letters.

Rule variants (`variant`) that move known accounts:
- `loosen`: throttle from score 45 (was 55), established customers up to block (was throttle): lone-0 and
  lone-1 newly enforced (throttle), heavy-0 and heavy-1 stronger (throttle -> block: content and volume
  evidence, two families), so two newly blocked;
- `tighten`: an established customer acted on only for censorship-safe rewrites (was also trace
  elicitation): heavy-0 and heavy-1 released."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import yaml

from app.emit.records import iso_ms
from app.settings import DEFAULT_RULES
from tests.helpers import T0
from tests.traffic import BAD_RECORDS, TRACE_PROMPTS, build

NOW = "2026-02-02T00:00:00Z"   # the pipeline clock: T0 + 12 h
DAY = 86_400_000
LONE = ("lone-0", "lone-1")
HEAVY = ("heavy-0", "heavy-1")
RING = tuple(f"ring-{i}" for i in range(8))


def _lone(acct: str, i: int) -> dict[str, Any]:
    ts = T0 + 600_000 + i * 300_000 + (0 if acct == LONE[0] else 7_000)
    return {"event_id": f"{acct}-{i}", "ts": iso_ms(ts), "account_id": acct, "org_id": "org-lone",
            "account": {"created_at": iso_ms(T0 - DAY), "kyc": "none", "signup_channel": "standard",
                        "payment_fp": f"pf-{acct}", "billing_country": "US", "email_domain_class": "disposable"},
            "client": {"ip": f"198.51.100.{20 + i}", "asn_type": "residential", "country": "US",
                       "ja4": "t13d1516h2_common", "access_path": "api"},
            "request": {"model": "model-a", "prompt": TRACE_PROMPTS[i % 2].format(n=100 + i), "input_tokens": 120},
            "response": {"status": 200, "output_tokens": 700, "latency_ms": 800}}


def write_events(path: Path) -> int:
    """The file; returns its number of lines."""
    records, _ = build(T0)
    evs = [orjson.loads(v) for _, v in records] + [_lone(a, i) for a in LONE for i in range(6)]
    evs.sort(key=lambda e: (e["ts"], e["account_id"]))
    lines = [orjson.dumps(e) for e in evs]
    lines.insert(3, BAD_RECORDS[0])   # not JSON
    lines.insert(40, BAD_RECORDS[3])  # no event_id
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


def rules_doc() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8"))


def variant(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(rules_doc())
    policy = doc["policy"]
    if name == "loosen":
        policy["actions"][0]["min_score"] = 45
        policy["established_max_action"] = "block"
    elif name == "tighten":
        policy["established_requires"] = ["ACCT_CENSOR_REWRITE"]
    else:
        raise ValueError(name)
    return doc


def write_rules(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
