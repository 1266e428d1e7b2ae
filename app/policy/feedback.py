"""Analyst verdicts: what a `false_positive` or `confirmed` verdict on an account or a cluster changes, applied
at the verdict's own time (no wall clock). The stages orchestrate; every rule of what a verdict does is here.

The verdict is applied where the cluster state is (`ClusterStage.apply_verdict`, the clusters agent in the
worker) and then lives in a registry, `FeedbackState`, that every stage consults (in the worker every
process keeps one, from the `feedback` table's changelog):

- false positive on an account X:
  - one `lift` on account:X at the verdict's time. The contract's lift ends every decision on its key made at
    or before it, so this one record ends X's account-level decision and whatever a cluster gave it;
  - a `lift` for each payment method or device that tied X to its cluster and carries a live decision: the
    rate limiter applies a value's decision to every holder, X included;
  - X is allowlisted until the verdict expires (merged with the rules' allowlist where the stages check it):
    its own behaviour gives it shadow decisions at most, its cluster does not reach it, and a value X holds
    is not decided for the cluster (attribution's `value_decisions` skips values an allowlisted member
    holds). The ring's other holders keep their account decisions, and stay linked through the value;
  - its account stage drops its live decision from memory at X's next request without a second lift
    (`lift_on_verdict`);
- false positive on a cluster: a `lift` for every member decision it gave and every value decision it made
  that is live, its live decision and policy memory dropped, and it is not decided again (nor does its old
  decision reach late joiners) until the verdict expires; its alerts say NOT_DECIDED_ANALYST_FALSE_POSITIVE;
- confirmed on an account: an alert and a `block` for the account with the escalation TTL
  (`confirmed_ttl_s`); its cluster's strong values are marked known bad;
- confirmed on a cluster: an alert and a new live decision for the cluster, `block` with the escalation TTL,
  carried to its members by `attribution.reach` exactly as any cluster decision is: each member as far as
  its own tie allows (association stays at `association_max_action`: an analyst confirming a campaign is
  not evidence that each holder of its card is its operator), under the rules in force; its strong values
  (payment methods, devices, harness prompts) are marked known bad;
- known bad values: until the verdict expires, an account's request on one (payment method, device or
  system prompt) gets a KNOWN_BAD_VALUE alert and decision at the association cap on that request
  (`known_bad`), whatever became of the cluster and its decision;
- a newer verdict on the same subject replaces the older one (its allowlist entry, suppression or known bad
  values end); every effect ends at the verdict's expiry (`expires_at`, by default ts + the rules'
  `policy.escalation.max_ttl_s`)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, replace

from app.detect.cluster import ClusterState, Live
from app.emit.records import Alert, Decision, Reason, iso_ms, stable_id
from app.ingest.parse import parse_ts
from app.policy import attribution
from app.policy.decide import LEVELS, PolicyMemory, Subject, lift
from app.rules.model import AllowEntry, Rules

FALSE_POSITIVE, CONFIRMED = "false_positive", "confirmed"
VERDICTS = (FALSE_POSITIVE, CONFIRMED)
SUBJECT_SCOPES = ("account", "cluster")  # after a decision id is resolved

REASON_FP = "ANALYST_FALSE_POSITIVE"
REASON_CONFIRMED = "ANALYST_CONFIRMED"
REASON_KNOWN_BAD = "KNOWN_BAD_VALUE"
GATE_FP = "NOT_DECIDED_ANALYST_FALSE_POSITIVE"

# what a confirmed verdict marks known bad: a cluster's strong values (keys as the cluster keeps them)
STRONG_PREFIXES = ("payment_fp:", "device_id:", "template:sys:")
MAX_KNOWN_BAD_VALUES = 256  # per verdict
MAX_VERDICTS = 100_000      # verdicts held (the table's key cap; the earliest to expire go first)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One analyst verdict (schemas/feedback.schema.json). `scope` is `decision` only before resolution."""

    verdict_id: str
    ts_ms: int
    verdict: str
    scope: str
    value: str
    analyst: str
    note: str
    expires_ms: int | None = None
    decision_id: str | None = None

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.value}"

    def until_ms(self, rules: Rules) -> int:
        """When every effect ends: `expires_at`, or ts + policy.escalation.max_ttl_s."""
        if self.expires_ms is not None:
            return self.expires_ms
        return self.ts_ms + rules.policy.max_ttl_s * 1000

    def resolved(self, scope: str, value: str) -> Verdict:
        """This verdict about the subject of the decision it names."""
        return replace(self, scope=scope, value=value, decision_id=self.decision_id or self.value)

    def wire(self) -> dict:
        out: dict = {"verdict_id": self.verdict_id, "ts": iso_ms(self.ts_ms), "verdict": self.verdict,
                     "subject": {"scope": self.scope, "value": self.value}, "analyst": self.analyst,
                     "note": self.note}
        if self.decision_id is not None:
            out["decision_id"] = self.decision_id
        if self.expires_ms is not None:
            out["expires_at"] = iso_ms(self.expires_ms)
        return out

    @classmethod
    def from_wire(cls, doc: dict) -> Verdict:
        """From a record that passed the schema (app.feedback.wire.parse_verdict checks it)."""
        exp = doc.get("expires_at")
        return cls(doc["verdict_id"], parse_ts(doc["ts"], "ts"), doc["verdict"], doc["subject"]["scope"],
                   doc["subject"]["value"], doc["analyst"], doc["note"], parse_ts(exp, "expires_at") if exp else None,
                   doc.get("decision_id"))


