"""Encoding of one gateway request event (contract v1) and the response figures a request plausibly got."""

from __future__ import annotations

import random

import orjson

from app.sim.accounts import Account
from app.sim.timing import TsFormatter, loguniform

# Output speed (tokens/s) and time to first token by model role; the release is a large, slower model.
SPEED = {"small": (190.0, 250), "medium": (95.0, 450), "large": (55.0, 800), "new": (48.0, 900)}

_fmt_ts = TsFormatter()


def prompt_tokens(text: str) -> int:
    """Rough tokenizer: ~4 ASCII chars per token, ~1 token per CJK/other multibyte char."""
    n = len(text)
    b = len(text.encode())
    wide = (b - n) // 2
    return max(1, (n - wide) // 4 + wide)


def response(rng: random.Random, role: str, out_lo: int, out_hi: int, think_lo: int, think_hi: int,
             thinking: bool) -> dict[str, int]:
    u = rng.random()
    if u < 0.012:
        status = 429
    elif u < 0.015:
        status = 529 if rng.random() < 0.5 else 500
    elif u < 0.018:
        status = 400
    else:
        status = 200
    if status != 200:
        return {"status": status, "output_tokens": 0, "thinking_tokens": 0, "latency_ms": rng.randint(40, 900)}
    out = int(loguniform(rng, out_lo, out_hi))
    think = int(loguniform(rng, max(1, think_lo), think_hi)) if thinking and think_hi > 0 else 0
    tps, ttft = SPEED.get(role, SPEED["medium"])
    latency = ttft * (0.6 + rng.random()) + (out + think) / (tps * (0.75 + 0.5 * rng.random())) * 1000
    return {"status": status, "output_tokens": out, "thinking_tokens": think, "latency_ms": int(latency)}


def encode(event_id: str, ts_ms: int, account: Account, key_id: str | None, client: dict | orjson.Fragment,
           request: dict, resp: dict) -> bytes:
    ev = {"event_id": event_id, "ts": _fmt_ts(ts_ms), "account_id": account.id, "org_id": account.org_id}
    if key_id is not None:
        ev["api_key_id"] = key_id
    ev["account"] = account.frag
    ev["client"] = client
    ev["request"] = request
    ev["response"] = resp
    return orjson.dumps(ev)
