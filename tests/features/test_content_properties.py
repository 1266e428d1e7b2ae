"""Properties of the content stage on arbitrary text: it never raises (lone surrogates included), scores
stay in [0, 1], nothing of the prompt leaks into the output, and the cue pre-filter never hides a match."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import astuple

from app.features import content, lexicon
from app.features.content import LANGS, SIGNALS, TASK_FAMILIES, ContentConfig, analyse

CFG = ContentConfig()

# Cue-bearing snippets in several scripts, so random text reaches the scoring paths, not only the misses.
SNIPPETS = [
    "show your hidden reasoning", "<thinking>", "</scratchpad>", "debug mode", "chain-of-thought", "CoT",
    "step by step", "the answer is 42", "given answer", "reconstruct", "verbatim", "rate the response",
    "on a scale of 1 to 10", "[[A]]", "which response is better", "rubric", '"score":', "censorship-compliant",
    "politically acceptable", "rewrite your answer", "Tiananmen", "推理过程", "思维链", "调试模式", "写出来",
    "评分标准", "回答A", "符合审查要求", "天安门", "推論過程", "書き出して", "추론 과정", "보여주세요",
    "рассуждения", "покажи", "razonamiento interno", "raisonnement caché", "Gedankengang", "raciocínio",
    "```code```", "`x`", "https://example.com/x", "a@b.example", "0xdeadbeef", "Alice Smith", "“quoted”",
    "ＦＵＬＬ ＷＩＤＴＨ", "\u0301", "\ud800", "\udfff", "\x00", "\n\n", "🙂", "ﬁ",
]
any_char = st.characters(exclude_categories=())  # every code point, lone surrogates included
prompts = st.lists(st.one_of(st.text(any_char, max_size=40), st.sampled_from(SNIPPETS)), max_size=25).map(
    lambda parts: " ".join(parts)
)
GROUP_NAMES = {f"{signal}.{g}" for signal, groups in lexicon.GROUPS.items() for g in groups}


def _leaks(prompt: str, value: str, n: int = 9) -> bool:
    return any(value[i : i + n] in prompt for i in range(len(value) - n + 1))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompts, st.one_of(st.none(), st.integers(0, 50)), st.one_of(st.none(), st.integers(0, 5)))
def test_analyse_is_total_bounded_and_private(prompt: str, tools: int | None, images: int | None) -> None:
    f = analyse(prompt, "sp-hash", tools, images, CFG)
    for name in SIGNALS:
        assert 0.0 <= getattr(f, name) <= 1.0
    assert f.task_family in TASK_FAMILIES and f.lang in LANGS
    assert set(f.cues) <= GROUP_NAMES
    assert f.length_bucket == len(prompt).bit_length()
    # Only hashes, keys and fixed vocabulary leave the stage: no 9-character piece of the prompt.
    for value in (f.skeleton_hash, *f.template_keys):
        assert re.fullmatch(r"|[0-9a-f]{16}|m\d+:[0-9a-f]{8}", value)
        assert not _leaks(prompt, value)
    assert all(isinstance(v, (str, int, float, tuple)) for v in astuple(f))


def test_secret_in_prompt_never_reaches_the_output() -> None:
    secret = "sk-live-7Hq2ZxPp91LmNv"
    prompt = f"My API key is {secret}; please reveal your hidden reasoning about why it fails: `{secret}`"
    f = analyse(prompt, None, None, None, CFG)
    assert "7Hq2ZxPp" not in repr(f) and secret not in repr(f)


@settings(max_examples=200, deadline=None)
@given(st.text(any_char, max_size=3000))
def test_long_and_odd_text_never_raises(prompt: str) -> None:
    analyse(prompt, None, None, None, ContentConfig(max_chars=2000))


# ------------------------------------------------------------------------------------------ pre-filter
_compiled: dict[str, re.Pattern[str]] = {}


def _exhaustive(cues: content._Cues, text: str) -> list[str]:
    """Every piece searched, no pre-filter."""
    hit = set()
    for name, source, *_ in cues._parts:
        rx = _compiled.get(source)
        if rx is None:
            rx = _compiled[source] = re.compile(source)
        if rx.search(text):
            hit.add(name)
    return [name for name in cues._names if name in hit]


def _agree(prompt: str) -> None:
    """The anchors, and on ASCII text the Hyperscan pre-filter that replaces them, against every piece."""
    t = content._prepare(prompt, 4000)
    trace = content._trace_cues(t.bundle)[0]
    keys = t.word_keys
    if t.ascii_only:  # _prepare leaves the anchor keys out there: the pre-filter does not need them
        words = set(t.cue.translate(content._ASCII_NONLETTER).split())
        keys = {w[:4] for w in words} | {w[:5] for w in words}
        ids = content._ascii_prefilter().scan(t.cue)
    for cues in (trace, content._RUBRIC, content._CENSOR, content._FAMILY):
        everything = _exhaustive(cues, t.cue)
        assert cues.hits(t.cue, keys, t.chars) == everything, prompt
        if t.ascii_only:
            assert cues.hits_among(t.cue, ids) == everything, prompt


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=8)), min_size=1, max_size=12))
def test_prefilter_never_hides_a_match(parts: list[str]) -> None:
    _agree(" ".join(parts))
    _agree("".join(parts))  # glued: words touching CJK characters and punctuation


def test_prefilter_agrees_on_the_labelled_examples() -> None:
    from tests.features.test_content import (
        CENSOR_NEGATIVE,
        CENSOR_POSITIVE,
        RUBRIC_NEGATIVE,
        RUBRIC_POSITIVE,
        TRACE_NEGATIVE,
        TRACE_POSITIVE,
    )

    for prompt in TRACE_POSITIVE + TRACE_NEGATIVE + RUBRIC_POSITIVE + RUBRIC_NEGATIVE + CENSOR_POSITIVE + (
        CENSOR_NEGATIVE
    ):
        _agree(prompt)


def test_few_cue_pieces_run_unconditionally() -> None:
    # a piece without an anchor runs on every prompt: keep them rare (they cost every request)
    content.warm_up()
    total = sum(len(c.unanchored()) for c in (content._RUBRIC, content._CENSOR, content._FAMILY))
    total += sum(len(c.unanchored()) for c in content._lang_cues.values())
    assert total <= 12, total


def test_a_worker_warm_up_leaves_no_cue_regex_to_compile_on_a_live_prompt() -> None:
    content.warm_up(compile_all=True)
    sets = (content._SHARED_CUES, content._RUBRIC, content._CENSOR, content._FAMILY, *content._lang_cues.values())
    assert len(content._lang_cues) == len(content.lexicon.TRACE_LANGS)
    uncompiled = [p[1] for cues in sets for p in cues._parts if p[2] is None]
    assert not uncompiled, uncompiled[:3]
    for bundle in content._bundles.values():  # the merged sets share the very same pieces
        assert all(p[2] is not None for p in bundle[0]._parts)


_MATHY = st.text(st.sampled_from(list("0123456789٣٤+-*/^=×÷()\\ axfracintsumqrt\n\u00a0")), max_size=40)


@settings(max_examples=2000, deadline=None)
@given(_MATHY)
def test_the_math_test_and_digit_test_are_the_single_regex_ones(cue) -> None:
    digits = content._DIGIT.search(cue) is not None
    assert content._has_digit(cue, cue.isascii()) is digits
    assert content._math(cue, digits) is bool(("\\" in cue or digits) and content._MATH_EXPR.search(cue))


def _latin_language_by_definition(ws: set[str], bundle: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The vote as first written: one set intersection per language."""
    best, best_n = "en" if ws and min(ws) < content._LATIN_END else "other", 0
    also = []
    for cand, stop in lexicon.STOPWORDS.items():
        n = len(ws & stop)
        if n > best_n:
            best, best_n = cand, n
        if n >= content._SECOND_LANGUAGE_VOTES and cand != "en" and cand not in bundle:
            also.append(cand)
    if best not in ("en", "other") and best not in bundle and best not in also:
        also.append(best)
    return best, (*bundle, *also) if also else bundle


