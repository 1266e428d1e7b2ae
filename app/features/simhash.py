"""SimHash over string features and LSH band keys, deterministic across processes and fast in CPython.

Each feature is hashed once with BLAKE2b (never the salted built-in ``hash``) into a 512-bit integer whose
byte *i* holds bit *i* of the feature's 64-bit hash. Adding such integers counts, per bit, how many
features set it, 8 bits per counter, so a whole prompt's vote is one C-level ``sum`` instead of a Python
loop over 64 bits per feature. Features are cached because prompts share most of their words and bigrams.
"""

from __future__ import annotations

import hashlib
from operator import add

MAX_BITS = 64
_BATCH = 255  # an 8-bit counter holds at most 255 votes before it would carry into the next bit's byte
_LOW_BIT_OF_EACH_BYTE = int.from_bytes(b"\x01" * MAX_BITS, "little")
_PERSON = b"dg-simhash-v1"  # domain separation from other BLAKE2b uses of the same strings
_CACHE_MAX = 1 << 16  # ~150 bytes an entry: ~10 MB at most, then the cache starts over

_cache: dict[str | tuple[str, ...], int] = {}

# _VOTE[n][c] is b"1" when c of n votes is a strict majority, else b"0"; ties resolve to 0.
_VOTE: tuple[bytes, ...] = tuple(
    bytes(0x31 if 2 * c > n else 0x30 for c in range(256)) for n in range(_BATCH + 1)
)


def _spread(feature: str | tuple[str, ...]) -> int:
    if type(feature) is tuple:
        feature = " ".join(feature)  # a shingle of tokens hashes like the tokens joined by a space
    digest = hashlib.blake2b(
        feature.encode("utf-8", "surrogatepass"), digest_size=MAX_BITS, person=_PERSON
    ).digest()
    return int.from_bytes(digest, "little") & _LOW_BIT_OF_EACH_BYTE


def spreads(features: list[str] | list[tuple[str, ...]]) -> list[int]:
    """The per-bit vote vector of each feature (cached); input order is kept."""
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
                    v = cache[f] = _spread(f)
                out[i] = v
    return out


def simhash(features: list[str] | list[tuple[str, ...]], bits: int = MAX_BITS) -> int:
    """Majority vote per bit over the features' hashes; 0 for no features."""
    n = len(features)
    if n == 0:
        return 0
    votes = spreads(features)
    if n <= _BATCH:
        counts = sum(votes).to_bytes(MAX_BITS, "little")[:bits]
        return int(counts.translate(_VOTE[n])[::-1], 2)
    totals = [0] * bits
    for start in range(0, n, _BATCH):
        chunk = sum(votes[start : start + _BATCH]).to_bytes(MAX_BITS, "little")[:bits]
        totals = list(map(add, totals, chunk))
    return int("".join("1" if 2 * c > n else "0" for c in reversed(totals)), 2)


def band_keys(h: int, bits: int = MAX_BITS, bands: int = 4) -> tuple[str, ...]:
    """Split a simhash into `bands` equal bands, one key each ("b0:3fa2").

    Two hashes within Hamming distance bands-1 agree exactly on at least one band (pigeonhole), so they
    share at least one key.
    """
    width = bits // bands
    mask = (1 << width) - 1
    digits = (width + 3) // 4
    return tuple(f"b{i}:{(h >> (i * width)) & mask:0{digits}x}" for i in range(bands))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
