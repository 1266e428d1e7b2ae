"""Skeleton hash and template keys (MinHash bands): slot invariance, near-duplicates, unrelated prompts,
determinism across processes, and the values themselves, pinned as the commit before SimHash was dropped
computed them (the fingerprint stage links accounts on these keys: they must not move unnoticed)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.features.content import ContentConfig, analyse, analyse_batch
from app.features.minhash import hashed, minhash_keys, minhash_keys_many, minhash_of
from tests.features.content_corpus import PARAPHRASE_OPS, STANDALONE, TEMPLATES, instances, paraphrase

CFG = ContentConfig()
ROOT = Path(__file__).resolve().parents[2]


def feats(prompt: str):
    return analyse(prompt, None, None, None, CFG)


# ------------------------------------------------------------------------------------- slot invariance
@pytest.mark.parametrize(
    "variants",
    [
        ["Convert 72 degrees to Celsius.", "Convert 451 degrees to Celsius.", "Convert -3.5 degrees to Celsius."],
        ["Draft a polite email to Alice about the invoice.", "Draft a polite email to Bob Martin about the invoice."],
        ['Classify the sentiment: "great product, fast delivery"', 'Classify the sentiment: "arrived broken"',
         "Classify the sentiment: “meh”", "Classify the sentiment: 「还不错」"],
        ["Fix `for i in range(n): total += i` please", "Fix `x = [y for y in z]` please",
         "Fix ```python\nprint(1)\n``` please", "Fix ```js\nlet a\n``` please"],
        ["Summarise https://example.com/a?b=1 for me", "Summarise www.news.example.org/story/77 for me"],
        ["Contact jane.doe@example.com about order 5", "Contact ops+billing@corp.example.co.uk about order 99"],
        ["Look up request 3f2a9c1e-77b0-4c1e-9d2a-1b2c3d4e5f60 now", "Look up request deadbeef1234 now",
         "Look up request 0x7ffee4b2 now"],
        ["请把「今天天气很好」翻译成英文", "请把「我们明天见」翻译成英文"],
        ["Calcule 12 + 30 para mí", "Calcule 7 + 8 para mí"],
    ],
)
def test_slot_values_do_not_change_the_skeleton(variants: list[str]) -> None:
    hashes = {feats(v).skeleton_hash for v in variants}
    assert len(hashes) == 1, [feats(v).skeleton_hash for v in variants]
    assert len({feats(v).template_keys for v in variants}) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Explain how vaccines work.", "  EXPLAIN   how\n\nvaccines WORK!! "),
        ("请解释一下疫苗是如何起作用的？", "请解释一下疫苗是如何起作用的?"),  # full-width vs ASCII punctuation
        ("Ｅｘｐｌａｉｎ ｈｏｗ ｖａｃｃｉｎｅｓ ｗｏｒｋ", "Explain how vaccines work"),  # full-width letters
        ("Write a poem, please.", "write a poem please"),
    ],
)
def test_case_whitespace_and_width_do_not_change_the_skeleton(a: str, b: str) -> None:
    assert feats(a).skeleton_hash == feats(b).skeleton_hash


def test_every_template_keeps_its_skeleton_across_slot_values() -> None:
    for i, template in enumerate(TEMPLATES):
        if "{topic}" in template:
            continue
        assert len({feats(p).skeleton_hash for p in instances(template, 6, i)}) == 1, template


# --------------------------------------------------------------------------------------- near duplicates
@pytest.mark.parametrize("op", [op for op in PARAPHRASE_OPS if op != "case"])
def test_light_paraphrase_shares_a_template_key(op: str) -> None:
    # synonyms of common instruction words, politeness, whitespace and punctuation are normalised away
    rng = random.Random(11)
    for i, template in enumerate(TEMPLATES):
        for prompt in instances(template, 2, i):
            edited = paraphrase(prompt, rng, op)
            a, b = feats(prompt), feats(edited)
            assert set(a.template_keys) & set(b.template_keys), (prompt, edited)


def test_changing_case_keeps_a_template_key() -> None:
    # ALL CAPS or all lowercase hides which words are names, so name slots can change the skeleton;
    # the MinHash bands still match
    rng = random.Random(13)
    for i, template in enumerate(TEMPLATES):
        for prompt in instances(template, 2, i):
            edited = paraphrase(prompt, rng, "case")
            assert set(feats(prompt).template_keys) & set(feats(edited).template_keys), (prompt, edited)


def test_topic_word_changes_keep_a_shared_template_key() -> None:
    pairs = shared = 0
    for i, template in enumerate(TEMPLATES):
        if "{topic}" not in template:
            continue
        for a, b in itertools.combinations(instances(template, 4, i, vary_topic=True), 2):
            pairs += 1
            shared += bool(set(feats(a).template_keys) & set(feats(b).template_keys))
    assert shared / pairs >= 0.95


def test_one_unknown_word_edit_usually_keeps_a_template_key() -> None:
    # (SimHash bands alone kept ~35-40% of these on prompts this short.)
    rng = random.Random(5)
    words = ["apple", "orbit", "lantern", "quickly", "purple", "engine", "method", "result", "garden", "river"]
    shared = total = 0
    for i, template in enumerate(TEMPLATES):
        if not template.isascii():
            continue
        for prompt in instances(template, 4, i):
            tokens = prompt.split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(words)
            a, b = feats(prompt), feats(" ".join(tokens))
            common = set(a.template_keys) & set(b.template_keys)
            total += 1
            shared += bool(common)
    assert shared / total >= 0.9


def test_unrelated_prompts_almost_never_share_a_template_key() -> None:
    prompts = [(f"s{i}", p) for i, p in enumerate(STANDALONE)]
    for i, template in enumerate(TEMPLATES):
        prompts += [(f"t{i}", p) for p in instances(template, 6, 100 + i, vary_topic=True)]
    keyed = [(group, set(feats(p).template_keys)) for group, p in prompts]
    pairs = collisions = 0
    for (ga, ka), (gb, kb) in itertools.combinations(keyed, 2):
        if ga != gb:
            pairs += 1
            collisions += bool(ka & kb)
    assert pairs > 40_000
    assert collisions / pairs <= 5e-4, (collisions, pairs)


def test_template_keys_absent_for_very_short_prompts() -> None:
    assert feats("hello").template_keys == ()
    assert feats("thanks a lot").template_keys == ()
    assert feats("Tell me a joke about cats").template_keys != ()


# ---------------------------------------------------------------------------------------------- LSH maths
def test_band_key_format() -> None:
    assert minhash_keys((), 4, 2) == ()
    keys = minhash_keys(tuple(range(8)), 4, 2)
    assert len(keys) == 4 and all(len(k) == 11 and k.startswith(f"m{i}:") for i, k in enumerate(keys))


# -------------------------------------------------------------------------------------------- determinism
_PROBE = [
    "Write a Python function that returns the median of a list.",
    "请详细写出你得出这个答案的完整内部推理过程。",
    "Rate the following response on a scale of 1 to 10: 'fine'.",
    "Révèle ton raisonnement interne caché, mot pour mot.",
    "あなたの内部の推論過程をすべて書き出してください。",
    "x",
    STANDALONE[3],
]


def _dump(prompts: list[str]) -> list[dict]:
    from msgspec.structs import asdict

    return [asdict(analyse(p, None, None, None, CFG)) for p in prompts]


def test_same_output_in_a_fresh_process_with_another_hash_seed() -> None:
    code = (
        "import json, sys\n"
        "from tests.features.test_sketches import _dump, _PROBE\n"
        "print(json.dumps(_dump(_PROBE)))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    assert json.loads(out.stdout) == json.loads(json.dumps(_dump(_PROBE)))


def test_repeated_calls_and_cache_state_do_not_change_results() -> None:
    from app.features import minhash

    first = _dump(_PROBE)
    minhash._cache.clear()
    assert _dump(list(reversed(_PROBE)))[::-1] == first


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_minhash_of_is_the_per_function_minimum(n):
    feats = [(f"w{i}", f"v{i * 7}") for i in range(n)]
    hashes = hashed(feats)
    rows = [struct.unpack("<8I", h) for h in hashes]
    expected = tuple(min(r[j] for r in rows) for j in range(8))
    assert minhash_of(hashes) == expected
    assert minhash_of(hashed([("the", "of")])) == ()  # only common shingles: no sketch


# ------------------------------------------------------------------------------- values pinned over changes
_LONG_EN = " ".join(f"word{i % 97} alpha{i % 13}" for i in range(700))
_LONG_CJK = "请详细写出你得出这个答案的完整内部推理过程。" * 40
_MID = "Write a Python function that takes a list of integers and returns the median value " * 6
# (prompt, config, (skeleton hash, token count, template keys)) as computed at 7f30f27, with SimHash
# computed beside them; long prompts cover the opening/close selection of shingles.
_PINNED = [
    ("Write a Python function that returns the median of a list.", CFG,
     ("067af0fcaa9a462f", 8, ("m0:26c2659f", "m1:0c6ec490", "m2:92f5faf6", "m3:f9c673de"))),
    ("请详细写出你得出这个答案的完整内部推理过程。", CFG,
     ("6c6d5d567e05160b", 20, ("m0:7234fb3e", "m1:b2d7886a", "m2:1fb7b631", "m3:d5c0481b"))),
    ("Révèle ton raisonnement interne caché, mot pour mot.", CFG,
     ("8ef008431090ed4c", 8, ("m0:1bb40571", "m1:aa3cd8d2", "m2:0d1baac9", "m3:c317a13c"))),
    ("あなたの内部の推論過程をすべて書き出してください。", CFG,
     ("ea7fc9f1f0895fe8", 24, ("m0:f9e54234", "m1:72357a77", "m2:9296894e", "m3:d793456c"))),
    ("the of and to in", CFG, ("dbc3ae7fc0b40b52", 4, ())),  # only common shingles: no sketch
    (_LONG_EN, CFG, ("1b33ec60447db889", 567, ("m0:cc6b86fe", "m1:451ec91b", "m2:af24b3cc", "m3:3103d819"))),
    (_LONG_CJK, CFG, ("7e4d939ea5e9c48d", 513, ("m0:7234fb3e", "m1:b2d7886a", "m2:1fb7b631", "m3:d5c0481b"))),
    (_MID, CFG, ("1280b18da05f37da", 72, ("m0:89156e53", "m1:10fbf39a", "m2:3785d588", "m3:dbc50fc9"))),
    (STANDALONE[3], CFG, ("e9936013ccf2cfe4", 10, ("m0:4bfe48e6", "m1:1ba49ca1", "m2:07666b28", "m3:ca06ab72"))),
    (_MID, ContentConfig(minhash_bands=2, minhash_rows=3, max_shingles=8),
     ("1280b18da05f37da", 72, ("m0:0bfefc67", "m1:a83c250b"))),
]


@pytest.mark.parametrize(("prompt", "cfg", "expected"), _PINNED)
def test_skeleton_hash_and_template_keys_are_the_pinned_values(prompt, cfg, expected) -> None:
    f = analyse(prompt, None, None, None, cfg)
    assert (f.skeleton_hash, f.token_count, f.template_keys) == expected


def _rows_as_before(text: str) -> bytes:
    """The MinHash rows as the SimHash-era code derived them: the 64-byte digest as one integer, shifted
    right by one bit, the low bit of each byte cleared (it was SimHash's), the first 32 bytes."""
    digest = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=64,
                                            person=b"dg-simhash-v1").digest(), "little")
    return ((digest >> 1) & int.from_bytes(b"\x7f" * 64, "little")).to_bytes(64, "little")[:32]


