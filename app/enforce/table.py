"""The enforcer's TTL map: live decisions by (scope, value), rebuilt from the decisions topic.

What it holds. Under each key "<scope>:<value>" up to one live decision per action (block, challenge,
throttle): two producers may decide the same subject (the account stage throttles an account, the cluster
stage blocks it as a ring member) and their records reach the topic in either order, so a weaker decision
never overwrites a stronger one; a check answers the strongest live one (block > challenge > throttle). A
newer decision of the same action replaces the one held (newer by event time: the one the core made last).

What changes it.
- A decision is applied once per `decision_id` (consumers de-duplicate on it: a worker that restarts may
  publish a decision again). Its id is remembered until the decision expires, also after a lift removed
  it, so a re-delivered copy cannot bring a lifted decision back.
- `lift` removes the decisions held under its key that were made at or before its own event time (a
  decision the core made after the lift is not the one the lift ended).
- Expiry: a decision ends at its event time + ttl_s, compared with this machine's wall clock. This is the
  enforcement point, so it is the one place where the wall clock decides (the detection core never reads
  it). A decision already expired when it arrives (an old record read while rebuilding) is not held.
- `mode: shadow` decisions are what the rules would do, not what they do: counted, never held.
- Bounded memory: at most `max_entries` decisions held (live ones plus lifted/replaced ones whose id is
  remembered until they would have expired); past that, one that expires first is dropped (first to the
  second: expiry is kept in one-second buckets).

Throttle. A throttle carries limit_rpm: the subject may send limit_rpm requests a minute, not none. The
map runs a GCRA limiter (the token bucket without a timer) on each live throttle: one request every
60/limit_rpm s with a burst of limit_rpm (a minute's allowance at once); a request over it is answered
429 with Retry-After = the seconds until the next request would conform, capped at the seconds the
throttle has left. The limiter state is per enforcer process (docs/enforcer.md).

The map is single-threaded: the enforcer's event loop applies records and answers checks.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime

BLOCK, CHALLENGE, THROTTLE = 0, 1, 2
RANK = {"block": BLOCK, "challenge": CHALLENGE, "throttle": THROTTLE}
ACTIONS = ("block", "challenge", "throttle")

# outcomes of a consumed decision record (metric `distill_guard_enforcer_decisions_total{outcome}`)
OUTCOMES = ("applied", "lift", "duplicate", "shadow", "stale", "superseded", "invalid")
# why a held decision left the map (`distill_guard_enforcer_entries_removed_total{reason}`)
REMOVALS = ("lifted", "expired", "evicted", "replaced")


class Entry:
    """One held decision."""

    __slots__ = ("decision_id", "expires_ms", "key", "limit_rpm", "rank", "tat", "ts_ms")

    def __init__(self, key: str, rank: int, decision_id: str, ts_ms: int, expires_ms: int,
                 limit_rpm: int | None) -> None:
        self.key = key
        self.rank = rank
        self.decision_id = decision_id
        self.ts_ms = ts_ms
        self.expires_ms = expires_ms
        self.limit_rpm = limit_rpm
        self.tat = 0.0  # GCRA (throttle): the theoretical arrival time of the next request, epoch ms

    @property
    def action(self) -> str:
        return ACTIONS[self.rank]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A check's answer: `action` is "allow", "throttle" (over the limit: 429), "challenge" or "block".
    `entry` is the decision behind it (for an allow, a live throttle the request was within, if any)."""

    action: str
    entry: Entry | None = None
    retry_after_s: int = 0


ALLOW = Verdict("allow")

_MINUTES: dict[str, int] = {}


def parse_ts_ms(value: str) -> int:
    """Epoch ms of a contract timestamp ("2026-02-01T12:00:00.123Z"); other RFC 3339 forms are accepted
    too. The minute is parsed once and remembered (a rebuild reads many records of the same minute)."""
    if len(value) == 24 and value[23] == "Z" and value[19] == ".":
        minute = value[:16]
        base = _MINUTES.get(minute)
        if base is None:
            base = int(datetime.fromisoformat(minute + ":00+00:00").timestamp()) * 1000
            if len(_MINUTES) > 4096:
                _MINUTES.clear()
            _MINUTES[minute] = base
        return base + int(value[17:19]) * 1000 + int(value[20:23])
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _entries(v: Entry | list) -> list[Entry]:
    return [v] if v.__class__ is Entry else [e for e in v if e is not None]


