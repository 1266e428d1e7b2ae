"""Tiny template language for prompt phrasings: `{slot}` fills a slot, `[[a|b|c]]` is a paraphrase choice.

A template is compiled once into parts; rendering is a loop over the parts, cheap enough to run for every
simulated request. The canonical rendering takes the first alternative of every choice, so a family used
without paraphrase repeats one exact wording with different slot contents.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"\[\[(.*?)\]\]|\{([a-z_0-9]+)\}", re.S)

MAX_PROMPT_CHARS = 1900  # the gateway truncates; the contract asks for prompts under ~2,000 chars


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | tuple[str, ...] | _Slot, ...]
    lang: str
    source: str

    def slots(self) -> set[str]:
        out: set[str] = set()
        for p in self.parts:
            if isinstance(p, _Slot):
                out.add(p.name)
            elif isinstance(p, tuple):
                for alt in p:
                    out |= compile_template(alt, self.lang).slots()
        return out

    def render(self, values: Mapping[str, str], rng: random.Random | None) -> str:
        """Fill slots; with `rng`, pick a random alternative for every choice, else the first one."""
        out: list[str] = []
        for p in self.parts:
            if type(p) is str:
                out.append(p)
            elif type(p) is _Slot:
                out.append(values[p.name])
            else:
                alt = p[0] if rng is None else p[int(rng.random() * len(p))]
                out.append(alt.format_map(values) if "{" in alt else alt)
        return "".join(out)


def compile_template(text: str, lang: str = "en") -> Template:
    parts: list[str | tuple[str, ...] | _Slot] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        if m.group(1) is not None:
            parts.append(tuple(m.group(1).split("|")))
        else:
            parts.append(_Slot(m.group(2)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return Template(tuple(parts), lang, text)


Filler = Callable[[random.Random], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Family:
    """A prompt family: several phrasings (first = canonical) and a filler drawing the slot values."""

    name: str
    phrasings: tuple[Template, ...]
    fill: Filler
    trace: bool = False  # asks the model to expose its reasoning (trace elicitation)
    # extra per-request shape the family implies: images attached, tool definitions expected
    images: int = 0
    tools: bool = False

    def render(self, rng: random.Random, paraphrase: bool) -> str:
        values = self.fill(rng)
        if paraphrase:
            tpl = self.phrasings[int(rng.random() * len(self.phrasings))]
            text = tpl.render(values, rng)
        else:
            text = self.phrasings[0].render(values, None)
        return text if len(text) <= MAX_PROMPT_CHARS else text[:MAX_PROMPT_CHARS]


def family(name: str, phrasings: Sequence[str | tuple[str, str]], fill: Filler, **kw: object) -> Family:
    """Build a family; a phrasing is a template string (English) or a (lang, template) pair."""
    compiled = []
    for p in phrasings:
        lang, text = ("en", p) if isinstance(p, str) else p
        compiled.append(compile_template(text, lang))
    return Family(name, tuple(compiled), fill, **kw)  # type: ignore[arg-type]
