"""Turns an `AccountTrace` into the explain document: plain JSON-ready dicts, the single source that both
`--json` and the text view render, so the two always state the same facts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from app.detect.cluster import SCOPE_BITS, Member
from app.detect.fingerprint import STRONG_SCOPES, popularity, unrelated_holders
from app.detect.hits import Hit
from app.emit.records import Alert, Decision, iso_ms
from app.explain.trace import FP_SCOPES, AccountTrace, ClusterDecision, DecisionTrack, Figures, FpTrack, Point
from app.policy import attribution
from app.policy.decide import LEVELS, step_for
from app.rules.model import Rules

VERSION = 1


def _ts(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def _num(v: Any) -> Any:
    if isinstance(v, float):
        return int(v) if v.is_integer() and abs(v) < 1e15 else round(v, 4)
    return v


def _hit(h: Hit) -> dict[str, Any]:
    s = h.signal
    return {"code": s.code, "family": s.family, "weight": _num(s.weight), "value": _num(h.value),
            "threshold": _num(s.threshold), "fires_when": None, "shadow": s.shadow, "detail": h.detail}


def _hits(fig: Figures) -> list[dict[str, Any]]:
    out = []
    for h in fig.assessment.hits:  # the order of an alert's reasons: weight, then code
        d = _hit(h)
        d["fires_when"] = "<=" if h.signal.code in fig.low_fires else ">="
        out.append(d)
    return out


def _point(p: Point) -> dict[str, Any]:
    f = p.figures
    d = {"ts": _ts(p.ts_ms), "fired": list(f.fired), "added": list(p.added), "removed": list(p.removed),
         "score_enforce": _num(f.assessment.score_enforce), "score_all": _num(f.assessment.score_all),
         "families": sorted(f.assessment.families_enforce), "signals": _hits(f)}
    if p.cluster_id is None:
        d = {"request": p.request, **d, "outcome": p.outcome,
             "decisions": [{"decision_id": i, "origin": o} for i, o in p.decisions]}
    else:
        d = {"cluster_id": p.cluster_id, "size": p.request, **d, "decidable": p.decidable, "not_decided": p.gate}
    return d


def _direction(fig: Figures | None, code: str) -> str | None:
    """'>=' when high figures fire, '<=' when low ones do; None while the figure was never evaluable."""
    if fig is None or code not in fig.values:
        return None
    return "<=" if code in fig.low_fires else ">="


def _figures_table(fig: Figures | None, rules: Rules, prefixes: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every signal of the given kinds at one moment: figure, threshold, weight, fired or not."""
    rows = []
    fired = set(fig.fired) if fig is not None else set()
    for code, s in rules.signals.items():
        if not code.startswith(prefixes):
            continue
        v = fig.values.get(code) if fig is not None else None
        rows.append({"code": code, "family": s.family, "weight": _num(s.weight), "threshold": _num(s.threshold),
                     "fires_when": _direction(fig, code),
                     "value": _num(v), "fired": code in fired, "enabled": s.enabled, "shadow": s.shadow})
    return rows


def _attributes(t: AccountTrace) -> dict[str, list[dict[str, Any]]]:
    return {label: [{"value": v, "requests": n} for v, n in sorted(c.items(), key=lambda kv: (-kv[1], str(kv[0])))]
            for label, c in t.attributes.items()}


def _header(t: AccountTrace, dead: list[dict[str, Any]]) -> dict[str, Any]:
    st = t.state
    age = t.age_at_first_use_ms
    return {
        "first_event": _ts(t.first_ms), "last_event": _ts(t.last_ms), "requests": t.requests,
        "created_at": _ts(t.created_ms),
        "age_at_first_use_days": None if age is None else round(age / 86_400_000, 2),
        "attributes": _attributes(t), "api_keys": len(t.api_keys),
        "requests_in_state": st.n if st is not None else 0,
        "dead_letters": dead,
    }


def _signals(t: AccountTrace) -> list[dict[str, Any]]:
    rows = _figures_table(t.last_figures, t.rules, ("ACCT_",))
    for r in rows:
        tr = t.signals.get(r["code"])
        r["value_at_last_request"] = r.pop("value")
        r["firing_at_last_request"] = r.pop("fired")
        if tr is not None:
            if tr.peak is not None:
                r["fires_when"] = "<=" if tr.low_fires else ">="
            r["peak"] = _num(tr.peak)
            r["peak_ts"] = _ts(tr.peak_ms)
            r["first_fired"] = _ts(tr.first_fired_ms)
            r["requests_firing"] = tr.fired_requests
        else:
            r.update(peak=None, peak_ts=None, first_fired=None, requests_firing=0)
    return rows


