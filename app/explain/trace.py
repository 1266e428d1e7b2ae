"""Watches one account while a file is replayed through the unmodified core.

`TracingEngine` is `app.engine.Engine` with one addition: after each event it hands the event, the
engine's output records and the engine itself to an `AccountTrace`, which reads the stages' state
(account store, fingerprint store, cluster store and index) and re-evaluates the pure functions the
stages use (`account_signals`, `cluster_signals`, `app.policy.attribution`) on it. Nothing the stages do
changes, so the records are exactly replay's. Events of other accounts cost a few look-ups."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from app.detect.account import AccountState, account_signals
from app.detect.cluster import ClusterState, cluster_signals
from app.detect.fingerprint import FpState, popularity
from app.detect.hits import Hit
from app.emit.records import Alert, Decision, iso_ms
from app.engine import Engine, Output
from app.features.content import ContentFeatures
from app.ingest.event import Event
from app.policy import attribution
from app.policy.decide import LEVELS, step_for
from app.rules.model import Rules
from app.score.assess import Assessment, assess

FP_SCOPES = ("payment_fp", "ja4", "ip_prefix", "device_id")
# account attributes shown in the header (Event field -> label); never the prompt or anything from it
ATTRIBUTES = (("tier", "tier"), ("signup_channel", "channel"), ("kyc", "kyc"),
              ("email_domain_class", "email"), ("org_id", "org"), ("billing_country", "billing_country"),
              ("access_path", "access_path"), ("asn_type", "asn_type"), ("country", "ip_country"),
              ("model", "model"))


def probe_rules(rules: Rules, threshold: float) -> Rules:
    """The same rules with every signal threshold replaced. Evaluating a signal function under -inf and
    under +inf yields the figure of every signal whose other gates (minimum requests, ...) pass, whatever
    the direction of its comparison, without re-implementing a single figure here."""
    return replace(rules, signals={c: replace(s, threshold=threshold) for c, s in rules.signals.items()})


@dataclass(slots=True)
class Figures:
    """Signals at one moment: the hits that fired under the real rules, and every evaluable figure."""
    hits: list[Hit]
    assessment: Assessment
    values: dict[str, float]
    low_fires: frozenset[str]   # codes that fire when their figure is low enough (e.g. automation CV)

    @property
    def fired(self) -> tuple[str, ...]:
        return tuple(sorted(h.signal.code for h in self.hits))


def _cluster_signals(c: ClusterState, _arg: None, rules: Rules) -> list[Hit]:
    """`cluster_signals` in the evaluator's (state, argument, rules) shape: a cluster's figures depend
    on the cluster only."""
    return cluster_signals(c, rules)


class _Evaluator:
    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.lo = probe_rules(rules, float("-inf"))
        self.hi = probe_rules(rules, float("inf"))

    def __call__(self, fn: Callable[[Any, Any, Rules], list[Hit]], state: Any, arg: Any) -> Figures:
        hits = fn(state, arg, self.rules)
        values = {h.signal.code: h.value for h in fn(state, arg, self.lo)}
        low = set()
        for h in fn(state, arg, self.hi):
            if h.signal.code not in values:
                values[h.signal.code] = h.value
                low.add(h.signal.code)
        for h in hits:
            values.setdefault(h.signal.code, h.value)
        return Figures(hits, assess(hits), values, frozenset(low))


@dataclass(slots=True)
class Point:
    """A moment at which the set of firing signals changed."""
    ts_ms: int
    request: int                 # the account's n-th request (account timeline) or cluster size
    figures: Figures
    added: tuple[str, ...]
    removed: tuple[str, ...]
    cluster_id: str | None = None
    decidable: bool | None = None  # cluster points: whether the cluster may be decided (attribution gate)
    gate: str | None = None        # ... and why not
    outcome: str | None = None     # account points: what the account policy made of it
    decisions: tuple[tuple[str, str], ...] = ()  # (decision id, origin) emitted for it at this event


@dataclass(slots=True)
class SignalTrack:
    last: float | None = None
    peak: float | None = None
    peak_ms: int | None = None
    first_fired_ms: int | None = None
    fired_requests: int = 0
    low_fires: bool = False

    def update(self, value: float | None, low: bool, fired: bool, ts_ms: int) -> None:
        self.last = value
        if value is not None:
            self.low_fires = low
            if self.peak is None or (value < self.peak if low else value > self.peak):
                self.peak, self.peak_ms = value, ts_ms
        if fired:
            self.fired_requests += 1
            if self.first_fired_ms is None:
                self.first_fired_ms = ts_ms


@dataclass(slots=True)
class FpTrack:
    scope: str
    value: str
    first_ms: int
    last_ms: int
    uses: int = 0
    at_first_use: tuple[int, int, bool, bool] | None = None  # accounts, orgs, popular, linking
    status: tuple[bool, bool] = (False, False)               # popular, linking
    changes: list[tuple[int, str, str, int]] = field(default_factory=list)  # ts, change, by account, accounts
    state: FpState | None = None

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.value}"


@dataclass(slots=True)
class Membership:
    ts_ms: int
    cluster_id: str | None
    kind: str                    # joined | merged | left
    via: str | None = None       # "scope:value" of the link that brought the account in
    anchor: str | None = None
    fp_accounts: int = 0
    fp_orgs: int = 0
    size: int = 0


@dataclass(slots=True)
class ClusterDecision:
    """A decision of the account's cluster (taken before it joined, for a late joiner), and where the
    account stood when it first saw it."""
    ts_ms: int
    seen_ms: int
    cluster_id: str
    decision_id: str
    action: str
    ttl_s: int
    mode: str
    reasons: tuple[str, ...]
    alert_id: str
    member: list | None          # the account's member record at that moment (Member.snapshot)
    tie: attribution.Tie | None  # how its evidence tied it to the cluster then
    evidence: int                # its own evidence as the cluster saw it then (OWN_* bits)
    path: list[tuple[str, list[str]]]  # its strong values held by members with own evidence, and who
    fanned_out: bool             # it got a CLUSTER_MEMBER decision in the same event


@dataclass(slots=True)
class DecisionTrack:
    decision: Decision
    origin: str                  # account | cluster | lift
    figures: Figures | None      # account decisions: the account's signals at that event
    allowlisted: bool = False
    established: bool = False


@dataclass(slots=True)
class AccountTrace:
    account_id: str
    rules: Rules
    evaluate: _Evaluator = field(init=False)
    requests: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    attributes: dict[str, Counter] = field(default_factory=dict)
    created_ms: int | None = None
    age_at_first_use_ms: int | None = None
    api_keys: set[str] = field(default_factory=set)
    timeline: list[Point] = field(default_factory=list)
    signals: dict[str, SignalTrack] = field(default_factory=dict)
    last_figures: Figures | None = None
    state: AccountState | None = None
    fps: dict[str, FpTrack] = field(default_factory=dict)
    untracked: set[tuple[str, str]] = field(default_factory=set)  # values the fingerprint stage never saw
    memberships: list[Membership] = field(default_factory=list)
    cluster: ClusterState | None = None
    cluster_ids: set[str] = field(default_factory=set)
    cluster_timeline: list[Point] = field(default_factory=list)
    cluster_figures: Figures | None = None
    cluster_decisions: list[ClusterDecision] = field(default_factory=list)
    decisions: list[DecisionTrack] = field(default_factory=list)
    fp_decisions: list[Decision] = field(default_factory=list)
    account_alerts: list[Alert] = field(default_factory=list)
    cluster_alerts: dict[str, list[Alert]] = field(default_factory=dict)  # cluster id -> its alerts
    accounts_seen: set[str] = field(default_factory=set)
    watermark_ms: int = 0
    _watched: set[str] = field(default_factory=set)   # bare values of fps, for a cheap first test
    _current: tuple[int, Figures] | None = None
    _live_id: str | None = None
    _present: bool = False
    _decision_ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.evaluate = _Evaluator(self.rules)

    # -- called by TracingEngine after every event
    def after(self, engine: Engine, ev: Event, out: Output) -> None:
        self.accounts_seen.add(ev.account_id)
        if ev.ts_ms > self.watermark_ms:
            self.watermark_ms = ev.ts_ms
        if ev.account_id == self.account_id:
            self._own_event(engine, ev, out)
        if out.observations and self._watched:
            self._fingerprints(engine, out)
        if out.links:
            self._clusters(engine, ev, out)
        if out.alerts:
            self._alerts(out)
        if out.decisions:
            self._decisions(engine, ev, out)

    def _own_event(self, engine: Engine, ev: Event, out: Output) -> None:
        ts = ev.ts_ms
        self.requests += 1
        if self.first_ms is None:
            self.first_ms = ts
        self.last_ms = ts if self.last_ms is None else max(self.last_ms, ts)
        for attr, label in ATTRIBUTES:
            v = getattr(ev, attr)
            if v is not None:
                self.attributes.setdefault(label, Counter())[v] += 1
        if ev.api_key_id:
            self.api_keys.add(ev.api_key_id)
        if ev.created_at_ms is not None:
            if self.created_ms is None:
                self.age_at_first_use_ms = self.first_ms - ev.created_at_ms
            self.created_ms = ev.created_at_ms

        st = engine.accounts.store.get(self.account_id)
        self.state = st
        if st is None:  # cannot happen with the in-memory store; stay silent rather than fail
            return
        fig = self.evaluate(account_signals, st, ev)
        self._current = (ts, fig)
        prev = self.last_figures.fired if self.last_figures is not None else None
        me = self.account_id
        # first emissions only: a live decision re-emitted under the same id is no news for the timeline
        decided = tuple((d.decision_id, "cluster" if "CLUSTER_MEMBER" in d.reasons else
                         "lift" if d.action == "lift" else "account")
                        for d in out.decisions if d.scope == "account" and d.value == me
                        and d.decision_id not in self._decision_ids)
        alerted = any(a.scope == "account" and a.value == me for a in out.alerts)
        if fig.fired != prev or decided or alerted:
            before = set(prev or ())
            own = any(origin == "account" for _, origin in decided)
            self.timeline.append(Point(ts, self.requests, fig, tuple(c for c in fig.fired if c not in before),
                                       tuple(sorted(before - set(fig.fired))),
                                       outcome=self._outcome(st, fig, ts, own, alerted), decisions=decided))
        self.last_figures = fig
        fired = set(fig.fired)
        for code in self.rules.signals:
            if code.startswith("ACCT_"):
                self.signals.setdefault(code, SignalTrack()).update(
                    fig.values.get(code), code in fig.low_fires, code in fired, ts)

        fp_store = engine.fingerprints.store
        observed = set()
        for obs in out.observations:
            key = obs.key
            observed.add((obs.scope, obs.value))
            tr = self.fps.get(key)
            if tr is None:
                tr = self.fps[key] = FpTrack(obs.scope, obs.value, ts, ts)
                self._watched.add(obs.value)
                fst = fp_store.get(key)
                if fst is not None:
                    tr.state = fst
                    tr.status = (fst.popular, fst.linking, fst.strong)
                    tr.at_first_use = (fst.distinct, fst.orgs(), fst.popular, fst.linking)
            tr.uses += 1
            tr.last_ms = max(tr.last_ms, ts)
        for scope in FP_SCOPES:
            v = getattr(ev, scope)
            if v is not None and (scope, v) not in observed and f"{scope}:{v}" not in self.fps:
                self.untracked.add((scope, v))

    def _outcome(self, st: AccountState, fig: Figures, ts: int, decided: bool, alerted: bool) -> str:
        """What the account policy made of this request's signals, in a few words."""
        if decided:
            return "account decision"
        p = self.rules.policy
        if not fig.hits:
            return "nothing fires"
        if fig.assessment.score_all < p.alert_min_score:
            return f"below policy.alert_min_score {p.alert_min_score:g}"
        if alerted:
            return "alert only: below every action step"
        cap = ""
        step = step_for(fig.assessment.score_enforce, self.rules)
        if (p.established_max_action and self._established(ts) and step is not None
                and LEVELS.index(step.action) > LEVELS.index(p.established_max_action)):
            cap = (f"; its score reaches {step.action}, but an established, verified customer is capped at "
                   f"{p.established_max_action} (policy.established_max_action)")
        if ts < st.pol_until_ms and st.pol_action:
            return f"no new decision: the live {st.pol_action} covers it until {iso_ms(st.pol_until_ms)}{cap}"
        return "no new decision: within policy.cooldown_s of the last alert" + cap

    def _fingerprints(self, engine: Engine, out: Output) -> None:
        store = engine.fingerprints.store
        for obs in out.observations:
            if obs.value not in self._watched:
                continue
            tr = self.fps.get(obs.key)
            if tr is None:
                continue
            st = store.get(tr.key)
            if st is None:
                continue
            tr.state = st
            status = (st.popular, st.linking, st.strong)
            if status == tr.status:
                continue
            change = _status_change(tr.status, st, popularity(st, tr.scope, tr.value, self.rules)[3])
            tr.changes.append((obs.ts_ms, change, obs.summary.account_id, st.distinct))
            tr.status = status

    def _cluster_of(self, engine: Engine, ts_ms: int) -> ClusterState | None:
        """The account's cluster as the cluster stage would find it (lazy expiry included)."""
        return engine.clusters.cluster_of_account(self.account_id, ts_ms)

    def _clusters(self, engine: Engine, ev: Event, out: Output) -> None:
        me = self.account_id
        via = None
        for link in out.links:
            if link.summary.account_id == me:
                via = link
        c = self._cluster_of(engine, ev.ts_ms)
        cur = self.cluster.cid if self.cluster is not None else None
        if c is None:
            if cur is not None and self.memberships[-1].kind != "left":
                self.memberships.append(Membership(ev.ts_ms, None, "left"))
                self.cluster = None
                self._present = False
            return
        changed = c.cid != cur
        present = me in c.members
        if changed:
            kind = "merged" if cur is not None else "joined"
            self.memberships.append(Membership(
                ev.ts_ms, c.cid, kind, via.fp if via else None, via.anchor if via else None,
                via.fp_accounts if via else 0, via.fp_orgs if via else 0, len(c.members)))
            self.cluster_ids.add(c.cid)
        elif present != self._present:
            # a cluster at state.cluster.max_members drops the members with the oldest first request; the
            # account's next link adds it back as a new member (with no memory of earlier fan-outs)
            self.memberships.append(Membership(ev.ts_ms, c.cid, "re-added" if present else "dropped",
                                               via.fp if via and present else None, size=len(c.members)))
        self._present = present
        self.cluster = c
        fig = self.evaluate(_cluster_signals, c, None)
        prev = self.cluster_figures.fired if self.cluster_figures is not None else None
        if changed or fig.fired != prev:
            before = set(prev or ()) if not changed else set()
            gate = attribution.cluster_gate(c, self.rules) if fig.hits else None
            self.cluster_timeline.append(Point(
                ev.ts_ms, len(c.members), fig, tuple(x for x in fig.fired if x not in before),
                tuple(sorted(before - set(fig.fired))), c.cid, gate is None if fig.hits else None,
                gate.detail if gate is not None else None))
        self.cluster_figures = fig
        live = c.live
        if live is not None and live.decision_id != self._live_id:
            self._live_id = live.decision_id
            m = c.members.get(me)
            fanned = any(d.scope == "account" and d.value == me and d.alert_id == live.alert_id
                         for d in out.decisions)
            tie, path, evidence = self.tie(c) if m is not None else (None, [], 0)
            self.cluster_decisions.append(ClusterDecision(
                live.ts_ms, ev.ts_ms, c.cid, live.decision_id, live.action, live.ttl_s, live.mode, live.reasons,
                live.alert_id, m.snapshot() if m is not None else None, tie, evidence, path, fanned))

    def tie(self, c: ClusterState) -> tuple[attribution.Tie, list[tuple[str, list[str]]], int]:
        """How the account is tied to cluster `c`'s evidence, and its evidence path: each strong value it
        holds with the members (up to five) that hold it too and have abuse evidence of their own; and its
        own evidence as the cluster sees it (OWN_* bits: a pool's egress spread and pooled content count)."""
        m = c.members[self.account_id]
        bad = attribution.flagged_values(c, self.rules)
        view = attribution.view(c, self.rules)
        path = []
        for v in m.strong:
            holders = sorted(a for a, o in c.members.items()
                             if a != self.account_id and attribution.member_evidence(c, o, view) and v in o.strong)
            path.append((v, holders[:5]))
        evidence = attribution.member_evidence(c, m, view)
        return attribution.member_tie(m, bad, self.rules, evidence, view.aged_cap), path, evidence

    def _alerts(self, out: Output) -> None:
        me = self.account_id
        for a in out.alerts:
            if a.scope == "account" and a.value == me:
                self.account_alerts.append(a)
            elif a.scope == "cluster" and a.cluster_id is not None:
                self.cluster_alerts.setdefault(a.cluster_id, []).append(a)

    def _decisions(self, engine: Engine, ev: Event, out: Output) -> None:
        me = self.account_id
        for d in out.decisions:
            if d.scope == "account":
                if d.value != me:
                    continue
                self._decision_ids.add(d.decision_id)
                if "CLUSTER_MEMBER" in d.reasons:
                    self.decisions.append(DecisionTrack(d, "cluster", None))
                elif d.action == "lift":
                    self.decisions.append(DecisionTrack(d, "lift", None, allowlisted=True))
                else:
                    cur = self._current
                    own = ev.account_id == me and cur is not None and cur[0] == ev.ts_ms
                    allow = engine.accounts.allow
                    self.decisions.append(DecisionTrack(
                        d, "account", cur[1] if own and cur else None,
                        allowlisted=allow.allows("account", me, ev.ts_ms) or allow.allows("org", ev.org_id, ev.ts_ms),
                        established=self._established(ev.ts_ms)))
            elif d.value in self._watched and f"{d.scope}:{d.value}" in self.fps:
                self.fp_decisions.append(d)

    def _established(self, ts_ms: int) -> bool:
        """What AccountStage calls an established customer (capped at policy.established_max_action)."""
        st = self.state
        if st is None:
            return False
        age = st.age_ms(ts_ms)
        return attribution.established(age is None or age < self.rules.fingerprints.young_ms, st.kyc, st.email)


