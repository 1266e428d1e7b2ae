"""Loads a rules file (YAML or JSON), validates it against schemas/rules.schema.json plus the semantic
checks a schema cannot express, and compiles it into `Rules`. Errors name the file and the field."""

from __future__ import annotations

import functools
import itertools
import json
from pathlib import Path
from typing import Any

import yaml

from app.errors import RulesError
from app.ingest.parse import BadField, parse_ts
from app.rules.model import (
    ALL_HOSTING_ASN_TYPES,
    RESIDENTIAL_ASN_TYPES,
    ActionStep,
    AllowEntry,
    Attribution,
    CampaignPrompt,
    ExitRing,
    FingerprintRules,
    HarvestTemplate,
    Policy,
    PoolPrompt,
    Rules,
    Signal,
    TableBounds,
    UnrelatedCard,
)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"

# Signals the core implements; a rules file naming any other code is a typo, not a new rule.
KNOWN_SIGNALS = frozenset({
    "ACCT_OUTPUT_TOKENS_1H", "ACCT_REQUESTS_1H", "ACCT_OUTPUT_TOKENS_24H", "ACCT_THINKING_HEAVY",
    "ACCT_AUTOMATION", "ACCT_ROUND_THE_CLOCK", "ACCT_NEW_UNVERIFIED", "ACCT_PROXY_GEO",
    "ACCT_TRACE_ELICIT", "ACCT_RUBRIC_GRADING", "ACCT_CENSOR_REWRITE", "ACCT_TEMPLATE_REUSE",
    "ACCT_NARROW_FOCUS", "FP_SHARED_UNRELATED", "FP_PAYMENT_SHARED", "CL_SIZE", "CL_CONTENT",
    "CL_YOUNG", "CL_SYNC_START", "ACCT_MODEL_PIVOT", "CL_MODEL_PIVOT", "CL_VOLUME", "ACCT_EGRESS_ROTATION",
    "CL_EGRESS", "ACCT_RESIDENTIAL_ROTATION",
})


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """A JSON Schema from schemas/ by short name (`rules`, `alert`, `decision`, `dlq`, `gateway-request`)."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    if not path.exists():  # installed without the repository: the wheel carries a copy
        from importlib import resources

        return json.loads(resources.files("app.schemas").joinpath(f"{name}.schema.json").read_text())
    return json.loads(path.read_text())


def _path_of(err: Any) -> str:
    parts = [str(p) for p in err.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _ts_ms(value: str, source: str, field: str) -> int:
    try:
        return parse_ts(value, field)
    except BadField as bad:
        raise RulesError(source, field, bad.message) from None


def _allow_entries(items: list[dict[str, Any]], source: str, prefix: str) -> tuple[AllowEntry, ...]:
    out = []
    for i, a in enumerate(items):
        exp = a.get("expires_at")
        out.append(AllowEntry(
            scope=a["scope"], value=a["value"],
            expires_at_ms=_ts_ms(exp, source, f"{prefix}[{i}].expires_at") if exp else None,
            reason=a.get("reason", ""),
        ))
    return tuple(out)


def compile_rules(doc: Any, source: str = "<memory>") -> Rules:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema("rules"), format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RulesError(source, _path_of(e), e.message + more)

    unknown = sorted(set(doc["signals"]) - KNOWN_SIGNALS)
    if unknown:
        raise RulesError(source, f"signals.{unknown[0]}", f"unknown signal code; known: {sorted(KNOWN_SIGNALS)}")

    st = doc["state"]

    def bounds(name: str) -> TableBounds:
        t = st[name]
        return TableBounds(t["ttl_s"] * 1000, t["max_keys"], t.get("max_members", 0))

    signals = {
        code: Signal(
            code=code, family=s["family"], weight=float(s["weight"]), threshold=float(s["threshold"]),
            window_ms=int(s.get("window_s", 0)) * 1000, min_requests=int(s.get("min_requests", 1)),
            min_young_share=float(s.get("min_young_share", 0.0)), min_share=float(s.get("min_share", 0.0)),
            stable_foreign=s.get("stable_foreign", True),
            min_asns=int(s.get("min_asns", 1)), min_countries=int(s.get("min_countries", 1)),
            min_returns=int(s.get("min_returns", 0)), spread_countries=int(s.get("spread_countries", 0)),
            enabled=s.get("enabled", True),
            shadow=s.get("shadow", False),
        )
        for code, s in doc["signals"].items()
    }
    for code in ("ACCT_OUTPUT_TOKENS_1H", "ACCT_REQUESTS_1H", "ACCT_OUTPUT_TOKENS_24H"):
        s = signals.get(code)
        if s is not None and not 0 < s.window_ms <= 86_400_000:
            raise RulesError(source, f"signals.{code}.window_s", "required, at most 86400 (the account window)")

    p = doc["policy"]
    steps = sorted(
        (ActionStep(float(a["min_score"]), a["action"], int(a["ttl_s"]), a.get("limit_rpm"))
         for a in p["actions"]),
        key=lambda a: a.min_score,
    )
    rank = {"throttle": 0, "challenge": 1, "block": 2}
    for lo, hi in itertools.pairwise(steps):
        if rank[hi.action] < rank[lo.action]:
            raise RulesError(source, "policy.actions",
                             f"{hi.action} at score {hi.min_score} is weaker than {lo.action} at {lo.min_score}")
    sev = p["severity"]
    if not sev["medium"] <= sev["high"] <= sev["critical"]:
        raise RulesError(source, "policy.severity", "must satisfy medium <= high <= critical")
    esc = p["escalation"]
    policy = Policy(
        alert_min_score=float(p["alert_min_score"]),
        severity_medium=float(sev["medium"]), severity_high=float(sev["high"]),
        severity_critical=float(sev["critical"]),
        actions=tuple(steps), block_min_families=int(p.get("block_min_families", 1)),
        cooldown_ms=int(p["cooldown_s"]) * 1000, escalation_window_ms=int(esc["window_s"]) * 1000,
        ttl_multiplier=float(esc["ttl_multiplier"]), max_ttl_s=int(esc["max_ttl_s"]),
        fanout_max_accounts=int(p.get("fanout_max_accounts", 5000)),
        established_max_action=p.get("established_max_action"),
        established_requires=_codes(p.get("established_requires", []), "policy.established_requires", source),
        attribution=_attribution(p.get("attribution"), signals, source),
    )
    fp = doc["fingerprints"]
    c = doc["content"]
    return Rules(
        mode=doc["mode"],
        account=bounds("account"), fingerprint=bounds("fingerprint"), cluster=bounds("cluster"),
        sweep_every_events=int(st.get("sweep_every_events", 20000)),
        content_lsh_bands=int(c.get("lsh_bands", 4)), content_max_chars=int(c.get("max_chars", 4000)),
        content_flag_min=float(c.get("flag_min", 0.5)),
        signals=signals,
        fingerprints=FingerprintRules(
            scopes=tuple(fp["scopes"]), popular_accounts=int(fp["popular_accounts"]),
            popular_established=int(fp.get("popular_established", 5)),
            young_ms=int(float(fp["young_days"]) * 86_400_000),
            unverified_kyc=frozenset(fp.get("unverified_kyc", ["none", "email"])),
            abused_channels=frozenset(fp.get("abused_channels", [])),
            campaign_prompt=_campaign_prompt(fp.get("campaign_prompt"), int(fp["popular_accounts"]), source),
            harvest_template=_harvest_template(fp.get("harvest_template"), source),
            pool_prompt=_pool_prompt(fp.get("pool_prompt"), int(fp["popular_accounts"]), source),
            unrelated_card=_unrelated_card(fp.get("unrelated_card"), source),
            exit_ring=_exit_ring(fp.get("exit_ring"), source),
            refresh_ms=int(float(fp.get("refresh_s", 0)) * 1000),
            hosting_asn_types=frozenset(fp.get("hosting_asn_types", ALL_HOSTING_ASN_TYPES)),
            residential_asn_types=frozenset(fp.get("residential_asn_types", RESIDENTIAL_ASN_TYPES)),
            first_party_prompts=frozenset(fp.get("first_party_prompts", ())),
        ),
        policy=policy,
        allowlist=_allow_entries(doc.get("allowlist", []), source, "allowlist"),
        source=source,
    )


def _codes(codes: list[str], where: str, source: str) -> frozenset[str]:
    for i, code in enumerate(codes):
        if code not in KNOWN_SIGNALS:
            raise RulesError(source, f"{where}[{i}]", f"{code} is not a signal the core implements")
    return frozenset(codes)


def _attribution(a: dict[str, Any] | None, signals: dict[str, Signal], source: str) -> Attribution:
    if a is None:  # no attribution section: only content counts as own evidence, defaults elsewhere
        return Attribution(frozenset(c for c in ("ACCT_TRACE_ELICIT", "ACCT_RUBRIC_GRADING", "ACCT_CENSOR_REWRITE")
                                     if c in signals))
    for i, code in enumerate(a["own_signals"]):
        if code not in KNOWN_SIGNALS or not code.startswith("ACCT_"):
            raise RulesError(source, f"policy.attribution.own_signals[{i}]",
                             f"{code} is not an account signal the core implements")
    oc = a.get("own_content", {})
    d = Attribution(frozenset())
    return Attribution(
        own_signals=frozenset(a["own_signals"]),
        own_content_min_flagged=int(oc.get("min_flagged", d.own_content_min_flagged)),
        own_content_min_share=float(oc.get("min_share", d.own_content_min_share)),
        cluster_min_own_members=int(a["cluster_min_own_members"]),
        new_card_min_own_members=_new_card_min_own(a, source),
        new_card_max_verified_share=(None if a.get("new_card_community", {}).get("max_verified_share") is None
                                     else float(a["new_card_community"]["max_verified_share"])),
        cluster_min_risky_share=float(a["cluster_min_risky_share"]),
        payment_ring=bool(a.get("payment_ring", d.payment_ring)),
        egress_min_blocks=int(a.get("egress_spread", {}).get("min_blocks", d.egress_min_blocks)),
        egress_min_ratio=float(a.get("egress_spread", {}).get("min_ratio", d.egress_min_ratio)),
        egress_min_block_members=int(a.get("egress_spread", {}).get("min_block_members",
                                                                    d.egress_min_block_members)),
        egress_min_asns=int(a.get("egress_spread", {}).get("min_asns", d.egress_min_asns)),
        pool_min_members=int(a.get("content_pool", {}).get("min_members", d.pool_min_members)),
        pool_min_requests=int(a.get("content_pool", {}).get("min_requests", d.pool_min_requests)),
        pool_min_share=float(a.get("content_pool", {}).get("min_share", d.pool_min_share)),
        harness_min_orgs=int(a.get("harness_ring", {}).get("min_orgs", d.harness_min_orgs)),
        harness_min_share=float(a.get("harness_ring", {}).get("min_share", d.harness_min_share)),
        spread_min_members=int(a.get("spread_networks", {}).get("min_members", d.spread_min_members)),
        spread_min_share=float(a.get("spread_networks", {}).get("min_share", d.spread_min_share)),
        spread_min_asns=int(a.get("spread_networks", {}).get("min_asns", d.spread_min_asns)),
        spread_max_block_share=float(a.get("spread_networks", {}).get("max_block_share",
                                                                      d.spread_max_block_share)),
        spread_pool_min_blocks=int(a.get("spread_networks", {}).get("pool_min_blocks", d.spread_pool_min_blocks)),
        spread_pool_min_share=float(a.get("spread_networks", {}).get("pool_min_share", d.spread_pool_min_share)),
        spread_aged_max_action=a.get("spread_networks", {}).get("aged_max_action", d.spread_aged_max_action),
        site_min_members=int(a.get("site_cohort", {}).get("min_members", d.site_min_members)),
        site_min_share=float(a.get("site_cohort", {}).get("min_share", d.site_min_share)),
        site_max_throwaway_share=float(a.get("site_cohort", {}).get("max_throwaway_share",
                                                                    d.site_max_throwaway_share)),
        home_min_members=int(a.get("home_cohort", {}).get("min_members", d.home_min_members)),
        home_min_share=float(a.get("home_cohort", {}).get("min_share", d.home_min_share)),
        home_max_throwaway_share=float(a.get("home_cohort", {}).get("max_throwaway_share",
                                                                    d.home_max_throwaway_share)),
        home_weak_max_action=a.get("home_weak_max_action", d.home_weak_max_action),
        own_strong_max_action=a.get("own_strong_max_action", d.own_strong_max_action),
        own_weak_max_action=a.get("own_weak_max_action", d.own_weak_max_action),
        association_max_action=a.get("association_max_action", d.association_max_action),
        established_association_max_action=a.get("established_association_max_action",
                                                 d.established_association_max_action),
    )


def _new_card_min_own(a: dict[str, Any], source: str) -> int:
    """`attribution.new_card_community.min_own_members`: 0 (off) up to `cluster_min_own_members` (a lower bar
    for a narrower kind of community; a higher one would never be asked)."""
    n = int(a.get("new_card_community", {}).get("min_own_members", 0))
    if not 0 <= n <= int(a["cluster_min_own_members"]):
        raise RulesError(source, "policy.attribution.new_card_community.min_own_members",
                         f"{n} must be between 0 (off) and cluster_min_own_members "
                         f"({a['cluster_min_own_members']})")
    return n


def _campaign_prompt(cp: dict[str, Any] | None, popular_accounts: int, source: str) -> CampaignPrompt | None:
    if cp is None:
        return None
    out = CampaignPrompt(min_young_share=float(cp["min_young_share"]), min_accounts=int(cp["min_accounts"]),
                         max_accounts=int(cp["max_accounts"]), link_established=bool(cp.get("link_established", True)),
                         keep_young_share=float(cp.get("keep_young_share", 1.0)))
    if not out.min_accounts <= popular_accounts < out.max_accounts:
        raise RulesError(source, "fingerprints.campaign_prompt",
                         f"needs min_accounts <= popular_accounts ({popular_accounts}) < max_accounts")
    if out.min_young_share <= 0.5:
        raise RulesError(source, "fingerprints.campaign_prompt.min_young_share",
                         "must be above 0.5: a value half or more established accounts use is popular")
    if not 0.5 <= out.keep_young_share <= 1:
        raise RulesError(source, "fingerprints.campaign_prompt.keep_young_share",
                         "must be from 0.5 to 1 (1: off): a value half or more established accounts use is popular")
    return out


def _harvest_template(ht: dict[str, Any] | None, source: str) -> HarvestTemplate | None:
    if ht is None or int(ht["min_accounts"]) == 0:
        return None
    out = HarvestTemplate(min_accounts=int(ht["min_accounts"]), min_hit_share=float(ht["min_hit_share"]),
                          min_young_share=float(ht["min_young_share"]))
    if out.min_accounts < 2:
        raise RulesError(source, "fingerprints.harvest_template.min_accounts",
                         "must be 0 (off) or at least 2: one account's prompts are its own evidence already")
    if out.min_young_share <= 0.5:
        raise RulesError(source, "fingerprints.harvest_template.min_young_share",
                         "must be above 0.5: a value half or more established accounts use is popular")
    return out


def _unrelated_card(uc: dict[str, Any] | None, source: str) -> UnrelatedCard | None:
    if uc is None or int(uc["min_orgs"]) == 0:
        return None
    out = UnrelatedCard(min_orgs=int(uc["min_orgs"]), min_asns=int(uc["min_asns"]),
                        min_countries=int(uc.get("min_countries", 1)),
                        max_verified_share=(None if uc.get("max_verified_share") is None
                                            else float(uc["max_verified_share"])),
                        max_established_spread_days=(None if uc.get("max_established_spread_days") is None
                                                     else int(uc["max_established_spread_days"])))
    if out.min_orgs < 3:
        raise RulesError(source, "fingerprints.unrelated_card.min_orgs",
                         "must be 0 (off) or at least 3: two holders of a card are a couple or two colleagues")
    if out.min_asns < 2:
        raise RulesError(source, "fingerprints.unrelated_card.min_asns",
                         "must be at least 2: one operator's machines are one company's cloud")
    return out


def _exit_ring(er: dict[str, Any] | None, source: str) -> ExitRing | None:
    if er is None or int(er["min_orgs"]) == 0:
        return None
    out = ExitRing(min_orgs=int(er["min_orgs"]), min_share=float(er["min_share"]),
                   # by default a VPN's or a proxy's blocks: a cloud or data-centre block is a tenant's network
                   asn_types=frozenset(er.get("asn_types", ("vpn", "proxy"))), abroad=bool(er.get("abroad", False)))
    if out.min_orgs < 3:
        raise RulesError(source, "fingerprints.exit_ring.min_orgs",
                         "must be 0 (off) or at least 3: two orgs behind one exit are two customers of a VPN")
    if not 0 < out.min_share <= 1:
        raise RulesError(source, "fingerprints.exit_ring.min_share", "must be above 0 and at most 1")
    if out.asn_types & {"residential", "mobile"}:
        raise RulesError(source, "fingerprints.exit_ring.asn_types",
                         "must not name home or phone networks: a household's or a carrier's block is no exit")
    return out


def _pool_prompt(pp: dict[str, Any] | None, popular_accounts: int, source: str) -> PoolPrompt | None:
    if pp is None or int(pp["min_members"]) == 0:
        return None
    out = PoolPrompt(min_members=int(pp["min_members"]), min_share=float(pp["min_share"]),
                     min_block_share=float(pp["min_block_share"]), min_asns=int(pp["min_asns"]),
                     max_accounts=int(pp["max_accounts"]), keep_share=float(pp.get("keep_share", 1.0)),
                     shared_members=int(pp.get("shared_members", 0)), shared_share=float(pp.get("shared_share", 1.0)),
                     shared_org_share=float(pp.get("shared_org_share", 0.5)),
                     abroad_countries=int(pp.get("abroad_countries", 0)), abroad_asns=int(pp.get("abroad_asns", 4)))
    if out.min_members < 3:
        raise RulesError(source, "fingerprints.pool_prompt.min_members",
                         "must be 0 (off) or at least 3: a pool is judged on several members' egress")
    if not 0 < out.keep_share <= 1:
        raise RulesError(source, "fingerprints.pool_prompt.keep_share", "must be above 0 and at most 1 (1: off)")
    if 0 < out.shared_members < 3:
        raise RulesError(source, "fingerprints.pool_prompt.shared_members",
                         "must be 0 (off) or at least 3: two accounts on one exit are a pair of colleagues")
    if not 0 < out.shared_share <= 1:
        raise RulesError(source, "fingerprints.pool_prompt.shared_share", "must be above 0 and at most 1")
    if not 0 < out.shared_org_share <= 1:
        raise RulesError(source, "fingerprints.pool_prompt.shared_org_share", "must be above 0 and at most 1")
    if out.abroad_countries == 1 or out.abroad_countries < 0:
        raise RulesError(source, "fingerprints.pool_prompt.abroad_countries",
                         "must be 0 (off) or at least 2: a trip abroad is one country, a pool's exits are several")
    if out.abroad_asns < 2:
        raise RulesError(source, "fingerprints.pool_prompt.abroad_asns",
                         "must be at least 2: one operator's networks are a hotel's or a campus's, not a pool")
    if out.min_asns < 2:
        raise RulesError(source, "fingerprints.pool_prompt.min_asns",
                         "must be at least 2: one operator's blocks are a site or a vendor's servers, not a pool")
    if out.max_accounts <= popular_accounts:
        raise RulesError(source, "fingerprints.pool_prompt.max_accounts",
                         f"must be above popular_accounts ({popular_accounts})")
    return out


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(path), "(file)", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RulesError(str(path), "(file)", "not UTF-8 text") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise RulesError(str(path), "(syntax)", str(exc).replace("\n", " ")) from None


def load_rules(path: str | Path, allowlist_path: str | Path | None = None) -> Rules:
    """Load and validate a rules file, merging an optional separate allowlist file (a YAML/JSON list)."""
    p = Path(path)
    rules = compile_rules(_read(p), str(p))
    if allowlist_path is None:
        return rules
    return with_allowlist(rules, load_allowlist(allowlist_path))


def load_allowlist(path: str | Path) -> tuple[AllowEntry, ...]:
    p = Path(path)
    doc = _read(p)
    if doc is None:
        doc = []
    from jsonschema import Draft202012Validator

    item_schema = dict(schema("rules")["$defs"]["allow_entry"])
    list_schema = {"$defs": schema("rules")["$defs"], "type": "array", "items": item_schema}
    errors = list(Draft202012Validator(list_schema).iter_errors(doc))
    if errors:
        raise RulesError(str(p), _path_of(errors[0]), errors[0].message)
    return _allow_entries(doc, str(p), "")


def with_allowlist(rules: Rules, extra: tuple[AllowEntry, ...]) -> Rules:
    from dataclasses import replace

    return replace(rules, allowlist=rules.allowlist + extra)
