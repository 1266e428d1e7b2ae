"""Benign populations: each kind is a false-positive trap from the threat model, described by knob defaults.

A scenario names a `kind` and overrides any knob; the behaviour (sessions on a diurnal curve, infrastructure,
cards, models, a burst after the release) is the same code for every kind, driven by those knobs.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from app.sim.accounts import Account, make_account, weighted
from app.sim.events import encode
from app.sim.groups import DEVICE_PATHS, Group, Session, stack_client
from app.sim.infra import Asn, asns
from app.sim.prompts import FAMILIES
from app.sim.timing import HOUR_MS, geometric, loguniform, session_times, stochastic_round

_COMMON: dict[str, Any] = {
    "activity_sigma": 0.8, "session_length": 3, "session_gap_seconds": [20, 240], "diurnal": "human",
    "countries": {"US": 1}, "asn_types": {"residential": 0.7, "mobile": 0.3}, "v6_share": 0.15,
    "access_paths": {"consumer_app": 1}, "tail_stack_share": 0.03, "tiers": {"free": 0.7, "build": 0.3},
    "signup_channels": {"standard": 1}, "kyc": {"email": 0.6, "card": 0.4},
    "email_domain_classes": {"freemail": 0.85, "corporate": 0.1, "edu": 0.05}, "shared_payment_fraction": 0.02,
    "no_card_fraction": 0.5, "account_age_days": [3, 1200], "multi_turn": True, "family_per_org": False,
    "thinking": 0.15, "images": 0.05, "tools": [0, 0], "system_prompts": 0, "system_prompt_scope": "population",
    "models": {"medium": 0.7, "large": 0.2, "small": 0.1}, "new_model_adoption": {"fraction": 0.5, "within_hours": 6},
    "output_tokens": [60, 1500], "thinking_tokens": [200, 4000], "context_tokens": [0, 2000],
    "cache_read_fraction": 0.3, "keys_per_account": [1, 2],
}

_CASUAL_FAMILIES = {"recipe": 1, "travel": 1, "writing": 1.4, "explain": 1.2, "fitness": 0.6, "compare": 0.7,
                    "howto": 1.2, "creative": 0.8, "translate": 0.6, "history": 0.7, "homework": 0.8}

KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "casual_consumers": {
        "session_length": 2.5, "session_gap_seconds": [20, 300], "activity_sigma": 1.0,
        "countries": {"US": 30, "GB": 8, "DE": 7, "FR": 6, "IN": 10, "JP": 6, "BR": 6, "CA": 5, "AU": 4, "ES": 3,
                      "NL": 2, "PL": 2, "MX": 3, "KR": 3, "TR": 2, "SE": 1, "KE": 1, "EG": 1},
        "asn_types": {"residential": 0.62, "mobile": 0.38}, "v6_share": 0.25,
        "access_paths": {"consumer_app": 0.92, "api": 0.08}, "template_families": _CASUAL_FAMILIES,
        "thinking": 0.12, "images": 0.07, "tools": [0, 1], "no_card_fraction": 0.6,
        "new_model_adoption": {"fraction": 0.85, "within_hours": 1}, "context_tokens": [0, 3000],
        "keys_per_account": [1, 1],
    },
    "developers_coding_agents": {
        "session_length": 45, "session_gap_seconds": [2, 30], "diurnal": "office", "activity_sigma": 0.9,
        "countries": {"US": 35, "GB": 6, "DE": 8, "FR": 4, "IN": 12, "JP": 4, "BR": 4, "CA": 5, "NL": 3, "PL": 4,
                      "SE": 2, "SG": 2, "AU": 3, "KR": 2, "ES": 2, "TR": 1},
        "asn_types": {"residential": 0.6, "cloud": 0.25, "datacenter": 0.05, "unknown": 0.1}, "v6_share": 0.1,
        "access_paths": {"ide_agent": 0.65, "api": 0.35}, "tail_stack_share": 0.08,
        "tiers": {"build": 0.6, "scale": 0.3, "free": 0.1},
        "signup_channels": {"standard": 0.75, "startup": 0.2, "edu": 0.05},
        "kyc": {"card": 0.8, "id_verified": 0.1, "email": 0.1},
        "email_domain_classes": {"corporate": 0.5, "freemail": 0.45, "edu": 0.05},
        "shared_payment_fraction": 0.6, "no_card_fraction": 0.05, "account_age_days": [10, 1500],
        "template_families": {"agent_task": 0.85, "dev_question": 0.15}, "followup_family": "agent_followup",
        "thinking": 0.5, "images": 0.03, "tools": [8, 40], "system_prompts": 6,
        "models": {"large": 0.55, "medium": 0.4, "small": 0.05},
        "new_model_adoption": {"fraction": 0.45, "within_hours": 6}, "output_tokens": [40, 3000],
        "thinking_tokens": [100, 6000], "context_tokens": [4000, 120000], "cache_read_fraction": 0.85,
        "keys_per_account": [1, 3],
    },
    "enterprise_batch": {
        "activity_sigma": 0.3, "session_length": 400, "session_gap_seconds": [0.2, 2.5], "diurnal": "batch",
        "countries": {"US": 0.5, "DE": 0.2, "GB": 0.15, "JP": 0.15}, "asn_types": {"cloud": 0.7, "datacenter": 0.3},
        "v6_share": 0.0, "nat_ips": 4, "access_paths": {"api": 0.7, "cloud_marketplace": 0.3}, "tail_stack_share": 0.0,
        "tiers": {"enterprise": 0.7, "scale": 0.3}, "signup_channels": {"enterprise": 1}, "kyc": {"id_verified": 1},
        "email_domain_classes": {"corporate": 1}, "shared_payment_fraction": 1.0, "no_card_fraction": 0.0,
        "account_age_days": [60, 1500], "family_per_org": True, "multi_turn": False, "system_prompt_scope": "org",
        "template_families": {"ent_ticket": 1, "ent_invoice": 1, "ent_call": 1, "ent_product": 1, "ent_contract": 1},
        "thinking": 0.02, "images": 0.0, "tools": [0, 1], "models": {"small": 0.8, "medium": 0.2},
        "new_model_adoption": {"fraction": 0.0, "within_hours": 0}, "output_tokens": [3, 120], "system_prompts": 1,
        "thinking_tokens": [100, 800], "context_tokens": [100, 900], "cache_read_fraction": 0.6,
        "keys_per_account": [5, 25],
    },
    "university_eval": {
        "session_length": 6, "session_gap_seconds": [10, 200], "activity_sigma": 0.8, "orgs": 2, "nat_ips": 1,
        "countries": {"US": 0.6, "GB": 0.2, "TW": 0.2}, "asn_types": {"unknown": 1}, "v6_share": 0.0,
        "access_paths": {"api": 0.8, "consumer_app": 0.2}, "tail_stack_share": 0.05,
        "tiers": {"free": 0.4, "build": 0.6}, "signup_channels": {"edu": 0.9, "standard": 0.1},
        "kyc": {"email": 0.5, "card": 0.5}, "email_domain_classes": {"edu": 0.9, "freemail": 0.1},
        "shared_payment_fraction": 0.3, "no_card_fraction": 0.4, "account_age_days": [0.5, 900],
        "template_families": {"explain": 0.5, "agent_task": 0.3, "dev_question": 0.3, "bench_math": 0.4},
        "multi_turn": False, "thinking": 0.7, "system_prompts": 0, "models": {"large": 0.5, "medium": 0.5},
        "new_model_adoption": {"fraction": 0.7, "within_hours": 2}, "output_tokens": [200, 2500],
        "thinking_tokens": [300, 5000], "context_tokens": [0, 500], "cache_read_fraction": 0.0,
        "release_burst": {"share": 0.6, "requests": 300, "hours": 3, "gap_seconds": [1, 8], "new_model_share": 0.75,
                          "template_families": {"bench_math": 1, "bench_mc": 1}},
    },
    "llm_judges": {
        "activity_sigma": 0.6, "session_length": 500, "session_gap_seconds": [0.5, 4], "diurnal": "batch",
        "countries": {"US": 0.6, "DE": 0.2, "GB": 0.2}, "asn_types": {"cloud": 0.9, "datacenter": 0.1},
        "v6_share": 0.0, "nat_ips": 3, "access_paths": {"api": 1}, "tail_stack_share": 0.02,
        "tiers": {"scale": 0.7, "build": 0.3}, "signup_channels": {"startup": 0.5, "standard": 0.3, "enterprise": 0.2},
        "kyc": {"card": 0.6, "id_verified": 0.4}, "email_domain_classes": {"corporate": 1},
        "shared_payment_fraction": 1.0, "no_card_fraction": 0.0, "account_age_days": [30, 900],
        "template_families": {"judge_pairwise": 1, "judge_rubric": 1}, "multi_turn": False,
        "system_prompt_scope": "org", "system_prompts": 1, "thinking": 0.3, "tools": [0, 1],
        "models": {"medium": 0.5, "large": 0.3, "small": 0.2},
        "new_model_adoption": {"fraction": 0.2, "within_hours": 12}, "output_tokens": [20, 400],
        "thinking_tokens": [100, 1500], "context_tokens": [300, 2500], "cache_read_fraction": 0.5,
        "keys_per_account": [2, 6],
    },
    "routers_aggregators": {
        "activity_sigma": 0.5, "session_length": 1, "session_gap_seconds": [1, 2], "diurnal": "flat",
        "countries": {"US": 0.5, "SG": 0.25, "DE": 0.25}, "asn_types": {"cloud": 1}, "v6_share": 0.1, "nat_ips": 24,
        "access_paths": {"api": 1}, "stacks": {"go_http": 0.5, "node_sdk": 0.3, "python_httpx": 0.2},
        "tail_stack_share": 0.0, "tiers": {"scale": 0.5, "enterprise": 0.5},
        "signup_channels": {"reseller": 0.6, "enterprise": 0.4}, "kyc": {"id_verified": 1},
        "email_domain_classes": {"corporate": 1}, "shared_payment_fraction": 1.0, "no_card_fraction": 0.0,
        "account_age_days": [200, 1000], "multi_turn": False,
        "template_families": {"recipe": 0.5, "travel": 0.4, "writing": 0.7, "explain": 0.6, "howto": 0.5,
                              "creative": 0.4, "homework": 0.5, "agent_task": 1.0, "dev_question": 0.7,
                              "sensitive": 0.2, "zh_explain": 0.3, "zh_task": 0.3, "zh_code": 0.2, "translate": 0.3,
                              "judge_rubric": 0.2, "bench_math": 0.1},
        "thinking": 0.3, "images": 0.05, "tools": [0, 20], "system_prompts": 40,
        "models": {"small": 0.3, "medium": 0.4, "large": 0.3},
        "new_model_adoption": {"fraction": 0.6, "within_hours": 2},
        "output_tokens": [30, 3000], "thinking_tokens": [100, 4000], "context_tokens": [0, 20000],
        "keys_per_account": [10, 60],
    },
    "journalists_sensitive": {
        "session_length": 4, "session_gap_seconds": [30, 400], "activity_sigma": 0.9,
        "countries": {"US": 30, "GB": 15, "DE": 10, "FR": 10, "JP": 5, "TW": 10, "KR": 5, "NL": 5, "SE": 5, "AU": 5},
        "asn_types": {"residential": 0.6, "unknown": 0.25, "mobile": 0.15},
        "access_paths": {"consumer_app": 0.7, "api": 0.3},
        "tiers": {"build": 0.6, "free": 0.4}, "kyc": {"card": 0.6, "email": 0.4},
        "email_domain_classes": {"corporate": 0.5, "freemail": 0.4, "edu": 0.1}, "no_card_fraction": 0.3,
        "account_age_days": [20, 1500], "template_families": {"sensitive": 1, "writing": 0.2, "translate": 0.1},
        "thinking": 0.3, "models": {"large": 0.5, "medium": 0.5},
        "new_model_adoption": {"fraction": 0.6, "within_hours": 3}, "output_tokens": [300, 2500],
    },
    "chinese_language_users": {
        "session_length": 3, "session_gap_seconds": [20, 300], "activity_sigma": 1.0,
        "countries": {"SG": 30, "TW": 30, "MY": 15, "US": 10, "CA": 5, "AU": 5, "GB": 5},
        "asn_types": {"residential": 0.6, "mobile": 0.4}, "access_paths": {"consumer_app": 0.85, "api": 0.15},
        "template_families": {"zh_recipe": 1, "zh_travel": 1, "zh_explain": 1.2, "zh_task": 1.2, "zh_homework": 0.8,
                              "zh_code": 0.6},
        "thinking": 0.2, "new_model_adoption": {"fraction": 0.8, "within_hours": 1},
    },
}


class BenignPopulation(Group):
    cls = "benign"
    KINDS: dict[str, dict[str, Any]] = KIND_DEFAULTS  # a subclass brings its own kinds

    def __init__(self, spec: dict[str, Any], world, index: int) -> None:
        super().__init__(spec, {**_COMMON, **self.KINDS[spec["kind"]]}, world, index)

    def label_fields(self, acct: Account) -> dict[str, Any]:
        return {"kind": self.spec["kind"], "size": self.spec["accounts"]}

    # -- accounts and infrastructure ---------------------------------------------------------------------
    def build(self) -> None:
        s, rng, w = self.spec, self.rng, self.world
        n = s["accounts"]
        n_orgs = s.get("orgs") or n
        orgs = [self._org(i) for i in range(n_orgs)]
        pop_prompts = [f"{rng.getrandbits(64):016x}" for _ in range(s["system_prompts"])]
        fams, fam_w = self.families()
        for i in range(n):
            org = orgs[i % n_orgs] if n_orgs < n else orgs[i]
            acct = self._account(org)
            st = acct.state
            st["org"] = org
            st["activity"] = math.exp(rng.gauss(0, s["activity_sigma"]) - s["activity_sigma"] ** 2 / 2)
            st["prompts"] = org["prompts"] if s["system_prompt_scope"] == "org" else pop_prompts
            st["family"] = org["family"] if s["family_per_org"] else None
            st["paths"] = [weighted(rng, s["access_paths"]) for _ in range(2)]
            st["devices"] = [self.ids("dev") for _ in range(rng.randint(1, 2))]
            # dict.fromkeys, not set(): set order varies with PYTHONHASHSEED and would reorder the draws
            st["stacks"] = {p: self.pick_stack(p) for p in dict.fromkeys(st["paths"])}
            st["home"] = self._home(acct.country, org)
            adopt = s["new_model_adoption"]
            st["adopt_ms"] = (w.release + int(rng.random() * adopt["within_hours"] * HOUR_MS)
                              if rng.random() < adopt["fraction"] else None)
            self.accounts.append(acct)
            self._plan_account(acct, fams, fam_w)

    def _org(self, i: int) -> dict[str, Any]:
        s, rng = self.spec, self.rng
        org: dict[str, Any] = {"id": self.ids("org"), "card": self.ids("pf"), "country": weighted(rng, s["countries"])}
        fams = list(s["template_families"])
        org["family"] = FAMILIES[rng.choice(fams)]
        org["prompts"] = [f"{rng.getrandbits(64):016x}" for _ in range(max(1, s["system_prompts"]))]
        if s.get("nat_ips"):
            asn_type = weighted(rng, s["asn_types"])
            pool = asns(asn_type, org["country"])
            org["nat"] = [(a, a.ip(rng, s["v6_share"])) for a in
                          (pool[int(rng.random() * len(pool))] for _ in range(s["nat_ips"]))]
        return org

    def _account(self, org: dict[str, Any]) -> Account:
        s, rng, w = self.spec, self.rng, self.world
        multi = (s.get("orgs") or s["accounts"]) < s["accounts"]
        country = org["country"] if multi else weighted(rng, s["countries"])
        if rng.random() < s["no_card_fraction"]:
            card = None
        elif multi and rng.random() < s["shared_payment_fraction"]:
            card = org["card"]
        elif rng.random() < s["shared_payment_fraction"] * 0.5:
            card = org["card"]  # family or team card of a one-person org: still unique to it
        else:
            card = self.ids("pf")
        tier = weighted(rng, s["tiers"])
        kyc = weighted(rng, s["kyc"])
        if card is not None and kyc in ("none", "email"):
            kyc = "card"
        age_ms = int(loguniform(rng, *s["account_age_days"]) * 24 * HOUR_MS)
        lo, hi = s["keys_per_account"]
        keys = [self.ids("key") for _ in range(rng.randint(lo, hi))]
        return make_account(ids=self.ids, org_id=org["id"], keys=keys, created_ms=w.start - age_ms, tier=tier,
                            channel=weighted(rng, s["signup_channels"]), kyc=kyc, payment_fp=card,
                            billing_country=country, email_class=weighted(rng, s["email_domain_classes"]),
                            country=country)

    def _home(self, country: str, org: dict[str, Any]) -> list[tuple[Asn, str]]:
        """The addresses an account usually comes from: its org's NAT, or a home line and a phone."""
        if "nat" in org:
            return org["nat"]
        s, rng = self.spec, self.rng
        types = s["asn_types"]
        if s.get("local_networks"):
            # only kinds of network with an operator in the account's country (`asns` would fall back to
            # another country's: a student at home abroad)
            types = {t: w for t, w in types.items() if asns(t, country)[0].country == country} or types
        out = []
        for _ in range(rng.randint(1, 2)):
            typ = weighted(rng, types)
            pool = asns(typ, country)
            a = pool[int(rng.random() * len(pool))]
            out.append((a, a.ip(rng, s["v6_share"])))
        return out

    # -- timing -----------------------------------------------------------------------------------------
    def _plan_account(self, acct: Account, fams, fam_w) -> None:
        s, rng, w = self.spec, self.rng, self.world
        hours = (w.end - w.start) / HOUR_MS
        expected = s["requests_per_account_hour"] * hours * acct.state["activity"]
        mean_len = s["session_length"]
        n_sessions = stochastic_round(rng, expected / mean_len)
        sampler = w.sampler(s["diurnal"], acct.country)
        gap_lo, gap_hi = s["session_gap_seconds"]
        for _ in range(n_sessions):
            t0 = sampler.sample(rng)
            length = geometric(rng, mean_len) if mean_len > 1 else 1
            sess = self._session(acct, t0, fams, fam_w, None)
            for turn, t in enumerate(session_times(rng, t0, length, gap_lo, gap_hi, w.end), 1):
                self.add(t, sess, turn if s["multi_turn"] else 1)
        burst = s.get("release_burst")
        if burst and rng.random() < burst["share"]:
            self._release_burst(acct, burst)

    def _release_burst(self, acct: Account, burst: dict[str, Any]) -> None:
        """A harness sweep on (mostly) the new model, starting in the first half of `hours` after the release."""
        s, rng, w = self.spec, self.rng, self.world
        bf = list(burst.get("template_families", s["template_families"]).items())
        b_fams, b_w = [FAMILIES[k] for k, _ in bf], [x for _, x in bf]
        t0 = w.release + int(rng.random() * burst["hours"] * HOUR_MS * 0.5)
        role = "new" if rng.random() < burst.get("new_model_share", 0.7) else None
        sess = self._session(acct, t0, b_fams, b_w, role, harness=True)
        if "thinking" in burst:  # the sweep's own setting (extended thinking on for a CoT sweep)
            sess.thinking = rng.random() < burst["thinking"]
        lo, hi = burst.get("gap_seconds", [1, 5])
        req = burst["requests"]
        n = (stochastic_round(rng, req * (0.5 + rng.random())) if isinstance(req, int)
             else int(loguniform(rng, req[0], req[1] + 1)))
        for t in session_times(rng, t0, n, lo, hi, min(w.end, t0 + int(burst["hours"] * HOUR_MS))):
            self.add(t, sess, 1)

    def _session(self, acct: Account, t0: int, fams, fam_w, role: str | None, harness: bool = False) -> Session:
        s, rng, w, st = self.spec, self.rng, self.world, acct.state
        path = "api" if harness else st["paths"][0 if rng.random() < 0.8 else 1]
        stack = st["stacks"].get(path) or self.pick_stack(path)
        ja4, ua = stack_client(stack, rng)
        asn, ip = self._egress(acct, t0)
        client: dict[str, Any] = {"ip": ip, "asn": asn.number, "asn_type": asn.type, "country": asn.country,
                                  "ja4": ja4, "user_agent": ua}
        if path in DEVICE_PATHS:
            client["device_id"] = st["devices"][int(rng.random() * len(st["devices"]))]
        client["access_path"] = path
        if role is None:
            adopt = st["adopt_ms"]
            role = "new" if adopt is not None and t0 >= adopt and rng.random() < 0.85 else weighted(rng, s["models"])
        family = st["family"] or (rng.choices(fams, fam_w)[0] if s["multi_turn"] or harness or len(fams) == 1 else None)
        # the consumer app sends its own system prompt, the same for everyone who uses the app
        prompts = [w.app_prompt] if path == "consumer_app" else st["prompts"]
        lo, hi = s["tools"]
        key = None if path == "consumer_app" else acct.keys[int(rng.random() * len(acct.keys))]
        return Session(acct, key, orjson.Fragment(orjson.dumps(client)), role, w.model_name(role), family,
                       prompts[int(rng.random() * len(prompts))] if prompts else None,
                       rng.random() < s["thinking"], rng.randint(lo, hi),
                       int(loguniform(rng, *s["context_tokens"])) if s["context_tokens"][1] else 0, path)

    def _egress(self, acct: Account, t0: int) -> tuple[Asn, str]:
        """The network and address a session starting at `t0` leaves from: mostly the account's first home
        address; a phone on a carrier's NAT gets a new address every session."""
        s, rng, st = self.spec, self.rng, acct.state
        home = st["home"]
        if s.get("exit_per_session"):  # a VPN: any of its exits, per connection
            asn, ip = home[int(rng.random() * len(home))]
        else:
            asn, ip = home[0] if rng.random() < 0.75 else home[int(rng.random() * len(home))]
        if asn.type == "mobile" and "nat" not in st["org"]:
            ip = asn.ip(rng, s["v6_share"])  # carrier NAT: a new address every session
        return asn, ip

    # -- rendering ---------------------------------------------------------------------------------------
    def render(self, ts: int, session: Session, turn: int) -> bytes:
        s, rng = self.spec, self.rng
        fam = session.family
        if turn > 1 and "followup_family" in s:
            fam = FAMILIES[s["followup_family"]]
        elif fam is None:
            fams, fam_w = self.families()
            fam = rng.choices(fams, fam_w)[0]
        text = fam.render(rng, True)
        req, resp = self.request_parts(session, turn, fam, text)
        return encode(self.ids("evt", 96), ts, session.account, session.key_id, session.client, req, resp)
