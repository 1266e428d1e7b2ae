"""Per-account state and signals: volume windows, content shares, automation, account risk.

One `AccountState` per account (Faust table partitioned by account in the worker). It holds counters,
never text: the prompt is reduced to content scores and a short skeleton hash before it gets here."""

from __future__ import annotations

import math
from zlib import crc32

from app.detect.hits import Hit
from app.features.content import ContentFeatures
from app.ingest.event import Event
from app.ingest.parse import ASN_TYPES
from app.rules.model import Rules, Signal, per_rules
from app.state.window import Buckets

FIVE_MIN = 300_000
HOUR = 3_600_000
DAY = 86_400_000
TASK_FAMILIES = ("coding", "agentic", "math", "reasoning", "writing", "qa", "translation", "grading",
                 "data", "chat", "other")
_FAMILY_INDEX = {f: i for i, f in enumerate(TASK_FAMILIES)}
RECENT_SKELETONS = 12
MAX_REPORTED = 16  # fingerprint values remembered per refresh period (past it, values are reported again)
MAX_EGRESS = 8  # distinct hosting IP blocks remembered per account
MAX_ROAM = 8  # residential or mobile IP blocks remembered per account (the most recently seen)
_KIND_OF = {t: i for i, t in enumerate(sorted(ASN_TYPES), 1)}  # the gateway's ASN types, numbered (0: none)
_CC_MASK = 0xFFFF
_KIND_MASK = 0xFF << 16


def _where(cc: str | None, asn_type: str | None) -> int:
    """A country's two letters (0: unknown) and an ASN type, as one int: what AccountState.roam keeps."""
    code = (ord(cc[0]) << 8 | ord(cc[1])) & _CC_MASK if cc and len(cc) == 2 else 0
    return code | _KIND_OF.get(asn_type, 0) << 16


