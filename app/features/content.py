"""Content stage of the detection core: one gateway prompt in, hashes, sketches and cue scores out.

Pure and deterministic (no clock, no I/O, no salted ``hash``); the prompt text never leaves this module.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
import zlib
from collections import OrderedDict
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from itertools import chain, pairwise
from operator import add, itemgetter
from typing import NamedTuple

from msgspec import Struct

from app.features import lexicon
from app.features.minhash import MINHASH_ROWS, hashed, minhash_keys, minhash_keys_many, minhash_of
from app.features.prefilter import AsciiPrefilter

try:  # CPython's regex parser: used once at import to derive cheap pre-filters for the cue regexes
    import re._constants as _sre_c
    import re._parser as _sre_p
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_p  # type: ignore[no-redef]

TASK_FAMILIES = ("coding", "agentic", "math", "reasoning", "writing", "qa", "translation", "grading", "data",
                 "chat", "other")
LANGS = ("en", "zh", "ja", "ko", "ru", "es", "fr", "de", "pt", "other")
SIGNALS = ("trace_elicit", "rubric_grading", "censor_rewrite")


_SIMHASH_BITS = 64  # what content.lsh_bands divided


@dataclass(frozen=True, slots=True)
class ContentConfig:
    """Knobs of the content stage, built by the rules loader from the rules file's ``content:`` section."""

    # Bands of the skeleton's SimHash, which gave template keys "b0:..." until nothing read them (the
    # account stage links accounts on the MinHash keys only): still accepted, and checked as before, so
    # that a rules file setting content.lsh_bands loads as it did. It changes no feature.
    lsh_bands: int = 4
    max_chars: int = 4000  # analyse at most this many characters
    flag_min: float = 0.5  # a cue score at or above this counts as flagged (see `flagged`)
    # Prompts with fewer skeleton tokens get no template keys: "hi" from 10,000 accounts is not a template.
    min_template_tokens: int = 4
    # Shingles taken from a long prompt: the first 3/4 and the last 1/4 of this many; MinHash then reads
    # at most _MINHASH_FEATURES of those. The exact skeleton hash still covers the whole (max_chars) text.
    max_shingles: int = 512
    # MinHash band keys (Jaccard of the shingle sets): the template keys. 0 bands gives none.
    minhash_bands: int = 4
    minhash_rows: int = 2  # per band; a band matches with probability ~ Jaccard**rows
    # Score caps by evidence units (the sum of the matched groups' units, see lexicon.GROUPS): while the
    # units are below a threshold the score may not exceed the paired cap, so one generic word never fires.
    trace_caps: tuple[tuple[float, float], ...] = ((1.0, 0.2), (1.5, 0.45), (2.0, 0.7))
    rubric_caps: tuple[tuple[float, float], ...] = ((1.0, 0.2), (1.5, 0.5))
    censor_caps: tuple[tuple[float, float], ...] = ((1.0, 0.0), (1.5, 0.35), (2.0, 0.6))

    def __post_init__(self) -> None:
        bits = _SIMHASH_BITS
        if not 1 <= self.lsh_bands <= bits or bits % self.lsh_bands:
            raise ValueError(f"content.lsh_bands must divide {bits}, got {self.lsh_bands}")
        if self.max_chars < 1:
            raise ValueError(f"content.max_chars must be >= 1, got {self.max_chars}")
        if not 0.0 <= self.flag_min <= 1.0:
            raise ValueError(f"content.flag_min must be in [0, 1], got {self.flag_min}")
        if self.minhash_bands < 0 or self.minhash_rows < 1 or self.minhash_bands * self.minhash_rows > MINHASH_ROWS:
            raise ValueError(
                f"content.minhash_bands * minhash_rows must be at most {MINHASH_ROWS}, "
                f"got {self.minhash_bands} * {self.minhash_rows}"
            )
        if self.max_shingles < 4:
            raise ValueError(f"content.max_shingles must be >= 4, got {self.max_shingles}")
        if self.min_template_tokens < 1:
            raise ValueError(f"content.min_template_tokens must be >= 1, got {self.min_template_tokens}")
        for name in ("trace_caps", "rubric_caps", "censor_caps"):
            # a YAML loader hands lists over; keep the frozen value hashable
            caps = tuple((float(u), float(c)) for u, c in getattr(self, name))
            if any(not 0.0 <= c <= 1.0 for _, c in caps):
                raise ValueError(f"content.{name}: caps must be in [0, 1], got {caps}")
            object.__setattr__(self, name, caps)


class ContentFeatures(Struct, frozen=True, gc=False):
    """What the content stage tells the account stage of one prompt (never its text).

    A frozen `msgspec.Struct` rather than a frozen dataclass, as the stages' messages are
    (app/detect/messages.py): one is made per event, and a frozen dataclass's `__init__` sets each of its
    ten fields through `object.__setattr__` (about 1 µs, 0.1 µs as a Struct). Same fields, order,
    defaults, equality and hashing; `gc=False`: it holds only strings, numbers and tuples of strings."""

    skeleton_hash: str  # 16 hex chars of the masked, folded skeleton; "" when the prompt has no tokens
    # LSH keys shared by near-duplicates: MinHash bands of the skeleton's shingles ("m0:9c1e02ab",
    # minhash_bands of them); () when the prompt is too short to be a template
    template_keys: tuple[str, ...]
    trace_elicit: float
    rubric_grading: float
    censor_rewrite: float
    task_family: str
    lang: str
    length_bucket: int  # bit length of the prompt's length in chars: 0 empty, 1 one char, 9 for 256..511
    token_count: int = 0  # skeleton tokens (words; one per CJK character)
    cues: tuple[str, ...] = ()  # matched cue groups, e.g. "trace.hidden_self" (fixed names)


EMPTY = ContentFeatures(
    skeleton_hash="", template_keys=(), trace_elicit=0.0, rubric_grading=0.0, censor_rewrite=0.0,
    task_family="other", lang="other", length_bucket=0, token_count=0, cues=(),
)


# ------------------------------------------------------------------------------------------- cue engine
# Python's `re` tries every alternative at every position, so a few hundred cue phrases would cost
# milliseconds per prompt. Each cue fragment is therefore split at its leading alternation into pieces,
# and each piece carries *anchors*: literal keys every match must contain, the first four or five letters
# of a word (looked up in the set of the text's word prefixes) or a CJK character (looked up in the set of
# the text's characters). A piece runs only when the text holds its cheapest key set and, when it has one,
# a second key set on other words. Anchors are derived from the parsed regexes themselves, so the lexicon
# stays plain regex and a filter cannot disagree with its pattern (tests check this against exhaustive
# search); a piece without a usable anchor simply always runs.
_CJK_RANGES = lexicon.CJK_RANGES
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_KEY_RUN = re.compile(f"[{_CJK_RANGES}]+|[^\\W\\d_{_CJK_RANGES}]+")
_OPEN, _DONE = 0, 1  # a literal prefix may still grow / has ended
_MAX_PREFIXES = 256
_BOUNDARY = "\x00"  # marks \b inside a literal prefix
# Keys that occur in most prompts filter nothing: avoid them when a rarer required word exists.
_COMMON_KEYS = frozenset({w[:n] for stop in lexicon.STOPWORDS.values() for w in stop for n in (4, 5)}) | lexicon.words(
    """
    your with what this that have from will more when make some they them than then also into just only
    like need want know help give time each over comp cont cons prov repr pres expl info form answ ques
    plea writ work show thin
    """
)
_COMMON_CJK = lexicon.COMMON_CJK  # poor anchors


