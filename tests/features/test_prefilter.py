"""The Hyperscan pre-filter of ASCII prompts (app/features/prefilter.py): every cue piece that matches in
`re` is reported by the scan, so the groups found through it are the groups the anchor look-ups find;
and its serialized database is stored, loaded and rebuilt as it should be."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.features import content, lexicon
from app.features.content import ContentConfig, _prepare
from app.features.prefilter import AsciiPrefilter, loosen
from tests.features.content_corpus import PARAPHRASE_OPS, STANDALONE, TEMPLATES, instances, paraphrase
from tests.features.test_content_properties import SNIPPETS

ASCII_SNIPPETS = [s for s in SNIPPETS if s.isascii()]
# words and fragments from every Latin-script cue list, so random text reaches the pieces
LEXICON_WORDS = sorted({w for spec in lexicon.TRACE_LANGS.values() if spec["space"] for key in
                        ("jargon", "plain", "hmod", "self", "vstrong", "vrecon", "vmed", "steps")
                        for frag in spec.get(key, []) for w in re.findall(r"[a-z]{3,}", frag)})


def _anchor_keys(cue: str) -> set[str]:
    words = set(cue.translate(content._ASCII_NONLETTER).split())
    return {w[:4] for w in words} | {w[:5] for w in words}


def _both_ways(prompt: str) -> None:
    """Trace (both passes), rubric, censor and family groups: anchors against the pre-filter."""
    t = _prepare(prompt, ContentConfig().max_chars)
    if not t.ascii_only:
        return
    cue = t.cue
    trace, _, cue_words = content._trace_cues(t.bundle)
    keys = _anchor_keys(cue) & cue_words
    ids = content._ascii_prefilter().scan(cue)
    for cues in (trace, content._RUBRIC, content._CENSOR, content._FAMILY):
        for skip in (frozenset(), content._NEEDS_OBJECT, content._OBJECT_FREE):
            assert cues.hits_among(cue, ids, skip) == cues.hits(cue, keys, set(), skip), (prompt, skip)


def _covered_parts() -> list[list]:
    """The pieces an ASCII prompt's cue look-ups can consult: the shared trace cues, rubric, censor, family and
    the trace cues of the stopword languages. Not every piece of _ALL_PARTS: a test that compiled every
    language before (warm_up(compile_all=True)) added pieces of languages no ASCII bundle holds."""
    content._ascii_prefilter()  # derives the stopword languages' cues
    sets = [content._SHARED_CUES, content._RUBRIC, content._CENSOR, content._FAMILY,
            *(content._lang_cues[lang] for lang in content._ASCII_LANGS)]
    return [p for cues in sets for p in cues._parts]


def _every_match_reported(prompt: str) -> None:
    t = _prepare(prompt, ContentConfig().max_chars)
    ids = set(content._ascii_prefilter().scan(t.cue))
    for part in _covered_parts():
        if part[6]:
            rx = _compiled.get(part[1]) or _compiled.setdefault(part[1], re.compile(part[1]))
            if rx.search(t.cue):
                assert part[5] in ids, (prompt, part[1])


_compiled: dict[str, re.Pattern[str]] = {}


def _corpus() -> list[str]:
    rng = random.Random(3)
    out = [p for p in STANDALONE if p.isascii()]
    for i, template in enumerate(TEMPLATES):
        for p in instances(template, 3, i, vary_topic=True):
            if p.isascii():
                out += [p, *(paraphrase(p, rng, op) for op in PARAPHRASE_OPS)]
    return out


def test_the_languages_of_ascii_bundles_are_covered():
    # _latin_language only ever adds stopword languages to an ASCII prompt's bundle
    assert set(lexicon.STOPWORDS) == set(content._ASCII_LANGS)
    for lang in lexicon.STOPWORDS:
        assert lexicon.TRACE_LANGS[lang]["space"]


def test_the_corpus_finds_the_same_groups_and_reports_every_match():
    corpus = _corpus()
    assert len(corpus) > 300
    for prompt in corpus:
        _both_ways(prompt)
    for prompt in corpus[::7]:
        _every_match_reported(prompt)


texts = st.lists(st.one_of(st.sampled_from(ASCII_SNIPPETS + LEXICON_WORDS),
                           st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)),
                 max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_random_ascii_text_finds_the_same_groups(prompt: str) -> None:
    _both_ways(prompt)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_random_ascii_text_reports_every_matching_piece(prompt: str) -> None:
    _every_match_reported(prompt)


def test_loosen_only_widens_word_gaps():
    src = r"\bshow\b\W+(?:\w+\W+){0,4}?\b(?:reasoning|thoughts)\b"
    assert loosen(src) == r"\bshow\b.*\b(?:reasoning|thoughts)\b"
    for text in ("show me all of your reasoning", "show reasoning", "show, then, thoughts"):
        assert re.search(src, text) and re.search(loosen(src), text)


# ------------------------------------------------------------------------------------------ the stored database
PIECES = [(0, r"c(?<!\wc)hain[\s-]*of[\s-]*thoughts?\b"), (1, r"\bscratch[\s-]?pads?\b"),
          (7, r"\bshow\b\W+(?:\w+\W+){0,4}?\breasoning\b"), (9, r"\bфы\b(?<=ы)")]


def test_database_is_stored_then_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("DG_CUE_CACHE_DIR", str(tmp_path))
    first = AsciiPrefilter(PIECES)
    stored = sorted(p.name for p in tmp_path.iterdir())
    assert len(stored) == 2 and stored[0].endswith(".always") and stored[1].endswith(".hsdb")

    def no_compile(*args):
        raise AssertionError("compiled although a stored database exists")

    monkeypatch.setattr(AsciiPrefilter, "_compile", staticmethod(no_compile))
    second = AsciiPrefilter(PIECES)
    for text in ("please show me your full reasoning", "a scratchpad", "chain of thought", "nothing here"):
        assert sorted(first.scan(text)) == sorted(second.scan(text))
    assert {1, 7} <= set(second.scan("please show me your full reasoning and a scratch pad"))


def test_another_lexicon_compiles_anew_and_a_damaged_file_is_rebuilt(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DG_CUE_CACHE_DIR", str(tmp_path))
    AsciiPrefilter(PIECES)
    AsciiPrefilter(PIECES[:2])  # another set of pieces: another key
    assert len(list(tmp_path.glob("*.hsdb"))) == 2
    for f in tmp_path.glob("*.hsdb"):
        f.write_bytes(b"not a database")
    pre = AsciiPrefilter(PIECES)
    assert "compiling anew" in caplog.text
    assert 1 in pre.scan("my scratchpad")


def test_cache_off_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DG_CUE_CACHE_DIR", "off")
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    assert 0 in AsciiPrefilter(PIECES).scan("chain-of-thought")
    assert not list(tmp_path.rglob("*"))


@pytest.mark.parametrize("text", ["", "x", "chain of thought " * 300])
def test_scan_reports_each_piece_once(text, tmp_path, monkeypatch):
    monkeypatch.setenv("DG_CUE_CACHE_DIR", str(tmp_path))
    ids = AsciiPrefilter(PIECES).scan(text)
    assert len(ids) == len(set(ids))
