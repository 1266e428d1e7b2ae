"""Campaign clusters: accounts joined through rare shared fingerprints (incremental union-find with
union by size), with cluster-level signals. Bounded: members per cluster are capped (oldest dropped),
and clusters and both indexes expire when idle."""

from __future__ import annotations

from app.detect.hits import Hit, at_least
from app.detect.messages import Link, Summary

# member record: [first_ms, org or "", young, unverified, n, flagged, decided_until_ms, linked_scopes]
_FIRST, _ORG, _YOUNG, _UNVER, _N, _FLAG, _DEC, _SCOPES = range(8)
SCOPE_BITS = {"payment_fp": 1, "device_id": 2, "template": 4, "ip_prefix": 8, "ja4": 16}
STRONG_SCOPES = 1 | 2 | 8


def member_implicated(m: list) -> bool:
    """Whether a cluster decision may be fanned out to this member. A member joined only through one
    weak value (a browser JA4, an IP block) may be a bystander who shares it: it needs its own content
    evidence, a strong link (payment method, device, proxy IP block) or links through two kinds of value."""
    bits = m[_SCOPES]
    return bool(bits & STRONG_SCOPES) or bits.bit_count() >= 2 or m[_FLAG] > 0


class ClusterState:
    __slots__ = (
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
        self.fps: dict[str, list] = {}       # "scope:value" -> [accounts, orgs, decided_until_ms]
        self.live: list | None = None         # the cluster's live decision, to fan out to late joiners
        self.pol_until_ms = 0
        self.pol_level = -1
        self.pol_offences: list[int] = []
        self.pol_alert_ms = 0
        self.pol_action = ""

    def snapshot(self) -> list:
        return [2, self.cid, self.first_ms, self.last_ms, self.members, self.fps, self.live,
                self.pol_until_ms, self.pol_level, self.pol_offences, self.pol_alert_ms, self.pol_action]

    @classmethod
    def restore(cls, s: list) -> ClusterState:
        if not s or s[0] != 2:
            raise ValueError(f"unknown cluster state version {s[:1]!r}")
        c = cls.__new__(cls)
        (_, c.cid, c.first_ms, c.last_ms, c.members, c.fps, c.live, c.pol_until_ms, c.pol_level,
         c.pol_offences, c.pol_alert_ms, c.pol_action) = s
        return c

    def add(self, s: Summary, max_members: int, scope: str = "") -> bool:
        """Add or refresh a member; True when it is new to the cluster."""
        m = self.members.get(s.account_id)
        bit = SCOPE_BITS.get(scope, 0)
        if m is None:
            self.members[s.account_id] = [s.first_ms, s.org or "", int(s.young), int(s.unverified),
                                          s.n, s.flagged, 0, bit]
            if len(self.members) > max_members:
                oldest = min(self.members, key=lambda k: (self.members[k][_FIRST], k))
                del self.members[oldest]
            return True
        m[_FIRST] = min(m[_FIRST], s.first_ms)
        m[_ORG] = m[_ORG] or (s.org or "")
        m[_YOUNG] = max(m[_YOUNG], int(s.young))
        m[_UNVER] = max(m[_UNVER], int(s.unverified))
        m[_N] = max(m[_N], s.n)
        m[_FLAG] = max(m[_FLAG], s.flagged)
        m[_SCOPES] |= bit
        return False

    def absorb(self, other: ClusterState, max_members: int) -> None:
        for acct, m in other.members.items():
            mine = self.members.get(acct)
            if mine is None:
                self.members[acct] = m
            else:
                mine[_N] = max(mine[_N], m[_N])
                mine[_FLAG] = max(mine[_FLAG], m[_FLAG])
                mine[_DEC] = max(mine[_DEC], m[_DEC])
                mine[_SCOPES] |= m[_SCOPES]
        while len(self.members) > max_members:
            oldest = min(self.members, key=lambda k: (self.members[k][_FIRST], k))
            del self.members[oldest]
        for k, v in other.fps.items():
            self.fps.setdefault(k, v)
        self.first_ms = min(self.first_ms, other.first_ms)
        self.last_ms = max(self.last_ms, other.last_ms)


def cluster_signals(c: ClusterState, link: Link, rules) -> list[Hit]:
    hits: list[Hit] = []
    sig = rules.signal
    members = c.members
    size = len(members)
    at_least(sig("CL_SIZE"), size, f"{size} accounts linked through rare shared fingerprints", hits)
    n = sum(m[_N] for m in members.values())
    flagged = sum(m[_FLAG] for m in members.values())
    s = sig("CL_CONTENT")
    if s is not None and n >= s.min_requests and flagged:
        at_least(s, flagged / n, f"{flagged} of {n} requests across the cluster are trace elicitation, "
                                 "rubric grading or censorship-safe rewrites", hits)
    young = sum(m[_YOUNG] for m in members.values())
    s = sig("CL_YOUNG")
    if s is not None and size >= s.min_requests:
        at_least(s, young / size, f"{young} of {size} accounts are new at first use", hits)
    s = sig("CL_SYNC_START")
    if s is not None and size >= max(3, s.min_requests):
        firsts = sorted(m[_FIRST] for m in members.values())
        best, j = 0, 0
        for i, t in enumerate(firsts):  # largest number of first requests inside one window
            while firsts[j] < t - s.window_ms:
                j += 1
            best = max(best, i - j + 1)
        at_least(s, best / size, f"{best} of {size} accounts started within "
                                 f"{s.window_ms // 60000} min of each other", hits)
    s = sig("FP_PAYMENT_SHARED")
    if s is not None:
        pay = [(v[0], k) for k, v in c.fps.items() if k.startswith("payment_fp:") and v[1] >= 2]
        if pay:
            cnt, key = max(pay)
            at_least(s, cnt, f"{cnt} accounts from different orgs pay with {key}", hits)
    s = sig("FP_SHARED_UNRELATED")
    if s is not None and size and young / size >= s.min_young_share:
        infra = [(v[1], k) for k, v in c.fps.items() if not k.startswith(("payment_fp:", "template:"))]
        if infra:
            orgs, key = max(infra)
            at_least(s, orgs, f"{key} is shared by accounts of {orgs} different orgs", hits)
    return hits