class VerdictRecord:
    """A verdict as applied: until when it holds, the cluster it concerned then, and the values it marked known
    bad (a confirmed verdict). The `feedback` table's value (snapshot version 1); `last_ms` is its expiry, so a
    sweep with a TTL of 0 deletes it once the watermark passes that."""

    __slots__ = ("cluster_id", "until_ms", "values", "verdict")

    def __init__(self, verdict: Verdict, until_ms: int, cluster_id: str | None = None,
                 values: Iterable[str] = ()) -> None:
        self.verdict = verdict
        self.until_ms = until_ms
        self.cluster_id = cluster_id
        self.values = tuple(values)

    @property
    def last_ms(self) -> int:
        return self.until_ms

    def live(self, ts_ms: int) -> bool:
        return ts_ms < self.until_ms

    def snapshot(self) -> list:
        return [1, self.verdict.wire(), self.until_ms, self.cluster_id, list(self.values)]

    @classmethod
    def restore(cls, s: list) -> VerdictRecord:
        if not s or s[0] != 1:
            raise ValueError(f"unknown verdict record version {s[:1]!r}")
        return cls(Verdict.from_wire(s[1]), s[2], s[3], s[4])


class FeedbackState:
    """The verdicts in force, indexed for the stages: the newest verdict per subject counts (by ts, then id).
    Every process of the worker keeps one; the stages see a change through `version`."""

    def __init__(self) -> None:
        self._records: dict[str, VerdictRecord] = {}
        self.version = 0
        self._built = -1
        self._fp_accounts: dict[str, VerdictRecord] = {}
        self._suppressed: dict[str, VerdictRecord] = {}
        self._known_bad: dict[str, VerdictRecord] = {}
        self._allow: tuple[AllowEntry, ...] = ()

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, verdict_id: str) -> bool:
        return verdict_id in self._records

    def __bool__(self) -> bool:
        return bool(self._records)

    def get(self, verdict_id: str) -> VerdictRecord | None:
        return self._records.get(verdict_id)

    def records(self) -> list[VerdictRecord]:
        return list(self._records.values())

    def put(self, rec: VerdictRecord) -> None:
        self._records[rec.verdict.verdict_id] = rec
        self.version += 1

    def remove(self, verdict_id: str) -> bool:
        if self._records.pop(verdict_id, None) is None:
            return False
        self.version += 1
        return True

    def sweep(self, watermark_ms: int, max_records: int = MAX_VERDICTS) -> int:
        """Forget verdicts expired at `watermark_ms` and, beyond `max_records`, those that expire first."""
        gone = [vid for vid, r in self._records.items() if r.until_ms <= watermark_ms]
        over = len(self._records) - len(gone) - max_records
        if over > 0:
            left = ((r.until_ms, vid) for vid, r in self._records.items() if r.until_ms > watermark_ms)
            gone += [vid for _, vid in heapq.nsmallest(over, left)]
        for vid in gone:
            del self._records[vid]
        if gone:
            self.version += 1
        return len(gone)

    def _build(self) -> None:
        if self._built == self.version:
            return
        current: dict[tuple[str, str], VerdictRecord] = {}
        for r in sorted(self._records.values(), key=lambda r: (r.verdict.ts_ms, r.verdict.verdict_id)):
            current[(r.verdict.scope, r.verdict.value)] = r  # the newest verdict on a subject replaces the others
        fp_accounts, suppressed, known_bad = {}, {}, {}
        for (scope, value), r in current.items():
            if r.verdict.verdict == FALSE_POSITIVE:
                (fp_accounts if scope == "account" else suppressed)[value] = r
            else:
                for key in r.values:
                    held = known_bad.get(key)
                    if held is None or r.until_ms > held.until_ms:
                        known_bad[key] = r
        self._fp_accounts, self._suppressed, self._known_bad = fp_accounts, suppressed, known_bad
        self._allow = tuple(AllowEntry("account", acct, r.until_ms, f"analyst verdict {r.verdict.verdict_id}")
                            for acct, r in sorted(fp_accounts.items()))
        self._built = self.version

    def allow_entries(self) -> tuple[AllowEntry, ...]:
        """Allowlist entries of the accounts a false positive covers, each until its verdict expires."""
        self._build()
        return self._allow

    def fp_account(self, acct: str, ts_ms: int) -> VerdictRecord | None:
        self._build()
        r = self._fp_accounts.get(acct)
        return r if r is not None and r.live(ts_ms) else None

    def suppressed(self, cluster_id: str, ts_ms: int) -> VerdictRecord | None:
        self._build()
        r = self._suppressed.get(cluster_id)
        return r if r is not None and r.live(ts_ms) else None

    def has_known_bad(self) -> bool:
        self._build()
        return bool(self._known_bad)

    def known_bad(self, key: str, ts_ms: int) -> VerdictRecord | None:
        self._build()
        r = self._known_bad.get(key)
        return r if r is not None and r.live(ts_ms) else None