_LATIN_EDGES = {repr(list(_sre_p.parse(x).data[0][1][1])) for x in (lexicon.LB, lexicon.LA)}


def _is_latin_edge(av) -> bool:
    return repr(list(av[1])) in _LATIN_EDGES


def _prefixes(items) -> list[tuple[str, int]] | None:
    """Literal strings every match of the parsed items starts with, as (text, state); None if too many."""
    c = _sre_c
    out: list[tuple[str, int]] = [("", _OPEN)]

    def extend(alts: list[tuple[str, int]]) -> None:
        nonlocal out
        grown = [(s + a, ast) for s, st in out if st == _OPEN for a, ast in alts]
        out = list(dict.fromkeys([(s, st) for s, st in out if st != _OPEN] + grown))

    for op, av in items:
        if all(st != _OPEN for _, st in out):
            break
        if op is c.LITERAL:
            extend([(chr(av), _OPEN)])
        elif op is c.AT:
            extend([(_BOUNDARY, _OPEN)] if av is c.AT_BOUNDARY else [("", _DONE)])
        elif op is c.ASSERT_NOT and _is_latin_edge(av):
            extend([(_BOUNDARY, _OPEN)])  # lexicon.LB / LA delimit a word like \b does
        elif op in (c.ASSERT, c.ASSERT_NOT):
            continue  # zero-width
        elif op is c.SUBPATTERN or op is c.BRANCH:
            alts: list[tuple[str, int]] = []
            for body in ([av[-1]] if op is c.SUBPATTERN else av[1]):
                sub = _prefixes(body)
                if sub is None:
                    return None
                alts += sub
            extend(alts)
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] == 0 and av[1] == 1:
            sub = _prefixes(av[2])
            if sub is None:
                return None
            extend([("", _OPEN), *sub])
        elif op is c.IN and len(av) <= 4 and all(
            o is c.LITERAL or (o is c.CATEGORY and a is c.CATEGORY_SPACE) for o, a in av
        ):
            extend([(" " if o is c.CATEGORY else chr(a), _OPEN) for o, a in av])
        else:
            extend([("", _DONE)])
        if len(out) > _MAX_PREFIXES:
            return None
    return out


def _ends_nonword(items, i: int, start: bool) -> bool:
    """Is the position before items[i] preceded by a non-word character (so a word starts there)?"""
    c = _sre_c
    if i == 0:
        return start
    op, av = items[i - 1]
    if op is c.AT:
        return av is c.AT_BOUNDARY
    if op is c.ASSERT_NOT:
        return _is_latin_edge(av)
    if op is c.LITERAL:
        return not chr(av).isalnum() and av != 0x5F
    if op is c.IN:
        return all(
            (o is c.CATEGORY and a in (c.CATEGORY_NOT_WORD, c.CATEGORY_SPACE))
            or (o is c.LITERAL and not chr(a).isalnum())
            for o, a in av
        )
    if op in (c.MAX_REPEAT, c.MIN_REPEAT):
        lo, _, body = av
        body_ok = _ends_nonword(body, len(body), False)
        return body_ok if lo >= 1 else body_ok and _ends_nonword(items, i - 1, start)
    if op is c.SUBPATTERN:
        return _ends_nonword(av[-1], len(av[-1]), False)
    if op is c.BRANCH:
        return all(len(alt) and _ends_nonword(alt, len(alt), False) for alt in av[1])
    return False


def _key_cost(kind: str, key: str) -> float:
    if kind == "c":
        return 30.0 if key in _COMMON_CJK else 2.0
    return 30.0 if key in _COMMON_KEYS else (1.0 if len(key) == 5 else 1.5 if len(key) == 4 else 3.0)


def _keys_of(prefixes: list[tuple[str, int]], aligned: bool) -> tuple[float, frozenset] | None:
    """The cheapest key of each prefix string (all are needed: any string may be the one that matched)."""
    keys, cost = set(), 0.0
    for text, _ in prefixes:
        s = (_BOUNDARY if aligned else "") + text
        best: tuple[float, tuple[str, str]] | None = None
        for m in _KEY_RUN.finditer(s):
            run, a, b = m.group(), m.start(), m.end()
            if _CJK_CHAR.match(run):
                cands = [("c", ch) for ch in run]
            elif a > 0 and (len(run) >= 4 or b < len(s)):
                # text words are keyed by their first 4 and first 5 letters: a complete short word is its
                # own key, a word (or a stem the regex continues with \w*) of 5+ letters its first five
                cands = [("w", run[:5])]
            else:
                continue
            for kind, key in cands:
                kc = _key_cost(kind, key)
                if best is None or kc < best[0]:
                    best = (kc, (kind, key))
        if best is None:
            return None
        cost += best[0]
        keys.add(best[1])
    return cost, frozenset(keys)


def _anchors(items, start: bool = False) -> tuple[float, frozenset] | None:
    """The cheapest set of keys such that every match contains one of them, or None."""
    found = _candidates(items, start)
    return min(found, key=itemgetter(0)) if found else None


def _anchor_pair(items) -> tuple[frozenset | None, frozenset | None]:
    """The cheapest key set, and a second one on other words: a piece runs only when the text holds a key
    of each (both are necessary for a match, so the pair filters more without hiding any match)."""
    found = sorted(_candidates(items, False), key=itemgetter(0))
    if not found:
        return None, None
    first = found[0][1]
    words = {k for _, k in first}
    for _, keys in found[1:]:
        if words.isdisjoint(k for _, k in keys):
            return first, keys
    return first, None


def _candidates(items, start: bool) -> list[tuple[float, frozenset]]:
    """Key sets that each match must contain, one per usable position of the sequence."""
    c = _sre_c
    best = []
    for i, (op, av) in enumerate(items):
        if i and items[i - 1][0] is c.LITERAL and chr(items[i - 1][1]).isalnum():
            continue  # inside a literal word: the candidate starting at the word covers it
        aligned = _ends_nonword(items, i, start)
        found = []
        # literal runs starting here; a wide alternation is better served by its branches' own anchors
        if op is c.LITERAL or op is c.SUBPATTERN or op is c.IN or op is c.ASSERT_NOT or (
            op is c.BRANCH and len(av[1]) <= 8
        ):
            pre = _prefixes(items[i:])
            if pre is not None:
                found.append(_keys_of(pre, aligned))
        if op is c.BRANCH:
            subs = [_anchors(body, aligned) for body in av[1]]
            if all(subs):
                found.append((sum(x[0] for x in subs), frozenset().union(*(x[1] for x in subs))))
        elif op is c.SUBPATTERN or (op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1):
            found.append(_anchors(av[-1], aligned))
        best += [f for f in found if f is not None]
    return best


def _fast_start(fragment: str) -> str:
    """Rewrite a leading word boundary + letter as letter + lookbehind (same matches).

    A regex that starts with a literal is found by a fast scan; one that starts with a word boundary is
    tried at every position, about ten times slower.
    """
    for edge, before in (("\\b", "\\w"), (lexicon.LB, f"[^\\W\\d_{_CJK_RANGES}]")):
        n = len(edge)
        if fragment.startswith(edge) and len(fragment) > n + 1:
            ch, nxt = fragment[n], fragment[n + 1 : n + 2]
            if ch.isalnum() and nxt not in ("?", "*", "+", "{"):
                return f"{re.escape(ch)}(?<!{before}{re.escape(ch)}){fragment[n + 1:]}"
    return fragment


