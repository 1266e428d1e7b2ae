"""Verdict records (schemas/feedback.schema.json) in and out: a raw record becomes a `Verdict` or a `Rejection`
with a dead-letter code, and a verdict naming a decision is resolved to that decision's subject."""

from __future__ import annotations

import functools
from typing import Any

import orjson

from app.ingest.parse import Rejection
from app.policy.feedback import Verdict

MAX_VERDICT_BYTES = 64 * 1024
UNKNOWN_SUBJECT = "unknown_subject"  # dead-letter code: a cluster or decision the detector does not know


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    from app.rules.load import schema

    return Draft202012Validator(schema("feedback"))


def _code(err: Any) -> str:
    """The dead-letter code of a schema violation (the gateway records' codes, where one fits)."""
    if err.validator == "required":
        return "missing_field"
    if err.validator == "type":
        return "wrong_type"
    if err.validator == "pattern" and err.absolute_path and err.absolute_path[-1] in ("ts", "expires_at"):
        return "bad_timestamp"
    return "bad_value"


def check(doc: Any) -> Rejection | None:
    """Why `doc` (parsed JSON) is not a valid verdict, or None."""
    if not isinstance(doc, dict):
        return Rejection("not_object", f"a verdict is a JSON object, got {type(doc).__name__}")
    errors = sorted(_validator().iter_errors(doc), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        return Rejection(_code(e), f"{where}: {e.message}"[:500], doc.get("verdict_id") if isinstance(
            doc.get("verdict_id"), str) else None)
    v = Verdict.from_wire(doc)
    if v.expires_ms is not None and v.expires_ms <= v.ts_ms:
        return Rejection("bad_value", "expires_at: must be after ts", v.verdict_id)
    return None


def parse_verdict(raw: bytes | None) -> Verdict | Rejection:
    """A raw record of the feedback topic (or a line of `replay --feedback`) as a Verdict, or why not."""
    if raw is None:
        return Rejection("not_json", "empty record")
    if len(raw) > MAX_VERDICT_BYTES:
        return Rejection("too_large", f"{len(raw)} bytes; a verdict is at most {MAX_VERDICT_BYTES}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("not_utf8", f"not UTF-8: {exc.reason} at byte {exc.start}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"not JSON: {str(exc)[:200]}")
    bad = check(doc)
    return bad if bad is not None else Verdict.from_wire(doc)


def decision_subject(scope: str, value: str, cluster_id: str | None) -> tuple[str, str] | None:
    """The subject a verdict on a decision is about: the account of an account decision (whichever stage made
    it), the cluster of a value decision (a cluster's payment method or device); None for anything else."""
    if scope == "account":
        return "account", value
    if cluster_id:
        return "cluster", cluster_id
    return None


class DecisionIndex:
    """Decisions seen so far, by id (replay keeps one while it applies `--feedback` verdicts)."""

    def __init__(self) -> None:
        self._by_id: dict[str, tuple[str, str] | None] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, decision_id: str, scope: str, value: str, cluster_id: str | None, action: str) -> None:
        if action != "lift":
            self._by_id[decision_id] = decision_subject(scope, value, cluster_id)

    def resolve(self, v: Verdict) -> Verdict | None:
        """`v` about the subject of the decision it names; None when that decision is unknown (or is about
        something no verdict can name)."""
        if v.scope != "decision":
            return v
        subject = self._by_id.get(v.value)
        return v.resolved(*subject) if subject is not None else None
