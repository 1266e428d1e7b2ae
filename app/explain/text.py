"""Plain-text view of the explain document, for a terminal or a ticket. Reads only the document, so it
can never show something `--json` does not (and the document holds no prompt text)."""

from __future__ import annotations

from typing import Any

# values listed one by one per scope; the rest are summarised (all are in --json)
VALUES_SHOWN = 8
TEMPLATE_SHOWN = 12
STATUS_ORDER = {"linking": 0, "popular": 1, "rare": 2}
CLUSTER_VALUES_SHOWN = 12


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def _thr(s: dict[str, Any]) -> str:
    return f"{s['fires_when'] or ''} {fmt(s['threshold'])}".strip()


def _score(d: dict[str, Any]) -> str:
    return f"score {fmt(d['score_enforce'])} enforce / {fmt(d['score_all'])} incl. shadow"


def _signal_lines(signals: list[dict[str, Any]], indent: str) -> list[str]:
    rows = [(s["code"] + (" (shadow)" if s["shadow"] else ""), fmt(s["value"]),
             _thr(s), f"w{fmt(s['weight'])}", s["family"], s["detail"])
            for s in signals]
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
            for r in rows]


def _table(header: list[str], rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in (header, *rows)]


def _header(doc: dict[str, Any]) -> list[str]:
    h, src, sm = doc["header"], doc["source"], doc["summary"]
    out = [f"distill-guard explain {doc['account_id']}",
           f"  events {src['events_file']}: {src['lines']} records, {src['events']} events, "
           f"{src['dead_letters']} dead letters; rules {src['rules']} (mode {src['mode']})", "", "ACCOUNT"]
    kv = [("requests", f"{h['requests']}, {h['first_event']} .. {h['last_event']}")]
    for label, values in h["attributes"].items():
        if label == "model":
            continue
        kv.append((label, ", ".join(v["value"] if len(values) == 1 else f"{v['value']} ({v['requests']})"
                                    for v in values)))
    if "model" in h["attributes"]:
        kv.append(("models", ", ".join(f"{v['value']} ({v['requests']})" for v in h["attributes"]["model"])))
    age = h["age_at_first_use_days"]
    kv.append(("created", "-" if h["created_at"] is None else f"{h['created_at']} ({fmt(age)} days old at first use)"))
    kv.append(("api keys", str(h["api_keys"])))
    if h["dead_letters"]:
        kv.append(("dead letters", ", ".join(f"line {d['line']} {d['code']}" for d in h["dead_letters"][:10])
                   + (" ..." if len(h["dead_letters"]) > 10 else "")))
    if sm["decisions"]:
        first = sm["first_enforcing"]
        verdict = (f"{sm['decisions']} decision(s): "
                   + ", ".join(f"{k} x{n}" for k, n in sm["by_action"].items())
                   + (f"; first enforcing: {first['action']} at {first['ts']} ({first['origin']})" if first
                      else "; none enforcing"))
    else:
        verdict = "no decision"
    kv.append(("outcome", verdict + (f"; {sm['alerts']} alert(s)" if sm["alerts"] else "")))
    w = max(len(k) for k, _ in kv)
    out += [f"  {k.ljust(w)}  {v}" for k, v in kv]
    return out


def _timeline(doc: dict[str, Any]) -> list[str]:
    out = ["", "TIMELINE  account signals, at each request where the set of firing signals changed"]
    if not doc["timeline"]:
        return [*out, "  (no request evaluated)"]
    for p in doc["timeline"]:
        change = " ".join([*(f"+{c}" for c in p["added"]), *(f"-{c}" for c in p["removed"])])
        change = change or ("(same signals)" if p["fired"] else "(nothing fires)")
        out.append(f"  {p['ts']}  request #{p['request']}  {_score(p)}  {change}")
        out += _signal_lines(p["signals"], "      ")
        own = [d["decision_id"] for d in p["decisions"] if d["origin"] == "account"]
        other = [f"{d['origin']} decision {d['decision_id']}" for d in p["decisions"] if d["origin"] != "account"]
        if p["signals"] or own:
            out.append(f"      -> {p['outcome']}" + (f" {', '.join(own)}" if own else ""))
        if other:
            out.append(f"      -> {'; '.join(other)}")
    return out


