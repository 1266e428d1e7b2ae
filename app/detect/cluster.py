"""Campaign clusters: accounts joined through rare shared fingerprints (incremental union-find with
union by size), with cluster-level signals. Bounded: members per cluster are capped (oldest dropped),
and clusters and both indexes expire when idle."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from heapq import heapify, heappop, heappush

from app.detect.hits import Hit, at_least
from app.detect.messages import Summary

# member record: [first_ms, org or "", young, unverified, n, flagged, decided_until_ms, linked_scopes, pivot]
_FIRST, _ORG, _YOUNG, _UNVER, _N, _FLAG, _DEC, _SCOPES, _PIVOT = range(9)
SCOPE_BITS = {"payment_fp": 1, "device_id": 2, "template": 4, "ip_prefix": 8, "ja4": 16, "system_prompt": 32}
STRONG_SCOPES = 1 | 2


def max_values(max_members: int) -> int:
    """Linking values a cluster keeps (the newest, and those behind its figures)."""
    return max(64, max_members)


def member_implicated(m: list) -> bool:
    """Whether a cluster decision may be fanned out to this member. Sharing a browser JA4 or a prompt
    template with a campaign is what bystanders do too (resold genuine traffic uses ordinary prompts), and
    so is sharing an ISP's IP block and a common browser JA4 with a neighbour (a cluster grows through
    such pairs of weak values, member by member, far from its campaign): a member needs a strong link
    (payment method, device), a shared IP block plus a shared system prompt (the same application), a
    shared IP block and JA4 together with a flagged request of its own, or content evidence of its own."""
    bits = m[_SCOPES]
    return (bool(bits & STRONG_SCOPES) or bool(bits & 8 and bits & 32)
            or bool(bits & 8 and bits & 16 and m[_FLAG] >= 1) or m[_FLAG] >= 2)


def member_strongly_implicated(m: list) -> bool:
    """Implicated by a payment method or device it shares with the cluster, or by its own content."""
    return bool(m[_SCOPES] & STRONG_SCOPES) or m[_FLAG] >= 2


class ClusterState:
    """A cluster's members, linking values and running figures. Besides what `snapshot` stores it keeps
    derived indexes (rebuilt by `restore`), so that a link costs O(log n) at the member cap:
    `_oldest`, a heap of (first_ms, account) with lazy deletion (an entry is current while the member is
    and has that first_ms), the eviction order; `_firsts`, the members' first-request times, sorted, for
    `sync_start`, with `_counts` (once `sync_start` has run, for its window `_counts_w`): for each of
    them the number of members whose first request falls in the window ending there, kept up to date
    as members come and go; `_tmpl` and `_other`, the template and the other linking values in the
    order of `fps`, for `cap_fps`."""
    __slots__ = (
        "_counts",
        "_counts_w",
        "_firsts",
        "_oldest",
        "_other",
        "_tmpl",
        "agg",
        "cid",
        "first_ms",
        "fps",
        "last_ms",
        "live",
        "members",
        "pol_action",
        "pol_alert_ms",
        "pol_level",
        "pol_offences",
        "pol_until_ms",
    )

    def __init__(self, cid: str, ts_ms: int) -> None:
        self.cid = cid
        self.first_ms = ts_ms
        self.last_ms = ts_ms
        self.members: dict[str, list] = {}
        self.fps: dict[str, list] = {}       # "scope:value" -> [accounts, orgs, decided_until_ms, last_link_ms]
        # running aggregates, so a link costs O(1) instead of a scan of members and values:
        # [sum n, sum flagged, young members, best payment (orgs, key), best infra (orgs, key), sync,
        #  members whose last summary says they pivoted to a new model]
        self.agg: list = [0, 0, 0, 0, "", 0, "", 0, 0]
        self.live: list | None = None         # the cluster's live decision, to fan out to late joiners
        self.pol_until_ms = 0
        self.pol_level = -1
        self.pol_offences: list[int] = []
        self.pol_alert_ms = 0
        self.pol_action = ""
        self._oldest: list[tuple[int, str]] = []
        self._firsts: list[int] = []
        self._counts: list[int] | None = None
        self._counts_w = 0
        self._tmpl: dict[str, None] = {}
        self._other: dict[str, None] = {}

    def _reindex(self) -> None:
        """Rebuild the derived indexes from `members` and `fps`."""
        self._oldest = [(m[_FIRST], k) for k, m in self.members.items()]
        heapify(self._oldest)
        self._firsts = sorted(m[_FIRST] for m in self.members.values())
        self._counts = None
        self._tmpl = {k: None for k in self.fps if k.startswith("template:")}
        self._other = {k: None for k in self.fps if not k.startswith("template:")}

    def _pop_oldest(self) -> list:
        """Remove the member with the smallest (first_ms, account); its record."""
        heap, members = self._oldest, self.members
        while True:
            first, k = heappop(heap)
            m = members.get(k)
            if m is not None and m[_FIRST] == first:
                break
        del members[k]
        self._first_out(first)
        return m

    def _first_in(self, t: int) -> None:
        f, counts = self._firsts, self._counts
        lo = bisect_left(f, t)
        if counts is not None:  # t falls in the windows ending in [t, t + w]
            w = self._counts_w
            hi = bisect_right(f, t + w)
            if hi > lo:
                counts[lo:hi] = [n + 1 for n in counts[lo:hi]]
            f.insert(lo, t)
            counts.insert(lo, bisect_right(f, t) - bisect_left(f, t - w))
        else:
            f.insert(lo, t)

    def _first_out(self, t: int) -> None:
        f, counts = self._firsts, self._counts
        lo = bisect_left(f, t)
        del f[lo]
        if counts is not None:
            del counts[lo]
            hi = bisect_right(f, t + self._counts_w)
            if hi > lo:
                counts[lo:hi] = [n - 1 for n in counts[lo:hi]]

    def _evict_to(self, max_members: int) -> list | None:
        """Drop the oldest members beyond `max_members`; the record of the last one dropped."""
        dropped = None
        while len(self.members) > max_members:
            dropped = self._pop_oldest()
        if len(self._oldest) > 2 * len(self.members) + 64:  # mostly stale entries: rebuild
            self._oldest = [(m[_FIRST], k) for k, m in self.members.items()]
            heapify(self._oldest)
        return dropped

    def snapshot(self) -> list:
        return [5, self.cid, self.first_ms, self.last_ms, self.members, self.fps, self.agg, self.live,
                self.pol_until_ms, self.pol_level, self.pol_offences, self.pol_alert_ms, self.pol_action]

    @classmethod
    def restore(cls, s: list) -> ClusterState:
        if not s or s[0] not in (3, 4, 5):
            raise ValueError(f"unknown cluster state version {s[:1]!r}")
        c = cls.__new__(cls)
        (version, c.cid, c.first_ms, c.last_ms, c.members, c.fps, c.agg, c.live, c.pol_until_ms, c.pol_level,
         c.pol_offences, c.pol_alert_ms, c.pol_action) = s
        if version == 3:  # values without the time of their last link: as of the cluster's last activity
            for v in c.fps.values():
                v.append(c.last_ms)
        if version < 5:  # members without the pivot flag: none known to have pivoted
            for m in c.members.values():
                m.append(0)
            c.agg.append(0)
        c._reindex()
        return c

    def add(self, s: Summary, max_members: int, scope: str = "") -> bool:
        """Add or refresh a member; True when it is new to the cluster."""
        m = self.members.get(s.account_id)
        bit = SCOPE_BITS.get(scope, 0)
        a = self.agg
        if m is None:
            self.members[s.account_id] = [s.first_ms, s.org or "", int(s.young), int(s.unverified),
                                          s.n, s.flagged, 0, bit, int(s.pivot)]
            heappush(self._oldest, (s.first_ms, s.account_id))
            self._first_in(s.first_ms)
            a[0] += s.n
            a[1] += s.flagged
            a[2] += int(s.young)
            a[8] += int(s.pivot)
            if len(self.members) > max_members:  # the oldest member makes room (maybe the new one)
                gone = self._evict_to(max_members)
                a[0] -= gone[_N]
                a[1] -= gone[_FLAG]
                a[2] -= gone[_YOUNG]
                a[8] -= gone[_PIVOT]
            a[7] = -1  # membership changed: synchronised-start figure is stale
            return True
        if s.first_ms < m[_FIRST]:
            self._first_out(m[_FIRST])
            self._first_in(s.first_ms)
            m[_FIRST] = s.first_ms
            heappush(self._oldest, (s.first_ms, s.account_id))
        m[_ORG] = m[_ORG] or (s.org or "")
        if s.young and not m[_YOUNG]:
            m[_YOUNG] = 1
            a[2] += 1
        m[_UNVER] = max(m[_UNVER], int(s.unverified))
        if s.n > m[_N]:
            a[0] += s.n - m[_N]
            m[_N] = s.n
        if s.flagged > m[_FLAG]:
            a[1] += s.flagged - m[_FLAG]
            m[_FLAG] = s.flagged
        m[_SCOPES] |= bit
        if int(s.pivot) != m[_PIVOT]:  # the newest summary says
            a[8] += int(s.pivot) - m[_PIVOT]
            m[_PIVOT] = int(s.pivot)
        return False

    def note_fp(self, key: str, accounts: int, orgs: int, max_values: int, ts_ms: int = 0) -> None:
        """Record what a linking value looks like now, keeping the strongest payment and infra values
        (by the number of orgs behind them: a team card shared by colleagues and one outsider is two
        orgs, however many colleagues there are)."""
        prev = self.fps.get(key)
        self.fps[key] = [accounts, orgs, prev[2] if prev else 0, max(ts_ms, prev[3] if prev else 0)]
        if prev is None:
            (self._tmpl if key.startswith("template:") else self._other)[key] = None
        a = self.agg
        if key.startswith("payment_fp:"):
            if orgs >= 2 and orgs > a[3]:
                a[3], a[4] = orgs, key
        elif not key.startswith("template:") and orgs > a[5]:
            a[5], a[6] = orgs, key
        self.cap_fps(max_values, key)

    def cap_fps(self, max_values: int, keep: str = "") -> None:
        """At most `max_values` values: the oldest template values go first, then the oldest others;
        the value just seen and the values behind the payment and infra figures are kept."""
        over = len(self.fps) - max_values
        if over <= 0:
            return
        a = self.agg
        kept = {keep, a[4], a[6]}
        drop = _first_not_in(self._tmpl, kept, over)
        if len(drop) < over:
            drop += _first_not_in(self._other, kept, over - len(drop))
        for k in drop:
            del self.fps[k]
            if k.startswith("template:"):
                del self._tmpl[k]
            else:
                del self._other[k]

    def fresh_infra(self, now_ms: int, window_ms: int) -> tuple[int, str]:
        """The infra value (JA4, IP block, device) shared by the most orgs among those that linked an
        account within `window_ms`. A value that stops linking has either no new accounts behind it or
        has become popular (a common SDK's JA4 looks rare in the first minutes after a cold start, then
        links nothing): either way its old figure is no longer evidence. Rescans only when the kept
        best value went stale."""
        a = self.agg
        v = self.fps.get(a[6]) if a[6] else None
        if v is not None and now_ms - v[3] <= window_ms:
            return a[5], a[6]
        if not a[6]:
            return 0, ""
        best, key = 0, ""
        for k, v in self.fps.items():
            if (now_ms - v[3] <= window_ms and v[1] > best and not k.startswith("template:")
                    and not k.startswith("payment_fp:")):
                best, key = v[1], k
        a[5], a[6] = best, key
        return best, key

    def recompute(self) -> None:
        ms = self.members.values()
        a = self.agg
        a[0] = sum(m[_N] for m in ms)
        a[1] = sum(m[_FLAG] for m in ms)
        a[2] = sum(m[_YOUNG] for m in ms)
        a[8] = sum(m[_PIVOT] for m in ms)
        a[7] = -1

    def absorb(self, other: ClusterState, max_members: int) -> None:
        for acct, m in other.members.items():
            mine = self.members.get(acct)
            if mine is None:
                self.members[acct] = m
            else:
                mine[_N] = max(mine[_N], m[_N])
                mine[_FLAG] = max(mine[_FLAG], m[_FLAG])
                mine[_DEC] = max(mine[_DEC], m[_DEC])
                mine[_YOUNG] = max(mine[_YOUNG], m[_YOUNG])
                mine[_SCOPES] |= m[_SCOPES]
                mine[_PIVOT] = max(mine[_PIVOT], m[_PIVOT])
        for k, v in other.fps.items():
            self.fps.setdefault(k, v)
        self._reindex()
        self._evict_to(max_members)
        if other.pol_until_ms > self.pol_until_ms:
            # the absorbed cluster was decided: its live decision and policy memory carry over, so
            # late joiners of the merged cluster still get it
            self.live, self.pol_until_ms, self.pol_level = other.live, other.pol_until_ms, other.pol_level
            self.pol_action, self.pol_alert_ms = other.pol_action, max(self.pol_alert_ms, other.pol_alert_ms)
            self.pol_offences = sorted({*self.pol_offences, *other.pol_offences})[-8:]
        a, b = self.agg, other.agg
        if b[3] > a[3]:
            a[3], a[4] = b[3], b[4]
        if b[5] > a[5]:
            a[5], a[6] = b[5], b[6]
        self.cap_fps(max_values(max_members))
        self.recompute()
        self.first_ms = min(self.first_ms, other.first_ms)
        self.last_ms = max(self.last_ms, other.last_ms)

    def sync_start(self, window_ms: int) -> int:
        """Largest number of members whose first request falls inside one window (cached per membership):
        the most first requests in [t - window, t] for a member's first request t."""
        if self.agg[7] < 0:
            counts = self._counts
            if counts is None or self._counts_w != window_ms:
                f = self._firsts  # == sorted(m[_FIRST] for m in self.members.values())
                counts = self._counts = [bisect_right(f, t) - bisect_left(f, t - window_ms) for t in f]
                self._counts_w = window_ms
            self.agg[7] = max(counts, default=0)
        return self.agg[7]