class DecisionTable:
    """Memory layout (measured by app/bench/enforcer.py, docs/enforcer.md): a key with one live decision maps
    to its Entry directly, one with several to a [block, challenge, throttle] list; expiry is a wheel of
    one-second buckets (a list slot per decision) with a heap of the buckets' seconds, instead of a heap
    with a tuple per decision."""

    def __init__(self, max_entries: int = 2_000_000, clock=time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self._clock = clock
        self._slots: dict[str, Entry | list[Entry | None]] = {}  # key -> live decision(s)
        self._held: dict[str, Entry] = {}  # decision_id -> entry, live or not, until it expires
        self._wheel: dict[int, list[Entry]] = {}  # second (ceil of expires_ms / 1000) -> entries held
        self._seconds: list[int] = []  # heap of the wheel's seconds
        self.live = 0
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.removed = dict.fromkeys(REMOVALS, 0)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def held(self) -> int:
        """Decisions held: live ones, and lifted/replaced ones remembered (for de-duplication) until expiry."""
        return len(self._held)

    # ------------------------------------------------------------------ applying records

    def apply(self, rec: dict, now_ms: int | None = None) -> str:
        """Apply one decision record (contract v1, parsed JSON); returns its outcome (one of OUTCOMES)."""
        outcome = self._apply(rec, self.now_ms() if now_ms is None else now_ms)
        self.outcomes[outcome] += 1
        return outcome

    def _apply(self, rec: dict, now_ms: int) -> str:
        try:
            decision_id = rec["decision_id"]
            action = rec["action"]
            mode = rec["mode"]
            key = rec["scope"] + ":" + rec["value"]
            ts_ms = parse_ts_ms(rec["ts"])
            expires_ms = ts_ms + int(rec["ttl_s"]) * 1000
            limit_rpm = rec.get("limit_rpm")
        except (KeyError, TypeError, ValueError):
            return "invalid"
        if not isinstance(decision_id, str) or not decision_id:
            return "invalid"
        if decision_id in self._held:
            return "duplicate"
        if mode == "shadow":
            return "shadow"
        if mode != "enforce":
            return "invalid"
        if action == "lift":
            self._lift(key, ts_ms)
            if expires_ms > now_ms:  # remembered while it lasts, so a re-delivered copy counts as a duplicate
                self._remember(Entry(key, -1, decision_id, ts_ms, expires_ms, None))
            return "lift"
        rank = RANK.get(action)
        if rank is None or (rank == THROTTLE and not (isinstance(limit_rpm, int) and limit_rpm >= 1)):
            return "invalid"
        if expires_ms <= now_ms:
            return "stale"
        entry = Entry(key, rank, decision_id, ts_ms, expires_ms, limit_rpm if rank == THROTTLE else None)
        held = self._slots.get(key)
        current = None
        if held is not None:
            current = (held if held.rank == rank else None) if held.__class__ is Entry else held[rank]
        if current is not None:
            if current.expires_ms > now_ms:
                if current.ts_ms > ts_ms:  # the core has decided this subject again since: keep the newer
                    self._remember(entry)
                    return "superseded"
                self.removed["replaced"] += 1
            else:  # expired, not swept yet
                self.removed["expired"] += 1
            self.live -= 1
        if held is None or held is current:
            self._slots[key] = entry
        elif held.__class__ is Entry:
            both: list[Entry | None] = [None, None, None]
            both[held.rank] = held
            both[rank] = entry
            self._slots[key] = both
        else:
            held[rank] = entry
        self.live += 1
        self._remember(entry)
        return "applied"

    def _remember(self, entry: Entry) -> None:
        self._held[entry.decision_id] = entry
        second = -(-entry.expires_ms // 1000)
        bucket = self._wheel.get(second)
        if bucket is None:
            self._wheel[second] = [entry]
            heapq.heappush(self._seconds, second)
        else:
            bucket.append(entry)
        while len(self._held) > self.max_entries:
            self._drop_first("evicted")

    def _unlink(self, entry: Entry) -> bool:
        """Take `entry` out of the live map; False when it was not live (lifted, replaced)."""
        held = self._slots.get(entry.key)
        if held is entry:
            del self._slots[entry.key]
        elif held is not None and held.__class__ is not Entry and held[entry.rank] is entry:
            held[entry.rank] = None
            rest = [e for e in held if e is not None]
            if len(rest) == 1:
                self._slots[entry.key] = rest[0]
            elif not rest:
                del self._slots[entry.key]
        else:
            return False
        self.live -= 1
        return True

    def _lift(self, key: str, ts_ms: int) -> None:
        held = self._slots.get(key)
        if held is None:
            return
        for entry in _entries(held):
            if entry.ts_ms <= ts_ms and self._unlink(entry):
                self.removed["lifted"] += 1

    def _drop_first(self, reason: str) -> None:
        """Forget a held decision of the earliest expiry second (counted under `reason` if it was live)."""
        second = self._seconds[0]
        bucket = self._wheel[second]
        entry = bucket.pop()
        if not bucket:
            del self._wheel[second]
            heapq.heappop(self._seconds)
        if self._held.get(entry.decision_id) is entry:
            del self._held[entry.decision_id]
        if entry.rank >= 0 and self._unlink(entry):
            self.removed[reason] += 1

    def expire(self, now_ms: int | None = None) -> None:
        """Remove what has expired by now, whole seconds of the wheel at a time (checks compare each entry's
        own expiry, so this only frees memory and keeps the gauges current; the enforcer calls it every
        second)."""
        now = self.now_ms() if now_ms is None else now_ms
        seconds = self._seconds
        while seconds and seconds[0] * 1000 <= now:
            self._drop_first("expired")

    # ------------------------------------------------------------------ answering checks

    def check(self, keys: list[str], now_ms: float | None = None) -> Verdict:
        """The answer for a request whose headers name `keys`: the strongest live decision on any of them;
        a throttle only when the request is over its limit (every live throttle must allow it)."""
        now = self._clock() * 1000 if now_ms is None else now_ms
        seconds = self._seconds
        if seconds and seconds[0] * 1000 <= now:
            self.expire(int(now))
        best: Entry | None = None
        throttles: list[Entry] | None = None
        slots_of = self._slots
        for key in keys:
            held = slots_of.get(key)
            if held is None:
                continue
            for e in (held,) if held.__class__ is Entry else held:
                if e is None or e.expires_ms <= now:
                    continue
                if e.rank != THROTTLE:
                    if best is None or e.rank < best.rank:
                        best = e
                elif throttles is None:
                    throttles = [e]
                else:
                    throttles.append(e)
        if best is not None:
            return Verdict(ACTIONS[best.rank], best)
        if throttles is None:
            return ALLOW
        # GCRA with a burst of limit_rpm: one request every 60/limit_rpm s, and a request conforms when
        # tat + interval - limit_rpm * interval <= now
        worst: Entry | None = None
        worst_wait = 0.0
        for e in throttles:
            interval = 60_000.0 / e.limit_rpm
            wait = (e.tat if e.tat > now else now) + interval - e.limit_rpm * interval - now
            if wait > worst_wait:
                worst, worst_wait = e, wait
        if worst is not None:
            left = (worst.expires_ms - now) / 1000
            return Verdict("throttle", worst, max(1, math.ceil(min(worst_wait / 1000, left))))
        tightest = throttles[0]
        for e in throttles:
            e.tat = (e.tat if e.tat > now else now) + 60_000.0 / e.limit_rpm
            if e.limit_rpm < tightest.limit_rpm:
                tightest = e
        return Verdict("allow", tightest)

    def get(self, scope: str, value: str, now_ms: int | None = None) -> dict[str, Entry]:
        """The live decisions held on (scope, value), by action (for tests and the demo)."""
        now = self.now_ms() if now_ms is None else now_ms
        held = self._slots.get(scope + ":" + value)
        return {e.action: e for e in (_entries(held) if held is not None else []) if e.expires_ms > now}


class LatencyHistogram:
    """Counts of observations per bucket, kept as plain ints (the check path runs on one thread; a
    prometheus_client Histogram takes a lock per observation). Exported by app/enforce/metrics.py."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.buckets, seconds)] += 1
        self.total += seconds
