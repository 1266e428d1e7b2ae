"""The detection core: three stages that both drivers run.

    event ─► AccountStage ─► alerts/decisions (account scope)
                  │ observations (one per fingerprint value on the event)
                  ▼
             FingerprintStage ─► links (accounts sharing a rare value)
                  ▼
             ClusterStage ─► alerts (cluster scope), decisions (member accounts, the cluster's
                             fingerprints, late joiners on a decided cluster)

Replay runs the stages in-process, event by event (`Engine`); the Faust worker runs each stage as an
agent over its own topic and table. Nothing here imports Faust or Kafka or reads the wall clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.allowlist import Allowlist
from app.detect.account import AccountState, account_signals
from app.detect.cluster import _DEC, ClusterState, cluster_signals, member_implicated
from app.detect.fingerprint import FpState
from app.detect.fingerprint import observe as fp_observe
from app.detect.messages import Link, Observation, Summary
from app.emit.records import Alert, Decision, stable_id
from app.features.content import ContentConfig, analyse
from app.ingest.event import Event
from app.policy.decide import Subject, decide, fanout, lift
from app.rules.model import Rules
from app.score.assess import assess
from app.state.store import DictStore, StateStore

DECISION_SCOPES = ("payment_fp", "ja4", "ip_prefix", "device_id")


@dataclass(slots=True)
class Output:
    alerts: list[Alert] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


class _Stage:
    def __init__(self, rules: Rules) -> None:
        self.watermark_ms = 0
        self.seen = 0
        self.set_rules(rules)

    def set_rules(self, rules: Rules) -> None:
        self.rules = rules
        self.allow = Allowlist(rules.allowlist)

    def _tick(self, ts_ms: int) -> bool:
        """Advance the stage's event-time watermark; True when a sweep is due."""
        if ts_ms > self.watermark_ms:
            self.watermark_ms = ts_ms
        self.seen += 1
        return self.seen % self.rules.sweep_every_events == 0


class AccountStage(_Stage):
    def __init__(self, rules: Rules, store: StateStore | None = None) -> None:
        super().__init__(rules)
        self.store = store if store is not None else DictStore("accounts")

    def set_rules(self, rules: Rules) -> None:
        super().set_rules(rules)
        self.content_cfg = ContentConfig(lsh_bands=rules.content_lsh_bands, max_chars=rules.content_max_chars)

    def sweep(self) -> int:
        b = self.rules.account
        return self.store.sweep(self.watermark_ms, b.ttl_ms, b.max_keys)

    def process(self, ev: Event, out: Output) -> None:
        rules = self.rules
        if self._tick(ev.ts_ms):
            self.sweep()
        cf = analyse(ev.prompt, ev.system_prompt_hash, ev.tools, ev.images, self.content_cfg)
        key = ev.account_id
        st = self.store.get(key)
        if st is None or ev.ts_ms - st.last_ms > rules.account.ttl_ms:
            st = AccountState(ev.ts_ms)
        st.observe(ev, cf, rules.content_flag_min)
        allowed = (self.allow.allows("account", key, ev.ts_ms) or self.allow.allows("org", ev.org_id, ev.ts_ms))
        subj = Subject("account", key, (key,), 1, max(st.first_ms, ev.ts_ms - 86_400_000))
        if allowed:
            d = lift(st, subj, ev.ts_ms, "ALLOWLISTED", rules)
            if d is not None:
                out.decisions.append(d)
        age = st.age_ms(ev.ts_ms)
        fr = rules.fingerprints
        young = age is not None and age < fr.young_ms
        hits = account_signals(st, ev, rules)
        if hits:
            established = (age is not None and not young
                           and st.kyc in ("card", "id_verified") and st.email != "disposable")
            cap = rules.policy.established_max_action if established else None
            alert, decision = decide(st, subj, assess(hits), ev.ts_ms, rules, allowlisted=allowed, max_action=cap)
            if alert is not None:
                out.alerts.append(alert)
            if decision is not None:
                out.decisions.append(decision)
        self.store.put(key, st)

        summary = Summary(
            account_id=key, org=st.org, first_ms=st.first_ms,
            young=young,
            # email-only KYC is what most consumers have: by itself it makes nobody linkable
            unverified=st.kyc == "none" or st.email == "disposable"
            or (st.channel in fr.abused_channels and st.kyc in fr.unverified_kyc),
            n=st.n, flagged=st.flagged(),
        )
        scopes = fr.scopes
        for scope, value in (("payment_fp", ev.payment_fp), ("ja4", ev.ja4), ("ip_prefix", ev.ip_prefix),
                             ("device_id", ev.device_id)):
            if value is not None and scope in scopes and not self.allow.allows(scope, value, ev.ts_ms):
                out.observations.append(Observation(scope, value, ev.ts_ms, ev.event_id, summary))
        if "template" in scopes:
            if ev.system_prompt_hash:
                out.observations.append(
                    Observation("template", "sys:" + ev.system_prompt_hash, ev.ts_ms, ev.event_id, summary))
            for tk in cf.template_keys:
                # 16-bit SimHash band keys fill up with unrelated prompts at volume; only the MinHash
                # band keys ("m...") are selective enough to link accounts
                if tk[0] == "m":
                    out.observations.append(Observation("template", tk, ev.ts_ms, ev.event_id, summary))


