"""Scenario files: YAML validated at load against `scenario.schema.json` plus cross-field checks.

A bad file fails fast with a `ScenarioError` naming the file and the field (`campaigns[2].paraphrase_rate`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from app.sim.infra import STACKS
from app.sim.prompts import FAMILIES
from app.sim.timing import HOUR_MS, parse_ts

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCHEMA_PATH = Path(__file__).resolve().parent / "scenario.schema.json"
DEFAULT_START = "2026-02-01T00:00:00Z"


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the offending field."""

    def __init__(self, source: str, where: str, message: str) -> None:
        super().__init__(f"{source}: {where}: {message}")
        self.source, self.where = source, where


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    source: str
    description: str
    start_ms: int
    duration_hours: float
    models: dict[str, str]
    release_model: str
    release_hours: float
    populations: list[dict[str, Any]] = field(default_factory=list)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None  # the file's default generator seed (a drawn world records its own)

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.duration_hours * HOUR_MS)

    @property
    def release_ms(self) -> int:
        return self.start_ms + int(self.release_hours * HOUR_MS)


def available() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def resolve(name_or_path: str) -> Path:
    """A packaged scenario by name, or a file path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists() or "/" in name_or_path:
        if not p.is_file():
            raise ScenarioError(name_or_path, "file", "no such scenario file")
        return p
    packaged = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not packaged.is_file():
        raise ScenarioError(name_or_path, "scenario", f"unknown scenario; packaged ones: {', '.join(available())}")
    return packaged


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load(name_or_path: str, start: str | None = None) -> Scenario:
    path = resolve(name_or_path)
    source = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        raise ScenarioError(source, where, f"not valid YAML: {exc}") from exc
    return from_dict(doc, source, start)


def from_dict(doc: Any, source: str, start: str | None = None) -> Scenario:
    errors = sorted(_validator().iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        # the deepest error is the most specific one (oneOf/anyOf wrappers sort first otherwise)
        err = max(errors, key=lambda e: len(e.absolute_path))
        raise ScenarioError(source, _where(err.absolute_path), err.message)
    _check(doc, source)
    start_text = start or doc.get("start") or DEFAULT_START
    try:
        start_ms = parse_ts(start_text)
    except ValueError as exc:
        raise ScenarioError(source, "start", f"not an RFC 3339 timestamp: {start_text!r}") from exc
    if doc["release"]["at_hours"] > doc["duration_hours"]:
        raise ScenarioError(source, "release.at_hours", "release happens after the scenario ends")
    return Scenario(
        name=doc["name"], source=source, description=doc.get("description", ""), start_ms=start_ms,
        duration_hours=float(doc["duration_hours"]), models=dict(doc["models"]),
        release_model=doc["release"]["model"], release_hours=float(doc["release"]["at_hours"]),
        populations=list(doc["populations"]), campaigns=list(doc["campaigns"]), seed=doc.get("seed"),
    )


def _check(doc: dict[str, Any], source: str) -> None:
    """Cross-field rules a JSON Schema cannot express."""
    seen: set[str] = set()
    for section in ("populations", "campaigns"):
        for i, g in enumerate(doc[section]):
            at = f"{section}[{i}]"
            if g["name"] in seen:
                raise ScenarioError(source, f"{at}.name", f"duplicate group name {g['name']!r}")
            seen.add(g["name"])
            for key in ("template_families", "cover_families"):
                for fam in g.get(key, {}):
                    if fam not in FAMILIES:
                        raise ScenarioError(source, f"{at}.{key}.{fam}", "unknown prompt family")
            for fam in g.get("release_burst", {}).get("template_families", {}):
                if fam not in FAMILIES:
                    raise ScenarioError(source, f"{at}.release_burst.template_families.{fam}", "unknown prompt family")
            if "followup_family" in g and g["followup_family"] not in FAMILIES:
                raise ScenarioError(source, f"{at}.followup_family", "unknown prompt family")
            _check_trap_knobs(g, at, source, doc["duration_hours"])
            for stack in g.get("stacks", {}):
                if stack not in STACKS:
                    raise ScenarioError(source, f"{at}.stacks.{stack}", "unknown client stack")
            for key, value in g.items():
                if isinstance(value, list) and len(value) == 2 and all(isinstance(x, int | float) for x in value) \
                        and value[0] > value[1]:
                    raise ScenarioError(source, f"{at}.{key}", f"range {value} has min > max")
            for key in ("template_families", "cover_families", "countries", "access_paths", "stacks", "models"):
                if key in g and sum(g[key].values()) <= 0:
                    raise ScenarioError(source, f"{at}.{key}", "weights sum to zero")
    dur = doc["duration_hours"]
    for i, c in enumerate(doc["campaigns"]):
        at = f"campaigns[{i}]"
        live = c.get("live_accounts", c["accounts"])
        if live > c["accounts"]:
            raise ScenarioError(source, f"{at}.live_accounts", "more live accounts than accounts")
        for j, (a, b) in enumerate(c.get("shifts", [])):
            if not a < b <= dur:
                raise ScenarioError(source, f"{at}.shifts[{j}]", f"shift must satisfy start < end <= {dur}")


def _check_trap_knobs(g: dict[str, Any], at: str, source: str, duration: float) -> None:
    """Knobs only the trap kinds read: rejected elsewhere (they would be silently ignored), checked on them."""
    from app.sim.traps import TRAP_DEFAULTS, TRAP_KINDS, TRAP_KNOBS

    if "kind" not in g:
        return
    if g["kind"] not in TRAP_KINDS:
        for key in TRAP_KNOBS:
            if key in g:
                raise ScenarioError(source, f"{at}.{key}", f"not a knob of kind {g['kind']!r}")
        return
    if g.get("labs", 1) > g["accounts"]:
        raise ScenarioError(source, f"{at}.labs", "more labs than accounts")
    if "labs" in g and g["kind"] not in ("research_lab", "hosted_agent", "travellers", "online_course"):
        raise ScenarioError(source, f"{at}.labs", "only research_lab (labs), hosted_agent (clouds), travellers "
                                                  "(trips) and online_course (countries) have several sites")
    trip = {**TRAP_DEFAULTS[g["kind"]].get("trip", {}), **g.get("trip", {})}
    if "trip" in g and "trip" not in TRAP_DEFAULTS[g["kind"]]:
        raise ScenarioError(source, f"{at}.trip", f"not a knob of kind {g['kind']!r}")
    if trip:
        if trip["depart_at"] >= duration:
            raise ScenarioError(source, f"{at}.trip.depart_at",
                                f"the trip leaves after the scenario ends ({duration} h)")
        lo, hi = trip["transit_hours"]
        if lo > hi:
            raise ScenarioError(source, f"{at}.trip.transit_hours", f"range {[lo, hi]} has min > max")
    cohort = {**TRAP_DEFAULTS[g["kind"]].get("cohort", {}), **g.get("cohort", {})}
    if not cohort:
        return
    if cohort["at_hours"] >= duration:
        raise ScenarioError(source, f"{at}.cohort.at_hours", f"cohort starts after the scenario ends ({duration} h)")
    for fam in cohort.get("template_families", {}):
        if fam not in FAMILIES:
            raise ScenarioError(source, f"{at}.cohort.template_families.{fam}", "unknown prompt family")
    if "template_families" in cohort and sum(cohort["template_families"].values()) <= 0:
        raise ScenarioError(source, f"{at}.cohort.template_families", "weights sum to zero")
    for key in ("first_requests", "gap_seconds", "sessions"):
        if key in cohort and cohort[key][0] > cohort[key][1]:
            raise ScenarioError(source, f"{at}.cohort.{key}", f"range {cohort[key]} has min > max")
