"""Randomised worlds: a scenario whose every knob is drawn per seed from the documented ranges in `RANGES`.

`draw(seed, size)` gives a `Scenario` with every campaign archetype and every benign population (the traps
included); `docs/simulator.md` carries the table `python -m app.sim.worlds --table` prints. Each knob is drawn
from its own random stream (seeded by the world seed and the knob's key), so a world keeps its campaigns and
traps across sizes (only the benign background and the duration scale) and adding a knob moves no other.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from app.sim.campaigns import ARCHETYPE_DEFAULTS
from app.sim.populations import KIND_DEFAULTS
from app.sim.scenario import Scenario, from_dict
from app.sim.traps import TRAP_DEFAULTS

SIZES = ("small", "medium", "day")
MODELS = {"small": "atlas-3-mini", "medium": "atlas-3", "large": "atlas-3-pro"}
RELEASE_MODEL = "atlas-4-pro"
# A campaign's total volume is bounded by its budget: a drawn per-account rate is lowered to at most this many
# requests per hour over the campaign's live accounts (a rate never falls below its range: 2000/500 = 4 >= every
# range's lower end).
CAMPAIGN_MAX_REQUESTS_PER_HOUR = 2000
# ...and a campaign is there to be measured: a rate is raised (never above its range) until the live accounts
# send about this many requests in the window
CAMPAIGN_MIN_REQUESTS = 20
# a batch job (enterprise, judges) is at most this share of an account's expected requests in the window, so
# every account runs a few jobs even in a short world
BATCH_JOB_SHARE = 0.25


# --- range specifications ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Num:
    """A number in [lo, hi], uniform or log-uniform, optionally an integer."""

    lo: float
    hi: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: random.Random) -> float | int:
        u = rng.random()
        if self.integer:
            if self.log:
                return min(int(self.hi), int(math.exp(math.log(self.lo) + u * (math.log(self.hi + 1)
                                                                             - math.log(self.lo)))))
            return int(self.lo + u * (self.hi - self.lo + 1 - 1e-9))
        x = math.exp(math.log(self.lo) + u * (math.log(self.hi) - math.log(self.lo))) if self.log \
            else self.lo + u * (self.hi - self.lo)
        return min(self.hi, max(self.lo, round(x, 4)))

    def holds(self, x: Any) -> bool:
        ok_type = isinstance(x, int) if self.integer else isinstance(x, int | float)
        return ok_type and not isinstance(x, bool) and self.lo <= x <= self.hi

    def text(self) -> str:
        kind = ("log-uniform " if self.log else "uniform ") + ("integer " if self.integer else "")
        return f"{kind}{_num(self.lo)}–{_num(self.hi)}"


@dataclass(frozen=True, slots=True)
class Span:
    """A sub-range [a, b] of [lo, hi]: two draws, sorted (per-account values are drawn inside it)."""

    lo: float
    hi: float
    log: bool = False

    def draw(self, rng: random.Random) -> list[float]:
        n = Num(self.lo, self.hi, self.log)
        return sorted((n.draw(rng), n.draw(rng)))

    def holds(self, x: Any) -> bool:
        return (isinstance(x, list) and len(x) == 2 and all(isinstance(v, int | float) for v in x)
                and self.lo <= x[0] <= x[1] <= self.hi)

    def text(self) -> str:
        return f"[a, b] within {_num(self.lo)}–{_num(self.hi)}" + (" (log)" if self.log else "")


@dataclass(frozen=True, slots=True)
class Choice:
    """One of `options`, equally likely."""

    options: tuple

    def draw(self, rng: random.Random) -> Any:
        return self.options[int(rng.random() * len(self.options))]

    def holds(self, x: Any) -> bool:
        return x in self.options

    def text(self) -> str:
        return "one of " + ", ".join(str(o) for o in self.options)


@dataclass(frozen=True, slots=True)
class Mix:
    """Relative weights: each option's weight drawn uniformly in its own range (unnormalised)."""

    weights: tuple[tuple[str, float, float], ...]

    def draw(self, rng: random.Random) -> dict[str, float]:
        return {k: round(lo + rng.random() * (hi - lo), 4) for k, lo, hi in self.weights}

    def holds(self, x: Any) -> bool:
        return (isinstance(x, dict) and list(x) == [k for k, _, _ in self.weights]
                and all(lo <= x[k] <= hi for k, lo, hi in self.weights) and sum(x.values()) > 0)

    def text(self) -> str:
        return "weights " + ", ".join(f"{k} {_num(lo)}–{_num(hi)}" for k, lo, hi in self.weights)