def _split_leading_group(src: str) -> list[str] | None:
    r"""`\b(?:a|b)rest` -> [`\barest`, `\bbrest`], `\b(?:a)?rest` -> [`\brest`]; None when `src` does not
    start with such a group."""
    head = "\\b" if src.startswith("\\b") else ""
    body = src[len(head):]
    if not body.startswith("(?:"):
        return None
    depth, i, n, cuts, in_class = 0, 0, len(body), [], False
    while i < n:
        ch = body[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            if body[i : i + 1] == "^":
                i += 1
            if body[i : i + 1] == "]":
                i += 1
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                break
        elif ch == "|" and depth == 1:
            cuts.append(i)
        i += 1
    else:
        return None
    rest = body[i + 1 :]
    if rest[:1] in ("?", "*") and rest[1:2] not in ("?", "+"):
        return [head + rest[1:]]  # an optional leading group never decides whether a search matches
    if rest[:1] in ("?", "*", "+", "{"):
        return None
    bounds = [3, *(c + 1 for c in cuts)]
    ends = [*cuts, i]
    return [head + body[a:b] + rest for a, b in zip(bounds, ends, strict=True)]


def _pieces(fragment: str, limit: int = 256) -> list[tuple[str, tuple[frozenset | None, frozenset | None]]]:
    """Split a fragment's leading alternation into separately anchored pieces when that makes the
    anchors more selective (each piece then runs only when its own word occurs)."""
    pending, done = [fragment], []
    while pending and len(done) + len(pending) <= limit:
        src = pending.pop()
        split = _split_leading_group(src)
        if split is None:
            done.append(src)
        else:
            pending.extend(reversed(split))
    if pending:
        return [(fragment, _anchor_pair(_sre_p.parse(fragment).data))]
    # Pieces are kept apart even when they share anchors: each starts with a literal, which `re` scans for
    # quickly, where the whole alternation is tried at every position (10x slower on long prompts).
    return [(p, _anchor_pair(_sre_p.parse(p).data)) for p in done]


class _Cues:
    """Named cue groups. `hits` runs only the fragments whose anchors occur in the text."""

    __slots__ = ("_all_chars", "_all_words", "_always", "_by_char", "_by_word", "_char_keys", "_ids", "_names",
                 "_parts", "_word_keys")

    def __init__(self, groups: dict[str, list[str]]) -> None:
        self._names = tuple(groups)
        # [group name, regex source, compiled regex or None until first use, second word keys, second chars,
        #  id (index in _ALL_PARTS), may match ASCII text]
        parts: list[list] = []
        always: list[int] = []
        by_word: dict[str, list[int]] = {}
        by_char: dict[str, list[int]] = {}
        for name, fragments in groups.items():
            for frag in fragments:
                for piece, (first, second) in _pieces(frag):
                    idx = len(parts)
                    second_words = second_chars = None
                    if second is not None:
                        second_words = frozenset(k for t, k in second if t == "w")
                        second_chars = frozenset(k for t, k in second if t == "c")
                    # every match holds a key of `first`: with none of them ASCII, no ASCII text matches
                    ascii_ok = first is None or any(key.isascii() for _, key in first)
                    part = [name, _fast_start(piece), None, second_words, second_chars, len(_ALL_PARTS), ascii_ok]
                    _ALL_PARTS.append(part)
                    parts.append(part)
                    if first is None:
                        always.append(idx)
                        continue
                    for kind, key in first:
                        (by_char if kind == "c" else by_word).setdefault(key, []).append(idx)
        self._parts = parts
        self._ids = frozenset(p[5] for p in parts)
        self._always = tuple(always)
        self._by_word = {k: tuple(v) for k, v in by_word.items()}
        self._by_char = {k: tuple(v) for k, v in by_char.items()}
        self._word_keys = frozenset(by_word)
        self._char_keys = frozenset(by_char)
        self._all_chars = self._char_keys.union(*(p[4] for p in parts if p[4] is not None))
        self._all_words = self._word_keys.union(*(p[3] for p in parts if p[3] is not None))

    @classmethod
    def merge(cls, sets: list[_Cues]) -> _Cues:
        """One cue set searching all of `sets` (their pieces are shared, not derived again)."""
        merged = cls({})
        names: dict[str, None] = {}
        by_word: dict[str, list[int]] = {}
        by_char: dict[str, list[int]] = {}
        always: list[int] = []
        parts: list[list] = []
        for cues in sets:
            names.update(dict.fromkeys(cues._names))
            base = len(parts)
            parts += cues._parts  # the same [name, source, compiled] lists: compiled once for all bundles
            always += [base + i for i in cues._always]
            for index, source in ((by_word, cues._by_word), (by_char, cues._by_char)):
                for key, idxs in source.items():
                    index.setdefault(key, []).extend(base + i for i in idxs)
        merged._names = tuple(names)
        merged._parts = parts
        merged._ids = frozenset(p[5] for p in parts)
        merged._always = tuple(always)
        merged._by_word = {k: tuple(v) for k, v in by_word.items()}
        merged._by_char = {k: tuple(v) for k, v in by_char.items()}
        merged._word_keys = frozenset(by_word)
        merged._char_keys = frozenset(by_char)
        merged._all_chars = frozenset().union(*(c._all_chars for c in sets))
        merged._all_words = frozenset().union(*(c._all_words for c in sets))
        return merged

    def hits(self, text: str, word_keys: set[str], chars: set[str], skip: frozenset[str] = frozenset()) -> list[str]:
        todo = set(self._always)
        for key in self._word_keys.intersection(word_keys):
            todo.update(self._by_word[key])
        if chars:
            for key in self._char_keys.intersection(chars):
                todo.update(self._by_char[key])
        found: set[str] = set()
        parts = self._parts
        for idx in todo:  # any order: the result is the set of groups with a matching piece
            part = parts[idx]
            name = part[0]
            if name in found or name in skip:
                continue
            if part[3] is not None and part[3].isdisjoint(word_keys) and part[4].isdisjoint(chars):
                continue  # the piece's second required word is absent
            rx = part[2]
            if rx is None:  # compiled on first use: most pieces never run, and compiling all takes seconds
                rx = part[2] = re.compile(part[1])
            if rx.search(text):
                found.add(name)
        return [n for n in self._names if n in found]

    def hits_among(self, text: str, ids: list[int], skip: frozenset[str] = frozenset()) -> list[str]:
        """`hits` on an ASCII text, given the ids of the pieces that may match it (`_ascii_prefilter`,
        for every cue set at once): the same groups, found without the anchor look-ups."""
        found: set[str] = set()
        mine = self._ids
        for pid in ids:
            if pid not in mine:
                continue
            part = _ALL_PARTS[pid]
            name = part[0]
            if name in found or name in skip:
                continue
            rx = part[2]
            if rx is None:
                rx = part[2] = re.compile(part[1])
            if rx.search(text):
                found.add(name)
        return [n for n in self._names if n in found] if found else []

    @property
    def word_keys(self) -> frozenset[str]:
        """Every word key some piece looks up (first and second anchors): `hits` gives the same result
        for `word_keys & self.word_keys` as for the text's full key set."""
        return self._all_words

    @property
    def char_keys(self) -> frozenset[str]:
        """Every CJK character some piece looks up (first and second anchors): the text's set of these
        characters is all `hits` needs."""
        return self._all_chars

    def compile_all(self) -> None:
        """Compile every piece now (shared pieces of merged sets compile once)."""
        for part in self._parts:
            if part[2] is None:
                part[2] = re.compile(part[1])

    def unanchored(self) -> list[str]:
        """Fragments that always run (for tests and profiling)."""
        return [self._parts[i][1] for i in self._always]


def _alt(parts: list[str]) -> str:
    return "(?:" + "|".join(parts) + ")"


def _trace_patterns(spec: dict) -> dict[str, list[str]]:
    """Compose one language's trace cue groups from its vocabulary (lexicon.TRACE_LANGS)."""
    spaced = spec["space"]

    def w(parts: list[str]) -> str:
        body = parts[0] if len(parts) == 1 and "|" not in parts[0] else _alt(parts)
        return rf"\b{body}\b" if spaced else body

    def gap(n: int) -> str:
        return rf"\W+(?:\w+\W+){{0,{n}}}?" if spaced else rf"[^。！？!?.\n]{{0,{3 * n}}}?"

    obj = w(spec["jargon"] + spec["plain"])
    steps = w(spec["steps"] + spec["jargon"] + spec["plain"])
    hmod, hmid, slf = w(spec["hmod"]), w(spec["hmod_mid"]), w(spec["self"])
    vstrong, vrecon, vmed = w(spec["vstrong"]), w(spec["vrecon"]), w(spec["vmed"])

    def each(parts: list[str]) -> list[str]:  # one fragment per phrase: each gets its own anchor
        return [w([p]) if spaced else p for p in parts]

    pats: dict[str, list[str]] = {
        "object_jargon": each(spec["jargon"]),
        "object_plain": each(spec["plain"]),
        "hidden_self": [slf + gap(3) + hmod + gap(2) + obj, *each(spec["hide"])],
        # the model's own reasoning artefact, named: "your chain of thought", "你的思维链"
        "own_jargon": [w(spec["you"]) + gap(2) + w(spec["jargon"])] if spec.get("you") else [],
        "hidden_other": [hmod + gap(2) + obj],
        "hidden_mid": [hmid + gap(2) + obj],
        "expose": [vstrong + gap(6) + obj],
        "reconstruct": [vrecon + gap(6) + steps, *each(spec.get("pretend", []))],
        "verbatim": each(spec.get("verbatim", [])),
        "show": [vmed + gap(4) + obj],
        "given_answer": each(spec["answer"]),
        "answer_line": each(spec["answer_weak"]),
        "stepwise": each(spec["weak"]),
        "mode": each(spec["mode"]),
        "mode_self": each(spec["mode_self"]),
        "purpose": each(spec["purpose"]),
    }
    if spec["after"]:  # razonamiento interno, raisonnement caché
        pats["hidden_self"].append(slf + gap(2) + obj + gap(2) + hmod)
        pats["hidden_other"].append(obj + gap(2) + hmod)
        pats["hidden_mid"].append(obj + gap(2) + hmid)
    if spec["passive"]:
        pats["expose"].append(obj + gap(5) + w(spec["passive"]))
    if spec["sov"]:  # 把推理过程写出来, 推論過程を書き出して, Gedankengang offenlegen
        pats["expose"].append(obj + gap(4) + vstrong)
        pats["reconstruct"].append(steps + gap(4) + vrecon)
        pats["show"].append(obj + gap(3) + vmed)
    return pats


_ALL_PARTS: list[list] = []  # every piece of every cue set, by its id


def _ascii_prefilter() -> AsciiPrefilter:
    """One Hyperscan pre-filter over every piece that may match an ASCII prompt: the shared trace cues,
    rubric, censor, family, and the trace cues of the languages an ASCII prompt's bundle can hold (the
    stopword languages, all Latin-script; see `_latin_language`). Built on first use."""
    global _PREFILTER
    if _PREFILTER is None:
        sets = [_SHARED_CUES, _RUBRIC, _CENSOR, _FAMILY]
        for lang in _ASCII_LANGS:
            _trace_cues(("en",) if lang == "en" else ("en", lang))  # derives the language's cues
            sets.append(_lang_cues[lang])
        _PREFILTER = AsciiPrefilter([(p[5], p[1]) for cues in sets for p in cues._parts if p[6]])
    return _PREFILTER


_PREFILTER: AsciiPrefilter | None = None
_ASCII_LANGS = tuple(lexicon.STOPWORDS)  # the languages an ASCII prompt's cue bundle may hold


_TAG_OPEN, _TAG_CLOSE = r"[<《〈【\[]", r"[>》〉】\]]"
_SHARED_TRACE = {
    "tag": [rf"{_TAG_OPEN}\s*/?\s*(?:antml:)?{_alt(lexicon.TAG_NAMES)}(?:[\s_-][^<>\[\]\n]{{0,30}})?\s*{_TAG_CLOSE}"],
    "field": [rf"\b{_alt(lexicon.FIELD_NAMES)}[\"']\s*:"],  # a JSON/YAML key: "reasoning": ...
}
_TRACE_BY_LANG = {lang: _trace_patterns(spec) for lang, spec in lexicon.TRACE_LANGS.items()}
_lang_cues: dict[str, _Cues] = {}
_bundles: dict[tuple[str, ...], tuple[_Cues, re.Pattern[str], frozenset[str]]] = {}


def _trace_cues(bundle: tuple[str, ...]) -> tuple[_Cues, re.Pattern[str], frozenset[str]]:
    """Trace cues for a set of languages (with the shared tag cues), the class of characters that
    anchor any CJK cue for it, and every word key any cue set of the bundle looks up. Each language's
    cues are derived once, on first use: deriving all of them at import would cost a second of start-up."""
    got = _bundles.get(bundle)
    if got is None:
        parts = [_SHARED_CUES]
        for lang in bundle:
            cues = _lang_cues.get(lang)
            if cues is None:
                cues = _lang_cues[lang] = _Cues(_TRACE_BY_LANG[lang])
            parts.append(cues)
        merged = _Cues.merge(parts)
        chars = set().union(*(c.char_keys for c in (_RUBRIC, _CENSOR, _FAMILY, merged)))
        words = frozenset().union(*(c.word_keys for c in (_RUBRIC, _CENSOR, _FAMILY, merged)))
        got = _bundles[bundle] = (
            merged, re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]"), words)
    return got


_WORD = re.compile(rf"[^\W\d_{_CJK_RANGES}]+")  # Latin/Cyrillic/... words; CJK is keyed by character
_first4, _first5 = itemgetter(slice(0, 4)), itemgetter(slice(0, 5))
_SHARED_CUES = _Cues(_SHARED_TRACE)
_RUBRIC = _Cues(lexicon.RUBRIC)
_CENSOR = _Cues(lexicon.CENSOR)
_FAMILY = _Cues(lexicon.FAMILY_PATTERNS)
_FAMILY_PRIORITY = ("translation", "agentic", "coding", "math", "data", "reasoning", "writing", "qa", "chat")
_FAMILY_OF = {w: fam for fam, vocab in reversed(lexicon.FAMILY_WORDS.items()) for w in vocab}  # first listed wins
_FAMILY_VOCAB = frozenset(_FAMILY_OF)
_MATH_EXPR = re.compile(r"\d\s*[-+*/^=×÷]\s*\(?\d|\\(?:frac|int|sum|sqrt)")
# Without a backslash only _MATH_EXPR's first branch can match; it needs an operator followed by a digit,
# which a regex starting with a character class finds by a fast scan, where the branch itself is tried at
# every position: the branch runs only on the texts that pass (~1 in 9 of those with a digit).
_MATH_NUMERIC = re.compile(r"\d\s*[-+*/^=×÷]\s*\(?\d")
_MATH_OPERAND = re.compile(r"[-+*/^=×÷]\s*\(?\d")
_QUESTION_START = lexicon.words("what who when where why how is are does do can which should could would")

# Trace groups that need a reasoning object somewhere in the text: skipped when there is none.
_NEEDS_OBJECT = frozenset({"hidden_self", "hidden_other", "hidden_mid", "expose", "show"})
_OBJECT_FREE = frozenset(lexicon.GROUPS["trace"]) - _NEEDS_OBJECT


# ----------------------------------------------------------------------------------------------- scoring
def _score(signal: str, hits: list[str], caps: tuple[tuple[float, float], ...]) -> float:
    """1 - exp(-sum of weights), capped by how many independent units of evidence matched."""
    if not hits:
        return 0.0
    table = lexicon.GROUPS[signal]
    if len(hits) > 1:
        present = set(hits)
        for ranked in lexicon.EXCLUSIVE[signal]:
            strongest = next((g for g in ranked if g in present), None)
            if strongest is not None:
                present.difference_update(ranked)
                present.add(strongest)
        hits = [g for g in hits if g in present]  # keep the fixed order: float sums must not vary
    z = units = mod_z = mod_units = 0.0
    for g in hits:
        weight, unit, modifier = table[g]
        if modifier:
            mod_z += weight
            mod_units += unit
        else:
            z += weight
            units += unit
    if units >= 0.5:
        z += mod_z
        units += mod_units
    s = 1.0 - math.exp(-z)
    for below, cap in caps:
        if units < below:
            s = min(s, cap)
            break
    return round(s, 4)


# ---------------------------------------------------------------------------------------------- language
_SCRIPTS = re.compile(
    r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+)|([\u3040-\u30ff]+)|([\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]+)"
    r"|([\u0400-\u04ff]+)|([a-zß-öø-ɏ]+)"
)
_SCRIPT_SAMPLE = 400  # chars: enough to tell the script, bounded for long prompts
_UKR_ONLY = re.compile(r"[іїєґ]")
_LATIN_END = "\u0250"  # words that sort below this start with a Latin letter
_NON_ASCII_LETTER = re.compile(r"[\u00c0-\u024f\u0370-\u04ff]")  # accented Latin, Greek, Cyrillic


