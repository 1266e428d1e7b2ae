"""MinHash sketches over string features, with LSH band keys; deterministic and fast in CPython.

Each feature (a shingle: a pair of words, or a CJK character bigram) is hashed once with BLAKE2b (never
the salted built-in ``hash``) and cached. The digest's first 32 bytes, each shifted right by one bit, are
read as eight little-endian 32-bit values: eight hash functions of 28 bits each. The per-function minimum
over a feature set is the sketch; two sets with Jaccard similarity J agree on a function with probability
J, and on a band of `rows` functions with probability about J**rows.

(The low bit of each digest byte fed a SimHash until nothing read it any more: the account stage links
accounts on the MinHash band keys only. The digest is unchanged, so the MinHash values are too.)
"""

from __future__ import annotations

import hashlib
import struct
from itertools import compress, repeat
from operator import is_

import numpy as np

from app.features.lexicon import COMMON_CJK, STOP_TOKENS

MINHASH_ROWS = 8  # hash functions available per feature
_DIGEST_BYTES = 64  # BLAKE2b's digest size is part of the hash: the values depend on it
_ROWS = struct.Struct(f"<{MINHASH_ROWS}I")
_NEVER_MIN = (0xFFFFFFFF,) * MINHASH_ROWS  # rows of a common shingle: it never becomes a band's minimum
_NEVER_ROWS = _ROWS.pack(*_NEVER_MIN)
_SHIFT_RIGHT = bytes(b >> 1 for b in range(256))  # per byte: the digest's 7 high bits of that byte
_PERSON = b"dg-simhash-v1"  # domain separation from other BLAKE2b uses of the same strings
_BLAKE2B = hashlib.blake2b(digest_size=_DIGEST_BYTES, person=_PERSON)  # its state before any data
_CACHE_MAX = 1 << 16  # ~150 bytes an entry: ~10 MB at most, then the cache starts over

Feature = str | tuple[str, ...]
# cached per feature: the MinHash rows packed as 8 little-endian uint32 in one small bytes object; a sketch
# joins its features' rows and takes the column minima in numpy.
_cache: dict[Feature, bytes] = {}
_frombuffer = np.frombuffer


def _common(feature: Feature) -> bool:
    """A pair of stopwords, or of very frequent CJK characters."""
    if type(feature) is tuple:
        return all(t in STOP_TOKENS for t in feature)
    return len(feature) == 2 and feature[0] in COMMON_CJK and feature[1] in COMMON_CJK


def _hash(feature: Feature) -> bytes:
    if _common(feature):
        return _NEVER_ROWS
    text = " ".join(feature) if type(feature) is tuple else feature  # a shingle hashes like its joined text
    h = _BLAKE2B.copy()  # faster than a new hasher with the same parameters, the same digest
    h.update(text.encode("utf-8", "surrogatepass"))
    digest = h.digest()
    return digest[: _ROWS.size].translate(_SHIFT_RIGHT)


def hashed(features: list[Feature]) -> list[bytes]:
    """The packed MinHash rows of each feature, cached; input order is kept."""
    cache = _cache
    out = list(map(cache.get, features))
    # the features not cached (found and filled in without a Python loop over every feature: a batch's
    # call holds thousands)
    new = {f: _hash(f) for f in compress(features, map(is_, out, repeat(None)))}
    if new:
        out = list(map(new.get, features, out))  # a cached feature is not in `new`: its rows stay
        if len(cache) + len(new) > _CACHE_MAX:
            cache.clear()
        if len(new) <= _CACHE_MAX:
            cache.update(new)
    return out


def minhash_of(rows: list[bytes]) -> tuple[int, ...]:
    """Per-function minimum over the features' rows (a set sketch: duplicates and order do not matter);
    () when there is no uncommon feature."""
    if not rows:
        return ()
    # one (features x 8) uint32 matrix, its column minima: the same values as min() per function over
    # the unpacked rows (tests/features/test_sketches.py), a few calls instead of a Python loop per row
    mins = tuple(_frombuffer(b"".join(rows), "<u4").reshape(-1, MINHASH_ROWS).min(0).tolist())
    return () if mins == _NEVER_MIN else mins


def minhash_keys_many(features: list[Feature], counts: list[int], bands: int, rows: int) -> list[tuple[str, ...]]:
    """`minhash_keys(minhash_of(hashed(f)), bands, rows)` for each of several feature sets, given one
    after another in `features` (`counts`: how many each has, each at least one), in a few numpy calls
    for all of them: the rows of every feature in one matrix, the per-set column minima with
    minimum.reduceat, the band folds on uint64 columns (exact mod 2**32, the fold's `& 0xFFFFFFFF`) and the
    keys' hex digits from one bytes.hex(). The values are those of the per-set functions
    (tests/features/test_sketches.py)."""
    if not counts:
        return []
    if min(counts) < 1:  # reduceat would give an empty set the next set's row, silently
        raise ValueError("every feature set needs at least one feature")
    if not bands:
        return [()] * len(counts)
    table = _frombuffer(b"".join(hashed(features)), "<u4").reshape(-1, MINHASH_ROWS)
    starts = np.zeros(len(counts), np.intp)
    np.cumsum(counts[:-1], out=starts[1:])
    mins = np.minimum.reduceat(table, starts, axis=0)
    never = (mins == 0xFFFFFFFF).all(axis=1).tolist()  # only common features: no sketch (minhash_of's ())
    cols = mins[:, : bands * rows].astype(np.uint64)
    fold = np.zeros((len(counts), bands), np.uint64)
    for r in range(rows):
        fold = (fold * 0x9E3779B1 + cols[:, r::rows] + 1) & 0xFFFFFFFF  # column b*rows + r: band b's row r
    digits = fold.astype(">u4").tobytes().hex()  # 8 hex digits a key, as f"{v:08x}"
    width = 8 * bands
    if bands == 4:  # the default, unrolled
        return [() if none else ("m0:" + digits[o:o + 8], "m1:" + digits[o + 8:o + 16], "m2:" + digits[o + 16:o + 24],
                                 "m3:" + digits[o + 24:o + 32])
                for none, o in zip(never, range(0, width * len(counts), width), strict=True)]
    heads = [(f"m{b}:", 8 * b) for b in range(bands)]
    return [() if none else tuple([h + digits[o + a:o + a + 8] for h, a in heads])
            for none, o in zip(never, range(0, width * len(counts), width), strict=True)]


def minhash_keys(mins: tuple[int, ...], bands: int, rows: int) -> tuple[str, ...]:
    """One key per band of `rows` MinHash values ("m0:9c1e02ab"); two sets with Jaccard similarity J
    share a given band with probability about J**rows. () for an empty sketch."""
    if not mins:
        return ()
    if rows == 2:  # the default, unrolled: the same fold as the loop below
        return tuple([f"m{b}:{((mins[2 * b] + 1) * 0x9E3779B1 + mins[2 * b + 1] + 1) & 0xFFFFFFFF:08x}"
                      for b in range(bands)])
    keys = []
    for b in range(bands):
        v = 0
        for r in mins[b * rows : (b + 1) * rows]:
            v = (v * 0x9E3779B1 + r + 1) & 0xFFFFFFFF  # fold the rows into 32 bits (odd multiplier)
        keys.append(f"m{b}:{v:08x}")
    return tuple(keys)