def _fp_status(tr: FpTrack, rules: Rules) -> tuple[str, str]:
    """(status, why) of a value at the end of the file, from the verdict the fingerprint stage applies
    (app.detect.fingerprint.popularity) and which of its members can link."""
    st = tr.state
    if st is None:
        return "unknown", "no state for this value"
    code, _, _, detail = popularity(st, tr.scope, tr.value, rules)
    if st.popular:
        return "popular", f"links nothing: {detail}"
    cp = rules.fingerprints.campaign_prompt
    if tr.scope in STRONG_SCOPES:
        everyone, who = True, "every account behind it (a payment method or device links whoever holds it)"
    elif (code == "FP_CAMPAIGN_PROMPT" and cp is not None and cp.link_established) or code == "FP_POOL_PROMPT":
        everyone, who = True, f"every account behind it ({detail})"
    elif code == "FP_EXIT_RING":
        everyone, who = False, (f"the accounts behind it with a flagged request through it ({detail}; a weak "
                                "value: it never joins two clusters)")
    elif code == "FP_HARVEST_TEMPLATE":
        everyone, who = False, (f"the new, disposable or KYC-less accounts behind it with abuse evidence of their own "
                                f"or a flagged request on it ({detail}; a weak value: it never joins two clusters)")
    else:
        everyone, who = False, ("the new, disposable or KYC-less accounts behind it with abuse evidence of their own "
                                "(a weak value: it never joins two clusters)")
    eligible = list(st.members) if everyone else [a for a, m in st.members.items() if m.linkable]
    eorgs = len({st.members[a].org or f"~{a}" for a in eligible})
    if st.linking:
        ring = ""
        uc = rules.fingerprints.unrelated_card
        if tr.scope == "payment_fp" and uc is not None and unrelated_holders(st, uc):
            ring = ("; its holders each send from their own hosting network, none shared, of several operators "
                    "and countries, opened in a batch or new: a ring's card, evidence of each holder's own "
                    "(fingerprints.unrelated_card)")
        return "linking", f"links {who}: {len(eligible)} of the {len(st.members)} kept, {eorgs} orgs{ring}"
    if st.distinct <= 1:
        return "rare", "only this account uses it"
    need = "accounts" if everyone else "new, disposable or KYC-less accounts with evidence of their own"
    return "rare", f"not linking: needs {need} of 2+ orgs, has {len(eligible)} from {eorgs} org(s)"


def _fingerprints(t: AccountTrace) -> list[dict[str, Any]]:
    order = {s: i for i, s in enumerate((*FP_SCOPES, "template"))}
    cluster_fps = t.cluster.fps if t.cluster is not None else {}
    rows = []
    for tr in sorted(t.fps.values(), key=lambda tr: (order.get(tr.scope, 99), tr.first_ms, tr.value)):
        st = tr.state
        status, why = _fp_status(tr, t.rules)
        first = tr.at_first_use
        rows.append({
            "scope": tr.scope, "value": tr.value, "requests": tr.uses,
            "first_use": _ts(tr.first_ms), "last_use": _ts(tr.last_ms),
            "accounts": st.distinct if st else None, "accounts_kept": len(st.members) if st else None,
            "established": st.established if st else None, "orgs": st.orgs() if st else None,
            "popular": st.popular if st else None, "linking": st.linking if st else None,
            "status": status, "why": why,
            "anchor": st is not None and st.anchor == t.account_id,
            "at_first_use": None if first is None else
            {"accounts": first[0], "orgs": first[1], "popular": first[2], "linking": first[3]},
            "changes": [{"ts": _ts(ts), "change": ch, "by_account": acct, "accounts": n}
                        for ts, ch, acct, n in tr.changes],
            "links_its_cluster": tr.key in cluster_fps,
        })
    return rows


def _tie(tie: attribution.Tie | None, path: list[tuple[str, list[str]]]) -> dict[str, Any] | None:
    if tie is None:
        return None
    return {"kind": tie.kind, "max_action": tie.cap, "code": tie.code or None, "why": tie.detail,
            "evidence_path": [{"value": v, "members_with_own_evidence": holders} for v, holders in path]}