def _script(cue: str) -> tuple[str, bool, tuple[str, ...]]:
    """(script language or "", CJK-dominant?, languages whose cue lists to load) for non-ASCII text.

    Counts characters per script in runs (re pays per match, not per character). A CJK character
    carries about as much as a word, so it weighs like three Latin letters.
    """
    sample = cue[:_SCRIPT_SAMPLE]
    han = kana = hangul = cyr = latin = 0
    for h, k, g, c, lat in _SCRIPTS.findall(sample):
        han, kana, hangul, cyr, latin = han + len(h), kana + len(k), hangul + len(g), cyr + len(c), latin + len(lat)
    bundle = ["en"] + [lang for lang, n in (("zh", han), ("ja", kana), ("ko", hangul), ("ru", cyr)) if n]
    if kana >= 2 and 3 * (kana + han) >= latin:
        if "zh" in bundle:
            bundle.remove("zh")  # kanji would wake the Chinese lists on every Japanese prompt
        return "ja", True, tuple(bundle)
    if hangul >= 2 and 3 * hangul >= latin:
        return "ko", True, tuple(bundle)
    if han >= 2 and 3 * han >= latin:
        return "zh", True, tuple(bundle)
    if cyr >= 4 and cyr >= latin:
        return ("other" if _UKR_ONLY.search(sample) else "ru"), False, tuple(bundle)
    return "", False, tuple(bundle)


