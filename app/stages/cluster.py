"""Cluster stage: links join accounts into communities (strong values) and rings (weak values among accounts
with evidence of their own); cluster alerts and decisions. The stage orchestrates; who a decision reaches
and how far is decided in `app.policy.attribution`."""

from __future__ import annotations

from app.allowlist import Allowlist
from app.detect.cluster import (
    COMMUNITY,
    RING,
    ClusterState,
    Live,
    cluster_signal,
    cluster_signals,
    max_values,
    quiet,
    request_outcome,
    tie_scope,
)
from app.detect.messages import Link
from app.emit.records import stable_id
from app.policy import attribution, feedback
from app.policy.decide import LEVELS, Subject, decide, settled, step_plan
from app.rules.model import Rules, per_rules
from app.score.assess import assess
from app.stages.base import Output, Stage
from app.state.store import NO_PROVENANCE, DictStore, Provenance, StateStore

# index keys: an account's cluster, a strong value's community, a weak value's ring
_ACCOUNT, _STRONG, _WEAK = "a:", "f:", "w:"


class IndexEntry:
    """account -> cluster id and value -> cluster id entries (expire like everything else)."""
    __slots__ = ("cid", "last_ms")

    def __init__(self, cid: str, last_ms: int) -> None:
        self.cid = cid
        self.last_ms = last_ms

    def snapshot(self) -> list:
        return [self.cid, self.last_ms]

    @classmethod
    def restore(cls, s: list) -> IndexEntry:
        return cls(s[0], s[1])


_LEVEL = {action: i for i, action in enumerate(LEVELS)}

# id(rules) -> (rules, {signal codes that fired, in cluster_signals' order: (assessment without texts, plan)})
_plans_of: dict[int, tuple] = {}


def _new_plans(rules: Rules) -> dict:
    return {}


def _outcome(c: ClusterState, rules: Rules) -> tuple:
    """What a quiet change of request counts (`ClusterState.rev_n`) can change of an assessment: whether the
    signals that read the cluster's request total fire, and the pooled content verdict (the view's)."""
    return request_outcome(c, rules), attribution.pooled(c, rules)