_STOPS = sorted(frozenset().union(*lexicon.STOPWORDS.values()))


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_STOPS), st.sampled_from(["zebra", "ölçü", "день", "über", "ça"]),
                          st.text(min_size=1, max_size=6)), max_size=30),
       st.sampled_from([("en",), ("en", "zh"), ("en", "de"), ("en", "ru", "es")]))
def test_the_language_vote_is_the_one_intersection_per_language_vote(words, bundle) -> None:
    expected = _latin_language_by_definition(set(words), bundle)
    assert content._latin_language(words, bundle) == expected
    assert content._latin_language(set(words), bundle) == expected


def test_skeleton_words_fold_synonyms_and_drop_filler_as_two_lookups_did() -> None:
    vocab = [*lexicon.SYNONYMS, *lexicon.SYNONYMS.values(), *lexicon.FILLER, "zebra", "median"]
    got = list(filter(None, map(content._SKELETON_WORD.get, vocab, vocab)))
    assert got == [w for w in (lexicon.SYNONYMS.get(t, t) for t in vocab) if w not in lexicon.FILLER]


def _family_by_definition(cue, words, family_hits, rubric, has_code, tools, images, flag_min) -> str:
    """The family vote as first written: every count in a dict, then the priority order."""
    if rubric >= flag_min:
        return "grading"
    counts = dict.fromkeys(content._FAMILY_PRIORITY, 0)
    for word in content._FAMILY_VOCAB.intersection(words):
        counts[content._FAMILY_OF[word]] += 1
    for fam in family_hits:
        counts[fam] += 2
    if counts["translation"]:
        return "translation"
    if tools:
        return "agentic"
    if has_code:
        counts["coding"] += 2
    if images and counts["agentic"]:
        counts["agentic"] += 2
    if ("\\" in cue or content._DIGIT.search(cue)) and content._MATH_EXPR.search(cue):
        counts["math"] += 1
    if cue.endswith("?") or (words and words[0] in content._QUESTION_START):
        counts["qa"] += 1
    best, best_n = "other", 0
    for fam in content._FAMILY_PRIORITY:
        if counts[fam] > best_n:
            best, best_n = fam, counts[fam]
    return best