_SECOND_LANGUAGE_VOTES = 2  # stopwords that bring a further Latin-script language's cue lists along


_STOP_LANGS = tuple(lexicon.STOPWORDS)
_ANY_STOP = frozenset().union(*lexicon.STOPWORDS.values())
# Each stopword's votes packed in one int, _VOTE_BITS bits per language in _STOP_LANGS' order (English, the
# first, lowest): the sum over the voters holds every language's count (a field cannot overflow: no language
# has 2**_VOTE_BITS stopwords).
_VOTE_BITS = 16
_VOTE_MASK = (1 << _VOTE_BITS) - 1
assert _STOP_LANGS[0] == "en" and all(len(stop) <= _VOTE_MASK for stop in lexicon.STOPWORDS.values())
_STOP_VOTES = {w: sum(1 << (_VOTE_BITS * i) for i, stop in enumerate(lexicon.STOPWORDS.values()) if w in stop)
               for w in _ANY_STOP}


def _latin_language(ws: Collection[str], bundle: tuple[str, ...],
                    latin: bool | None = None) -> tuple[str, tuple[str, ...]]:
    """Latin-script language by stopword votes over the set of words (`ws`: the words, repeats count
    once); English when nothing votes. Every other language with a few votes joins the bundle too: a
    campaign writes the problem in one language and the instruction in another, and the instruction is
    what the cues must read. `latin`: whether a word starts with a Latin letter, when the caller knows
    (every word of an ASCII text does)."""
    if latin is None:
        latin = bool(ws) and min(ws) < _LATIN_END
    best, best_n = "en" if latin else "other", 0
    # the count per language of its stopwords among the words (as len(set(ws) & stop) for each), packed
    packed = sum(map(_STOP_VOTES.__getitem__, _ANY_STOP.intersection(ws)))
    if not packed:  # no language has a vote: nothing below would change
        return best, bundle
    if packed <= _VOTE_MASK:  # English (the first language) votes alone: it wins, and brings no language
        return "en", bundle
    also = []
    for i, cand in enumerate(_STOP_LANGS):
        n = (packed >> (_VOTE_BITS * i)) & _VOTE_MASK
        if n > best_n:
            best, best_n = cand, n
        if n >= _SECOND_LANGUAGE_VOTES and cand != "en" and cand not in bundle:
            also.append(cand)
    if best not in ("en", "other") and best not in bundle and best not in also:
        also.append(best)
    return best, (*bundle, *also) if also else bundle


# ------------------------------------------------------------------------------------------------- family
def _math(cue: str, digits: bool) -> bool:
    """("\\" in cue or digits) and _MATH_EXPR.search(cue), `digits` telling whether cue holds an ASCII digit."""
    if "\\" in cue:
        return _MATH_EXPR.search(cue) is not None
    return digits and _MATH_OPERAND.search(cue) is not None and _MATH_NUMERIC.search(cue) is not None


def _has_digit(text: str, ascii_only: bool) -> bool:
    """Does `text` hold an ASCII digit? On ASCII text bytes.translate deleting them answers faster than a
    regex search."""
    if ascii_only:
        return len(text.encode("ascii").translate(None, b"0123456789")) < len(text)
    return _DIGIT.search(text) is not None


