"""Cluster stage: links join accounts into campaign clusters; cluster alerts and decisions, fanned out to
implicated members, to the cluster's decision-scope fingerprints and to late joiners."""

from __future__ import annotations

from app.detect.cluster import (
    _DEC,
    _ORG,
    ClusterState,
    cluster_signals,
    max_values,
    member_implicated,
    member_strongly_implicated,
)
from app.detect.messages import Link
from app.emit.records import Decision, stable_id
from app.policy.decide import LEVELS, Subject, decide, fanout, lift_account
from app.rules.model import Rules
from app.score.assess import assess
from app.stages.base import Output, Stage
from app.state.store import DictStore, StateStore

# Values a cluster decision is also issued for. A fingerprint-scoped decision applies to every request
# on the value at the rate limiter (contract v1), so it is only issued where every account behind the
# value is implicated: a payment method or a device links every account that uses it (each one is a
# member linked through it, hence implicated). A JA4 or an IP block also carries bystanders (resold
# genuine traffic, colleagues behind a NAT, established customers the value never links), who would be
# penalised by the wider decision without being implicated: those values are not decided; their
# implicated accounts get account-scoped decisions, late joiners included.
DECISION_SCOPES = ("payment_fp", "device_id")


class IndexEntry:
    """account -> cluster id and fingerprint -> cluster id entries (expire like everything else)."""
    __slots__ = ("cid", "last_ms")

    def __init__(self, cid: str, last_ms: int) -> None:
        self.cid = cid
        self.last_ms = last_ms

    def snapshot(self) -> list:
        return [self.cid, self.last_ms]

    @classmethod
    def restore(cls, s: list) -> IndexEntry:
        return cls(s[0], s[1])