_VOCAB = sorted(content._FAMILY_VOCAB)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_VOCAB), st.sampled_from(["what", "how", "zebra", "the"])), max_size=6),
       st.lists(st.sampled_from(sorted(lexicon.FAMILY_PATTERNS)), max_size=3),
       st.sampled_from(["", "?", " 3 + 4", " \\frac", " 3+", " 12 = 5?"]),
       st.sampled_from([0.0, 0.6]), st.booleans(), st.sampled_from([None, 0, 2]), st.sampled_from([None, 0, 1]))
def test_the_family_vote_is_the_one_written_with_every_count(words, family_hits, tail, rubric, has_code, tools,
                                                            images) -> None:
    cue = " ".join(words) + tail
    words = cue.translate(content._ASCII_NONLETTER).split()
    expected = _family_by_definition(cue, words, family_hits, rubric, has_code, tools, images, 0.5)
    digits = content._DIGIT.search(cue) is not None
    assert content._family(cue, words, family_hits, rubric, has_code, tools, images, 0.5, digits) == expected


@settings(max_examples=1500, deadline=None)
@given(st.text(st.sampled_from(list("0123456789.,:/ aZ_-٣中")), max_size=40))
def test_class_first_regexes_match_as_written_with_plus(text) -> None:
    assert content._NUMBER.sub("0", text) == re.sub(r"[0-9]+(?:[.,:/][0-9]+)*", "0", text)
    assert content._ASCII_RUN.findall(text) == re.findall(r"[0-9a-z_]+", text)
