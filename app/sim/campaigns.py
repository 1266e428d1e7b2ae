"""Distillation campaigns: the threat model's archetypes as knob defaults over one campaign mechanism.

A campaign runs `live_accounts` slots; each slot goes through a sequence of accounts (churned or banned and
replaced after `replacement_lag_minutes`; replacements may reuse the pool's cards and fingerprints). Requests
follow a shared clock (load-balanced round robin over the slots, `timing_jitter_seconds` of noise) inside the
campaign's shifts, through a proxy pool, with prompts from harvesting families mixed with cover traffic.
"""

from __future__ import annotations

import math
from typing import Any

from app.sim.accounts import Account, make_account, weighted
from app.sim.events import encode
from app.sim.groups import DEVICE_PATHS, STACKS_BY_PATH, Group, Session, World
from app.sim.infra import Stack, asns, pick_stack, rare_ja4
from app.sim.prompts import FAMILIES
from app.sim.timing import HOUR_MS, loguniform, session_times

_COMMON: dict[str, Any] = {
    "replacement_lag_minutes": 30, "replacement_reuse": 0.5, "paraphrase_rate": 0.3,
    "trace_elicitation_fraction": 0.5, "cover_traffic_fraction": 0.0,
    "cover_families": {"explain": 1, "homework": 1, "writing": 1, "agent_task": 1},
    "shared_payment_fraction": 0.5, "fingerprint_rotation_hours": 0, "custom_ja4s": 0, "custom_ja4_share": 0.0,
    "stacks": {"python_sdk": 0.6, "node_sdk": 0.4}, "signup_channels": {"standard": 1},
    "email_domain_classes": {"freemail": 0.7, "disposable": 0.3}, "tiers": {"build": 0.8, "free": 0.2},
    "kyc": {"card": 1}, "billing_countries": {"US": 0.5, "GB": 0.2, "SG": 0.15, "JP": 0.15},
    "timing_jitter_seconds": 60, "account_age_hours": [24, 240], "access_paths": {"api": 1}, "system_prompts": 1,
    "pivot": {"fraction": 0.3, "within_hours": 12}, "models": {"large": 0.8, "medium": 0.2}, "thinking": 0.8,
    "images": 0.0, "tools": [0, 0], "output_tokens": [500, 6000], "thinking_tokens": [1000, 12000],
    "context_tokens": [0, 0], "cache_read_fraction": 0.0, "turns": [1, 1], "diurnal": "flat",
}

ARCHETYPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "reasoning_harvester": {
        "template_families": {"trace_reconstruction": 0.45, "reasoning_tags": 0.1, "debug_mode": 0.05,
                              "multilingual_trace": 0.1, "rubric_reward": 0.2, "censorship_rewrite": 0.15},
        "paraphrase_rate": 0.25, "trace_elicitation_fraction": 0.6, "cover_traffic_fraction": 0.05,
        "cover_families": {"homework": 1, "explain": 1}, "shared_payment_fraction": 0.7,
        "proxy_pool": {"size": 40, "asn_type": "residential", "countries": {"US": 3, "GB": 1, "SG": 1, "JP": 1},
                       "sticky_minutes": 60},
        "stacks": {"python_sdk": 0.6, "python_httpx": 0.4}, "custom_ja4s": 2, "custom_ja4_share": 0.4,
        "signup_channels": {"edu": 0.4, "startup": 0.35, "security_research": 0.15, "standard": 0.1},
        "email_domain_classes": {"disposable": 0.3, "freemail": 0.5, "edu": 0.2}, "kyc": {"card": 0.8, "email": 0.2},
        "timing_jitter_seconds": 20, "account_age_hours": [12, 240], "shifts": [[1, 9], [13, 21]],
        "models": {"large": 0.9, "medium": 0.1}, "thinking": 0.95, "output_tokens": [1500, 8000],
        "thinking_tokens": [2000, 16000],
    },
    "agentic_harvester": {
        "template_families": {"agentic_coding": 0.35, "tool_orchestration": 0.2, "data_analysis": 0.15,
                              "computer_use": 0.15, "vision_extract": 0.15, "reasoning_tags": 0.05},
        "trace_elicitation_fraction": 0.1, "cover_traffic_fraction": 0.1,
        "cover_families": {"agent_task": 1, "dev_question": 1}, "shared_payment_fraction": 0.4,
        "proxy_pool": {"size": 80, "asn_type": "cloud", "countries": {"US": 2, "DE": 1, "SG": 1},
                       "sticky_minutes": 120},
        "signup_channels": {"startup": 0.5, "standard": 0.3, "security_research": 0.2},
        "email_domain_classes": {"corporate": 0.3, "freemail": 0.5, "disposable": 0.2},
        "tiers": {"build": 0.6, "scale": 0.4},
        "kyc": {"card": 0.9, "id_verified": 0.1}, "account_age_hours": [48, 720],
        "access_paths": {"api": 0.5, "cloud_marketplace": 0.3, "ide_agent": 0.2}, "system_prompts": 2,
        "pivot": {"fraction": 0.4, "within_hours": 12}, "thinking": 0.6, "tools": [10, 30],
        "output_tokens": [300, 4000],
        "thinking_tokens": [500, 8000], "context_tokens": [5000, 60000], "cache_read_fraction": 0.8, "turns": [3, 15],
    },
    "release_tracker": {
        "template_families": {"agentic_coding": 0.5, "tool_orchestration": 0.3, "trace_reconstruction": 0.2},
        "trace_elicitation_fraction": 0.2, "paraphrase_rate": 0.2, "shared_payment_fraction": 0.5,
        "proxy_pool": {"size": 20, "asn_type": "datacenter", "countries": {"US": 1, "DE": 1, "FR": 1}},
        "stacks": {"python_httpx": 0.5, "python_sdk": 0.5}, "custom_ja4s": 1, "custom_ja4_share": 0.3,
        "signup_channels": {"startup": 0.6, "standard": 0.4}, "timing_jitter_seconds": 10,
        "account_age_hours": [24, 480], "models": {"large": 0.7, "medium": 0.3},
        "pivot": {"fraction": 0.85, "within_hours": 3}, "thinking": 0.7, "tools": [5, 20],
        "output_tokens": [500, 6000], "context_tokens": [2000, 30000], "cache_read_fraction": 0.6, "turns": [1, 4],
    },
    "hydra_reseller": {
        "replacement_lag_minutes": 10, "replacement_reuse": 0.85,
        "template_families": {"trace_reconstruction": 0.4, "agentic_coding": 0.3, "rubric_reward": 0.15,
                              "reasoning_tags": 0.15},
        "trace_elicitation_fraction": 0.5, "paraphrase_rate": 0.4, "cover_traffic_fraction": 0.75,
        "cover_families": {"agent_task": 1, "dev_question": 1, "writing": 0.5, "explain": 0.5, "homework": 0.3,
                           "zh_task": 0.3},
        "shared_payment_fraction": 0.9,
        "proxy_pool": {"size": 150, "asn_type": "residential",
                       "countries": {"US": 3, "GB": 1, "DE": 1, "BR": 1, "IN": 1}, "sticky_minutes": 15},
        "fingerprint_rotation_hours": 2, "stacks": {"python_sdk": 0.4, "node_sdk": 0.3, "chrome": 0.3},
        "signup_channels": {"standard": 0.5, "startup": 0.3, "reseller": 0.2},
        "email_domain_classes": {"disposable": 0.5, "freemail": 0.5}, "tiers": {"free": 0.3, "build": 0.7},
        "timing_jitter_seconds": 300, "account_age_hours": [0.1, 3], "access_paths": {"api": 0.8, "consumer_app": 0.2},
        "system_prompts": 5, "models": {"large": 0.5, "medium": 0.4, "small": 0.1},
        "pivot": {"fraction": 0.4, "within_hours": 6}, "thinking": 0.4, "tools": [0, 15],
        "output_tokens": [100, 3000], "turns": [1, 3],
    },
    "stealth": {
        "template_families": {"trace_reconstruction": 0.3, "reasoning_tags": 0.1, "multilingual_trace": 0.1,
                              "rubric_reward": 0.2, "agentic_coding": 0.2, "censorship_rewrite": 0.1},
        "trace_elicitation_fraction": 0.5, "paraphrase_rate": 0.9, "cover_traffic_fraction": 0.2,
        "cover_families": {"explain": 1, "homework": 1, "writing": 1, "agent_task": 1}, "shared_payment_fraction": 0.0,
        "proxy_pool": {"size": 600, "asn_type": "residential",
                       "countries": {"US": 4, "GB": 1, "DE": 1, "CA": 1, "AU": 1, "SG": 1, "JP": 1},
                       "sticky_minutes": 240},
        "fingerprint_rotation_hours": 4, "stacks": {"chrome": 0.4, "python_sdk": 0.4, "node_sdk": 0.2},
        "signup_channels": {"edu": 0.35, "startup": 0.35, "security_research": 0.2, "standard": 0.1},
        "email_domain_classes": {"freemail": 0.6, "edu": 0.3, "disposable": 0.1},
        "tiers": {"build": 0.7, "free": 0.3}, "timing_jitter_seconds": 1800, "account_age_hours": [24, 720],
        "access_paths": {"api": 0.7, "consumer_app": 0.3},
        "system_prompts": 0, "diurnal": "human", "output_tokens": [800, 6000],
    },
}


