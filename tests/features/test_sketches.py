"""Skeleton hash, SimHash and template keys: slot invariance, near-duplicates, unrelated prompts,
determinism across processes."""

from __future__ import annotations

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

from app.features.content import ContentConfig, analyse
from app.features.simhash import band_keys, hamming, hashed, minhash_keys, minhash_of
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
    assert len({feats(v).simhash for v in variants}) == 1


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
def test_light_paraphrase_keeps_simhash_near_and_shares_a_template_key(op: str) -> None:
    # synonyms of common instruction words, politeness, whitespace and punctuation are normalised away
    rng = random.Random(11)
    for i, template in enumerate(TEMPLATES):
        for prompt in instances(template, 2, i):
            edited = paraphrase(prompt, rng, op)
            a, b = feats(prompt), feats(edited)
            assert hamming(a.simhash, b.simhash) <= 3, (prompt, edited)
            assert set(a.template_keys) & set(b.template_keys), (prompt, edited)


def test_changing_case_keeps_a_template_key() -> None:
    # ALL CAPS or all lowercase hides which words are names, so name slots can move the SimHash;
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
    # SimHash bands alone keep ~35-40% of these on prompts this short; the MinHash bands lift it.
    rng = random.Random(5)
    words = ["apple", "orbit", "lantern", "quickly", "purple", "engine", "method", "result", "garden", "river"]
    shared = simhash_only = total = 0
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
            simhash_only += any(k.startswith("b") for k in common)
    assert shared / total >= 0.9
    assert simhash_only < shared


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
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=3))
def test_simhashes_within_hamming_3_share_a_band_key(h: int, flips: set[int]) -> None:
    other = h
    for bit in flips:
        other ^= 1 << bit
    assert set(band_keys(h, 64, 4)) & set(band_keys(other, 64, 4))


def test_band_key_format() -> None:
    assert band_keys(0x0123_4567_89AB_CDEF, 64, 4) == ("b0:cdef", "b1:89ab", "b2:4567", "b3:0123")
    assert band_keys(0xFF, 16, 2) == ("b0:ff", "b1:00")
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
    from dataclasses import asdict

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
    from app.features import simhash

    first = _dump(_PROBE)
    simhash._cache.clear()
    assert _dump(list(reversed(_PROBE)))[::-1] == first


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_minhash_of_is_the_per_function_minimum(n):
    feats = [(f"w{i}", f"v{i * 7}") for i in range(n)]
    hashes = hashed(feats)
    rows = [struct.unpack("<8I", h[1]) for h in hashes]
    expected = tuple(min(r[j] for r in rows) for j in range(8))
    assert minhash_of(hashes) == expected
    assert minhash_of(hashed([("the", "of")])) == ()  # only common shingles: no sketch