def _signals(doc: dict[str, Any]) -> list[str]:
    rows = []
    for s in doc["signals"]:
        state = "FIRING" if s["firing_at_last_request"] else ("disabled" if not s["enabled"] else "")
        rows.append([s["code"] + (" (shadow)" if s["shadow"] else ""), fmt(s["value_at_last_request"]),
                     fmt(s["peak"]), _thr(s), fmt(s["weight"]), s["family"],
                     s["first_fired"] or "-", str(s["requests_firing"]), state])
    return ["", "SIGNALS  every account signal (figure '-': not evaluable yet, e.g. too few requests)",
            *_table(["signal", "last", "peak", "threshold", "weight", "family", "first fired", "requests",
                     "at end"], rows)]


def _fp_row(f: dict[str, Any]) -> list[str]:
    extra = ""
    if f["changes"]:
        extra = "; " + "; ".join(f"{c['change']} at {c['ts']}" for c in f["changes"])
    if f["links_its_cluster"]:
        extra += "; links its cluster"
    capped = f["accounts"] is not None and f["accounts_kept"] is not None and f["accounts"] > f["accounts_kept"]
    return [f["scope"], f["value"], str(f["requests"]), fmt(f["accounts"]), fmt(f["orgs"]) + ("*" if capped else ""),
            f["status"],
            f["why"] + extra]


def _fingerprints(doc: dict[str, Any]) -> list[str]:
    out = ["", "FINGERPRINTS  its values: accounts and orgs behind each (at the end of the file)"]
    fps = doc["fingerprints"]
    if not fps and not doc["untracked_values"]:
        return [*out, "  (none)"]
    rows, rest = [], []
    for scope in dict.fromkeys(f["scope"] for f in fps):
        mine = [f for f in fps if f["scope"] == scope]
        # values that link matter most, then the most shared; the long tail is summarised
        mine.sort(key=lambda f: (STATUS_ORDER.get(f["status"], 3), -(f["accounts"] or 0)))
        limit = TEMPLATE_SHOWN if scope == "template" else VALUES_SHOWN
        rows += [_fp_row(f) for f in mine[:limit]]
        if len(mine) > limit:
            tail = mine[limit:]
            by = {s: sum(1 for f in tail if f["status"] == s) for s in STATUS_ORDER}
            rest.append(f"  ... {len(tail)} more {scope} values ("
                        + ", ".join(f"{n} {s}" for s, n in by.items() if n) + ")")
    out += _table(["scope", "value", "requests", "accounts", "orgs", "status", "why"], rows)
    if any(r[4].endswith("*") for r in rows):
        out.append("  * orgs among the accounts the fingerprint stage keeps per value (the most recent "
                   "state.fingerprint.max_members)")
    if rest:
        out += [*rest, "  (every value is in --json)"]
    for u in doc["untracked_values"]:
        out.append(f"  {u['scope']}  {u['value']}  not tracked: {u['why']}")
    return out