class Campaign(Group):
    cls = "campaign"

    def __init__(self, spec: dict[str, Any], world: World, index: int) -> None:
        super().__init__(spec, {**_COMMON, **ARCHETYPE_DEFAULTS[spec["archetype"]]}, world, index)
        s = self.spec
        self.trace_fams = [(FAMILIES[n], w) for n, w in s["template_families"].items() if FAMILIES[n].trace]
        self.cap_fams = [(FAMILIES[n], w) for n, w in s["template_families"].items() if not FAMILIES[n].trace]
        self.cover = [(FAMILIES[n], w) for n, w in s["cover_families"].items()]
        self.followup = FAMILIES["agent_followup"]

    def label_fields(self, acct: Account) -> dict[str, Any]:
        return {"archetype": self.spec["archetype"], "size": self.spec["accounts"]}

    # -- the pool: cards, proxies, fingerprints, system prompts ---------------------------------------------
    def build(self) -> None:
        s, rng, w = self.spec, self.rng, self.world
        pool = s["proxy_pool"]
        countries = pool.get("countries", {"US": 1})
        self.proxies = []
        for _ in range(pool["size"]):
            choices = asns(pool["asn_type"], weighted(rng, countries))
            a = choices[int(rng.random() * len(choices))]
            self.proxies.append((a, a.ip(rng)))
        n_cards = s.get("shared_cards") or max(1, s["accounts"] // 15)
        self.cards = [self.ids("pf") for _ in range(n_cards)]
        self.custom = [Stack(f"custom{i}", rare_ja4(rng), (ua,)) for i, ua in
                       enumerate(rng.choice(("python-httpx/0.27.2", "aiohttp/3.10.11", "python-requests/2.32.3"))
                                 for _ in range(s["custom_ja4s"]))]
        self.sys_hashes = [f"{rng.getrandbits(64):016x}" for _ in range(s["system_prompts"])]
        live = min(s.get("live_accounts", s["accounts"]), s["accounts"])
        per_slot = [s["accounts"] // live + (1 if i < s["accounts"] % live else 0) for i in range(live)]
        windows = [(w.start + int(a * HOUR_MS), w.start + int(b * HOUR_MS)) for a, b in s["shifts"]] \
            if s.get("shifts") else [(w.start, w.end)]
        for slot, k in enumerate(per_slot):
            cuts = sorted(w.start + int(rng.random() * (w.end - w.start)) for _ in range(k - 1))
            bounds = [w.start, *cuts, w.end]
            prev: Account | None = None
            for j in range(k):
                lag = int(s["replacement_lag_minutes"] * 60_000 * (0.5 + rng.random())) if j else 0
                born, dies = bounds[j] + lag, bounds[j + 1]
                acct = self._account(born, prev, slot)
                self.accounts.append(acct)
                if born < dies:
                    self._plan_account(acct, born, dies, slot, live, windows)
                prev = acct

    def _account(self, born: int, prev: Account | None, slot: int) -> Account:
        s, rng = self.spec, self.rng
        reuse = prev is not None and rng.random() < s["replacement_reuse"]
        if reuse:
            card = prev.payment_fp  # type: ignore[union-attr]
        elif rng.random() < s["shared_payment_fraction"]:
            card = self.cards[int(rng.random() * len(self.cards))]
        else:
            card = self.ids("pf")
        age_ms = int(loguniform(rng, *s["account_age_hours"]) * HOUR_MS) if s["account_age_hours"][1] else 0
        country = weighted(rng, s["billing_countries"])
        kyc = weighted(rng, s["kyc"])
        keys = [self.ids("key") for _ in range(rng.randint(1, 2))]
        acct = make_account(ids=self.ids, org_id=self.ids("org"), keys=keys,
                            created_ms=born - max(age_ms, 60_000), tier=weighted(rng, s["tiers"]),
                            channel=weighted(rng, s["signup_channels"]), kyc=kyc, payment_fp=card,
                            billing_country=country, email_class=weighted(rng, s["email_domain_classes"]),
                            country=country, replacement=prev is not None)
        st = acct.state
        st["born"] = born
        st["epoch"] = -1
        st["ip_until"] = -1
        st["paths"] = [weighted(rng, s["access_paths"]) for _ in range(2)]
        if reuse:
            # the replacement starts on the banned account's fingerprint and proxy; both are read when its first
            # request renders, after all of the predecessor's (rendering runs in time order)
            st["prev"] = prev
        pv = s["pivot"]
        st["pivot_ms"] = (self.world.release + int(rng.random() * pv["within_hours"] * HOUR_MS)
                          if rng.random() < pv["fraction"] else None)
        return acct

    # -- timing: a shared clock, round robin over slots, jitter ---------------------------------------------
    def _plan_account(self, acct: Account, born: int, dies: int, slot: int, live: int,
                      windows: list[tuple[int, int]]) -> None:
        s, rng, w = self.spec, self.rng, self.world
        lo, hi = s["turns"]
        rate = s["requests_per_account_hour"] * math.exp(rng.gauss(0, 0.2) - 0.02)
        period = HOUR_MS * (lo + hi) / 2 / rate
        sampler = w.sampler(s["diurnal"], "US") if s["diurnal"] != "flat" else None
        peak = max(sampler.weight_at(t) for t in range(w.start, w.end, HOUR_MS)) if sampler else 1.0
        period /= peak
        phase = period * slot / live
        jitter_ms = s["timing_jitter_seconds"] * 1000
        for ws, we in windows:
            a, b = max(ws, born), min(we, dies)
            if a >= b:
                continue
            k = max(0, math.ceil((a - ws - phase) / period))
            while True:
                tick = ws + phase + k * period
                if tick >= b + 3 * jitter_ms:
                    break
                k += 1
                t = int(tick + rng.gauss(0, jitter_ms)) if jitter_ms else int(tick)
                if not a <= t < b:
                    continue
                if sampler is not None and rng.random() * peak > sampler.weight_at(t):
                    continue
                n = rng.randint(lo, hi)
                sess = self._session(acct, t)
                for turn, tt in enumerate(session_times(rng, t, n, 3, 25, b), 1):
                    self.add(tt, sess, turn)

    def _session(self, acct: Account, t: int) -> Session:
        s, rng, w = self.spec, self.rng, self.world
        st = acct.state
        pv = st["pivot_ms"]
        role = "new" if pv is not None and t >= pv and rng.random() < 0.9 else weighted(rng, s["models"])
        path = st["paths"][0 if rng.random() < 0.85 else 1]
        lo, hi = s["tools"]
        ctx = int(loguniform(rng, *s["context_tokens"])) if s["context_tokens"][1] else 0
        sys_hash = self.sys_hashes[int(rng.random() * len(self.sys_hashes))] if self.sys_hashes else None
        key = None if path == "consumer_app" else acct.keys[int(rng.random() * len(acct.keys))]
        return Session(acct, key, None, role, w.model_name(role), None, sys_hash, rng.random() < s["thinking"],
                       rng.randint(lo, hi), ctx, path)

    # -- rendering ----------------------------------------------------------------------------------------
    def _identity(self, acct: Account, ts: int, path: str) -> tuple[str, str, str]:
        """(ja4, user agent, device id) for the account's current rotation epoch; browsers on the app path."""
        s, rng, st = self.spec, self.rng, acct.state
        rot = s["fingerprint_rotation_hours"]
        epoch = int((ts - st["born"]) // (rot * HOUR_MS)) if rot else 0
        if epoch != st["epoch"]:
            st["epoch"] = epoch
            st["ident"] = {}
            prev = st.get("prev")
            if epoch == 0 and prev is not None and "ident" in prev.state:
                st["ident"] = dict(prev.state["ident"])
        ident = st["ident"].get(path)
        if ident is None:
            if path == "consumer_app":
                stack = pick_stack(rng, STACKS_BY_PATH["consumer_app"], 0.0)
            elif self.custom and rng.random() < s["custom_ja4_share"]:
                stack = self.custom[int(rng.random() * len(self.custom))]
            else:
                stack = self.pick_stack(path)
            ua = stack.user_agents[int(rng.random() * len(stack.user_agents))]
            ident = st["ident"][path] = (stack.ja4, ua, self.ids("dev"))
        return ident

    def _client(self, acct: Account, ts: int, path: str) -> dict[str, Any]:
        s, rng, st = self.spec, self.rng, acct.state
        if ts >= st["ip_until"]:
            prev = st.get("prev") if st["ip_until"] < 0 else None
            inherited = prev.state.get("ip") if prev is not None else None
            st["ip"] = inherited or self.proxies[int(rng.random() * len(self.proxies))]
            sticky = s["proxy_pool"].get("sticky_minutes", 30)
            st["ip_until"] = ts + int(sticky * 60_000 * (0.5 + rng.random()))
        asn, ip = st["ip"]
        ja4, ua, device = self._identity(acct, ts, path)
        client: dict[str, Any] = {"ip": ip, "asn": asn.number, "asn_type": asn.type, "country": asn.country,
                                  "ja4": ja4, "user_agent": ua}
        if path in DEVICE_PATHS:
            client["device_id"] = device
        client["access_path"] = path
        return client

    def _family(self):
        s, rng = self.spec, self.rng
        if rng.random() < s["cover_traffic_fraction"]:
            pool, paraphrase = self.cover, True  # resold genuine customer traffic: worded as people word it
        else:
            paraphrase = rng.random() < s["paraphrase_rate"]
            want_trace = rng.random() < s["trace_elicitation_fraction"]
            pool = (self.trace_fams if want_trace else self.cap_fams) or self.trace_fams or self.cap_fams
        fams = [f for f, _ in pool]
        return rng.choices(fams, [x for _, x in pool])[0], paraphrase

    def render(self, ts: int, session: Session, turn: int) -> bytes:
        rng = self.rng
        acct = session.account
        if turn > 1:
            fam, paraphrase = self.followup, True
        else:
            fam, paraphrase = self._family()
        text = fam.render(rng, paraphrase)
        req, resp = self.request_parts(session, turn, fam, text)
        client = self._client(acct, ts, session.access_path)
        return encode(self.ids("evt", 96), ts, acct, session.key_id, client, req, resp)