def _family(cue: str, words: list[str], family_hits: list[str], rubric: float, has_code: bool,
            tools: int | None, images: int | None, flag_min: float, digits: bool) -> str:
    """`digits`: whether `cue` holds an ASCII digit."""
    if rubric >= flag_min:
        return "grading"
    vocab = _FAMILY_VOCAB.intersection(words)
    if not vocab and not family_hits:
        # every count is still 0 (most prompts): the vote below, with only code (2), math (1) and a
        # question (1) left to count, in the priority order
        if tools:
            return "agentic"
        if has_code:
            return "coding"
        if _math(cue, digits):
            return "math"
        if cue.endswith("?") or (words and words[0] in _QUESTION_START):
            return "qa"
        return "other"
    counts = dict.fromkeys(_FAMILY_PRIORITY, 0)
    for word in vocab:
        counts[_FAMILY_OF[word]] += 1
    for fam in family_hits:
        counts[fam] += 2
    if counts["translation"]:
        return "translation"
    if tools:  # tool definitions sent: an agent turn, whatever the text is about
        return "agentic"
    if has_code:
        counts["coding"] += 2
    if images and counts["agentic"]:
        counts["agentic"] += 2
    if _math(cue, digits):
        counts["math"] += 1
    if cue.endswith("?") or (words and words[0] in _QUESTION_START):
        counts["qa"] += 1
    best, best_n = "other", 0
    for fam in _FAMILY_PRIORITY:  # ties go to the earlier family
        if counts[fam] > best_n:
            best, best_n = fam, counts[fam]
    return best


# ---------------------------------------------------------------------------------------------- skeleton
_MINHASH_FEATURES = 64  # MinHash reads at most this many shingles (a set sketch: the opening and the close)
# Template keys of the skeletons seen last, least recently used out first: the same skeleton recurs (a
# template filled with other slot values, a campaign's prompt), 33 % of the default day's prompts at 16k
# entries. Keyed by the 64-bit skeleton hash, the shingling (CJK or words) and the knobs that shape the
# keys; the skeleton itself determines the shingles, so a hit gives what computing them would (two
# skeletons sharing a 64-bit BLAKE2b hash would share keys, as they already share their skeleton hash).
_SKETCHES: OrderedDict[tuple, tuple[str, ...]] = OrderedDict()
_SKETCHES_MAX = 1 << 14
_MINHASH_HEAD = _MINHASH_FEATURES * 3 // 4
_MINHASH_TAIL = _MINHASH_FEATURES // 4
_CODE_FENCE = re.compile(r"(?:```|~~~)[\s\S]*?(?:```|~~~|\Z)")
_INLINE_CODE = re.compile(r"`[^`\n]{1,300}`")
_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HEXISH = re.compile(r"\b(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{8,})\b")
_DQUOTED = re.compile(r"\"[^\"]{1,600}\"|“[^”]{1,600}”|«[^»]{1,600}»|「[^」]{1,600}」|『[^』]{1,600}』|‘[^’\n]{1,300}’")
_SQUOTED = re.compile(r"'(?<!\w')[^'\n]{1,300}'(?!\w)")  # not an apostrophe: no letter right before it
# ASCII digits: NFKC folded the full-width ones. Written [0-9][0-9]* rather than [0-9]+ (the same matches):
# a regex that starts with a character class is searched by a fast scan for that class, one that starts
# with a repeat is tried at every position (about twice the time on the default day's prompts).
_NUMBER = re.compile(r"[0-9][0-9]*(?:[.,:/][0-9]+)*")
_DIGIT = re.compile(r"[0-9]")
# ASCII fast paths: translate + split is ~3x faster than re.findall for words and tokens, and
# bytes.translate (a 256-byte table) on the text's ASCII bytes about twice as fast as str.translate (a
# dict). _ASCII_NONLETTER is the str table that says what _BYTES_NONLETTER does (tests use it).
_ASCII_NONLETTER = str.maketrans({c: " " for c in map(chr, range(128)) if not c.isalpha()})
_BYTES_NONWORD = bytes(b if b < 128 and (chr(b).isalnum() or b == 0x5F) else 0x20 for b in range(256))
_BYTES_NONLETTER = bytes(b if b < 128 and chr(b).isalpha() else 0x20 for b in range(256))
# A capitalised word right after a lowercase word is a cheap proxy for a proper name (a slot). Not after
# punctuation ("Please, Summarize" is no name), and not all-caps ("JSON" and shouted text stay words).
_UPPER, _LOWER = "A-ZÀ-ÖØ-ÞА-ЯЁ", "a-zß-öø-ÿа-яё"
_NAME = re.compile(rf" (?<=[{_LOWER}0-9] )[{_UPPER}][{_LOWER}][\w'’-]*(?: [{_UPPER}][{_LOWER}][\w'’-]*)*")
_NONWORD = re.compile(r"\W+")
_HEX_PROBE = bytes(0x78 if chr(b) in "0123456789abcdefABCDEF" else 0x20 for b in range(256))  # on ASCII bytes
_DQUOTE_CHARS = frozenset("\"“«「『‘")


def _hexish(m: re.Match[str]) -> str:
    s = m.group()
    if s[:2] in ("0x", "0X"):
        return " _n "
    has_digit = has_alpha = False
    for ch in s:
        if ch.isdigit():
            has_digit = True
        else:
            has_alpha = True
    return " _n " if has_digit and has_alpha else s


_ASCII_RUN = re.compile(r"[0-9a-z_][0-9a-z_]*")  # = [0-9a-z_]+, a leading class: see _NUMBER
_SYNONYMS, _FILLER = lexicon.SYNONYMS, lexicon.FILLER
# A token's word in the skeleton, for the tokens that change: its synonym group's first word, or "" when
# that (or the token) is filler and is dropped; one look-up per token instead of two
_SKELETON_WORD = {w: "" if _SYNONYMS.get(w, w) in _FILLER else _SYNONYMS.get(w, w) for w in (*_SYNONYMS, *_FILLER)}


def _word_char(m: re.Match[str]) -> str:
    """A Latin word inside CJK prose as one private-use character, so it weighs like one CJK character."""
    return chr(0xE000 + zlib.crc32(m.group().encode("ascii")) % 0x1900)


def _mask(s: str, lang: str, ascii_only: bool, digits: bool) -> str:
    """Replace slot values (ids, quotes, numbers, names) with placeholders; lowercase. `digits`: whether
    `s` holds an ASCII digit."""
    if digits:
        # presence tests run on an ASCII projection: bytes.translate + `in` scan far faster than a regex
        probe = s.encode("ascii") if ascii_only else s.encode("ascii", "replace")
        if b"xxxxxxxx" in probe.translate(_HEX_PROBE):
            if "-" in s:
                s = _UUID.sub(" _n ", s)
            s = _HEXISH.sub(_hexish, s)
        s = _NUMBER.sub("0", s)
    if ('"' in s) if ascii_only else not _DQUOTE_CHARS.isdisjoint(s):  # '"' is the only ASCII one
        s = _DQUOTED.sub(" _q ", s)
    if "'" in s:
        s = _SQUOTED.sub(" _q ", s)
    if lang != "de":  # German capitalises every noun; masking them would erase the text
        s = _NAME.sub(" _n", s)
    return s.lower()