@dataclass(frozen=True, slots=True)
class Maybe:
    """0 (off) with probability 1 - p, else a draw of `inner`."""

    p: float
    inner: Num

    def draw(self, rng: random.Random) -> float | int:
        return self.inner.draw(rng) if rng.random() < self.p else 0

    def holds(self, x: Any) -> bool:
        return x == 0 or self.inner.holds(x)

    def text(self) -> str:
        return f"0 with probability {_num(1 - self.p)}, else {self.inner.text()}"


@dataclass(frozen=True, slots=True)
class BySize:
    """A range that depends on the world's size (the same quantile is drawn at every size)."""

    small: Num
    medium: Num
    day: Num

    def at(self, size: str) -> Num:
        return getattr(self, size)

    def text(self) -> str:
        return "; ".join(f"{s}: {self.at(s).text()}" for s in SIZES)


def _num(x: float) -> str:
    return f"{x:g}"


def _mix(**w: tuple[float, float]) -> Mix:
    return Mix(tuple((k, lo, hi) for k, (lo, hi) in w.items()))


# --- the ranges ------------------------------------------------------------------------------------------
ARCHETYPES = ("reasoning_harvester", "agentic_harvester", "release_tracker", "hydra_reseller", "stealth",
              "trace_variant")
# the trace variant is a reasoning harvester whose templates coerce reasoning in the input's language, in
# tags, or in a fake debug mode
TRACE_VARIANTS: dict[str, dict[str, float]] = {
    "multilingual": {"multilingual_trace": 0.8, "reasoning_tags": 0.1, "trace_reconstruction": 0.1},
    "tags": {"reasoning_tags": 0.8, "multilingual_trace": 0.1, "debug_mode": 0.1},
    "debug_mode": {"debug_mode": 0.7, "reasoning_tags": 0.3},
    "mixed": {"multilingual_trace": 0.6, "reasoning_tags": 0.2, "debug_mode": 0.2},
}

