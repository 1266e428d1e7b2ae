"""Output records of contract v1 and their wire form. Ids are derived from content, never random,
so a replay of the same input yields the same ids (consumers de-duplicate on them)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_ALERT_ACCOUNTS = 100
MAX_DLQ_PAYLOAD = 4096


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds to RFC 3339 UTC with milliseconds, e.g. 2026-02-01T12:00:00.123Z."""
    dt = datetime.fromtimestamp(ts_ms // 1000, tz=UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ts_ms % 1000:03d}Z"


def stable_id(prefix: str, *parts: object) -> str:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=12)
    return f"{prefix}_{h.hexdigest()}"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    value: float | str
    threshold: float | str | None
    detail: str

    def wire(self) -> dict[str, Any]:
        v = self.value
        if isinstance(v, float):
            v = round(v, 4)
        t = self.threshold
        if isinstance(t, float):
            t = round(t, 4)
        return {"code": self.code, "value": v, "threshold": t, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    ts_ms: int
    scope: str
    value: str
    severity: str
    score: float
    reasons: tuple[Reason, ...]
    accounts: tuple[str, ...]
    account_count: int
    window_start_ms: int
    window_end_ms: int
    mode: str
    cluster_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.value}"

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "alert_id": self.alert_id,
            "ts": iso_ms(self.ts_ms),
            "subject": {"scope": self.scope, "value": self.value},
            "severity": self.severity,
            "score": round(self.score, 2),
            "reasons": [r.wire() for r in self.reasons],
            "accounts": list(self.accounts[:MAX_ALERT_ACCOUNTS]),
            "account_count": self.account_count,
            "window": {"start": iso_ms(self.window_start_ms), "end": iso_ms(self.window_end_ms)},
            "mode": self.mode,
        }
        if self.cluster_id is not None:
            out["cluster_id"] = self.cluster_id
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    ts_ms: int
    scope: str
    value: str
    action: str
    ttl_s: int
    reasons: tuple[str, ...]
    alert_id: str
    mode: str
    limit_rpm: int | None = None
    cluster_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.value}"

    @property
    def expires_at_ms(self) -> int:
        return self.ts_ms + self.ttl_s * 1000

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "ts": iso_ms(self.ts_ms),
            "scope": self.scope,
            "value": self.value,
            "action": self.action,
            "ttl_s": self.ttl_s,
            "expires_at": iso_ms(self.expires_at_ms),
            "reasons": list(self.reasons),
            "alert_id": self.alert_id,
            "mode": self.mode,
        }
        if self.action == "throttle":
            out["limit_rpm"] = self.limit_rpm
        if self.cluster_id is not None:
            out["cluster_id"] = self.cluster_id
        return out


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at_ms: int           # wall clock of the pipeline, not event time
    source: dict[str, Any]        # {topic, partition, offset} or {file, line}
    code: str
    message: str
    payload: bytes

    @property
    def key(self) -> str:
        return self.code

    def wire(self) -> dict[str, Any]:
        raw = self.payload[:MAX_DLQ_PAYLOAD * 4]
        try:
            text = raw.decode("utf-8")
            payload, enc = text[:MAX_DLQ_PAYLOAD], "utf-8"
        except UnicodeDecodeError:
            payload = base64.b64encode(self.payload[:3072]).decode("ascii")  # 3072 bytes -> 4096 chars
            enc = "base64"
        return {
            "received_at": iso_ms(self.received_at_ms),
            "source": self.source,
            "error": {"code": self.code, "message": self.message[:1000]},
            "payload": payload,
            "payload_encoding": enc,
        }