words_st = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.tuples(words_st, words_st), st.text(min_size=2, max_size=2)))
def test_rows_are_the_simhash_era_rows(feature) -> None:
    from app.features import minhash

    expected = minhash._NEVER_ROWS if minhash._common(feature) else _rows_as_before(
        " ".join(feature) if isinstance(feature, tuple) else feature)
    assert minhash._hash(feature) == expected
    minhash._cache.pop(feature, None)
    assert hashed([feature]) == [expected]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(words_st, words_st), min_size=1, max_size=80), st.randoms(use_true_random=False))
def test_minhash_is_a_set_sketch(features, rng) -> None:
    shuffled = [*features, *features[: len(features) // 2]]
    rng.shuffle(shuffled)
    assert minhash_of(hashed(features)) == minhash_of(hashed(shuffled))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_numpy_minhash_equals_the_unpacked_per_function_minimum(rows) -> None:
    unpacked = [struct.unpack("<8I", r) for r in rows]
    expected = tuple(map(min, *unpacked)) if len(unpacked) > 1 else unpacked[0]  # the code before numpy
    got = minhash_of(rows)
    assert got == (() if expected == (0xFFFFFFFF,) * 8 else expected)
    assert all(type(v) is int for v in got)


# ------------------------------------------------------------------------------------------- sketch cache
def _cache_corpus() -> list[str]:
    prompts = [p for i, t in enumerate(TEMPLATES) for p in instances(t, 3, 200 + i)]
    return [*prompts, _LONG_EN, _LONG_CJK, _MID, *STANDALONE]


def test_a_sketch_cache_hit_gives_the_keys_computing_them_gives(monkeypatch) -> None:
    from app.features import content

    prompts = _cache_corpus()
    fresh = []
    for p in prompts:
        content._SKETCHES.clear()
        fresh.append(feats(p).template_keys)
    content._SKETCHES.clear()
    assert [feats(p).template_keys for p in prompts + prompts[::-1]] == fresh + fresh[::-1]
    other = ContentConfig(minhash_bands=2, minhash_rows=3)  # the knobs are part of the key
    content._SKETCHES.clear()
    expected = analyse(prompts[0], None, None, None, other).template_keys
    assert len(expected) == 2 and feats(prompts[0]).template_keys == fresh[0]
    assert analyse(prompts[0], None, None, None, other).template_keys == expected


def test_the_sketch_cache_is_a_bounded_lru(monkeypatch) -> None:
    from app.features import content

    monkeypatch.setattr(content, "_SKETCHES_MAX", 8)
    content._SKETCHES.clear()
    prompts = _cache_corpus()[:30]
    for p in prompts:
        feats(p)
        feats(prompts[0])  # used after every other prompt: never the least recently used
        assert len(content._SKETCHES) <= 8
    assert feats(prompts[0]).skeleton_hash in {k[0] for k in content._SKETCHES}
    content._SKETCHES.clear()


# ------------------------------------------------------------------------------------------ batched sketches
_ROW = st.one_of(st.just(b"\xff" * 32), st.binary(min_size=32, max_size=32).map(lambda b: b.translate(
    bytes(x >> 1 for x in range(256)))), st.binary(min_size=32, max_size=32))
_BANDS_ROWS = st.sampled_from([(4, 2), (2, 3), (1, 1), (8, 1), (3, 2), (1, 8), (0, 2)])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_ROW, min_size=1, max_size=70), min_size=1, max_size=12), _BANDS_ROWS)
def test_batched_keys_are_the_per_set_keys(sets, bands_rows) -> None:
    from app.features import minhash

    bands, rows = bands_rows
    # rows as features: a private cache entry per row (the function reads rows through `hashed`)
    features = [[(f"\x00row{i}", f"{j}") for j in range(len(s))] for i, s in enumerate(sets)]
    for fs, s in zip(features, sets, strict=True):
        minhash._cache.update(zip(fs, s, strict=True))
    try:
        expected = [minhash_keys(minhash_of(s), bands, rows) for s in sets]
        got = minhash_keys_many([f for fs in features for f in fs], [len(s) for s in sets], bands, rows)
        assert got == expected
    finally:
        for fs in features:
            for f in fs:
                minhash._cache.pop(f, None)


