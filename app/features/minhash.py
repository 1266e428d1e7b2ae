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

import numpy as np

from app.features.lexicon import COMMON_CJK, STOP_TOKENS

MINHASH_ROWS = 8  # hash functions available per feature
_DIGEST_BYTES = 64  # BLAKE2b's digest size is part of the hash: the values depend on it
_ROWS = struct.Struct(f"<{MINHASH_ROWS}I")
_NEVER_MIN = (0xFFFFFFFF,) * MINHASH_ROWS  # rows of a common shingle: it never becomes a band's minimum
_NEVER_ROWS = _ROWS.pack(*_NEVER_MIN)
_SHIFT_RIGHT = bytes(b >> 1 for b in range(256))  # per byte: the digest's 7 high bits of that byte
_PERSON = b"dg-simhash-v1"  # domain separation from other BLAKE2b uses of the same strings
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
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES, person=_PERSON).digest()
    return digest[: _ROWS.size].translate(_SHIFT_RIGHT)


def hashed(features: list[Feature]) -> list[bytes]:
    """The packed MinHash rows of each feature, cached; input order is kept."""
    cache = _cache
    out = list(map(cache.get, features))
    if None in out:
        if len(cache) > _CACHE_MAX:
            cache.clear()
        for i, v in enumerate(out):
            if v is None:
                f = features[i]
                v = cache.get(f)
                if v is None:
                    v = cache[f] = _hash(f)
                out[i] = v
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
