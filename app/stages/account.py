"""Account stage: per-account windows and content signals, account-scoped alerts and decisions, and one
observation per fingerprint value on the event for the fingerprint stage."""

from __future__ import annotations

from zlib import crc32

from app.detect.account import AccountState, account_signals
from app.detect.messages import OWN_CONTENT, Observation, Summary
from app.features.content import ContentConfig, ContentFeatures, ContentInput, analyse
from app.ingest.event import Event
from app.policy import feedback
from app.policy.attribution import account_limits, content_now, own_bits
from app.policy.decide import Subject, decide, lift
from app.rules.model import Rules
from app.score.assess import assess
from app.stages.base import Output, Stage
from app.state.store import NO_PROVENANCE, DictStore, Provenance, StateStore


class AccountStage(Stage):
    def __init__(self, rules: Rules, store: StateStore | None = None) -> None:
        super().__init__(rules)
        self.store = store if store is not None else DictStore("accounts")

    def set_rules(self, rules: Rules) -> None:
        super().set_rules(rules)
        self.content_cfg = ContentConfig(lsh_bands=rules.content_lsh_bands, max_chars=rules.content_max_chars)

    def sweep(self, prov: Provenance = NO_PROVENANCE) -> int:
        b = self.rules.account
        if self.feedback:
            self.feedback.sweep(self.watermark_ms)
        return self.store.sweep(self.watermark_ms, b.ttl_ms, b.max_keys, prov)

    @staticmethod
    def content_input(ev: Event) -> ContentInput:
        return ev.prompt, ev.system_prompt_hash, ev.tools, ev.images

    def process(self, ev: Event, out: Output, cf: ContentFeatures | None = None,
                prov: Provenance = NO_PROVENANCE) -> None:
        """`cf`: the event's content features when the driver had them computed elsewhere (in another
        process, `analyse_batch` over `content_input(ev)` with `content_cfg`); computed here otherwise.
        `prov`: the event's provenance, for the state it writes."""
        rules = self.rules
        if self._tick(ev.ts_ms):
            self.sweep(prov)
        self._sync_feedback()
        if cf is None:
            cf = analyse(*self.content_input(ev), self.content_cfg)
        key = ev.account_id
        st = self.store.get(key)
        if st is None or ev.ts_ms - st.last_ms > rules.account.ttl_ms:
            st = AccountState(ev.ts_ms)
        fr = rules.fingerprints
        flagged_now = st.observe(ev, cf, rules.content_flag_min, fr.hosting_asn_types, fr.residential_asn_types)
        allow = self.allow if self.allow else None  # an empty allowlist allows nothing: skip the look-ups
        allowed = allow is not None and (
            allow.allows("account", key, ev.ts_ms) or allow.allows("org", ev.org_id, ev.ts_ms))
        subj = None  # made only for a lift or a decision (most events need neither)
        fb = self.feedback if self.feedback else None  # no verdicts: skip the look-ups
        if allowed:
            subj = Subject("account", key, (key,), 1, max(st.first_ms, ev.ts_ms - 86_400_000))
            verdict = fb.fp_account(key, ev.ts_ms) if fb is not None else None
            d = (feedback.lift_on_verdict(st, subj, ev.ts_ms, verdict, rules) if verdict is not None
                 else lift(st, subj, ev.ts_ms, "ALLOWLISTED", rules))
            if d is not None:
                out.decisions.append(d)
        age = st.age_ms(ev.ts_ms)
        young = age is not None and age < fr.young_ms
        hits = account_signals(st, ev, rules)
        flagged = st.flagged()
        # kept: volume and egress evidence; judged afresh: the share of content-flagged requests (a
        # content signal firing is content evidence only while the share holds)
        bits = own_bits(hits, rules)
        st.own |= bits & ~OWN_CONTENT
        own = st.own | (bits & OWN_CONTENT) | content_now(flagged, st.n, rules)
        if hits:
            if subj is None:
                subj = Subject("account", key, (key,), 1, max(st.first_ms, ev.ts_ms - 86_400_000))
            cap, gate = account_limits(age is None or young, st.kyc, st.email, hits, rules)
            alert, decision = decide(st, subj, assess(hits), ev.ts_ms, rules, allowlisted=allowed, max_action=cap,
                                     gate=gate)
            if alert is not None:
                out.alerts.append(alert)
            if decision is not None:
                out.decisions.append(decision)
        if fb is not None and not allowed and fb.has_known_bad():
            # a value an analyst's confirmed verdict marked known bad: caught on this request
            hit = feedback.known_bad(st, key, feedback.event_keys(ev.payment_fp, ev.device_id, ev.system_prompt_hash),
                                     ev.ts_ms, st.risky(young), st.first_ms, fb, rules)
            if hit is not None:
                out.alerts.append(hit[0])
                out.decisions.append(hit[1])
        abroad = bool(ev.country and ev.billing_country and ev.country != ev.billing_country
                      and ev.asn_type in fr.residential_asn_types)
        er = fr.exit_ring
        summary = Summary(
            account_id=key, org=st.org, first_ms=st.first_ms,
            young=young,
            # email-only KYC is what most consumers have: by itself it makes nobody linkable
            unverified=st.kyc == "none" or st.email == "disposable"
            or (st.channel in fr.abused_channels and st.kyc in fr.unverified_kyc),
            n=st.n, flagged=flagged,
            # account_signals has just tested it for this event
            pivot="ACCT_MODEL_PIVOT" in [h.signal.code for h in hits],
            risky=st.risky(young), own=own, throwaway=st.email == "disposable" or st.kyc == "none",
            hosting_block=st.hosting_block,
            net=crc32(ev.ip_prefix.encode()) if ev.ip_prefix is not None else 0,
            asn=ev.asn or 0,
            country=ev.country or "",
            verified=st.kyc == "id_verified",
            home=st.home_n == st.n,
            abroad=abroad,
            created_day=st.created_ms // 86_400_000 if ev.payment_fp and st.created_ms is not None else 0,
            veiled=er is not None and (ev.asn_type in er.asn_types or (er.abroad and abroad)),
        )
        scopes = fr.scopes
        ts, event_id = ev.ts_ms, ev.event_id
        values = [(scope, value) for scope, value in (
            ("payment_fp", ev.payment_fp), ("ja4", ev.ja4), ("ip_prefix", ev.ip_prefix), ("device_id", ev.device_id))
            if value is not None and scope in scopes and (allow is None or not allow.allows(scope, value, ts))]
        if "template" in scopes:
            if ev.system_prompt_hash and ev.system_prompt_hash not in fr.first_party_prompts:
                values.append(("template", "sys:" + ev.system_prompt_hash))
            # 16-bit SimHash band keys fill up with unrelated prompts at volume; only the MinHash band keys
            # ("m...") are selective enough to link accounts
            values += [("template", tk) for tk in cf.template_keys if tk[0] == "m"]
        values = st.unreported(values, summary.signature, ts, fr.refresh_ms)
        self.store.put(key, st, prov)
        out.observations += [Observation(scope, value, ts, event_id, summary, flagged_now) for scope, value in values]