class AccountState:
    __slots__ = (
        "channel",
        "country",
        "created_ms",
        "egress",
        "egress_asns",
        "email",
        "families",
        "first_ms",
        "gap_m2",
        "gap_mean",
        "gap_n",
        "home_n",
        "hosting_block",
        "hosting_n",
        "kyc",
        "last_ms",
        "latest_n",
        "model_first",
        "models",
        "multi_country",
        "n",
        "org",
        "own",
        "pol_action",
        "pol_alert_ms",
        "pol_level",
        "pol_offences",
        "pol_until_ms",
        "pre_n",
        "proxy_home_n",
        "proxy_n",
        "recent",
        "repeat_n",
        "reported",
        "reported_ms",
        "reported_sig",
        "rewrite_n",
        "roam",
        "roam_back",
        "rubric_n",
        "thinking_n",
        "trace_n",
        "w1h",
        "w5m",
    )

    def __init__(self, ts_ms: int) -> None:
        self.first_ms = ts_ms
        self.last_ms = ts_ms
        self.n = 0
        self.created_ms: int | None = None
        self.org: str | None = None
        self.kyc: str | None = None
        self.channel: str | None = None
        self.email: str | None = None
        self.w5m = Buckets(FIVE_MIN, HOUR)
        self.w1h = Buckets(HOUR, DAY)
        self.thinking_n = 0
        self.trace_n = 0
        self.rubric_n = 0
        self.rewrite_n = 0
        self.repeat_n = 0
        self.recent: list[str] = []            # last few skeleton hashes (8 hex chars each)
        self.families = [0] * len(TASK_FAMILIES)
        self.gap_n = 0                         # Welford over inter-arrival gaps, in seconds
        self.gap_mean = 0.0
        self.gap_m2 = 0.0
        self.proxy_n = 0                       # requests through proxy/VPN or from outside the billing country
        # ... of which from outside it through a home, mobile or office network (not hosting, proxy or VPN):
        # a student or an expat billed at home, unless the account's requests come from more than one country
        self.proxy_home_n = 0
        self.country: str | None = None        # the country of its first request with one
        self.multi_country = False             # ... and whether a later request came from another
        self.models: list[str] = []            # distinct models used, at most 4 (newest last)
        self.model_first: list[int] = []       # ... and when each was first used
        self.pre_n = 0                         # requests before the newest model's first use
        self.latest_n = 0                      # requests on the newest model since then
        self.hosting_n = 0                     # requests from hosting addresses (fingerprints.hosting_asn_types)
        # requests from a home or phone network (fingerprints.residential_asn_types) in its billing country: an
        # account all of whose requests are such is at home (Summary.home)
        self.home_n = 0
        self.hosting_block = 0                 # ... the IP block (crc32) of the latest such request
        self.egress: list[int] = []            # ... and their distinct IP blocks (crc32), at most MAX_EGRESS
        self.egress_asns: list[int] = []       # ... and their distinct network operators (ASNs), at most MAX_EGRESS
        # the residential or mobile IP blocks it sent from (fingerprints.residential_asn_types), most recently
        # seen kept, at most MAX_ROAM, flat: [block (crc32), ASN, where (the country's two letters and the ASN
        # type, as one int: _where), last seen ms] per block
        self.roam: list[int] = []
        # ... and when its requests came back to a country they had left on the same type of network (a home
        # line in a country, another's, the first's again), the latest MAX_ROAM times
        self.roam_back: list[int] = []
        self.own = 0                           # own-evidence bits seen so far (app.policy.attribution)
        # policy state for decisions on this account (cooldown, escalation)
        self.pol_until_ms = 0
        self.pol_level = -1
        self.pol_offences: list[int] = []
        self.pol_alert_ms = 0
        self.pol_action = ""
        # fingerprint values reported in the period that began at reported_ms (crc32 of "scope:value"),
        # with the summary signature they were reported under
        self.reported_ms = 0
        self.reported_sig = -1
        self.reported: list[int] = []

    # -- serialisation: a flat list, orjson-encoded into the Faust table (bytes per account in bench)
    def snapshot(self) -> list:
        return [
            4, self.first_ms, self.last_ms, self.n, self.created_ms, self.org, self.kyc, self.channel,
            self.email, self.w5m.data, self.w1h.data, self.thinking_n, self.trace_n, self.rubric_n,
            self.rewrite_n, self.repeat_n, self.recent, self.families, self.gap_n,
            round(self.gap_mean, 3), round(self.gap_m2, 3), self.proxy_n, self.models,
            self.pol_until_ms, self.pol_level, self.pol_offences, self.pol_alert_ms, self.pol_action,
            self.model_first, self.pre_n, self.latest_n, self.reported_ms, self.reported_sig,
            self.reported, self.hosting_n, self.egress, self.own, self.hosting_block,
            self.proxy_home_n, self.country, int(self.multi_country), self.egress_asns, self.roam,
            self.roam_back, self.home_n,
        ]

    @classmethod
    def restore(cls, s: list) -> AccountState:
        if not s or s[0] != 4:
            raise ValueError(f"unknown account state version {s[:1]!r}")
        a = cls.__new__(cls)
        (_, a.first_ms, a.last_ms, a.n, a.created_ms, a.org, a.kyc, a.channel, a.email, w5, w1,
         a.thinking_n, a.trace_n, a.rubric_n, a.rewrite_n, a.repeat_n, a.recent, a.families, a.gap_n,
         a.gap_mean, a.gap_m2, a.proxy_n, a.models, a.pol_until_ms, a.pol_level, a.pol_offences,
         a.pol_alert_ms, a.pol_action, a.model_first, a.pre_n, a.latest_n, a.reported_ms, a.reported_sig,
         a.reported, a.hosting_n, a.egress, a.own, a.hosting_block) = s[:38]
        # an account stored before the home-network count (38 fields) has none, and one country so far
        a.proxy_home_n, a.country, multi = s[38:41] if len(s) > 38 else (0, None, 0)
        a.multi_country = bool(multi)
        # ... and one stored before its hosting operators were kept (41 fields) learns them from its next requests
        a.egress_asns = s[41] if len(s) > 41 else []
        # ... and one stored before its residential blocks were kept (42 fields) learns them from its next requests
        a.roam, a.roam_back = s[42:44] if len(s) > 43 else ([], [])
        # ... and one stored before its requests at home were counted (44 fields) is not at home from then on
        a.home_n = s[44] if len(s) > 44 else 0
        a.w5m = Buckets(FIVE_MIN, HOUR, w5)
        a.w1h = Buckets(HOUR, DAY, w1)
        return a

    def unreported(self, values: list[tuple[str, str]], sig: int, ts_ms: int, refresh_ms: int) -> list[tuple[str, str]]:
        """The (scope, value) pairs of `values` not yet reported in the current refresh period; records
        them as reported. A period begins with the first event, once `refresh_ms` have passed since the
        last one began, and whenever the account's summary signature `sig` (level and eligibility, all a
        fingerprint's state keeps of a member) changes. So a value's state hears from each active member
        at least once per period, and at once when what it knows of the member changes. `refresh_ms` 0
        reports everything.

        Values are remembered as 32-bit hashes, at most MAX_REPORTED per period (later ones are reported
        every time); a hash collision holds one report back until the period ends."""
        if refresh_ms <= 0:
            return values
        if sig != self.reported_sig or ts_ms - self.reported_ms >= refresh_ms:
            self.reported_ms, self.reported_sig, self.reported = ts_ms, sig, []
        seen = self.reported
        out = []
        for pair in values:
            scope, value = pair
            h = crc32(f"{scope}:{value}".encode("utf-8", "surrogatepass"))
            if h in seen:
                continue
            if len(seen) < MAX_REPORTED:
                seen.append(h)
            out.append(pair)
        return out

    def _roam(self, block: int, asn: int, where: int, ts: int) -> None:
        """Note a request from residential or mobile `block`, not the latest one's (`where`: its country and ASN
        type, `_where`): its entry moves to the end (entries are kept in the order they were last seen), a new
        one dropping the least recently seen past MAX_ROAM; and a return when this type of network's latest
        request came from another country and an earlier one from this country."""
        r = self.roam
        kind = where & _KIND_MASK
        latest = -1  # where the latest request on this type of network came from
        seen = False  # ... and whether one came from this country
        mine = -1
        for i in range(len(r) - 4, -1, -4):  # the most recently seen first
            w = r[i + 2]
            if w & _KIND_MASK == kind:
                if latest < 0:
                    latest = w
                if w == where:
                    seen = True
            if r[i] == block:
                mine = i
        if seen and latest != where and where & _CC_MASK:
            back = self.roam_back
            back.append(ts)
            if len(back) > MAX_ROAM:
                del back[0]
        if mine >= 0:
            entry = r[mine:mine + 4]
            del r[mine:mine + 4]
            if ts > entry[3]:
                entry[3] = ts
            r.extend(entry)
            return
        if len(r) >= 4 * MAX_ROAM:
            del r[:4]
        r.extend((block, asn, where, ts))

    def roaming(self, now_ms: int, window_ms: int) -> tuple[int, int, int, int]:
        """(blocks, network operators, countries, returns) of the residential or mobile blocks it sent from, and
        of its returns to a country on one type of network, within `window_ms` before `now_ms` (0: any time it
        remembers)."""
        r = self.roam
        since = now_ms - window_ms if window_ms else -1
        blocks = 0
        asns = set()
        ccs = set()
        for i in range(0, len(r), 4):
            if r[i + 3] >= since:
                blocks += 1
                asns.add(r[i + 1])
                ccs.add(r[i + 2] & _CC_MASK)
        asns.discard(0)
        ccs.discard(0)
        return blocks, len(asns), len(ccs), sum(1 for t in self.roam_back if t >= since)

    def proxy_figure(self, s: Signal | None) -> int:
        """ACCT_PROXY_GEO's count: requests through proxy/VPN or from outside the billing country, without
        those from one foreign country through a home, mobile or office network unless the signal counts a
        stable foreign country (`stable_foreign`) or the account's requests came from more than one country.
        A student at a campus abroad, or an expat, sends from one country; a proxy pool's exits are many."""
        if self.multi_country or s is None or s.stable_foreign:
            return self.proxy_n
        return self.proxy_n - self.proxy_home_n

    # -- update
    def observe(self, ev: Event, cf: ContentFeatures, flag_min: float, hosting: frozenset[str],
                residential: frozenset[str] = frozenset()) -> bool:
        """Take the event into the account's figures; whether its request was content-flagged. `hosting`: the
        ASN types whose addresses are hosting egress (fingerprints.hosting_asn_types); `residential`: those of
        home and phone networks (fingerprints.residential_asn_types)."""
        ts = ev.ts_ms
        if self.n:
            gap = max(0.0, (ts - self.last_ms) / 1000.0)
            self.gap_n += 1
            delta = gap - self.gap_mean
            self.gap_mean += delta / self.gap_n
            self.gap_m2 += delta * (gap - self.gap_mean)
        self.n += 1
        self.last_ms = max(self.last_ms, ts)
        if ev.created_at_ms is not None:
            self.created_ms = ev.created_at_ms
        self.org = ev.org_id or self.org
        self.kyc = ev.kyc or self.kyc
        self.channel = ev.signup_channel or self.channel
        self.email = ev.email_domain_class or self.email
        out = ev.output_tokens or 0
        self.w5m.add(ts, 1, out)
        self.w1h.add(ts, 1, out)
        if ev.thinking and (ev.thinking_tokens or 0) > 0:
            self.thinking_n += 1
        hit = False
        if cf.trace_elicit >= flag_min:
            self.trace_n += 1
            hit = True
        if cf.rubric_grading >= flag_min:
            self.rubric_n += 1
            hit = True
        if cf.censor_rewrite >= flag_min:
            self.rewrite_n += 1
            hit = True
        if cf.skeleton_hash:
            sk = cf.skeleton_hash[:8]
            if sk in self.recent:
                self.repeat_n += 1
            else:
                self.recent.append(sk)
                if len(self.recent) > RECENT_SKELETONS:
                    del self.recent[0]
            self.families[_FAMILY_INDEX.get(cf.task_family, len(TASK_FAMILIES) - 1)] += 1
        cc = ev.country
        if ev.asn_type in ("proxy", "vpn"):
            self.proxy_n += 1
        elif cc and ev.billing_country and cc != ev.billing_country:
            self.proxy_n += 1
            if ev.asn_type not in hosting:
                self.proxy_home_n += 1
        if cc:
            if self.country is None:
                self.country = cc
            elif cc != self.country:
                self.multi_country = True
        if ev.asn_type in hosting:
            self.hosting_n += 1
            if ev.ip_prefix is not None:
                h = self.hosting_block = crc32(ev.ip_prefix.encode())
                if len(self.egress) < MAX_EGRESS and h not in self.egress:
                    self.egress.append(h)
            asn = ev.asn
            if asn and len(self.egress_asns) < MAX_EGRESS and asn not in self.egress_asns:
                self.egress_asns.append(asn)
        elif ev.asn_type in residential and ev.ip_prefix is not None:
            if cc and cc == ev.billing_country:
                self.home_n += 1
            h = crc32(ev.ip_prefix.encode())
            r = self.roam
            if r and r[-4] == h:  # the block of its latest such request (most of them): when it was seen
                if ts > r[-1]:
                    r[-1] = ts
            else:
                self._roam(h, ev.asn or 0, _where(cc, ev.asn_type), ts)
        model = ev.model
        if model:
            models = self.models
            if model not in models:
                models.append(model)
                self.model_first.append(ts)
                self.pre_n = self.n - 1
                self.latest_n = 1
                if len(models) > 4:
                    del models[0], self.model_first[0]
            elif model == models[-1]:
                self.latest_n += 1
        return hit

    # -- figures shared with the other stages
    def age_ms(self, now_ms: int) -> int | None:
        return None if self.created_ms is None else now_ms - self.created_ms

    def flagged(self) -> int:
        return max(self.trace_n, self.rubric_n, self.rewrite_n)

    def risky(self, young: bool) -> bool:
        """New, with a disposable email, or without KYC: a holder whose sharing of a card with unrelated
        accounts means something (colleagues on a lab's or a team's card are none of these)."""
        return young or self.email == "disposable" or self.kyc == "none"

    def content_share(self) -> float:
        return self.flagged() / self.n if self.n else 0.0

    def pivot(self, now_ms: int, s: Signal | None) -> tuple[float, str] | None:
        """(share, detail) when the account moved most of its traffic to a model it first used within
        `s.window_ms`, after at least `s.min_requests` requests on others, with at least as many since;
        None otherwise. A release tracker moves to a new model within hours of its release."""
        if s is None or not self.models or self.pre_n < s.min_requests:
            return None
        since = self.n - self.pre_n
        if since < s.min_requests or now_ms - self.model_first[-1] > s.window_ms:
            return None
        share = self.latest_n / since
        if share < s.threshold:
            return None
        hours = (now_ms - self.model_first[-1]) / HOUR
        return share, (f"{self.latest_n} of {since} requests since its first use {hours:.1f} h ago are on "
                       f"{self.models[-1]}, after {self.pre_n} on other models")