class FingerprintStage(_Stage):
    def __init__(self, rules: Rules, store: StateStore | None = None) -> None:
        super().__init__(rules)
        self.store = store if store is not None else DictStore("fingerprints")

    def sweep(self) -> int:
        b = self.rules.fingerprint
        return self.store.sweep(self.watermark_ms, b.ttl_ms, b.max_keys)

    def process(self, obs: Observation, out: Output) -> None:
        if self._tick(obs.ts_ms):
            self.sweep()
        key = obs.key
        st = self.store.get(key)
        if st is None or obs.ts_ms - st.last_ms > self.rules.fingerprint.ttl_ms:
            st = FpState(obs.ts_ms)
        out.links.extend(fp_observe(st, obs, self.rules))
        self.store.put(key, st)


class _Index:
    """account -> cluster id and fingerprint -> cluster id entries (expire like everything else)."""
    __slots__ = ("cid", "last_ms")

    def __init__(self, cid: str, last_ms: int) -> None:
        self.cid = cid
        self.last_ms = last_ms

    def snapshot(self) -> list:
        return [self.cid, self.last_ms]

    @classmethod
    def restore(cls, s: list) -> _Index:
        return cls(s[0], s[1])


class ClusterStage(_Stage):
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
                    self.index.put("a:" + a, _Index(c.cid, ts))
                for f in other.fps:
                    self.index.put("f:" + f, _Index(c.cid, ts))
        c.last_ms = max(c.last_ms, ts)
        scope = "system_prompt" if link.fp.startswith("template:sys:") else link.fp.partition(":")[0]
        c.add(link.summary, max_members, scope)
        c.note_fp(link.fp, link.fp_accounts, link.fp_orgs, max(64, max_members))
        self.index.put("a:" + acct, _Index(c.cid, ts))
        self.index.put("f:" + link.fp, _Index(c.cid, ts))

        subj = Subject("cluster", c.cid, c.members, len(c.members), c.first_ms, cluster_id=c.cid)
        hits = cluster_signals(c, link, rules)
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
        elif c.live is not None and ts < c.live[7] + c.live[2] * 1000:
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

    def _fan_out(self, c: ClusterState, parent: Decision, ts: int, out: Output, only: str | None = None) -> None:
        rules = self.rules
        until = parent.ts_ms + parent.ttl_s * 1000
        # the decision as of this event: late joiners get the remaining TTL from their first request
        base = Decision(parent.decision_id, ts, parent.scope, parent.value, parent.action,
                        max(1, (until - ts) // 1000), parent.reasons, parent.alert_id, parent.mode,
                        parent.limit_rpm, c.cid)
        targets = []
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
            targets.append(acct)
            if len(targets) >= rules.policy.fanout_max_accounts:
                break
        out.decisions.extend(fanout(base, targets, "CLUSTER_MEMBER"))
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


class Engine:
    """All three stages in one process, run to completion per event (replay, tests, explain)."""

    def __init__(self, rules: Rules) -> None:
        self.accounts = AccountStage(rules)
        self.fingerprints = FingerprintStage(rules)
        self.clusters = ClusterStage(rules)

    def set_rules(self, rules: Rules) -> None:
        for stage in (self.accounts, self.fingerprints, self.clusters):
            stage.set_rules(rules)

    def process(self, ev: Event) -> Output:
        out = Output()
        self.accounts.process(ev, out)
        for obs in out.observations:
            self.fingerprints.process(obs, out)
        for link in out.links:
            self.clusters.process(link, out)
        return out

    def state_sizes(self) -> dict[str, int]:
        return {"accounts": len(self.accounts.store), "fingerprints": len(self.fingerprints.store),
                "clusters": len(self.clusters.clusters), "cluster_index": len(self.clusters.index)}