def _skeleton(masked: str, ascii_only: bool, cjk: bool, max_shingles: int) -> tuple[str, list[str] | str, int]:
    """(skeleton text, what its shingles are made of, token count). Filler words are dropped and common
    synonyms folded (lexicon.FILLER, SYNONYMS) so that light paraphrase keeps the skeleton.

    Words are tokens and shingles are pairs of consecutive words: the second item is the list of tokens.
    In CJK-dominant text (no word separators) shingles are character bigrams: the second item is the
    text with one character per CJK character and per Latin word, and the token count counts those
    characters. A long prompt keeps its opening 3/4 and its close 1/4 of max_shingles.
    """
    tokens = (masked.encode("ascii").translate(_BYTES_NONWORD).decode("ascii") if ascii_only
              else _NONWORD.sub(" ", masked)).split()
    tokens = list(filter(None, map(_SKELETON_WORD.get, tokens, tokens)))  # synonyms folded, filler dropped
    skeleton = " ".join(tokens)
    if cjk:
        for filler in lexicon.CJK_FILLER:
            if filler in skeleton:
                skeleton = skeleton.replace(filler, "")
        # one character per CJK character and per Latin word, then character bigrams
        compact = _ASCII_RUN.sub(_word_char, skeleton).replace(" ", "")
        if len(compact) > max_shingles + 1:  # long prompts: the opening and closing carry the template
            tail = max_shingles // 4
            compact = compact[: max_shingles - tail] + compact[-tail - 1 :]
        return skeleton, compact, len(compact)  # the token count of CJK text counts the characters kept
    if len(tokens) > max_shingles + 1:
        tail = max_shingles // 4
        return skeleton, tokens[: max_shingles - tail] + tokens[-tail - 1 :], len(tokens)
    return skeleton, tokens, len(tokens)


def _shingles(part: list[str] | str) -> list:
    """The shingles MinHash reads: of at most _MINHASH_FEATURES + 1 tokens (or CJK characters) all pairs
    (a lone token is its own shingle), of more the first _MINHASH_HEAD and the last _MINHASH_TAIL."""
    pairs = map(add, part, part[1:]) if type(part) is str else pairwise(part)
    if len(part) - 1 > _MINHASH_FEATURES:
        head, end = part[: _MINHASH_HEAD + 1], part[-_MINHASH_TAIL - 1 :]
        if type(part) is str:
            return [*map(add, head, head[1:]), *map(add, end, end[1:])]
        return [*pairwise(head), *pairwise(end)]
    return list(pairs) if len(part) > 1 else [part] if type(part) is str else part


_CJK_PUNCT = (("，", ","), ("？", "?"), ("！", "!"), ("：", ":"), ("；", ";"), ("（", "("), ("）", ")"))


def _nfkc(text: str) -> str:
    """NFKC (full-width forms, ligatures, compatibility characters). CJK prose is un-normalised mostly
    because of full-width punctuation, which a few str.replace calls fix ~50x faster than normalize()."""
    for full, half in _CJK_PUNCT:
        if full in text:
            text = text.replace(full, half)
    if unicodedata.is_normalized("NFKC", text):
        return text
    return unicodedata.normalize("NFKC", text)




# the skeleton hash's BLAKE2b state before any data: copying it is ~3x faster than constructing one with
# its parameters (keyword parsing), and gives the same digests
_SKELETON_BLAKE2B = hashlib.blake2b(digest_size=8, person=b"dg-skeleton")


def _digest(text: str) -> str:
    h = _SKELETON_BLAKE2B.copy()
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


# -------------------------------------------------------------------------------------------------- API
class _Text(NamedTuple):
    """A prompt prepared for the cue and skeleton stages (never leaves this module)."""

    text: str  # NFKC, code/e-mail/URL masked, whitespace folded; original case (names are found by it)
    cue: str  # text, lowercased
    ascii_only: bool
    cjk: bool  # CJK-dominant: shingled by characters
    words: list[str]  # Latin/Cyrillic/... words of cue (not CJK)
    word_keys: set[str]  # their first four and first five letters, which the cue anchors look up (not for
    # ASCII text: the Hyperscan pre-filter replaces the anchors there)
    chars: set[str]  # CJK characters of cue that anchor some cue
    lang: str
    bundle: tuple[str, ...]  # languages whose trace cue lists apply
    has_code: bool


_NO_KEYS: frozenset[str] = frozenset()  # an ASCII text's anchor keys: the pre-filter replaces them


def _prepare(prompt: str, max_chars: int) -> _Text:
    text = prompt[:max_chars]
    ascii_only = text.isascii()
    if not ascii_only and not unicodedata.is_normalized("NFKC", text):
        text = _nfkc(text)
    has_code = "`" in text or "~~~" in text
    if has_code:
        text = _INLINE_CODE.sub(" _c ", _CODE_FENCE.sub(" _c ", text))
    if "@" in text:
        text = _EMAIL.sub(" _n ", text)
    if "://" in text or "www." in text:
        text = _URL.sub(" _n ", text)
    text = " ".join(text.split())  # after code masking (fences need their newlines): fold whitespace
    cue = text.lower()
    if ascii_only:
        words = cue.encode("ascii").translate(_BYTES_NONLETTER).decode("ascii").split()
        lang, bundle = _latin_language(words, ("en",), bool(words))  # ASCII words: Latin letters only
        return _Text(text, cue, True, False, words, _NO_KEYS, _NO_KEYS, lang, bundle, has_code)
    script_lang, cjk, bundle = _script(cue)
    if cjk and not _NON_ASCII_LETTER.search(cue):
        # Latin words in CJK prose are ASCII: project instead of scanning every CJK character
        words = cue.encode("ascii", "replace").translate(_BYTES_NONLETTER).decode("ascii").split()
    else:
        words = _WORD.findall(cue)
    chars = set(_trace_cues(bundle)[1].findall(cue))
    unique = set(words)
    lang, bundle = (script_lang, bundle) if script_lang else _latin_language(unique, bundle)
    keys = set(map(_first4, unique))
    keys.update(map(_first5, unique))
    return _Text(text, cue, False, cjk, words, keys, chars, lang, bundle, has_code)


def analyse(prompt: str | None, system_prompt_hash: str | None, tools: int | None, images: int | None,
            cfg: ContentConfig) -> ContentFeatures:
    """Features of one gateway request's prompt. Never raises on a str; never returns prompt text.

    `system_prompt_hash` is accepted for the API's sake: the system prompt's identity is a cross-account
    aggregate, not a content cue, so it does not change any feature here.
    """
    if not prompt:
        return EMPTY
    t = _prepare(prompt, cfg.max_chars)
    ids = (_PREFILTER or _ascii_prefilter()).scan(t.cue) if t.ascii_only else None
    return ContentFeatures(*_fields(prompt, t, _cue_hits(t, ids, cfg), tools, images, cfg, None))


# The sketches a batch still needs: sketch-cache key -> (what the skeleton's shingles are made of, the
# field lists waiting for its template keys)
_Pending = dict[tuple, tuple[list[str] | str, list[list]]]


_Hits = tuple[Collection[str], Collection[str], Collection[str], float, Collection[str]]


def _cue_hits(t: _Text, ids: list[int] | None, cfg: ContentConfig) -> _Hits:
    """(trace, rubric and censor groups matched, the rubric score, family groups matched) of a prepared text
    `t` (`_prepare`), given for an ASCII text the ids of the cue pieces the Hyperscan pre-filter reported on
    `t.cue` (`ids`; None for other text). The family groups are looked for only below the rubric flag: a
    flagged rubric decides the family."""
    cue, ascii_only = t.cue, t.ascii_only
    trace_cues, _, cue_words = _trace_cues(t.bundle)
    if ascii_only:  # one Hyperscan scan named the pieces that may match; `re` decides
        if not ids:  # no piece may match (~4 in 5 ASCII prompts): no group of any cue set hits
            return (), (), (), 0.0, ()
        trace_hits = trace_cues.hits_among(cue, ids, _NEEDS_OBJECT)
        if "object_jargon" in trace_hits or "object_plain" in trace_hits:
            trace_hits += trace_cues.hits_among(cue, ids, _OBJECT_FREE)
        rubric_hits = _RUBRIC.hits_among(cue, ids)
        censor_hits = _CENSOR.hits_among(cue, ids)
        rubric = _score("rubric", rubric_hits, cfg.rubric_caps)
        family_hits = _FAMILY.hits_among(cue, ids) if rubric < cfg.flag_min else []
        return trace_hits, rubric_hits, censor_hits, rubric, family_hits
    chars = t.chars
    word_keys = t.word_keys & cue_words  # the few keys any cue looks up: every filter below gets cheaper
    trace_hits = trace_cues.hits(cue, word_keys, chars, _NEEDS_OBJECT)
    if "object_jargon" in trace_hits or "object_plain" in trace_hits:
        trace_hits += trace_cues.hits(cue, word_keys, chars, _OBJECT_FREE)
    rubric_hits = _RUBRIC.hits(cue, word_keys, chars)
    censor_hits = _CENSOR.hits(cue, word_keys, chars)
    rubric = _score("rubric", rubric_hits, cfg.rubric_caps)
    family_hits = _FAMILY.hits(cue, word_keys, chars) if rubric < cfg.flag_min else []
    return trace_hits, rubric_hits, censor_hits, rubric, family_hits