def _member(snap: list | None, tie: attribution.Tie | None = None,
            path: list[tuple[str, list[str]]] | None = None, evidence: int | None = None) -> dict[str, Any] | None:
    if snap is None:
        return None
    m = Member.restore(snap)
    return {"first_request": _ts(m.first_ms), "org": m.org or None, "young": m.young, "risky": m.risky,
            "linked_through": [s for s, b in SCOPE_BITS.items() if m.ties & b], "strong_values": list(m.strong),
            "own_flagged_requests": m.flagged,
            "own_evidence": attribution.own_text(m.evidence if evidence is None else evidence),
            "tie": _tie(tie, path or [])}


def _cluster_decision(cd: ClusterDecision) -> dict[str, Any]:
    return {"ts": _ts(cd.ts_ms), "seen_at": _ts(cd.seen_ms), "cluster_id": cd.cluster_id,
            "decision_id": cd.decision_id,
            "action": cd.action, "ttl_s": cd.ttl_s, "mode": cd.mode, "reasons": list(cd.reasons),
            "alert_id": cd.alert_id, "member": _member(cd.member, cd.tie, cd.path, cd.evidence),
            "fanned_out_to_account": cd.fanned_out}


def _cluster(t: AccountTrace) -> dict[str, Any] | None:
    if not t.memberships:
        return None
    c = t.cluster
    last = next(m for m in reversed(t.memberships) if m.cluster_id is not None)
    cid = c.cid if c is not None else last.cluster_id
    # lazily expired state still sits in the store until a sweep: what the stage would see at the end
    live = c is not None and t.watermark_ms - c.last_ms <= t.rules.cluster.ttl_ms
    out: dict[str, Any] = {
        "cluster_id": cid, "member_at_end": live,
        "member_record_at_end": c is not None and t.account_id in c.members,
        "max_members": t.rules.cluster.max_members,
        "memberships": [{"ts": _ts(m.ts_ms), "kind": m.kind, "cluster_id": m.cluster_id, "via": m.via,
                         "anchor": m.anchor, "value_accounts": m.fp_accounts, "value_orgs": m.fp_orgs,
                         "size_then": m.size} for m in t.memberships],
        "timeline": [_point(p) for p in t.cluster_timeline],
        "decisions": [_cluster_decision(cd) for cd in t.cluster_decisions],
    }
    if c is not None:
        fig = t.cluster_figures
        own = set(t.fps)
        m = c.members.get(t.account_id)
        tie, path, evidence = t.tie(c) if m is not None else (None, [], None)
        at = t.rules.policy.attribution
        view = attribution.view(c, t.rules)
        own_n = attribution.own_members(c, view)
        out.update({
            "kind": c.kind,
            "first_seen": _ts(c.first_ms), "last_activity": _ts(c.last_ms), "size": len(c.members),
            "orgs": len({m.org or f"~{a}" for a, m in c.members.items()}),
            "members_with_own_evidence": own_n,
            # decided on fewer members with own evidence than cluster_min_own_members (new_card_community)
            "new_card_community": own_n < at.cluster_min_own_members and attribution.new_card_community(
                c, view, own_n, at),
            "risky_members": c.risky,
            "linking_values": [{"value": k, "accounts": v.accounts, "orgs": v.orgs, "strong": v.strong,
                                "its_own": k in own}
                               for k, v in sorted(c.fps.items(), key=lambda kv: (-kv[1].accounts, kv[0]))],
            "signals": _figures_table(fig, t.rules, ("CL_", "FP_")),
            "score_enforce": _num(fig.assessment.score_enforce) if fig else 0,
            "score_all": _num(fig.assessment.score_all) if fig else 0,
            "member": _member(m.snapshot() if m is not None else None, tie, path, evidence),
        })
    return out


def _step(score: float, rules: Rules) -> dict[str, Any] | None:
    s = step_for(score, rules)
    return None if s is None else {"action": s.action, "min_score": _num(s.min_score), "ttl_s": s.ttl_s,
                                   "limit_rpm": s.limit_rpm}