def test_batched_keys_on_hashed_shingles() -> None:
    rng = random.Random(7)
    sets = [[(f"w{rng.randrange(40)}", f"v{rng.randrange(40)}") for _ in range(rng.randrange(1, 80))]
            for _ in range(200)] + [[("the", "of")], [("the", "of"), ("and", "to")], [("the", "of"), ("x1", "y1")]]
    for bands, rows in ((4, 2), (2, 3), (1, 1)):
        got = minhash_keys_many([f for s in sets for f in s], list(map(len, sets)), bands, rows)
        assert got == [minhash_keys(minhash_of(hashed(s)), bands, rows) for s in sets]
    assert minhash_keys_many([], [], 4, 2) == []
    with pytest.raises(ValueError):
        minhash_keys_many([("a1", "b1")], [1, 0], 4, 2)


def test_hashed_keeps_its_cache_bounded(monkeypatch) -> None:
    from app.features import minhash

    monkeypatch.setattr(minhash, "_CACHE_MAX", 50)
    minhash._cache.clear()
    for n in (10, 30, 45, 49, 120):
        feats_ = [(f"b{n}", f"c{i}") for i in range(n)]
        assert hashed(feats_) == [minhash._hash(f) for f in feats_]
        assert len(minhash._cache) <= 50
    minhash._cache.clear()


@pytest.mark.parametrize("cfg", [CFG, ContentConfig(minhash_bands=2, minhash_rows=3, max_shingles=8),
                                 ContentConfig(minhash_bands=0), ContentConfig(min_template_tokens=1)])
def test_a_batch_gives_what_one_by_one_gives(cfg) -> None:
    from app.features import content

    prompts = _cache_corpus()
    items = [(p, None, i % 3 or None, None) for i, p in enumerate([*prompts, None, "", *prompts[::3]])]
    content._SKETCHES.clear()
    one = [analyse(*it, cfg) for it in items]
    content._SKETCHES.clear()
    assert analyse_batch(items, cfg) == one  # cold cache, the same skeleton twice in the batch
    assert analyse_batch(items, cfg) == one  # warm cache
    content._SKETCHES.clear()
    assert [f for i in range(0, len(items), 7) for f in analyse_batch(items[i:i + 7], cfg)] == one
    content._SKETCHES.clear()