_CAMPAIGN_COMMON: dict[str, Any] = {
    "accounts": Num(10, 500, log=True, integer=True),
    "accounts_per_shared_card": Num(3, 40, log=True),
    "proxy_pool.sticky_minutes": Num(5, 480, log=True),
    "custom_ja4s": Num(0, 3, integer=True),
    "custom_ja4_share": Num(0, 0.6),
    "system_prompts": Num(0, 3, integer=True),
}
_CHANNELS = {"standard": (0, 1), "edu": (0, 1), "startup": (0, 1), "security_research": (0, 0.6)}
_CAMPAIGN: dict[str, dict[str, Any]] = {
    "reasoning_harvester": {
        "requests_per_account_hour": Num(1, 12, log=True), "shared_payment_fraction": Num(0.4, 0.95),
        "kyc": _mix(card=(0.4, 1), email=(0, 0.6), id_verified=(0, 0.1)),
        "email_domain_classes": _mix(disposable=(0, 0.6), freemail=(0.2, 1), edu=(0, 0.5)),
        "signup_channels": _mix(**_CHANNELS), "account_age_hours": Span(1, 2000, log=True),
        "paraphrase_rate": Num(0, 0.6), "trace_elicitation_fraction": Num(0.4, 0.9),
        "cover_traffic_fraction": Num(0, 0.3), "proxy_pool.size": Num(5, 400, log=True, integer=True),
        "proxy_pool.asn_type": Choice(("residential", "mobile", "proxy", "vpn", "datacenter")),
        "fingerprint_rotation_hours": Maybe(0.3, Num(0.5, 48, log=True)),
        "timing_jitter_seconds": Num(5, 600, log=True), "thinking": Num(0.7, 1.0),
        "shift_count": Choice((1, 2)), "shift_coverage": Num(0.5, 1.0),
    },
    "agentic_harvester": {
        "requests_per_account_hour": Num(0.5, 8, log=True), "shared_payment_fraction": Num(0.1, 0.8),
        "kyc": _mix(card=(0.5, 1), id_verified=(0, 0.3), email=(0, 0.3)),
        "email_domain_classes": _mix(corporate=(0, 0.6), freemail=(0.2, 1), disposable=(0, 0.5)),
        "signup_channels": _mix(**_CHANNELS), "account_age_hours": Span(1, 2000, log=True),
        "paraphrase_rate": Num(0, 0.5), "trace_elicitation_fraction": Num(0.02, 0.3),
        # the threat model's agentic harvester egresses from clouds ("cloud egress, common SDK fingerprints")
        "cover_traffic_fraction": Num(0, 0.4), "proxy_pool.size": Num(5, 400, log=True, integer=True),
        "proxy_pool.asn_type": Choice(("cloud", "datacenter")),
        # "one or two system prompts reused everywhere"
        "system_prompts": Num(1, 2, integer=True),
        "fingerprint_rotation_hours": Maybe(0.2, Num(0.5, 48, log=True)),
        "timing_jitter_seconds": Num(10, 1800, log=True), "thinking": Num(0.3, 0.9),
        "access_paths": _mix(api=(0.3, 1), cloud_marketplace=(0, 0.6), ide_agent=(0, 0.5)),
    },
    "release_tracker": {
        "requests_per_account_hour": Num(3, 40, log=True), "shared_payment_fraction": Num(0.2, 0.9),
        "kyc": _mix(card=(0.5, 1), id_verified=(0, 0.2), email=(0, 0.3)),
        "email_domain_classes": _mix(freemail=(0.2, 1), disposable=(0, 0.5), corporate=(0, 0.4)),
        "signup_channels": _mix(**_CHANNELS), "account_age_hours": Span(1, 2000, log=True),
        "paraphrase_rate": Num(0, 0.5), "trace_elicitation_fraction": Num(0.05, 0.4),
        "cover_traffic_fraction": Num(0, 0.3), "proxy_pool.size": Num(5, 200, log=True, integer=True),
        "proxy_pool.asn_type": Choice(("datacenter", "cloud", "residential")),
        "fingerprint_rotation_hours": Maybe(0.2, Num(0.5, 48, log=True)),
        "timing_jitter_seconds": Num(5, 600, log=True), "thinking": Num(0.4, 0.9),
        "pivot.fraction": Num(0.5, 0.95), "pivot.within_hours": Num(0.5, 12, log=True),
    },
    "hydra_reseller": {
        "requests_per_account_hour": Num(0.2, 3, log=True), "shared_payment_fraction": Num(0.5, 1.0),
        "kyc": _mix(card=(0.3, 1), email=(0, 0.7), none=(0, 0.2)),
        "email_domain_classes": _mix(disposable=(0.1, 1), freemail=(0.2, 1)),
        "signup_channels": _mix(standard=(0.2, 1), startup=(0, 0.6), reseller=(0, 0.5), edu=(0, 0.3)),
        "account_age_hours": Span(0.05, 12, log=True),
        "paraphrase_rate": Num(0.1, 0.8), "trace_elicitation_fraction": Num(0.2, 0.7),
        "cover_traffic_fraction": Num(0.5, 0.9), "proxy_pool.size": Num(20, 1000, log=True, integer=True),
        "proxy_pool.asn_type": Choice(("residential", "mobile", "proxy")),
        "fingerprint_rotation_hours": Maybe(0.8, Num(0.5, 12, log=True)),
        "timing_jitter_seconds": Num(60, 3600, log=True), "thinking": Num(0.2, 0.7),
        "live_fraction": Num(0.1, 0.5), "replacement_lag_minutes": Num(1, 60, log=True),
        "replacement_reuse": Num(0.3, 1.0),
    },
    "stealth": {
        "requests_per_account_hour": Num(0.5, 2, log=True), "shared_payment_fraction": Num(0, 0.05),
        "kyc": _mix(card=(0.5, 1), email=(0, 0.5), id_verified=(0, 0.1)),
        "email_domain_classes": _mix(freemail=(0.3, 1), edu=(0, 0.5), disposable=(0, 0.2), corporate=(0, 0.2)),
        # the threat model gives stealth away by "the content mix, account age/channel and cross-account
        # structure": new-ish accounts (a day to six weeks), not aged ones
        "signup_channels": _mix(**_CHANNELS), "account_age_hours": Span(24, 1000, log=True),
        "paraphrase_rate": Num(0.6, 1.0), "trace_elicitation_fraction": Num(0.2, 0.7),
        "cover_traffic_fraction": Num(0.1, 0.6), "proxy_pool.size": Num(100, 1000, log=True, integer=True),
        "proxy_pool.asn_type": Choice(("residential", "mobile")),
        "fingerprint_rotation_hours": Maybe(0.8, Num(1, 24, log=True)),
        "timing_jitter_seconds": Num(600, 7200, log=True), "thinking": Num(0.3, 0.9),
    },
    "trace_variant": {
        "present": Choice((True, False)), "flavour": Choice(tuple(TRACE_VARIANTS)),
        "requests_per_account_hour": Num(1, 10, log=True), "shared_payment_fraction": Num(0.2, 0.9),
        "kyc": _mix(card=(0.4, 1), email=(0, 0.6)),
        "email_domain_classes": _mix(freemail=(0.2, 1), disposable=(0, 0.6), edu=(0, 0.4)),
        "signup_channels": _mix(**_CHANNELS), "account_age_hours": Span(1, 2000, log=True),
        "paraphrase_rate": Num(0, 0.6), "trace_elicitation_fraction": Num(0.8, 1.0),
        "cover_traffic_fraction": Num(0, 0.2), "proxy_pool.size": Num(5, 200, log=True, integer=True),
        "proxy_pool.asn_type": Choice(("residential", "proxy", "vpn", "datacenter")),
        "fingerprint_rotation_hours": Maybe(0.3, Num(0.5, 48, log=True)),
        "timing_jitter_seconds": Num(5, 600, log=True), "thinking": Num(0.7, 1.0),
        "shift_count": Choice((1, 2)), "shift_coverage": Num(0.5, 1.0),
    },
}