# the signals account_signals tests, in the order it tests them
_SIGNAL_CODES = ("ACCT_OUTPUT_TOKENS_1H", "ACCT_OUTPUT_TOKENS_24H", "ACCT_REQUESTS_1H", "ACCT_TRACE_ELICIT",
                 "ACCT_RUBRIC_GRADING", "ACCT_CENSOR_REWRITE", "ACCT_THINKING_HEAVY", "ACCT_PROXY_GEO",
                 "ACCT_TEMPLATE_REUSE", "ACCT_NARROW_FOCUS", "ACCT_AUTOMATION", "ACCT_ROUND_THE_CLOCK",
                 "ACCT_EGRESS_ROTATION", "ACCT_MODEL_PIVOT", "ACCT_NEW_UNVERIFIED", "ACCT_RESIDENTIAL_ROTATION")
_signals_of: dict[int, tuple[Rules, tuple[Signal | None, ...]]] = {}  # id(rules) -> (rules, its signals)


def _signals(rules: Rules) -> tuple[Signal | None, ...]:
    """`rules.signal(code)` of every code in _SIGNAL_CODES, looked up once per rules object (not 15 times an
    event: `per_rules`)."""
    return per_rules(_signals_of, rules, lambda r: tuple(map(r.signal, _SIGNAL_CODES)))