class ClusterStage(Stage):
    def __init__(self, rules: Rules, clusters: StateStore | None = None,
                 index: StateStore | None = None) -> None:
        super().__init__(rules)
        self.clusters = clusters if clusters is not None else DictStore("clusters")
        self.index = index if index is not None else DictStore("cluster_index")

    def sweep(self) -> int:
        b = self.rules.cluster
        return (self.clusters.sweep(self.watermark_ms, b.ttl_ms, b.max_keys)
                + self.index.sweep(self.watermark_ms, b.ttl_ms, b.max_keys * 20))

    def _cluster_of(self, key: str, ts_ms: int) -> ClusterState | None:
        ix = self.index.get(key)
        if ix is None or ts_ms - ix.last_ms > self.rules.cluster.ttl_ms:
            return None
        c = self.clusters.get(ix.cid)
        if c is None or ts_ms - c.last_ms > self.rules.cluster.ttl_ms:
            return None
        return c

    def process(self, link: Link, out: Output) -> None:
        rules = self.rules
        ts = link.ts_ms
        if self._tick(ts):
            self.sweep()
        acct = link.summary.account_id
        found: dict[str, ClusterState] = {}
        for key in ("a:" + acct, "a:" + link.anchor, "f:" + link.fp):
            c = self._cluster_of(key, ts)
            if c is not None:
                found[c.cid] = c
        max_members = rules.cluster.max_members
        if not found:
            c = ClusterState(stable_id("cl", link.fp, link.anchor), ts)
        else:
            ordered = sorted(found.values(), key=lambda c: (-len(c.members), c.cid))
            c = ordered[0]
            for other in ordered[1:]:  # union by size; the absorbed cluster's keys are re-pointed
                c.absorb(other, max_members)
                self.clusters.delete(other.cid)
                for a in other.members:
                    self.index.put("a:" + a, IndexEntry(c.cid, ts))
                for f in other.fps:
                    self.index.put("f:" + f, IndexEntry(c.cid, ts))
        c.last_ms = max(c.last_ms, ts)
        scope = "system_prompt" if link.fp.startswith("template:sys:") else link.fp.partition(":")[0]
        c.add(link.summary, max_members, scope)
        c.note_fp(link.fp, link.fp_accounts, link.fp_orgs, max_values(max_members), ts)
        self.index.put("a:" + acct, IndexEntry(c.cid, ts))
        self.index.put("f:" + link.fp, IndexEntry(c.cid, ts))

        subj = Subject("cluster", c.cid, c.members, len(c.members), c.first_ms, cluster_id=c.cid)
        m = c.members.get(acct)
        if m is not None and m[_DEC] > ts and (
                self.allow.allows("account", acct, ts) or self.allow.allows("org", m[_ORG], ts)):
            # allowlisted after a cluster decision reached it: the fanned-out decision is lifted
            m[_DEC] = 0
            live = c.live
            out.decisions.append(lift_account(acct, ts, "ALLOWLISTED", rules, c.cid, live[0] if live else c.cid))
        hits = cluster_signals(c, rules)
        decision = None
        if hits:
            a = assess(hits)
            if self._meets_cluster_requirement(a):
                alert, decision = decide(c, subj, a, ts, rules)
                if alert is not None:
                    out.alerts.append(alert)
        if decision is not None:
            c.live = [decision.decision_id, decision.action, decision.ttl_s, decision.limit_rpm,
                      list(decision.reasons), decision.alert_id, decision.mode, decision.ts_ms]
            self._fan_out(c, decision, ts, out)
        elif c.live is not None and ts < (until := c.live[7] + c.live[2] * 1000):
            # a late joiner's copy of the live decision; most links come from members that have it
            m = c.members.get(acct)
            if m is not None and m[_DEC] < until and member_implicated(m):
                self._fan_out(c, self._live_decision(c), ts, out, only=acct)
        self.clusters.put(c.cid, c)

    def _meets_cluster_requirement(self, a) -> bool:
        """Linked infrastructure alone is not a campaign (students behind a NAT, a team's card): a
        cluster decision needs content evidence or shared payment among unrelated accounts."""
        return bool(a.families_enforce & {"content", "payment"}) or any(
            h.signal.family in ("content", "payment") for h in a.hits)

    def _live_decision(self, c: ClusterState) -> Decision:
        did, action, ttl, rpm, reasons, alert_id, mode, ts0 = c.live
        return Decision(did, ts0, "cluster", c.cid, action, ttl, tuple(reasons), alert_id, mode, rpm, c.cid)

    def _weak_member_decision(self, base: Decision) -> Decision | None:
        """The cluster's decision as a weakly implicated member gets it (`policy.weak_member_max_action`),
        or None when no cap applies."""
        cap = self.rules.policy.weak_member_max_action
        if cap is None or base.action not in LEVELS or LEVELS.index(base.action) <= LEVELS.index(cap):
            return None
        step = next((s for s in self.rules.policy.actions if s.action == cap), None)
        rpm = step.limit_rpm if step is not None and cap == "throttle" else None
        return Decision(base.decision_id, base.ts_ms, base.scope, base.value, cap, base.ttl_s,
                        (*base.reasons, "WEAK_MEMBER_CAP"), base.alert_id, base.mode, rpm, base.cluster_id)

    def _fan_out(self, c: ClusterState, parent: Decision, ts: int, out: Output, only: str | None = None) -> None:
        rules = self.rules
        until = parent.ts_ms + parent.ttl_s * 1000
        # the decision as of this event: late joiners get the remaining TTL from their first request
        base = Decision(parent.decision_id, ts, parent.scope, parent.value, parent.action,
                        max(1, (until - ts) // 1000), parent.reasons, parent.alert_id, parent.mode,
                        parent.limit_rpm, c.cid)
        weak = self._weak_member_decision(base)
        targets: list[tuple[str, Decision]] = []
        if only is None:
            candidates = sorted(c.members.items())
        else:
            m = c.members.get(only)
            candidates = [] if m is None else [(only, m)]
        for acct, m in candidates:
            if m[_DEC] >= until or not member_implicated(m):
                continue
            if self.allow.allows("account", acct, ts) or self.allow.allows("org", m[1], ts):
                continue
            m[_DEC] = until
            targets.append((acct, base if weak is None or member_strongly_implicated(m) else weak))
            if len(targets) >= rules.policy.fanout_max_accounts:
                break
        # a late joiner's copy is named by its own event too: a member the member cap dropped and its next
        # link re-added gets the live decision again, as a record of its own (consumers de-duplicate on ids)
        at_ms = None if only is None else ts
        for acct, d in targets:
            out.decisions.extend(fanout(d, [acct], "CLUSTER_MEMBER", at_ms=at_ms))
        if only is not None:
            return
        for fpkey, v in sorted(c.fps.items()):
            scope, _, value = fpkey.partition(":")
            if scope not in DECISION_SCOPES or v[2] >= until or v[1] < 2:
                continue
            v[2] = until
            out.decisions.append(Decision(
                decision_id=stable_id("dc", parent.decision_id, scope, value), ts_ms=ts, scope=scope,
                value=value, action=parent.action, ttl_s=base.ttl_s, reasons=(*parent.reasons, "CLUSTER_FP"),
                alert_id=parent.alert_id, mode=parent.mode, limit_rpm=parent.limit_rpm, cluster_id=c.cid))