_POPULATIONS: dict[str, dict[str, Any]] = {
    "casual_consumers": {
        "accounts": BySize(Num(1500, 3000, True, True), Num(5000, 9000, True, True), Num(15000, 25000, True, True)),
        "requests_per_account_hour": Num(0.12, 0.3), "thinking": Num(0.05, 0.3),
    },
    "developers_coding_agents": {
        "accounts": BySize(Num(40, 100, True, True), Num(300, 600, True, True), Num(1000, 2000, True, True)),
        "accounts_per_org": Num(1, 2), "requests_per_account_hour": Num(1.5, 4),
        "session_length": Num(20, 80, log=True), "shared_payment_fraction": Num(0.3, 0.8),
    },
    "enterprise_batch": {
        "orgs": Num(1, 4, integer=True),
        "accounts_per_org": BySize(Num(1, 3, integer=True), Num(4, 8, integer=True), Num(8, 15, integer=True)),
        "requests_per_account_hour": Num(30, 120, log=True), "session_length": Num(50, 400, log=True),
    },
    "university_eval": {
        "accounts": BySize(Num(15, 40, integer=True), Num(40, 100, integer=True), Num(60, 150, integer=True)),
        "orgs": Num(1, 3, integer=True), "requests_per_account_hour": Num(0.15, 0.5),
        "release_burst.share": Num(0.3, 0.8), "release_burst.requests": Span(80, 400, log=True),
    },
    "llm_judges": {
        "accounts": BySize(Num(2, 4, integer=True), Num(3, 8, integer=True), Num(6, 14, integer=True)),
        "org_fraction": Num(0.3, 1.0), "requests_per_account_hour": Num(20, 120, log=True),
        "session_length": Num(50, 300, log=True),
    },
    "routers_aggregators": {
        "accounts": BySize(Num(1, 2, integer=True), Num(2, 3, integer=True), Num(3, 5, integer=True)),
        "requests_per_account_hour": BySize(Num(15, 40, log=True), Num(80, 200, log=True),
                                            Num(200, 500, log=True)),
    },
    "journalists_sensitive": {
        "accounts": BySize(Num(30, 80, integer=True), Num(80, 200, integer=True), Num(200, 400, integer=True)),
        "requests_per_account_hour": Num(0.15, 0.5),
    },
    "chinese_language_users": {
        "accounts": BySize(Num(200, 500, True, True), Num(600, 1200, True, True), Num(1800, 3000, True, True)),
        "requests_per_account_hour": Num(0.15, 0.35),
    },
    # the traps: at real size in every world
    "research_lab": {
        "labs": Num(1, 4, integer=True), "students_per_lab": Num(15, 40, integer=True),
        "shared_payment_fraction": Num(0.2, 0.7), "requests_per_account_hour": Num(0.05, 0.3),
        "release_burst.share": Num(0.3, 0.8), "release_burst.requests": Span(80, 400, log=True),
        # weight of CoT-faithfulness prompts in a release sweep (bench_cot 1.0): what reads as trace elicitation
        "release_burst.trace_weight": Num(0, 3),
    },
    "classroom": {
        "accounts": Num(20, 80, integer=True), "start_at": Num(0.05, 0.7), "class_hours": Num(0.75, 2),
        "system_prompt_share": Num(0.2, 0.9), "requests_per_account_hour": Num(0.02, 0.2),
    },
    "hackathon": {
        "accounts": Num(20, 80, integer=True), "start_at": Num(0, 0.5), "event_hours": Num(12, 36),
        "sessions": Span(1, 10), "requests_per_account_hour": Num(0.05, 0.3),
    },
    "onboarding_wave": {
        "accounts": Num(20, 80, integer=True), "org_per_account": Num(0, 1), "nat_ips": Num(1, 3, integer=True),
        "requests_per_account_hour": Num(2, 8, log=True),
    },
    "security_research": {
        "accounts": Num(5, 40, integer=True), "shared_payment_fraction": Num(0, 0.6),
        "requests_per_account_hour": Num(1, 8, log=True), "reasoning_leak_share": Num(0.02, 0.08),
    },
    "eval_vendor": {
        "orgs": Num(2, 6, integer=True), "accounts": Num(6, 30, integer=True),
        "requests_per_account_hour": Num(5, 30, log=True), "release_burst.share": Num(0.3, 0.9),
        "release_burst.requests": Span(100, 600, log=True),
    },
    "agent_launch": {
        "accounts": Num(15, 80, integer=True), "requests_per_account_hour": Num(2, 10, log=True),
        "cloud_share": Num(0.3, 0.9),
    },
    "vpn_team": {
        "accounts": Num(8, 40, integer=True), "requests_per_account_hour": Num(1, 6, log=True),
        "nat_ips": Num(4, 20, integer=True), "shared_payment_fraction": Num(0.4, 1),
    },
    "hosted_agent": {
        "accounts": Num(20, 120, integer=True), "requests_per_account_hour": Num(1, 8, log=True),
        "clouds": Num(1, 2, integer=True), "nat_ips": Num(3, 60, integer=True, log=True),
    },
    "travellers": {
        "trips": Num(1, 6, integer=True), "travellers_per_trip": Num(4, 30, integer=True),
        "requests_per_account_hour": Num(0.5, 6, log=True), "org_per_account": Num(0, 1),
        "system_prompt_share": Num(0, 1), "shared_payment_fraction": Num(0, 0.8),
        "trip.depart_at": Num(0, 0.5), "trip.transit_hours": Num(1, 10), "trip.layover": Num(0, 0.8),
        "trip.second_layover": Num(0, 0.5),
        "trip.hotel_share": Num(0.3, 0.8), "trip.esim_share": Num(0, 0.6),
    },
    "online_course": {
        "accounts": Num(20, 120, integer=True), "countries": Num(1, 5, integer=True), "start_at": Num(0.05, 0.7),
        "class_hours": Num(0.75, 2), "system_prompt_share": Num(0.3, 0.95),
        "requests_per_account_hour": Num(0.02, 0.2),
        # weight of the chain-of-thought exercises that read as trace elicitation (bench_cot 1.0)
        "trace_weight": Num(0.2, 2),
    },
}