# -- what a verdict does -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Applied:
    """The outcome of applying a verdict: its record (None: nothing applied, `error` says why) and outputs."""

    record: VerdictRecord | None
    alerts: list[Alert]
    decisions: list[Decision]
    error: str | None = None


def confirmed_ttl_s(v: Verdict, rules: Rules) -> int:
    """The TTL of a confirmed subject's block: the block step's TTL escalated once, as a repeat offence's is
    (times policy.escalation.ttl_multiplier), at most policy.escalation.max_ttl_s, and never past the verdict's
    expiry. With the packaged rules: 86,400 s x 2 = 2 days."""
    p = rules.policy
    step = next((s for s in p.actions if s.action == "block"), p.actions[-1] if p.actions else None)
    base = step.ttl_s if step is not None else p.max_ttl_s
    ttl = min(p.max_ttl_s, int(base * p.ttl_multiplier))
    return max(1, min(ttl, (v.until_ms(rules) - v.ts_ms) // 1000))


def strong_values(c: ClusterState) -> list[str]:
    """The cluster's strong values: payment methods, devices and harness system prompts it was linked through
    (members' strong ties and the values it keeps marked strong), at most MAX_KNOWN_BAD_VALUES."""
    keys = {k for m in c.members.values() for k in m.strong}
    keys |= {k for k, v in c.fps.items() if v.strong}
    return sorted(k for k in keys if k.startswith(STRONG_PREFIXES))[:MAX_KNOWN_BAD_VALUES]


def _lift(v: Verdict, scope: str, value: str, cluster_id: str | None, rules: Rules) -> Decision:
    """A lift of whatever is live on scope:value at the verdict's time (always enforce: see decide.lift)."""
    return Decision(
        decision_id=stable_id("dc", v.verdict_id, scope, value, "lift"), ts_ms=v.ts_ms, scope=scope, value=value,
        action="lift", ttl_s=1, reasons=(REASON_FP,), alert_id=stable_id("al", "verdict", v.verdict_id),
        mode="enforce", cluster_id=cluster_id)


def _confirm_alert(v: Verdict, accounts: Iterable[str], count: int, start_ms: int, rules: Rules,
                   cluster_id: str | None, mode: str) -> Alert:
    reason = Reason(REASON_CONFIRMED, v.analyst, None, f"analyst {v.analyst} confirmed {v.scope} {v.value} as "
                    f"a distillation campaign (verdict {v.verdict_id}, until {iso_ms(v.until_ms(rules))}): {v.note}")
    return Alert(
        alert_id=stable_id("al", v.scope, v.value, "confirmed", v.verdict_id), ts_ms=v.ts_ms, scope=v.scope,
        value=v.value, severity=rules.severity(100.0), score=100.0, reasons=(reason,),
        accounts=tuple(heapq.nsmallest(100, accounts)), account_count=count,
        window_start_ms=min(start_ms, v.ts_ms), window_end_ms=v.ts_ms, mode=mode, cluster_id=cluster_id)


def apply_account(v: Verdict, c: ClusterState | None, rules: Rules, allowlisted: bool) -> Applied:
    """A verdict on account `v.value`; `c` is its cluster now (None: it is in none), whose member and value
    records this updates. `allowlisted`: the rules' allowlist covers the account (a confirmation then decides
    in shadow only: the allowlist says never act on it)."""
    acct, ts = v.value, v.ts_ms
    until = v.until_ms(rules)
    cid = c.cid if c is not None else None
    m = c.members.get(acct) if c is not None else None
    if v.verdict == FALSE_POSITIVE:
        decisions = [_lift(v, "account", acct, cid, rules)]
        if m is not None:
            c.lift(acct, m)
            for key in m.strong:
                val = c.fps.get(key)
                scope, _, value = key.partition(":")
                if val is not None and scope in attribution.DECISION_SCOPES and val.decided_until > ts:
                    val.decided_until = 0  # not decided again while an allowlisted member holds it
                    decisions.append(_lift(v, scope, value, cid, rules))
        return Applied(VerdictRecord(v, until, cid), [], decisions)
    values = strong_values(c) if c is not None and c.kind == "community" else []
    mode = "shadow" if rules.mode == "shadow" or allowlisted else "enforce"
    alert = _confirm_alert(v, (acct,), 1, m.first_ms if m is not None else ts, rules, cid, mode)
    decision = Decision(
        decision_id=stable_id("dc", alert.alert_id, "account", acct, "block"), ts_ms=ts, scope="account",
        value=acct, action="block", ttl_s=confirmed_ttl_s(v, rules), reasons=(REASON_CONFIRMED,),
        alert_id=alert.alert_id, mode=mode, cluster_id=cid)
    return Applied(VerdictRecord(v, until, cid, values), [alert], [decision])


def apply_cluster(v: Verdict, c: ClusterState, rules: Rules, allow) -> Applied:
    """A verdict on cluster `c` (its state is updated here)."""
    ts = v.ts_ms
    until = v.until_ms(rules)
    if v.verdict == FALSE_POSITIVE:
        decisions: list[Decision] = []
        for acct, m in sorted(c.members.items()):
            if m.dec_until > ts:
                c.lift(acct, m)
                decisions.append(_lift(v, "account", acct, c.cid, rules))
        for key, val in sorted(c.fps.items()):
            scope, _, value = key.partition(":")
            if scope in attribution.DECISION_SCOPES and val.decided_until > ts:
                val.decided_until = 0
                decisions.append(_lift(v, scope, value, c.cid, rules))
        # its decision was not an offence; it decides again on new evidence once the verdict expires
        c.live = None
        c.pol_until_ms, c.pol_level, c.pol_action, c.pol_offences = 0, -1, "", []
        return Applied(VerdictRecord(v, until, c.cid), [], decisions)
    mode = "shadow" if rules.mode == "shadow" else "enforce"
    alert = _confirm_alert(v, c.members, len(c.members), c.first_ms, rules, c.cid, mode)
    # the live decision's evidence stays its evidence (attribution judges it under the rules in force: a
    # block still needs block_min_families enforcing families; shadow evidence stays shadow)
    evidence = c.live.reasons if c.live is not None else ()
    if not evidence:
        from app.detect.cluster import cluster_signals

        evidence = tuple(h.signal.code for h in cluster_signals(c, rules))
    reasons = (*(r for r in evidence if r != REASON_CONFIRMED), REASON_CONFIRMED)
    ttl = confirmed_ttl_s(v, rules)
    c.live = Live(stable_id("dc", alert.alert_id, "cluster", c.cid, "block"), "block", ttl, reasons,
                  alert.alert_id, mode, ts)
    if mode == "enforce":
        c.pol_offences = [*c.pol_offences, ts][-8:]
        c.pol_until_ms, c.pol_level, c.pol_action = ts + ttl * 1000, LEVELS.index("block"), "block"
    c.pol_alert_ms = ts
    decisions = attribution.reach(c, ts, rules, allow)
    values = strong_values(c) if c.kind == "community" else []
    return Applied(VerdictRecord(v, until, c.cid, values), [alert], decisions)


def suppressed_gate(rec: VerdictRecord) -> Reason:
    """The reason a cluster that an analyst called a false positive carries in its alerts meanwhile."""
    v = rec.verdict
    return Reason(GATE_FP, v.analyst, None, f"analyst {v.analyst} marked this cluster a false positive (verdict "
                  f"{v.verdict_id}): not decided until {iso_ms(rec.until_ms)}")


def lift_on_verdict(mem: PolicyMemory, subj: Subject, ts_ms: int, rec: VerdictRecord, rules: Rules) -> Decision | None:
    """The account stage's part of a false positive on the account, at its next request: a live decision made
    at or before the verdict was ended by the verdict's own lift, so it is only dropped from memory; one made
    after it (the verdict reached this stage late) gets a lift of its own."""
    if ts_ms >= mem.pol_until_ms or not mem.pol_action:
        return None
    if mem.pol_alert_ms <= rec.verdict.ts_ms:
        mem.pol_until_ms, mem.pol_action, mem.pol_offences = 0, "", []
        return None
    return lift(mem, subj, ts_ms, REASON_FP, rules)


def known_bad(mem: PolicyMemory, acct: str, keys: Iterable[str], ts_ms: int, risky: bool, first_ms: int,
              fb: FeedbackState, rules: Rules) -> tuple[Alert, Decision] | None:
    """An alert and a decision for account `acct` whose request carries a value a confirmed verdict marked known
    bad (`keys`: its payment method, device and system prompt as "scope:value"), at the association cap
    (`established_association_max_action` for an account that is not risky), with the TTL of that action's
    step and never past the verdict's expiry; None when none is known bad, when the cap is none, or when the
    account's live decision is already at least as strong. The decision is kept in the account's policy
    memory (not as an offence of its own), so the next request does not repeat it."""
    hit = next(((k, r) for k in keys if (r := fb.known_bad(k, ts_ms)) is not None), None)
    if hit is None:
        return None
    key, rec = hit
    at = rules.policy.attribution
    cap = at.association_max_action if risky else at.established_association_max_action
    if cap == "none":
        return None
    level = LEVELS.index(cap)
    if ts_ms < mem.pol_until_ms and mem.pol_action and mem.pol_level >= level:
        return None
    step = next((s for s in rules.policy.actions if s.action == cap), None)
    if step is None and cap == "throttle":
        return None  # no throttle step, no limit to give it
    left_s = (rec.until_ms - ts_ms) // 1000
    ttl = max(1, min(step.ttl_s, left_s) if step is not None else left_s)
    v = rec.verdict
    mode = "shadow" if rules.mode == "shadow" else "enforce"
    if mode == "shadow":  # not enforced, so not live: shown again only after the cooldown
        if ts_ms < mem.pol_alert_ms + rules.policy.cooldown_ms:
            return None
        mem.pol_alert_ms = ts_ms
    score = step.min_score if step is not None else 100.0
    alert_id = stable_id("al", "account", acct, REASON_KNOWN_BAD, v.verdict_id, ts_ms)
    reason = Reason(REASON_KNOWN_BAD, key, None, f"{key} was marked known bad by analyst {v.analyst}'s confirmed "
                    f"verdict on {v.scope} {v.value} ({v.verdict_id}, until {iso_ms(rec.until_ms)})")
    alert = Alert(alert_id=alert_id, ts_ms=ts_ms, scope="account", value=acct, severity=rules.severity(score),
                  score=score, reasons=(reason,), accounts=(acct,), account_count=1,
                  window_start_ms=min(first_ms, ts_ms), window_end_ms=ts_ms, mode=mode, cluster_id=rec.cluster_id)
    limit = step.limit_rpm if cap == "throttle" and step is not None else None
    decision = Decision(
        decision_id=stable_id("dc", alert_id, "account", acct, cap), ts_ms=ts_ms, scope="account", value=acct,
        action=cap, ttl_s=ttl, reasons=(REASON_KNOWN_BAD,), alert_id=alert_id, mode=mode, limit_rpm=limit,
        cluster_id=rec.cluster_id)
    if mode == "enforce":
        mem.pol_until_ms, mem.pol_level, mem.pol_action = ts_ms + ttl * 1000, level, cap
    return alert, decision


def event_keys(payment_fp: str | None, device_id: str | None, system_prompt_hash: str | None) -> list[str]:
    """An event's strong-value candidates, keyed as a cluster keeps them."""
    out = []
    if payment_fp:
        out.append("payment_fp:" + payment_fp)
    if device_id:
        out.append("device_id:" + device_id)
    if system_prompt_hash:
        out.append("template:sys:" + system_prompt_hash)
    return out