def _policy_notes(d: Decision, score: float, families: set[str], rules: Rules, *, shadow_only: bool,
                  allowlisted: bool, established: bool) -> list[str]:
    """Why the decision has this action, TTL and mode, read against the policy section of the rules."""
    p = rules.policy
    notes = []
    step = step_for(score, rules)
    if step is None:
        return notes
    notes.append(f"score {_num(score)} reaches the '{step.action}' step (min_score {_num(step.min_score)})")
    have, want = LEVELS.index(d.action), LEVELS.index(step.action)
    if have < want:
        if step.action == "block" and len(families) < p.block_min_families:
            notes.append(f"lowered to {d.action}: a block needs {p.block_min_families} signal families, "
                         f"this had {len(families)} ({', '.join(sorted(families))})")
        elif established and p.established_max_action:
            notes.append(f"capped at {d.action}: established, verified customer "
                         f"(policy.established_max_action: {p.established_max_action})")
        else:
            notes.append(f"lowered to {d.action} by the policy caps")
    elif have > want:
        notes.append(f"escalated to {d.action}: repeat offence within policy.escalation.window_s")
    chosen = next((s for s in p.actions if s.action == d.action), None)
    if chosen is not None and d.ttl_s != chosen.ttl_s and d.ttl_s > chosen.ttl_s:
        notes.append(f"TTL {d.ttl_s}s: the step's {chosen.ttl_s}s multiplied by "
                     f"{_num(p.ttl_multiplier)} per earlier offence (at most {p.max_ttl_s}s)")
    if d.mode == "shadow":
        if rules.mode == "shadow":
            notes.append("shadow: the rules file's global mode is shadow")
        elif allowlisted:
            notes.append("shadow: the account or its org is allowlisted")
        elif shadow_only:
            notes.append("shadow: only shadow signals reach an action step")
        else:
            notes.append("shadow")
    return notes


def _alert_brief(a: Alert) -> dict[str, Any]:
    w = a.wire()
    w.pop("accounts", None)
    return w


def _decision(dt: DecisionTrack, t: AccountTrace, alerts_by_id: dict[str, Alert]) -> dict[str, Any]:
    d = dt.decision
    rules = t.rules
    rule: dict[str, Any] = {}
    if dt.origin == "account" and dt.figures is not None:
        a = dt.figures.assessment
        shadow_only = step_for(a.score_enforce, rules) is None
        score = a.score_all if shadow_only else a.score_enforce
        fams = set(a.families_enforce) if not shadow_only else {h.signal.family for h in a.hits}
        rule = {"by": "account signals -> policy.actions", "signals": _hits(dt.figures),
                "score_enforce": _num(a.score_enforce), "score_all": _num(a.score_all),
                "policy_step": _step(score, rules),
                "notes": _policy_notes(d, score, fams, rules, shadow_only=shadow_only,
                                       allowlisted=dt.allowlisted, established=dt.established)}
    elif dt.origin == "cluster":
        alert = alerts_by_id.get(d.alert_id)
        at = rules.policy.attribution
        notes = {
            "OWN_EVIDENCE": "the cluster's decision reaches it for abuse evidence of its own plus a strong tie "
                            f"(payment method, device or harness prompt), up to {at.own_strong_max_action}",
            "OWN_EVIDENCE_WEAK_TIE": "the cluster's decision reaches it for abuse evidence of its own; it is tied "
                                     "by shared infrastructure or templates only, so at most "
                                     f"{at.own_weak_max_action}",
            "PAYMENT_RING": "on a ring's card: a throwaway account (disposable email or no KYC) on a card new, "
                            "disposable or KYC-less accounts of other orgs share, or a holder of a card whose "
                            "holders of several orgs each send from their own hosting network: reached as far as "
                            f"association ({at.association_max_action})",
            "HARNESS_RING": "a throwaway account (disposable email or no KYC) running a campaign's harness system "
                            "prompt that throwaway accounts of other orgs run (who signed it up, not what it sends): "
                            f"reached as far as association ({at.association_max_action})",
            "EGRESS_ROTATION": "its only evidence is its own egress rotating through hosting networks, or back and "
                               "forth between home and phone networks of several operators and countries (a proxy "
                               "pool's exits or a VPN's: how it connects, not what it sends): reached as far as "
                               f"association ({at.association_max_action})",
            "EGRESS_POOL": "its only evidence is egress from a hosting block its community's proxy-pool-like "
                           "egress reuses (how it connects, not what it sends): reached as far as association "
                           f"({at.association_max_action})",
            "ASSOCIATION": "no abuse evidence of its own: the cluster's decision reaches it because it shares a "
                           "payment method, device or harness prompt with members that have, at most "
                           f"{at.association_max_action} ({at.established_association_max_action} for an aged "
                           "account without a disposable email)",
        }
        notes = [text for code, text in notes.items() if code in d.reasons]
        if "MEMBER_CAP" in d.reasons:
            notes.append("capped below the cluster's own action by that tie (MEMBER_CAP)")
        step = None
        if alert is not None:
            fams = {rules.signals[r.code].family for r in alert.reasons if r.code in rules.signals}
            step = _step(alert.score, rules)
            notes += _policy_notes(d, alert.score, fams, rules, shadow_only=False, allowlisted=False,
                                   established=False)
            if d.ts_ms > alert.ts_ms:
                notes.append("late joiner: decided on its first request after joining a decided cluster, "
                             "for the rest of the cluster decision's TTL")
        rule = {"by": "cluster signals -> policy.actions -> fan-out", "cluster_id": d.cluster_id,
                "cluster_alert": _alert_brief(alert) if alert is not None else None,
                "policy_step": step, "notes": notes}
    elif dt.origin == "lift":
        rule = {"by": "allowlist", "notes": ["the account or its org is allowlisted: its live decision is lifted"]}
    return {"decision": d.wire(), "origin": dt.origin, "rule": rule}