_WORLD: dict[str, Any] = {
    "start_day": Num(1, 27, integer=True), "start_hour": Num(0, 23, integer=True),
    "duration_hours": BySize(Num(4, 7), Num(12, 18), Num(24, 24)), "release_at": Num(0.2, 0.6),
}


def _flatten() -> dict[str, Any]:
    out = {f"world.{k}": v for k, v in _WORLD.items()}
    for a in ARCHETYPES:
        for k, v in {**_CAMPAIGN_COMMON, **_CAMPAIGN[a]}.items():
            out[f"campaign.{a}.{k}"] = v
    for kind, knobs in _POPULATIONS.items():
        for k, v in knobs.items():
            out[f"population.{kind}.{k}"] = v
    return out


RANGES: dict[str, Any] = _flatten()
POPULATION_KINDS = tuple(_POPULATIONS)
# group names in a world (a trap's group name never appears in its own prompts: "hackathon" would)
GROUP_NAMES = {
    "research_lab": "research_labs", "classroom": "course_session", "hackathon": "hack_weekend",
    "onboarding_wave": "new_hires", "security_research": "red_team_programme", "eval_vendor": "eval_house",
    "agent_launch": "launch_crowd", "vpn_team": "vpn_startup", "hosted_agent": "byok_tool_users",
    "travellers": "away_team", "online_course": "online_lesson",
    "stealth": "stealth_trickle", "trace_variant": "trace_coercion",
}


