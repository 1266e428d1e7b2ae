"""Prompt template families: benign customers' and campaigns', looked up by name from scenario files."""

from __future__ import annotations

from app.sim.prompts.benign import all_benign
from app.sim.prompts.harvest import all_harvest
from app.sim.prompts.markup import Family

FAMILIES: dict[str, Family] = {**all_benign(), **all_harvest()}

__all__ = ["FAMILIES", "Family"]