def build(t: AccountTrace, *, events_file: str, lines: int, events: int, dead_letters: int,
          account_dead_letters: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole explanation of `t.account_id` (call only when it had at least one event)."""
    rules = t.rules
    cluster_alerts = [a for cid in sorted(t.cluster_ids) for a in t.cluster_alerts.get(cid, [])]
    alerts_by_id = {a.alert_id: a for a in cluster_alerts}
    for a in t.account_alerts:
        alerts_by_id[a.alert_id] = a
    decisions = [_decision(dt, t, alerts_by_id) for dt in t.decisions]
    seen: Counter[str] = Counter()
    readded = {m.ts_ms for m in t.memberships if m.kind == "re-added"}
    for dt, x in zip(t.decisions, decisions, strict=True):
        # the core may re-emit a live decision under the same id; consumers de-duplicate on it
        seen[x["decision"]["decision_id"]] += 1
        x["emission"] = seen[x["decision"]["decision_id"]]
        if x["emission"] > 1 and dt.origin == "cluster" and dt.decision.ts_ms in readded:
            x["rule"]["notes"].append(
                "re-emitted: the account was re-added to the cluster at this event after the member cap "
                f"(state.cluster.max_members {rules.cluster.max_members}) had dropped it, and a new member "
                "record does not remember the fan-out it already got")
    decided_by_alert = {d["decision"]["alert_id"]: d["decision"]["decision_id"] for d in decisions}
    alerts = [{"alert": a.wire(), "names_account": True, "decision_id": decided_by_alert.get(a.alert_id)}
              for a in t.account_alerts]
    for a in sorted(cluster_alerts, key=lambda a: (a.ts_ms, a.alert_id)):
        alerts.append({"alert": _alert_brief(a), "names_account": t.account_id in a.accounts,
                       "decision_id": decided_by_alert.get(a.alert_id)})
    alerts.sort(key=lambda x: x["alert"]["ts"])
    enforcing = [d for d in t.decisions if d.decision.mode == "enforce" and d.decision.action != "lift"]
    actions = Counter(f"{d.decision.action}/{d.decision.mode}" for d in t.decisions)
    return {
        "explain_version": VERSION,
        "account_id": t.account_id,
        "source": {"events_file": events_file, "lines": lines, "events": events, "dead_letters": dead_letters,
                   "rules": rules.source, "mode": rules.mode},
        "summary": {
            "decisions": len(t.decisions), "by_action": dict(sorted(actions.items())),
            "first_enforcing": None if not enforcing else {
                "ts": _ts(enforcing[0].decision.ts_ms), "action": enforcing[0].decision.action,
                "decision_id": enforcing[0].decision.decision_id, "origin": enforcing[0].origin},
            "alerts": len(alerts), "in_cluster": bool(t.memberships),
        },
        "header": _header(t, account_dead_letters),
        "timeline": [_point(p) for p in t.timeline],
        "signals": _signals(t),
        "fingerprints": _fingerprints(t),
        "untracked_values": [{"scope": s, "value": v,
                              "why": "allowlisted or its scope is not in fingerprints.scopes"}
                             for s, v in sorted(t.untracked) if f"{s}:{v}" not in t.fps],
        "cluster": _cluster(t),
        "decisions": decisions,
        "alerts": alerts,
        "fingerprint_decisions": [d.wire() for d in t.fp_decisions],
    }