class TracingEngine(Engine):
    """The replay engine, unchanged, with an `AccountTrace` looking over its shoulder."""

    def __init__(self, rules: Rules, account_id: str, tick: Callable[[], None] | None = None) -> None:
        super().__init__(rules)
        self.trace = AccountTrace(account_id, rules)
        self._tick = tick

    def process(self, ev: Event, cf: ContentFeatures | None = None) -> Output:
        out = super().process(ev, cf)
        self.trace.after(self, ev, out)
        if self._tick is not None:
            self._tick()
        return out


def _status_change(was: tuple[bool, bool, bool], st: FpState, why: str) -> str:
    """What changed in a value's verdict between two of its observations, as the FINGERPRINTS section names
    it; `was` is (popular, linking, strong) before, `why` the verdict's detail now (`popularity`)."""
    popular, linking, strong = was
    if st.popular and not popular:
        return "became popular (links nothing from here on)"
    if popular and not st.popular:
        return f"no longer popular ({why})"
    if st.strong != strong:
        # a system prompt turning campaign-like or back: every member is linked again as what it is now
        kind = "strong (links every member)" if st.strong else "weak (links members with evidence of their own)"
        return f"turned {kind}: {why}"
    if st.linking and not linking:
        return "started linking"
    return "stopped linking"