# --- drawing ---------------------------------------------------------------------------------------------
def draw_knobs(seed: int, size: str = "small") -> dict[str, Any]:
    """Every knob of world `seed` at `size`, keyed as in RANGES."""
    if size not in SIZES:
        raise ValueError(f"unknown world size {size!r}; sizes: {', '.join(SIZES)}")
    out = {}
    for key, spec in RANGES.items():
        rng = random.Random(f"distill-guard-world:{seed}:{key}")
        out[key] = (spec.at(size) if isinstance(spec, BySize) else spec).draw(rng)
    return out


def range_of(key: str, size: str):
    spec = RANGES[key]
    return spec.at(size) if isinstance(spec, BySize) else spec


def draw_doc(seed: int, size: str = "small") -> dict[str, Any]:
    """The scenario document of world `seed` at `size` (what `world.yaml` holds)."""
    k = draw_knobs(seed, size)
    dur = k["world.duration_hours"]
    release_at = round(k["world.release_at"] * dur, 2)
    campaigns = [_campaign(a, k, dur) for a in ARCHETYPES
                 if a != "trace_variant" or k["campaign.trace_variant.present"]]
    populations = [_population(kind, k, dur) for kind in POPULATION_KINDS]
    return {
        "name": f"world-{seed}-{size}",
        "description": f"Randomised world {seed} ({size}): every knob drawn from the ranges in app/sim/worlds.py.",
        "start": f"2026-02-{k['world.start_day']:02d}T{k['world.start_hour']:02d}:00:00Z",
        "seed": seed, "duration_hours": dur, "models": dict(MODELS),
        "release": {"model": RELEASE_MODEL, "at_hours": release_at},
        "populations": populations, "campaigns": campaigns,
    }


def draw(seed: int, size: str = "small") -> Scenario:
    """World `seed` at `size`, validated like any scenario file."""
    return from_dict(draw_doc(seed, size), f"world {seed} ({size})")


