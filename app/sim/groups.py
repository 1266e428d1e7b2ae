"""What benign populations and campaigns have in common: the world they run in and how they hand out events.

A group plans all its requests up front as small tuples `(ts_ms, seq, session, turn)`, sorted by time, and
renders each one to JSON bytes only when the generator pulls it. Each group draws from its own random stream
(seeded by the scenario seed and the group name), so groups do not perturb one another.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.sim.accounts import Account, Ids
from app.sim.infra import STACKS, TZ, Stack, pick_stack
from app.sim.prompts import FAMILIES, Family
from app.sim.scenario import Scenario
from app.sim.timing import DiurnalSampler

# Which client stacks each access path uses by default, by popularity. A handful of JA4s carry most traffic.
STACKS_BY_PATH: dict[str, dict[str, float]] = {
    "consumer_app": {"chrome": 0.42, "safari": 0.2, "ios_app": 0.14, "android_app": 0.12, "edge": 0.07,
                     "firefox": 0.05},
    "api": {"python_sdk": 0.46, "node_sdk": 0.2, "python_httpx": 0.1, "python_requests": 0.08, "go_http": 0.06,
            "java_http": 0.05, "curl": 0.05},
    "ide_agent": {"ide_agent": 0.6, "cli_agent": 0.4},
    "cloud_marketplace": {"python_sdk": 0.5, "java_http": 0.25, "go_http": 0.15, "node_sdk": 0.1},
}
DEVICE_PATHS = frozenset({"consumer_app", "ide_agent"})


@dataclass(slots=True)
class World:
    """Scenario-wide facts every group sees."""

    scenario: Scenario
    seed: int
    _samplers: dict[tuple[str, float], DiurnalSampler] = field(default_factory=dict)

    @property
    def app_prompt(self) -> str:
        """System prompt hash of the first-party consumer app (a constant of the simulated world)."""
        return "5f0c2a9be61d7a43"

    @property
    def start(self) -> int:
        return self.scenario.start_ms

    @property
    def end(self) -> int:
        return self.scenario.end_ms

    @property
    def release(self) -> int:
        return self.scenario.release_ms

    def sampler(self, profile: str, country: str) -> DiurnalSampler:
        tz = TZ.get(country, 0.0)
        key = (profile, tz)
        s = self._samplers.get(key)
        if s is None:
            s = self._samplers[key] = DiurnalSampler(profile, tz, self.start, self.end)
        return s

    def model_name(self, role: str) -> str:
        return self.scenario.release_model if role == "new" else self.scenario.models[role]


@dataclass(slots=True)
class Session:
    """Context shared by the requests of one session (one conversation, one agent run, one batch job)."""

    account: Account
    key_id: str | None
    client: Any  # dict or orjson.Fragment
    role: str
    model: str
    family: Family | None
    sys_hash: str | None
    thinking: bool
    tools: int
    context: int
    access_path: str


Planned = tuple[int, int, Session, int]


class Group:
    """Base: a named set of accounts that plans and renders its own traffic."""

    cls = "benign"

    def __init__(self, spec: dict[str, Any], defaults: dict[str, Any], world: World, index: int) -> None:
        self.spec = {**defaults, **spec}
        self.name: str = self.spec["name"]
        self.world = world
        self.index = index
        self.rng = random.Random(f"{world.seed}:{self.name}")
        self.ids = Ids(self.rng)
        self.accounts: list[Account] = []
        self._seq = 0
        self._planned: list[Planned] = []

    # -- helpers -------------------------------------------------------------------------------------
    def families(self, key: str = "template_families") -> tuple[list[Family], list[float]]:
        weights: dict[str, float] = self.spec[key]
        return [FAMILIES[n] for n in weights], list(weights.values())

    def add(self, ts: int, session: Session, turn: int) -> None:
        if self.world.start <= ts < self.world.end:
            self._seq += 1
            self._planned.append((ts, self._seq, session, turn))

    def request_parts(self, session: Session, turn: int, fam: Family, text: str) -> tuple[dict, Any]:
        """The request and response fields of one turn of `session` (draws from the group's rng)."""
        from app.sim.events import prompt_tokens, response

        s, rng = self.spec, self.rng
        # the conversation so far is resent every turn (and mostly read from the prompt cache)
        context = min(int(session.context * (1 + 0.12 * (turn - 1))), 190_000)
        req: dict[str, Any] = {"model": session.model, "prompt": text}
        if session.sys_hash is not None:
            req["system_prompt_hash"] = session.sys_hash
        req["input_tokens"] = prompt_tokens(text) + context
        req["cache_read_tokens"] = int(context * s["cache_read_fraction"] * (0.7 + 0.3 * rng.random()))
        req["thinking"] = session.thinking
        req["tools"] = max(session.tools, 1) if fam.tools else session.tools
        req["images"] = fam.images or (1 if rng.random() < s["images"] else 0)
        req["turn"] = turn
        resp = response(rng, session.role, *s["output_tokens"], *s["thinking_tokens"], session.thinking)
        return req, resp

    def pick_stack(self, access_path: str) -> Stack:
        weights = self.spec.get("stacks") or STACKS_BY_PATH[access_path]
        return pick_stack(self.rng, weights, self.spec.get("tail_stack_share", 0.0))

    # -- the generator's interface ---------------------------------------------------------------------
    def plan(self) -> int:
        """Build accounts and the sorted request plan; return the number of events planned."""
        self.build()
        self._planned.sort(key=lambda p: (p[0], p[1]))
        return len(self._planned)

    def build(self) -> None:
        raise NotImplementedError

    def render(self, ts: int, session: Session, turn: int) -> bytes:
        raise NotImplementedError

    def events(self) -> Iterator[tuple[int, int, str, bytes]]:
        """(ts_ms, group index, account id, JSON bytes) in time order; frees the plan as it goes."""
        planned, self._planned = self._planned, []
        gi = self.index
        render = self.render
        for ts, _, session, turn in planned:
            yield ts, gi, session.account.id, render(ts, session, turn)

    def label_fields(self, acct: Account) -> dict[str, Any]:
        """Ground-truth fields beyond cls and group (population kind or archetype, group size, ...)."""
        return {}

    def labels(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for a in self.accounts:
            entry: dict[str, Any] = {"cls": self.cls, "group": self.name, **self.label_fields(a)}
            if a.replacement:
                entry["replacement"] = True
            out[a.id] = entry
        return out


def stack_client(stack: Stack, rng: random.Random) -> tuple[str, str]:
    return stack.ja4, stack.user_agents[int(rng.random() * len(stack.user_agents))]


__all__ = ["DEVICE_PATHS", "STACKS", "STACKS_BY_PATH", "Group", "Planned", "Session", "World", "stack_client"]
