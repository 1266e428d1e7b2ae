"""A Hyperscan pre-filter for the cue pieces on ASCII text: one scan of a prompt names the pieces that may
match it, and only those run in `re` (app/features/content.py), which decides.

Hyperscan compiles each piece in prefilter mode (HS_FLAG_PREFILTER: it reports a superset of the
pattern's matches, approximating what it does not support, such as look-behinds), after loosening the
word gaps between a cue's parts (`\\W+(?:\\w+\\W+){0,n}?`) to `.*` with DOTALL, which only widens what is
reported and keeps the database a few MB instead of tens. On ASCII text Hyperscan's `\\w`, `\\d`, `\\s`
and `\\b` (UTF-8 mode, without UCP) mean what Python's do; the text the cues read has its whitespace folded
to single spaces. So a piece that matches in `re` is always reported; tests/features/test_prefilter.py
compares the two on the project's prompt corpora.

Compiling takes seconds, so the database is stored, serialized, under the user's cache directory
(`DG_CUE_CACHE_DIR`, default `~/.cache/distill-guard`; `off` keeps nothing) and loaded at the next start,
keyed by a hash of the expressions, flags and Hyperscan's version: any change of the lexicon or the
library compiles anew. A piece Hyperscan rejects is reported on every scan (it always runs in `re`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

import hyperscan

log = logging.getLogger("distill_guard.prefilter")

_FLAGS = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_DOTALL
_GAP = re.compile(r"\\W\+\(\?:\\w\+\\W\+\)\{0,\d+\}\?")  # content._trace_patterns' gap() between words


def loosen(source: str) -> str:
    """A pattern matching wherever `source` matches (and more): word gaps become `.*`."""
    return _GAP.sub(".*", source)


def _platform() -> str:
    """The CPU's feature flags: a serialized database is for the instruction set it was compiled on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return os.uname().machine


def _cache_dir() -> Path | None:
    where = os.environ.get("DG_CUE_CACHE_DIR", "")
    if where.lower() == "off":
        return None
    return Path(where) if where else Path.home() / ".cache" / "distill-guard"


class AsciiPrefilter:
    """The pieces that may match an ASCII text, by the ids they were given."""

    __slots__ = ("_always", "_db", "_found", "_on_match")

    def __init__(self, pieces: list[tuple[int, str]]) -> None:
        exprs = [(pid, loosen(src).encode("utf-8")) for pid, src in pieces]
        digest = hashlib.sha256(repr((hyperscan.__version__, _platform(), _FLAGS, exprs)).encode()).hexdigest()[:32]
        self._db, self._always = self._load(digest) or self._compile(exprs, digest)
        found: list[int] = []
        self._found = found
        append = found.append

        def on_match(pid: int, start: int, end: int, flags: int, context: object) -> None:
            append(pid)

        self._on_match = on_match

    def scan(self, text: str) -> list[int]:
        """Ids of the pieces that may match `text` (ASCII), each once, in no particular order."""
        found = self._found
        found.clear()
        self._db.scan(text.encode("ascii"), match_event_handler=self._on_match)
        return [*found, *self._always] if self._always else found.copy()

    @staticmethod
    def _load(digest: str) -> tuple[hyperscan.Database, tuple[int, ...]] | None:
        where = _cache_dir()
        if where is None:
            return None
        try:
            blob = (where / f"cues-{digest}.hsdb").read_bytes()
            always = (where / f"cues-{digest}.always").read_text().split()
            db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)  # a loaded database comes without one (compile makes one)
            return db, tuple(map(int, always))
        except (OSError, ValueError, hyperscan.error) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.warning("cue prefilter cache unreadable, compiling anew: %s", exc)
            return None

    @staticmethod
    def _compile(exprs: list[tuple[int, bytes]], digest: str) -> tuple[hyperscan.Database, tuple[int, ...]]:
        def build(items: list[tuple[int, bytes]]) -> hyperscan.Database:
            db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            db.compile(expressions=[e for _, e in items], ids=[p for p, _ in items], elements=len(items),
                       flags=[_FLAGS] * len(items))
            return db

        always: list[int] = []
        try:
            db = build(exprs)
        except hyperscan.error:  # Hyperscan does not say which: find the patterns it rejects one by one
            ok = []
            for item in exprs:
                try:
                    build([item])
                except hyperscan.error:
                    always.append(item[0])
                else:
                    ok.append(item)
            db = build(ok)
        where = _cache_dir()
        if where is not None:
            try:
                where.mkdir(parents=True, exist_ok=True)
                for suffix, data in ((".always", " ".join(map(str, always)).encode()), (".hsdb", hyperscan.dumpb(db))):
                    fd, tmp = tempfile.mkstemp(dir=where, prefix=".cues-")
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    os.replace(tmp, where / f"cues-{digest}{suffix}")  # .hsdb last: its presence means complete
            except OSError as exc:
                log.warning("cue prefilter not cached (%s): it compiles again at the next start", exc)
        return db, tuple(always)