def _campaign(a: str, k: dict[str, Any], dur: float) -> dict[str, Any]:
    g = lambda knob: k[f"campaign.{a}.{knob}"]  # noqa: E731
    base = "reasoning_harvester" if a == "trace_variant" else a
    n = g("accounts")
    live = min(n, max(3, round(n * g("live_fraction")))) if a == "hydra_reseller" else n
    drawn = g("requests_per_account_hour")
    hi = RANGES[f"campaign.{a}.requests_per_account_hour"].hi
    # a slot is idle while its banned account waits for a replacement
    alive = max(0.1, 1 - (n / live - 1) * g("replacement_lag_minutes") / 60 / dur) if live < n else 1.0
    floor = min(hi, CAMPAIGN_MIN_REQUESTS / (live * dur * alive))
    rate = min(max(drawn, floor), CAMPAIGN_MAX_REQUESTS_PER_HOUR / live)
    pool = {"size": g("proxy_pool.size"), "asn_type": g("proxy_pool.asn_type"),
            "countries": dict(ARCHETYPE_DEFAULTS[base]["proxy_pool"]["countries"]),
            "sticky_minutes": g("proxy_pool.sticky_minutes")}
    c: dict[str, Any] = {
        "name": GROUP_NAMES.get(a, a), "archetype": base, "accounts": n, "requests_per_account_hour": round(rate, 4),
        "shared_payment_fraction": g("shared_payment_fraction"),
        "shared_cards": max(1, math.ceil(n / g("accounts_per_shared_card"))),
        "kyc": g("kyc"), "email_domain_classes": g("email_domain_classes"), "signup_channels": g("signup_channels"),
        "account_age_hours": g("account_age_hours"), "paraphrase_rate": g("paraphrase_rate"),
        "trace_elicitation_fraction": g("trace_elicitation_fraction"),
        "cover_traffic_fraction": g("cover_traffic_fraction"), "proxy_pool": pool,
        "fingerprint_rotation_hours": g("fingerprint_rotation_hours"), "custom_ja4s": g("custom_ja4s"),
        "custom_ja4_share": g("custom_ja4_share"), "timing_jitter_seconds": g("timing_jitter_seconds"),
        "system_prompts": g("system_prompts"), "thinking": g("thinking"),
    }
    if a == "hydra_reseller":
        c.update(live_accounts=live, replacement_lag_minutes=g("replacement_lag_minutes"),
                 replacement_reuse=g("replacement_reuse"))
    if a == "release_tracker":
        c["pivot"] = {"fraction": g("pivot.fraction"), "within_hours": g("pivot.within_hours")}
    if a == "agentic_harvester":
        c["access_paths"] = g("access_paths")
    if a == "trace_variant":
        c["template_families"] = dict(TRACE_VARIANTS[g("flavour")])
    if a in ("reasoning_harvester", "trace_variant"):
        c["shifts"] = _shifts(g("shift_count"), g("shift_coverage"), dur)
    return c


def _job_length(drawn: float, rate: float, dur: float) -> float:
    return round(max(1.0, min(drawn, BATCH_JOB_SHARE * rate * dur)), 4)


def _shifts(count: int, coverage: float, dur: float) -> list[list[float]]:
    """`count` synchronized shifts covering `coverage` of the window, one centred in each equal part of it.
    Rounded to the hundredth of an hour, an end is kept inside the window (a last shift covering all of its
    part would otherwise round past a window of 6.9788 hours)."""
    part = dur / count
    on = part * coverage
    return [[round(i * part + (part - on) / 2, 2), min(dur, round(i * part + (part + on) / 2, 2))]
            for i in range(count)]