def _first_not_in(keys: dict[str, None], kept: set[str], n: int) -> list[str]:
    """The first `n` keys (in order) that are not in `kept`."""
    out: list[str] = []
    if n <= 0:
        return out
    for k in keys:
        if k not in kept:
            out.append(k)
            if len(out) == n:
                break
    return out


def cluster_signals(c: ClusterState, rules) -> list[Hit]:
    """Every cluster signal that fires on the cluster as it is now, with its figure."""
    hits: list[Hit] = []
    sig = rules.signal
    size = len(c.members)
    n, flagged, young, pay_cnt, pay_key, infra_orgs, infra_key, _, pivoted = c.agg
    at_least(sig("CL_SIZE"), size, lambda: f"{size} accounts linked through rare shared fingerprints", hits)
    s = sig("CL_CONTENT")
    if s is not None and n >= s.min_requests and flagged:
        at_least(s, flagged / n, lambda: f"{flagged} of {n} requests across the cluster are trace elicitation, "
                                 "rubric grading or censorship-safe rewrites", hits)
    s = sig("CL_VOLUME")
    if s is not None and size >= s.min_requests:
        at_least(s, n, lambda: f"{n} requests across {size} accounts (each counted as of its last summary, a lower "
                       "bound)", hits)
    s = sig("CL_YOUNG")
    if s is not None and size >= s.min_requests:
        at_least(s, young / size, lambda: f"{young} of {size} accounts are new at first use", hits)
    s = sig("CL_SYNC_START")
    if s is not None and size >= max(3, s.min_requests):
        best = c.sync_start(s.window_ms)
        at_least(s, best / size, lambda: f"{best} of {size} accounts started within "
                                 f"{s.window_ms // 60000} min of each other", hits)
    s = sig("CL_MODEL_PIVOT")
    if s is not None and size >= s.min_requests and pivoted:
        acct = sig("ACCT_MODEL_PIVOT")  # what counts as a member's pivot (no members pivot without it)
        hours = acct.window_ms // 3_600_000 if acct is not None else 0
        at_least(s, pivoted / size, lambda: f"{pivoted} of {size} accounts moved most of their traffic to a model they "
                                    f"first used within the last {hours} h", hits)
    s = sig("FP_PAYMENT_SHARED")
    if s is not None and pay_key:
        accounts = c.fps[pay_key][0] if pay_key in c.fps else pay_cnt
        at_least(s, pay_cnt, lambda: f"{pay_cnt} different orgs ({accounts} accounts) pay with {pay_key}", hits)
    s = sig("FP_SHARED_UNRELATED")
    if s is not None and size and infra_key and young / size >= s.min_young_share:
        if s.window_ms:
            infra_orgs, infra_key = c.fresh_infra(c.last_ms, s.window_ms)
        if infra_key:
            at_least(s, infra_orgs, lambda: f"{infra_key} is shared by accounts of {infra_orgs} different orgs", hits)
    return hits
