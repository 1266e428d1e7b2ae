"""SimHash and MinHash sketches over string features, with LSH band keys; deterministic and fast in CPython.

Each feature is hashed once with BLAKE2b (never the salted built-in ``hash``) and cached:

* SimHash: bit 0 of each of the 64 digest bytes, spread into a 512-bit integer (byte *i* holds bit *i*).
  Adding such integers counts, per bit, how many features set it, 8 bits per counter, so a prompt's vote
  is one C-level ``sum`` instead of a Python loop over 64 bits per feature.
* MinHash: the digest's other 7 bits per byte, read as eight 28-bit values (eight hash functions); the
  per-function minimum over a feature set is one ``map(min, zip(*rows))``.

SimHash keeps near-duplicates within a small Hamming distance, but on prompts of a few dozen tokens one
changed word already moves it by ~9 of 64 bits; MinHash bands (Jaccard similarity of the shingle sets)
still match then, so both feed the template keys.
"""

from __future__ import annotations

import hashlib
import struct
from operator import add, itemgetter

from app.features.lexicon import COMMON_CJK, STOP_TOKENS

MAX_BITS = 64
MINHASH_ROWS = 8  # hash functions available per feature
_BATCH = 255  # an 8-bit counter holds at most 255 votes before it would carry into the next bit's byte
_LOW_BIT_OF_EACH_BYTE = int.from_bytes(b"\x01" * MAX_BITS, "little")
_HIGH_BITS_OF_EACH_BYTE = int.from_bytes(b"\x7f" * MAX_BITS, "little")
_ROWS = struct.Struct(f"<{MINHASH_ROWS}I")
_NEVER_MIN = (0xFFFFFFFF,) * MINHASH_ROWS  # rows of a common shingle: it never becomes a band's minimum
_NEVER_ROWS = _ROWS.pack(*_NEVER_MIN)
_PERSON = b"dg-simhash-v1"  # domain separation from other BLAKE2b uses of the same strings
_CACHE_MAX = 1 << 16  # ~300 bytes an entry: ~20 MB at most, then the cache starts over

Feature = str | tuple[str, ...]
# cached per feature: (SimHash vote vector, MinHash rows packed as 8 little-endian uint32). The rows stay
# packed in one small bytes object and are unpacked when a sketch is taken: fresh ints read faster than
# eight long-lived ones scattered over the heap (cache misses dominated minhash_of in a long replay).
_cache: dict[Feature, tuple[int, bytes]] = {}
_spread = itemgetter(0)
_rows = itemgetter(1)

# _VOTE[n][c] is b"1" when c of n votes is a strict majority, else b"0"; ties resolve to 0.
_VOTE: tuple[bytes, ...] = tuple(
    bytes(0x31 if 2 * c > n else 0x30 for c in range(256)) for n in range(_BATCH + 1)
)


def _common(feature: Feature) -> bool:
    """A pair of stopwords, or of very frequent CJK characters."""
    if type(feature) is tuple:
        return all(t in STOP_TOKENS for t in feature)
    return len(feature) == 2 and feature[0] in COMMON_CJK and feature[1] in COMMON_CJK


def _hash(feature: Feature) -> tuple[int, bytes]:
    text = " ".join(feature) if type(feature) is tuple else feature  # a shingle hashes like its joined text
    digest = int.from_bytes(
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=MAX_BITS, person=_PERSON).digest(),
        "little",
    )
    if _common(feature):
        return digest & _LOW_BIT_OF_EACH_BYTE, _NEVER_ROWS
    high = ((digest >> 1) & _HIGH_BITS_OF_EACH_BYTE).to_bytes(MAX_BITS, "little")
    return digest & _LOW_BIT_OF_EACH_BYTE, high[: _ROWS.size]


def hashed(features: list[Feature]) -> list[tuple[int, bytes]]:
    """(SimHash vote vector, packed MinHash rows) of each feature, cached; input order is kept."""
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


def simhash_of(hashes: list[tuple[int, bytes]], bits: int = MAX_BITS) -> int:
    """Majority vote per bit over the features' hashes; 0 for no features."""
    n = len(hashes)
    if n == 0:
        return 0
    if n <= _BATCH:
        counts = sum(map(_spread, hashes)).to_bytes(MAX_BITS, "little")[:bits]
        return int(counts.translate(_VOTE[n])[::-1], 2)
    totals = [0] * bits
    for start in range(0, n, _BATCH):
        chunk = sum(map(_spread, hashes[start : start + _BATCH])).to_bytes(MAX_BITS, "little")[:bits]
        totals = list(map(add, totals, chunk))
    return int("".join("1" if 2 * c > n else "0" for c in reversed(totals)), 2)


def minhash_of(hashes: list[tuple[int, bytes]]) -> tuple[int, ...]:
    """Per-function minimum over the features (a set sketch: duplicates and order do not matter);
    () when there is no uncommon feature."""
    if not hashes:
        return ()
    rows = list(map(_ROWS.unpack, map(_rows, hashes)))
    # map(min, *rows) calls min(row0[j], row1[j], ...) per function j: no transposed tuples built
    mins = rows[0] if len(rows) == 1 else tuple(map(min, *rows))
    return () if mins == _NEVER_MIN else mins


def simhash(features: list[Feature], bits: int = MAX_BITS) -> int:
    return simhash_of(hashed(features), bits)


_BAND_SPECS: dict[tuple[int, int], tuple[int, tuple[tuple[str, int], ...]]] = {}


def band_keys(h: int, bits: int = MAX_BITS, bands: int = 4) -> tuple[str, ...]:
    """Split a simhash into `bands` equal bands, one key each ("b0:3fa2").

    Two hashes within Hamming distance bands-1 agree exactly on at least one band (pigeonhole), so they
    share at least one key.
    """
    spec = _BAND_SPECS.get((bits, bands))
    if spec is None:
        width = bits // bands
        spec = _BAND_SPECS[(bits, bands)] = (
            (1 << width) - 1,
            tuple((f"b{i}:%0{(width + 3) // 4}x", i * width) for i in range(bands)),
        )
    mask, parts = spec
    return tuple([fmt % ((h >> shift) & mask) for fmt, shift in parts])


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


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