def _cluster(doc: dict[str, Any]) -> list[str]:
    c = doc["cluster"]
    out = ["", "CLUSTER"]
    if c is None:
        return [*out, "  not linked into any cluster"]
    churn: list[dict[str, Any]] = []

    def flush() -> None:
        if churn:
            drops = sum(1 for m in churn if m["kind"] == "dropped")
            adds = len(churn) - drops
            span = churn[0]["ts"] if len(churn) == 1 else f"{churn[0]['ts']} .. {churn[-1]['ts']}"
            out.append(f"  {span}  dropped from {churn[0]['cluster_id']} at its member cap "
                       f"({c['max_members']}, oldest first request first) x{drops}"
                       + (f", re-added by its next link x{adds}" if adds else ""))
            churn.clear()

    for m in c["memberships"]:
        if m["kind"] in ("dropped", "re-added"):
            churn.append(m)
            continue
        flush()
        if m["kind"] == "left":
            out.append(f"  {m['ts']}  left its cluster (expired)")
            continue
        via = f" via {m['via']} (anchor {m['anchor']}; value then {m['value_accounts']} accounts, " \
              f"{m['value_orgs']} orgs)" if m["via"] else ""
        out.append(f"  {m['ts']}  {m['kind']} {m['cluster_id']}{via}; cluster size then {m['size_then']}")
    flush()
    if "size" in c:
        if not c["member_at_end"]:
            out.append("  the cluster had expired by the end of the file; its last state:")
        elif not c["member_record_at_end"]:
            out.append(f"  at the end its member record is dropped (the cluster is at its cap of {c['max_members']}); "
                       "it comes back with its next link")
        out.append(f"  {c['cluster_id']} ({c['kind']}): {c['size']} accounts, {c['orgs']} orgs, "
                   f"{c['members_with_own_evidence']} with abuse evidence of their own, {c['risky_members']} new, "
                   f"disposable or KYC-less; first seen {c['first_seen']}, last activity {c['last_activity']}; "
                   f"{_score(c)}")
        if c.get("new_card_community"):
            out.append(f"  decidable on {c['members_with_own_evidence']} member(s) with evidence of their own: a "
                       "community of new accounts tied by a card or a device, the member with evidence not at home "
                       "(policy.attribution.new_card_community)")
        mem = c["member"]
        if mem is not None:
            out.append(f"  its membership: linked through {', '.join(mem['linked_through']) or '-'}; "
                       f"own evidence {mem['own_evidence']} ({mem['own_flagged_requests']} flagged requests as the "
                       f"cluster last saw it); young {fmt(mem['young'])}, risky {fmt(mem['risky'])}")
            out += _tie_lines(mem["tie"], "  ")
        rows = [[s["code"], fmt(s["value"]), _thr(s), fmt(s["weight"]),
                 s["family"], "FIRING" if s["fired"] else ""] for s in c["signals"]]
        out += ["  cluster signals at the end:", *_table(["signal", "value", "threshold", "weight", "family",
                                                          "at end"], rows, "    ")]
        vals = c["linking_values"]
        out.append("  values linking it: " + ", ".join(
            f"{v['value']} ({v['accounts']} accounts, {v['orgs']} orgs{', its own' if v['its_own'] else ''})"
            for v in vals[:CLUSTER_VALUES_SHOWN]) + (f" ... {len(vals) - CLUSTER_VALUES_SHOWN} more"
                                                      if len(vals) > CLUSTER_VALUES_SHOWN else ""))
    if c["timeline"]:
        out.append("  cluster signals while it was a member, where the firing set changed:")
        for p in c["timeline"]:
            change = " ".join([*(f"+{x}" for x in p["added"]), *(f"-{x}" for x in p["removed"])])
            gate = "" if p["decidable"] is None or p["decidable"] else f"  (not decided: {p['not_decided']})"
            out.append(f"    {p['ts']}  {p['cluster_id']} size {p['size']}  {_score(p)}  "
                       f"{change or '(nothing fires)'}{gate}")
            out += _signal_lines(p["signals"], "        ")
    for d in c["decisions"]:
        mem = d["member"]
        when = "" if d["seen_at"] == d["ts"] else f" (taken before it joined; met at {d['seen_at']})"
        out.append(f"  cluster decision {d['ts']}{when}  {d['action']} ttl {d['ttl_s']}s {d['mode']}  "
                   f"{d['decision_id']}  ({', '.join(d['reasons'])})")
        if mem is None:
            out.append("      this account: no member record")
        else:
            out.append("      this account: " + ("reached by it then" if d["fanned_out_to_account"]
                                                 else "no decision for it then"))
            out += _tie_lines(mem["tie"], "      ")
    return out


def _tie_lines(tie: dict[str, Any] | None, indent: str) -> list[str]:
    """How the account's evidence tied it to the cluster, and its evidence path."""
    if tie is None:
        return []
    cap = f" (at most {tie['max_action']})" if tie["max_action"] else " (not reached)"
    out = [f"{indent}attribution: {tie['kind']}{cap}: {tie['why']}"]
    for step in tie["evidence_path"]:
        who = ", ".join(step["members_with_own_evidence"]) or "no member with evidence of its own"
        out.append(f"{indent}  {step['value']}: held with evidence by {who}")
    return out