def account_signals(a: AccountState, ev: Event, rules: Rules) -> list[Hit]:
    """Every account signal that fires after `ev` was observed, with its figure.

    Thresholds are tested before a detail text is formatted: most signals do not fire on most events."""
    hits: list[Hit] = []
    now = ev.ts_ms
    (tok1h, tok24h, req1h, trace, rubric, rewrite, thinking, proxy, reuse, narrow, automation, clock, egress, pivot,
     new_unverified, roaming) = _signals(rules)
    w5m = a.w5m
    got = None  # (window, totals) of the 5-minute buckets, for the request count over the same window
    for s, bucket in ((tok1h, w5m), (tok24h, a.w1h)):
        if s is not None:
            totals = bucket.totals(now, s.window_ms)
            if bucket is w5m:
                got = (s.window_ms, totals)
            tok = totals[1]
            if tok >= s.threshold:
                hits.append(Hit(s, tok, f"{tok} output tokens in the last {s.window_ms // 60000} min"))
    s = req1h
    if s is not None:
        if s.window_ms > HOUR:
            c = a.w1h.totals(now, s.window_ms)[0]
        else:
            c = (got[1] if got is not None and got[0] == s.window_ms else w5m.totals(now, s.window_ms))[0]
        if c >= s.threshold:
            hits.append(Hit(s, c, f"{c} requests in the last {s.window_ms // 60000} min"))
    n = a.n
    for s, count, what in (
        (trace, a.trace_n, "ask the model to expose or reconstruct its reasoning"),
        (rubric, a.rubric_n, "are rubric / reward-model grading prompts"),
        (rewrite, a.rewrite_n, "ask for censorship-safe rewrites"),
        (thinking, a.thinking_n, "use extended thinking"),
        (proxy, a.proxy_figure(proxy), "come through proxy/VPN or from outside the billing country"),
    ):
        if count and s is not None and n >= s.min_requests and count / n >= s.threshold:
            hits.append(Hit(s, count / n, f"{count} of {n} requests {what}"))
    s = reuse
    if s is not None and n >= s.min_requests and a.repeat_n / n >= s.threshold:
        hits.append(Hit(s, a.repeat_n / n, f"{a.repeat_n} of {n} requests repeat a recent prompt skeleton"))
    s = narrow
    if s is not None:
        fams = a.families
        total = sum(fams)
        if total >= s.min_requests:
            top = fams.index(max(fams))  # the first family with the most requests
            if TASK_FAMILIES[top] not in ("chat", "other") and fams[top] / total >= s.threshold:
                hits.append(Hit(s, fams[top] / total, f"{fams[top]} of {total} requests are {TASK_FAMILIES[top]}"))
    s = automation
    if s is not None and a.gap_n + 1 >= s.min_requests and a.gap_mean > 0:
        cv = math.sqrt(a.gap_m2 / a.gap_n) / a.gap_mean
        if cv <= s.threshold:
            hits.append(Hit(s, round(cv, 4), f"inter-arrival coefficient of variation {cv:.3f} "
                                               f"over {a.gap_n} gaps (at most {s.threshold})"))
    s = clock
    if s is not None and n >= s.min_requests:
        hours = a.w1h.active_buckets(now, DAY)
        if hours >= s.threshold:
            hits.append(Hit(s, hours, f"active in {hours} of the last 24 hours"))
    s = egress
    if (s is not None and n >= s.min_requests and len(a.egress) >= s.threshold and a.hosting_n >= s.min_share * n
            and len(a.egress_asns) >= s.min_asns):
        blocks = len(a.egress)
        hosted = a.hosting_n
        ops = len(a.egress_asns)
        hits.append(Hit(s, blocks, f"{hosted} of {n} requests from hosting addresses "
                                   f"({', '.join(sorted(rules.fingerprints.hosting_asn_types))}), "
                                   f"through {blocks}{'+' if blocks >= MAX_EGRESS else ''} IP blocks of "
                                   f"{ops}{'+' if ops >= MAX_EGRESS else ''} network operators"))
    s = roaming
    if s is not None and n >= s.min_requests and len(a.roam) >= 4 * s.threshold and (
            len(a.roam_back) >= s.min_returns or s.spread_countries):
        blocks, ops, ccs, back = a.roaming(now, s.window_ms)
        if blocks >= s.threshold and ops >= s.min_asns and ccs >= s.min_countries and (
                back >= s.min_returns or 0 < s.spread_countries <= ccs):
            hours = s.window_ms / HOUR
            hits.append(Hit(s, blocks, f"sent from {blocks}{'+' if blocks >= MAX_ROAM else ''} residential or mobile "
                                       f"IP blocks of {ops} network operators in {ccs} countries, coming back "
                                       f"{back}{'+' if back >= MAX_ROAM else ''} times to a country it had left"
                                       + (f" within {hours:g} h" if hours else "")))
    if pivot is not None:
        piv = a.pivot(now, pivot)
        if piv is not None:
            hits.append(Hit(pivot, round(piv[0], 4), piv[1]))
    s = new_unverified
    if s is not None and a.created_ms is not None:
        fr = rules.fingerprints
        if a.kyc in fr.unverified_kyc or a.email == "disposable":
            days = (now - a.created_ms) / DAY
            if days < s.threshold:
                hits.append(Hit(s, round(days, 3), f"account {days:.1f} days old, kyc={a.kyc}, "
                                                    f"channel={a.channel}, email={a.email}"))
    return hits