def _population(kind: str, k: dict[str, Any], dur: float) -> dict[str, Any]:
    g = lambda knob: k[f"population.{kind}.{knob}"]  # noqa: E731
    p: dict[str, Any] = {"name": GROUP_NAMES.get(kind, kind), "kind": kind}
    if kind == "research_lab":
        p.update(accounts=g("labs") * g("students_per_lab"), labs=g("labs"),
                 shared_payment_fraction=g("shared_payment_fraction"))
    elif kind == "enterprise_batch":
        p.update(accounts=g("orgs") * g("accounts_per_org"), orgs=g("orgs"))
    elif kind == "travellers":
        p.update(accounts=g("trips") * g("travellers_per_trip"), labs=g("trips"))
    elif kind == "online_course":
        p.update(accounts=max(g("accounts"), g("countries")), labs=g("countries"))
    else:
        p["accounts"] = g("accounts")
    p["requests_per_account_hour"] = g("requests_per_account_hour")
    if kind == "casual_consumers":
        p["thinking"] = g("thinking")
    elif kind == "developers_coding_agents":
        p.update(orgs=max(1, round(p["accounts"] / g("accounts_per_org"))), session_length=g("session_length"),
                 shared_payment_fraction=g("shared_payment_fraction"))
    elif kind == "university_eval":
        p["orgs"] = g("orgs")
    elif kind == "llm_judges":
        p.update(orgs=max(1, math.ceil(p["accounts"] * g("org_fraction"))),
                 session_length=_job_length(g("session_length"), p["requests_per_account_hour"], dur))
    elif kind == "enterprise_batch":
        p["session_length"] = _job_length(g("session_length"), p["requests_per_account_hour"], dur)
    elif kind == "classroom":
        p["system_prompt_share"] = g("system_prompt_share")
        p["cohort"] = {"at_hours": round(g("start_at") * dur, 2), "hours": g("class_hours")}
    elif kind == "online_course":
        p["system_prompt_share"] = g("system_prompt_share")
        p["cohort"] = {"at_hours": round(g("start_at") * dur, 2), "hours": g("class_hours"),
                       "template_families": {"bench_cot_trace": g("trace_weight"), "bench_cot": 1.0}}
    elif kind == "hackathon":
        lo, hi = g("sessions")
        p["cohort"] = {"at_hours": round(g("start_at") * dur, 2), "hours": g("event_hours"),
                       "sessions": [round(lo), round(hi)]}
    elif kind == "onboarding_wave":
        p.update(org_per_account=g("org_per_account"), nat_ips=g("nat_ips"))
    elif kind == "security_research":
        leak = g("reasoning_leak_share")
        rest = {"redteam_jailbreak": 0.3, "redteam_injection": 0.25, "redteam_extraction": 0.2,
                "redteam_refusal": 0.25}
        p["shared_payment_fraction"] = g("shared_payment_fraction")
        p["template_families"] = {**{f: round(w * (1 - leak), 4) for f, w in rest.items()},
                                  "redteam_reasoning_leak": leak}
    elif kind == "eval_vendor":
        p["orgs"] = g("orgs")
    elif kind == "agent_launch":
        cloud = g("cloud_share")
        p["asn_types"] = {"cloud": cloud, "residential": round(1 - cloud, 4)}
    elif kind == "vpn_team":
        p.update(nat_ips=g("nat_ips"), shared_payment_fraction=g("shared_payment_fraction"))
    elif kind == "hosted_agent":
        p.update(labs=g("clouds"), nat_ips=g("nat_ips"))
    elif kind == "travellers":
        p.update(org_per_account=g("org_per_account"), system_prompt_share=g("system_prompt_share"),
                 shared_payment_fraction=g("shared_payment_fraction"))
        transit = g("trip.transit_hours")
        p["trip"] = {"depart_at": round(g("trip.depart_at") * dur, 2), "spread_hours": round(0.25 * dur, 2),
                     "transit_hours": [round(transit * 0.75, 2), round(transit * 1.25, 2)],
                     "layover": g("trip.layover"), "second_layover": g("trip.second_layover"),
                     "hotel_share": g("trip.hotel_share"),
                     "esim_share": g("trip.esim_share")}
    if "release_burst.share" in _POPULATIONS[kind]:
        burst = dict({**KIND_DEFAULTS, **TRAP_DEFAULTS}[kind]["release_burst"])
        lo, hi = g("release_burst.requests")
        burst.update(share=g("release_burst.share"), requests=[round(lo), round(hi)])
        if "release_burst.trace_weight" in _POPULATIONS[kind]:
            burst["template_families"] = {**burst["template_families"],
                                          "bench_cot_trace": g("release_burst.trace_weight")}
        p["release_burst"] = burst
    return p


# --- the table in docs/simulator.md ------------------------------------------------------------------------
def table() -> str:
    """The markdown table of every range key (docs/simulator.md holds a copy; a test compares them)."""
    rows = ["| key | drawn |", "|---|---|"]
    for key, spec in RANGES.items():
        rows.append(f"| `{key}` | {spec.text()} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--table"]:
        sys.stdout.write(table())
    else:
        print("usage: python -m app.sim.worlds --table", file=sys.stderr)
        sys.exit(2)