def _collapse_repeats(decisions: list[dict[str, Any]]) -> list[Any]:
    """Decisions in order; a run of re-emissions of one decision id becomes a single line."""
    out: list[Any] = []
    run: list[dict[str, Any]] = []

    def flush() -> None:
        if run:
            first, last = run[0]["decision"], run[-1]["decision"]
            span = first["ts"] if len(run) == 1 else f"{first['ts']} .. {last['ts']}"
            readded = sum(1 for x in run if any(n.startswith("re-emitted: ") for n in x["rule"].get("notes", ())))
            why = (f"; {readded} on being re-added to its cluster after the member cap dropped it, which forgets "
                   "the fan-out" if readded else "")
            out.append(f"  {span}  {first['decision_id']} re-emitted x{len(run)} under the same id "
                       f"(consumers de-duplicate on it), ttl left {first['ttl_s']}s .. {last['ttl_s']}s{why}")
            run.clear()

    for x in decisions:
        if x.get("emission", 1) > 1 and (not run or run[0]["decision"]["decision_id"] == x["decision"]["decision_id"]):
            run.append(x)
            continue
        flush()
        if x.get("emission", 1) > 1:
            run.append(x)
        else:
            out.append(x)
    flush()
    return out


def _decisions(doc: dict[str, Any]) -> list[str]:
    out = ["", "DECISIONS  account-scoped, exactly as replay emits them"]
    if not doc["decisions"]:
        return [*out, "  no decision names this account"]
    shown = _collapse_repeats(doc["decisions"])
    for x in shown:
        if isinstance(x, str):
            out.append(x)
            continue
        d, r = x["decision"], x["rule"]
        rpm = f" {d['limit_rpm']} rpm" if d.get("limit_rpm") is not None else ""
        out.append(f"  {d['ts']}  {d['action']}{rpm} ttl {d['ttl_s']}s {d['mode']}  {d['decision_id']}  "
                   f"[{x['origin']}]")
        out.append(f"      reasons: {', '.join(d['reasons'])}; alert {d['alert_id']}")
        if r.get("by"):
            out.append(f"      rule: {r['by']}")
        if x["origin"] == "account" and r.get("signals"):
            out.append(f"      {_score(r)}")
            out += _signal_lines(r["signals"], "        ")
        if x["origin"] == "cluster" and r.get("cluster_alert"):
            a = r["cluster_alert"]
            out.append(f"      cluster alert {a['alert_id']} at {a['ts']}: {a['severity']}, score {fmt(a['score'])}, "
                       f"{a['account_count']} accounts")
            out += [f"        {q['code']}  {fmt(q['value'])} (threshold {fmt(q['threshold'])})  {q['detail']}"
                    for q in a["reasons"]]
        step = r.get("policy_step")
        if step:
            rpm = f", {step['limit_rpm']} rpm" if step.get("limit_rpm") is not None else ""
            out.append(f"      policy step: {step['action']} at score >= {fmt(step['min_score'])} "
                       f"(ttl {step['ttl_s']}s{rpm})")
        out += [f"      - {n}" for n in r.get("notes", [])]
    return out


def _alerts(doc: dict[str, Any]) -> list[str]:
    out = ["", "ALERTS  on the account, and on every cluster it belonged to"]
    if not doc["alerts"]:
        return [*out, "  none"]
    for x in doc["alerts"]:
        a = x["alert"]
        subj = f"{a['subject']['scope']}:{a['subject']['value']}"
        tail = f" -> {x['decision_id']}" if x["decision_id"] else " (no decision for this account)"
        named = "" if x["names_account"] else " (not among the alert's accounts)"
        out.append(f"  {a['ts']}  {a['alert_id']}  {subj}  {a['severity']} score {fmt(a['score'])} "
                   f"{a['mode']}{tail}{named}")
    fpd = doc["fingerprint_decisions"]
    if fpd:
        out += ["", "DECISIONS ON ITS VALUES  (wider scopes: a limiter keyed by these values affects this account too)"]
        out += [f"  {d['ts']}  {d['scope']}:{d['value']}  {d['action']} ttl {d['ttl_s']}s {d['mode']}  "
                f"{d['decision_id']}" for d in fpd]
    return out


def render(doc: dict[str, Any]) -> str:
    lines = [*_header(doc), *_timeline(doc), *_signals(doc), *_fingerprints(doc), *_cluster(doc),
             *_decisions(doc), *_alerts(doc)]
    return "\n".join(lines) + "\n"
