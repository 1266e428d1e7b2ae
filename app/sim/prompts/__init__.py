"""Prompt template families: benign customers' and campaigns', looked up by name from scenario files."""

from __future__ import annotations

from app.sim.prompts.benign import all_benign
from app.sim.prompts.harvest import all_harvest
from app.sim.prompts.learning import all_learning
from app.sim.prompts.markup import Family
from app.sim.prompts.research import all_research

FAMILIES: dict[str, Family] = {**all_benign(), **all_research(), **all_learning(), **all_harvest()}

__all__ = ["FAMILIES", "Family"]