def _fields(prompt: str, t: _Text, hits: _Hits, tools: int | None, images: int | None, cfg: ContentConfig,
            pending: _Pending | None) -> list:
    """ContentFeatures' fields for a non-empty prompt, in order, given its prepared text `t` (`_prepare`)
    and its cue hits (`_cue_hits`). The template keys (item 1) come from the sketch cache or are computed
    here; with `pending`, a cache miss is left to the caller instead (item 1 stays None and the list is
    filed under its sketch key in `pending`)."""
    text, cue, ascii_only, cjk, words, _, _, lang, _, has_code = t
    trace_hits, rubric_hits, censor_hits, rubric, family_hits = hits

    digits = _has_digit(text, ascii_only)  # the lowercase `cue` has the same ASCII digits
    skeleton, part, n_tokens = _skeleton(_mask(text, lang, ascii_only, digits), ascii_only, cjk, cfg.max_shingles)
    keys: tuple[str, ...] | None = ()
    sketch = None
    if n_tokens:
        skeleton_hash = _digest(skeleton)
        if n_tokens >= cfg.min_template_tokens and cfg.minhash_bands:
            sketch = (skeleton_hash, cjk, cfg.max_shingles, cfg.minhash_bands, cfg.minhash_rows)
            keys = _SKETCHES.get(sketch)
            if keys is not None:
                _SKETCHES.move_to_end(sketch)
            elif pending is None:
                keys = minhash_keys(minhash_of(hashed(_shingles(part))), cfg.minhash_bands, cfg.minhash_rows)
                _remember(sketch, keys)
    else:
        skeleton_hash = ""

    fields = [
        skeleton_hash,
        keys,
        _score("trace", trace_hits, cfg.trace_caps) if trace_hits else 0.0,  # as _score gives for no hit
        rubric,
        _score("censor", censor_hits, cfg.censor_caps) if censor_hits else 0.0,
        _family(cue, words, family_hits, rubric, has_code, tools, images, cfg.flag_min, digits),
        lang,
        len(prompt).bit_length(),
        n_tokens,
        (*map(_TRACE_CUE.__getitem__, trace_hits), *map(_RUBRIC_CUE.__getitem__, rubric_hits),
         *map(_CENSOR_CUE.__getitem__, censor_hits)) if trace_hits or rubric_hits or censor_hits else (),
    ]
    if keys is None:
        waiting = pending.get(sketch)
        if waiting is None:
            pending[sketch] = (part, [fields])
        else:  # the same skeleton earlier in the batch: computed once
            waiting[1].append(fields)
    return fields


# the names ContentFeatures.cues gives the groups ("trace.hidden_self")
_TRACE_CUE, _RUBRIC_CUE, _CENSOR_CUE = (
    {g: f"{signal}.{g}" for g in lexicon.GROUPS[signal]} for signal in ("trace", "rubric", "censor"))


def _remember(sketch: tuple, keys: tuple[str, ...]) -> None:
    _SKETCHES[sketch] = keys
    if len(_SKETCHES) > _SKETCHES_MAX:
        _SKETCHES.popitem(last=False)


ContentInput = tuple[str | None, str | None, int | None, int | None]  # prompt, system prompt hash, tools, images


def analyse_batch(items: list[ContentInput], cfg: ContentConfig) -> list[ContentFeatures]:
    """`analyse` over many requests, in order: the unit of work a driver may hand to another process
    (the analysis is pure, so where it runs does not change a feature). The template keys the sketch
    cache lacks are computed together, once per skeleton, in a few numpy calls for the whole batch
    (minhash.minhash_keys_many) instead of a few per prompt: the same keys."""
    pending: _Pending = {}
    # In phases over the whole batch rather than prompt by prompt: every prompt prepared, then every ASCII
    # one scanned by the pre-filter, then every prompt's cues confirmed, then the rest. The Hyperscan
    # database is megabytes: scanned between one prompt's other work and the next one's, it is fetched
    # back into the CPU caches on each scan; scanned back to back, it stays there (and so, less so, do the
    # cue regexes and the skeleton's tables). The same calls on the same texts: the same features.
    max_chars = cfg.max_chars
    texts = [_prepare(p, max_chars) if p else None for p, _, _, _ in items]
    scan = (_PREFILTER or _ascii_prefilter()).scan
    ids = [scan(t.cue) if t is not None and t.ascii_only else None for t in texts]
    hits = [_cue_hits(t, i, cfg) if t is not None else None for t, i in zip(texts, ids, strict=True)]
    rows = [_fields(p, t, h, tools, images, cfg, pending) if p else None
            for (p, _, tools, images), t, h in zip(items, texts, hits, strict=True)]
    if pending:
        shingles = [_shingles(part) for part, _ in pending.values()]
        keys = minhash_keys_many(list(chain.from_iterable(shingles)), list(map(len, shingles)), cfg.minhash_bands,
                                 cfg.minhash_rows)
        for sketch, (_, waiting), k in zip(pending, pending.values(), keys, strict=True):
            for fields in waiting:
                fields[1] = k
            _remember(sketch, k)
    return [EMPTY if f is None else ContentFeatures(*f) for f in rows]


def flagged(features: ContentFeatures, cfg: ContentConfig) -> tuple[str, ...]:
    """Names of the cue scores at or above cfg.flag_min, in a fixed order."""
    return tuple(name for name in SIGNALS if getattr(features, name) >= cfg.flag_min)


def warm_up(compile_all: bool = False) -> None:
    """Derive every language's cue pre-filters now rather than on the first prompt in that language
    (about a second in all): for workers that should not stall on a first request. `compile_all` also
    compiles every cue piece's regex (~2,600 pieces, ~3 s), which `hits` otherwise compiles on its first
    use: a worker that starts under load would spend those seconds on its first live batches."""
    for lang in lexicon.TRACE_LANGS:
        _trace_cues(("en",) if lang == "en" else ("en", lang))
    _ascii_prefilter()
    if compile_all:
        for _ in compile_steps():
            pass


def compile_steps() -> Iterator[None]:
    """`warm_up(compile_all=True)`'s regex compiling, one cue set per step (tens to hundreds of
    milliseconds each), for a driver that interleaves it with its work instead of waiting for all of it
    before its first batch. Compiling is what `hits` would do on a piece's first use; the outcome is the
    same whenever it happens."""
    for cues in (_SHARED_CUES, _RUBRIC, _CENSOR, _FAMILY, *_lang_cues.values()):
        cues.compile_all()
        yield