class ClusterStage(Stage):
    def __init__(self, rules: Rules, clusters: StateStore | None = None,
                 index: StateStore | None = None, verdicts: StateStore | None = None) -> None:
        super().__init__(rules)
        self.clusters = clusters if clusters is not None else DictStore("clusters")
        self.index = index if index is not None else DictStore("cluster_index")
        # analysts' verdicts as applied (VerdictRecord by verdict id): the worker's `feedback` table
        self.verdicts = verdicts if verdicts is not None else DictStore("verdicts")

    def set_rules(self, rules: Rules) -> None:
        super().set_rules(rules)
        # FP_SHARED_UNRELATED's window (0: none), which `_infra_stale` reads on every link, and the figures
        # `process` reads of the rules on every link
        s = cluster_signal(rules, "FP_SHARED_UNRELATED")
        self._infra_window = s.window_ms if s is not None else 0
        self._max_members = rules.cluster.max_members
        self._max_values = max_values(rules.cluster.max_members)
        self._ttl_ms = rules.cluster.ttl_ms
        self._pool_share = rules.policy.attribution.own_content_min_share

    def _infra_stale(self, c: ClusterState) -> bool:
        """Whether `cluster_signals` may rescan the cluster's infra values now (`fresh_infra`): then what it
        makes depends on the time as well, and an earlier assessment is not reused."""
        w = self._infra_window
        return bool(w) and c.infra_stale(c.last_ms, w)

    @staticmethod
    def account_key(acct: str) -> str:
        """The index key every link of `acct` writes (a driver reads it to skip re-delivered links)."""
        return _ACCOUNT + acct

    def sweep(self, prov: Provenance = NO_PROVENANCE) -> int:
        b = self.rules.cluster
        if self.feedback:  # verdicts go when they expire (a record's last_ms is its expiry)
            self.feedback.sweep(self.watermark_ms)
            self.verdicts.sweep(self.watermark_ms, 0, feedback.MAX_VERDICTS, prov)
        return (self.clusters.sweep(self.watermark_ms, b.ttl_ms, b.max_keys, prov)
                + self.index.sweep(self.watermark_ms, b.ttl_ms, b.max_keys * 20, prov))

    def _lookup(self, key: str, ts_ms: int) -> tuple[IndexEntry | None, ClusterState | None]:
        """The index entry under `key` (whatever its age) and its cluster, when both are within the TTL."""
        ix = self.index.get(key)
        if ix is None or ts_ms - ix.last_ms > self._ttl_ms:
            return ix, None
        c = self.clusters.get(ix.cid)
        if c is None or ts_ms - c.last_ms > self._ttl_ms:
            return ix, None
        return ix, c

    def _cluster_of(self, key: str, ts_ms: int) -> ClusterState | None:
        return self._lookup(key, ts_ms)[1]

    def cluster_of_account(self, acct: str, ts_ms: int) -> ClusterState | None:
        return self._cluster_of(_ACCOUNT + acct, ts_ms)

    def _merge(self, found: dict[str, ClusterState], ts: int, prov: Provenance) -> ClusterState | None:
        """Union by size; the absorbed clusters' keys are re-pointed to the one that remains."""
        if not found:
            return None
        if len(found) == 1:
            return next(iter(found.values()))  # nothing to merge
        ordered = sorted(found.values(), key=lambda c: (-len(c.members), c.cid))
        c = ordered[0]
        prefix = _STRONG if c.kind == COMMUNITY else _WEAK
        for other in ordered[1:]:
            c.absorb(other, self.rules.cluster.max_members)
            self.clusters.delete(other.cid, prov)
            for a in other.members:
                self.index.put(_ACCOUNT + a, IndexEntry(c.cid, ts), prov)
            for f, v in other.fps.items():
                if v.strong or prefix == _WEAK:
                    self.index.put(prefix + f, IndexEntry(c.cid, ts), prov)
        return c

    def _join(self, kind: str, mine: ClusterState | None, link: Link, prefix: str, ts: int,
              prov: Provenance) -> tuple[ClusterState, str]:
        """The `kind` cluster a link joins: the account's own, its anchor's and the value's merged (those of
        that kind), or a new one; and the index key of the value."""
        found = {mine.cid: mine} if mine is not None else {}
        for key in (_ACCOUNT + link.anchor, prefix + link.fp):
            c = self._cluster_of(key, ts)
            if c is not None and c.kind == kind:
                found[c.cid] = c
        c = self._merge(found, ts, prov)
        if c is None:
            c = ClusterState(stable_id("cl" if kind == COMMUNITY else "cr", link.fp, link.anchor), ts, kind)
        return c, prefix + link.fp

    def _leave(self, ring: ClusterState, acct: str, ts: int, prov: Provenance) -> None:
        ring.remove(acct)
        if ring.members:
            ring.last_ms = max(ring.last_ms, ts)
            self.clusters.put(ring.cid, ring, prov)
        else:
            self.clusters.delete(ring.cid, prov)

    def process(self, link: Link, out: Output, prov: Provenance = NO_PROVENANCE) -> None:
        """`prov`: the link's provenance, for the state it writes."""
        rules = self.rules
        ts = link.ts_ms
        if self._tick(ts):
            self.sweep(prov)
        self._sync_feedback()
        s = link.summary
        acct = s.account_id
        max_members = self._max_members
        key = _ACCOUNT + acct
        ix, mine = self._lookup(key, ts)  # the entry is kept: made again below only when it points elsewhere
        fp = link.fp
        tie = tie_scope(fp, link.strong)
        if link.strong:
            # a strong value joins communities: the account's, its anchor's and the value's
            if mine is not None and mine.kind == RING:
                self._leave(mine, acct, ts, prov)  # tied to one operator now: it leaves its ring
                mine = None
            c, index_key = self._join(COMMUNITY, mine, link, _STRONG, ts, prov)
        elif mine is not None and mine.kind == COMMUNITY:
            # a weak value is evidence about the account's community, never a reason to join another
            c, index_key = mine, ""
        else:
            c, index_key = self._join(RING, mine, link, _WEAK, ts, prov)
        if ts > c.last_ms:
            c.last_ms = ts
        # the member's own evidence before this link, which only a live decision's pass below reads
        # (nothing between here and there makes a decision live without deciding, nor ends one)
        live = c.live
        live = live if live is not None and ts < live.until_ms else None
        m_before = c.members.get(acct) if live is not None else None
        own_before = (attribution.member_evidence(c, m_before, attribution.view(c, rules)) if m_before is not None
                      else -1)
        rev = c.rev
        ring = link.strong and attribution.payment_ring(tie, link.fp_risky_orgs, s.throwaway, rules,
                                                        link.fp_unrelated)
        harness = tie == "harness" and attribution.harness_ring(tie, link.fp_orgs, link.fp_throwaway_orgs, rules)
        c.add(s, max_members, tie, fp if link.strong else "", ts, ring, link.harvest, harness, self._pool_share)
        c.note_fp(fp, link.fp_accounts, link.fp_orgs, link.fp_risky_orgs, self._max_values, ts, link.strong,
                  link.fp_unrelated, link.fp_exit)
        if harness:
            c.mark_harness(fp)
        cid = c.cid
        index = self.index
        # the account's entry is made again only when it points elsewhere (its time is all that changes)
        if ix is not None and ix.cid == cid:
            ix.last_ms = ts
        else:
            ix = IndexEntry(cid, ts)
        index.put(key, ix, prov)
        if index_key:
            index.put(index_key, IndexEntry(cid, ts), prov)
        m = c.members.get(acct)
        if m is not None and m.dec_until > ts and (
                self.allow.allows("account", acct, ts) or self.allow.allows("org", m.org, ts)):
            # allowlisted after a cluster decision reached it: that decision is lifted
            c.lift(acct, m)
            out.decisions.append(attribution.lift_member(acct, ts, "ALLOWLISTED", rules, c.cid,
                                                         c.live.decision_id if c.live else c.cid))
        decided = self._assess(c, ts, out)
        if decided:
            out.decisions.extend(attribution.reach(c, ts, rules, self.allow))
        elif live is not None and m is not None and not self._suppressed(c, ts):
            # the same as before when the link changed nothing the member's evidence or the view reads (`rev`)
            own_now = (own_before if m is m_before and c.rev == rev
                       else attribution.member_evidence(c, m, attribution.view(c, rules)))
            if own_now != own_before and own_now:
                # new own evidence: its strong values now reach their other holders too
                out.decisions.extend(attribution.reach(c, ts, rules, self.allow))
            elif m.dec_until < live.until_ms or m.dec_level < _LEVEL.get(live.action, len(LEVELS)):
                # (a member holding the live decision at its action's level until its end gets nothing from
                # a pass: `_Pass.holds`, tested here before a pass is set up for it)
                out.decisions.extend(attribution.reach(c, ts, rules, self.allow, only=acct))
        self.clusters.put(c.cid, c, prov)

    def _assess(self, c: ClusterState, ts: int, out: Output) -> bool:
        """Cluster signals -> alert and a new live decision (policy's `decide`, when the attribution gate
        lets the cluster be decided; an alert without one otherwise). True when a decision was made.
        The signals, their assessment and the gate are made again only when something they read changed
        (`ClusterState.rev`, the rules), and not while the kept infra value is stale (a rescan's outcome
        depends on the time)."""
        rules = self.rules
        memo = c.assessed
        if memo is not None and memo[1] is rules and memo[0] != c.rev and memo[6] == quiet(c):
            # only members' request counts moved since (`quiet`): when no signal that reads the cluster's request
            # totals, nor the pooled content verdict, changed (nor, under pooled content, a flagged member's
            # counts), the same signals fire and the same gate holds. Their texts, which give the figures, are
            # made again when something is emitted
            out_now = _outcome(c, rules)
            if memo[7] == out_now and (not out_now[1] or memo[8] == c.rev_f) and not self._infra_stale(c):
                memo = c.assessed = (c.rev, rules, memo[2], memo[3], memo[4], False, memo[6], memo[7], c.rev_f)
        if memo is not None and memo[0] == c.rev and memo[1] is rules and not self._infra_stale(c):
            a, gate, plan, texts = memo[2], memo[3], memo[4], memo[5]
        else:
            # first without the texts, nor the hits in their order, which only an alert reads: most
            # assessments of a decided cluster change nothing (`settled`)
            hits = cluster_signals(c, rules, texts=False)
            if hits:
                # the scores, families and step are those of which signals fired, whatever their figures:
                # made once per set of signals (and rules), not again whenever a figure moves
                plans = per_rules(_plans_of, rules, _new_plans)
                key = tuple([h.signal.code for h in hits])
                got = plans.get(key)
                if got is None:
                    a = assess(hits, ordered=False)
                    got = plans[key] = (a, step_plan(a, rules))
                a, plan = got
                gate = attribution.cluster_gate(c, rules, texts=False)
            else:
                a = gate = plan = None
            texts = False
            c.assessed = (c.rev, rules, a, gate, plan, texts, quiet(c), _outcome(c, rules), c.rev_f)
        if a is None:
            return False
        g = gate
        if g is None:
            sup = self._suppressed(c, ts)
            g = feedback.suppressed_gate(sup) if sup is not None else None
        if settled(c, a, plan, ts, rules, gate=g):
            return False  # what `decide` would make of it: nothing (the subject is not made)
        if not texts:
            # the same signals and gate with their texts: nothing they read changed since (`rev`, and the
            # kept infra value is fresh), and the step and score are those of the hits without texts
            a = assess(cluster_signals(c, rules))
            gate = attribution.cluster_gate(c, rules) if gate is not None else None
            c.assessed = (c.rev, rules, a, gate, plan, True, *c.assessed[6:])
            if gate is not None:
                g = gate
        subj = Subject("cluster", c.cid, c.members, len(c.members), c.first_ms, cluster_id=c.cid)
        alert, decision = decide(c, subj, a, ts, rules, gate=g, plan=plan)
        if alert is not None:
            out.alerts.append(alert)
        if decision is None:
            return False
        c.live = Live(decision.decision_id, decision.action, decision.ttl_s, decision.reasons, decision.alert_id,
                      decision.mode, decision.ts_ms, attribution.decided_as_new_card(c, rules))
        return True

    # -- analysts' verdicts (app.policy.feedback decides what each does)
    def _suppressed(self, c: ClusterState, ts: int) -> feedback.VerdictRecord | None:
        """The live false-positive verdict on this cluster, if any: it is not decided, nor reaches anyone."""
        return self.feedback.suppressed(c.cid, ts) if self.feedback else None

    def apply_verdict(self, v: feedback.Verdict, out: Output, prov: Provenance = NO_PROVENANCE) -> str | None:
        """Apply a verdict on an account or a cluster at its time: its lifts, alerts and decisions go to `out`,
        its record to `verdicts` and to the shared registry. A verdict id applied before is not applied again.
        Returns why it cannot be applied (an unknown cluster), else None. `prov`: the verdict's provenance."""
        if self.feedback is None:
            self.use_feedback(feedback.FeedbackState())
        fb = self.feedback
        if v.verdict_id in fb or self.verdicts.get(v.verdict_id) is not None:
            return None
        ts = v.ts_ms
        if v.scope == "cluster":
            c = self.clusters.get(v.value)
            if c is None or ts - c.last_ms > self.rules.cluster.ttl_ms:
                return f"no cluster {v.value!r} in state (unknown, or idle past its TTL)"
            done = feedback.apply_cluster(v, c, self.rules, self.allow)
        elif v.scope == "account":
            c = self.cluster_of_account(v.value, ts)
            m = c.members.get(v.value) if c is not None else None
            rules_allow = Allowlist(self.rules.allowlist)  # not the verdicts' entries: this one replaces them
            allowlisted = rules_allow.allows("account", v.value, ts) or (
                m is not None and rules_allow.allows("org", m.org, ts))
            done = feedback.apply_account(v, c, self.rules, allowlisted)
        else:
            return f"a verdict on a {v.scope} must be resolved to its account or cluster first"
        if c is not None:
            self.clusters.put(c.cid, c, prov)
        rec = done.record
        self.verdicts.put(v.verdict_id, rec, prov)
        fb.put(rec)
        self._sync_feedback()
        out.alerts += done.alerts
        out.decisions += done.decisions
        return None
