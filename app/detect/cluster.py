"""Campaign clusters and rings: accounts joined through shared values, with their running figures and the
cluster-level signals.

A *community* is joined through strong values only (a payment method, a device, a campaign's harness
system prompt): sharing one ties accounts to one operator. A *ring* joins accounts that each have abuse
evidence of their own through weak values (an IP block, a JA4, a prompt template). Weak values never join
two clusters, so a campus NAT or a popular SDK cannot chain one community into another. Bounded: members
per cluster are capped (oldest dropped), and clusters and their indexes expire when idle."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from heapq import heapify, heappop, heappush

from app.detect.hits import Hit, fired
from app.detect.hits import at_least as _at_least
from app.detect.messages import (
    OWN_CONTENT,
    OWN_HARNESS,
    OWN_HARVEST,
    OWN_NETWORK,
    OWN_PAYMENT,
    OWN_POOL,
    Summary,
    trimmed,
)
from app.rules.model import Attribution, per_rules

COMMUNITY, RING = "community", "ring"
# how a member is tied to its cluster: one bit per kind of value it was linked through
SCOPE_BITS = {"payment_fp": 1, "device_id": 2, "template": 4, "ip_prefix": 8, "ja4": 16, "system_prompt": 32,
              "harness": 64}
STRONG_TIES = 1 | 2 | 64
MAX_STRONG_VALUES = 4  # strong values remembered per member (to find who shares them)


def max_values(max_members: int) -> int:
    """Linking values a cluster keeps (the newest, and those behind its figures)."""
    return max(64, max_members)


def tie_scope(fp: str, strong: bool) -> str:
    """The SCOPE_BITS name of a link's value: a system prompt is a `harness` when it links as a strong value."""
    if fp.startswith("template:sys:"):
        return "harness" if strong else "system_prompt"
    return fp.partition(":")[0]


class Member:
    """What a cluster keeps of one member: figures from its latest summary, how it is tied, and the
    decision the cluster last carried to it."""
    __slots__ = (
        "asn",
        "block",
        "dec_level",
        "dec_until",
        "first_ms",
        "flagged",
        "harness",
        "harvest",
        "home",
        "n",
        "net",
        "org",
        "own",
        "payment",
        "pivot",
        "risky",
        "seen_ms",
        "strong",
        "throwaway",
        "ties",
        "verified",
        "young",
    )

    def __init__(self, s: Summary, ties: int, ts_ms: int = 0) -> None:
        self.first_ms = s.first_ms
        self.org = s.org or ""
        self.young = s.young
        self.risky = s.risky
        self.throwaway = s.throwaway  # disposable email or no KYC (sticky, like young and risky)
        self.n = s.n
        self.flagged = s.flagged
        self.own = s.own
        self.pivot = s.pivot
        self.ties = ties
        self.seen_ms = ts_ms          # event time of the summary its own evidence and pivot flag are from
        self.payment = False          # a throwaway holder of a card shared by risky orgs (kept)
        self.harvest = False          # a risky sender of a flagged request on a harvest template (kept)
        self.harness = False          # a throwaway user of a harness prompt that throwaway orgs run (kept)
        self.block = s.hosting_block  # the hosting IP block of its latest summary (0: none)
        self.net = s.net              # the IP block of its latest summary, any network (0: none)
        self.asn = s.asn              # ... and its network's operator (ASN; 0: none)
        self.home = s.home            # at home: every request from its billing country, no proxy or hosting
        self.verified = s.verified    # its identity verified (KYC id_verified), as of its latest summary
        self.strong: list[str] = []   # strong values it was linked through, at most MAX_STRONG_VALUES
        self.dec_until = 0            # until when the cluster's decision reached it
        self.dec_level = -1           # ... at which level (app.policy.decide.LEVELS index)

    @property
    def strongly_tied(self) -> bool:
        return bool(self.ties & STRONG_TIES)

    @property
    def evidence(self) -> int:
        """Its own abuse evidence: the account stage's bits, and the rings the cluster sees."""
        return _evidence(self.own, self.payment, self.harvest, self.harness)

    def figures(self) -> tuple:
        """What the cluster's figures, signals and attribution gate read of it (`ClusterState.rev`)."""
        return (self.first_ms, self.young, self.risky, self.n, self.flagged, self.own, self.pivot, self.block,
                self.payment, self.ties, self.harvest, self.harness, self.net, self.asn, self.throwaway, self.home,
                self.verified)

    def snapshot(self) -> list:
        return [self.first_ms, self.org, int(self.young), int(self.risky), self.n, self.flagged, self.own,
                int(self.pivot), self.ties, self.strong, self.dec_until, self.dec_level, self.seen_ms,
                int(self.payment), self.block, int(self.harvest), int(self.throwaway), int(self.harness), self.net,
                self.asn, *trimmed([int(self.home), int(self.verified)])]

    @classmethod
    def restore(cls, s: list) -> Member:
        m = cls.__new__(cls)
        (m.first_ms, m.org, young, risky, m.n, m.flagged, m.own, pivot, m.ties, m.strong, m.dec_until,
         m.dec_level, m.seen_ms, payment, m.block) = s[:15]
        # a member stored before `harvest` (15 fields), `throwaway` and `harness` (16), `net` (18), `asn` (19)
        # `home` (20) or `verified` (21) has none
        m.harvest = len(s) > 15 and bool(s[15])
        m.throwaway = len(s) > 16 and bool(s[16])
        m.harness = len(s) > 17 and bool(s[17])
        m.net = s[18] if len(s) > 18 else 0
        m.asn = s[19] if len(s) > 19 else 0
        m.home = len(s) > 20 and bool(s[20])
        m.verified = len(s) > 21 and bool(s[21])
        m.young, m.risky, m.pivot, m.payment = bool(young), bool(risky), bool(pivot), bool(payment)
        return m


class Value:
    """A linking value as the cluster last heard of it from the fingerprint stage."""
    __slots__ = ("accounts", "decided_until", "exit", "harness", "last_ms", "orgs", "risky_orgs", "strong",
                 "unrelated")

    def __init__(self, accounts: int, orgs: int, risky_orgs: int, last_ms: int, strong: bool = False,
                 unrelated: bool = False, exit_: bool = False) -> None:
        self.accounts = accounts
        self.orgs = orgs
        # the orgs of its ring-like holders: new, disposable or KYC-less ones, or all of them on a card whose
        # holders share no network (`unrelated`, as the fingerprint stage last judged it)
        self.risky_orgs = risky_orgs
        self.strong = strong
        self.decided_until = 0
        self.last_ms = last_ms
        self.harness = False  # a harness prompt its throwaway members were marked on (`mark_harness`)
        self.unrelated = unrelated
        # an IP block whose users are mostly accounts of several orgs with flagged requests through it (`exit`,
        # as the fingerprint stage last judged it: fingerprints.exit_ring)
        self.exit = exit_

    def snapshot(self) -> list:
        # the three flags only when set: a value without them stores exactly as before they existed
        return [self.accounts, self.orgs, self.risky_orgs, int(self.strong), self.decided_until, self.last_ms,
                *trimmed([int(self.harness), int(self.unrelated), int(self.exit)])]

    @classmethod
    def restore(cls, s: list) -> Value:
        v = cls(s[0], s[1], s[2], s[5], bool(s[3]), len(s) > 7 and bool(s[7]), len(s) > 8 and bool(s[8]))
        v.decided_until = s[4]
        v.harness = len(s) > 6 and bool(s[6])
        return v


class Live:
    """The cluster's live decision: a fact about the cluster (its evidence and level), from which each
    member's decision is made under the rules in force when the member is reached. `judged`: attribution's
    memo of it under the rules in force (`live_now`; not stored). `new_card`: made on fewer members with own
    evidence than `cluster_min_own_members`, as a community of new accounts on one card (`new_card_community`):
    it reaches members that are not risky only while the community is one."""
    __slots__ = ("action", "alert_id", "decision_id", "judged", "mode", "new_card", "reasons", "ts_ms", "ttl_s")

    def __init__(self, decision_id: str, action: str, ttl_s: int, reasons: tuple[str, ...], alert_id: str,
                 mode: str, ts_ms: int, new_card: bool = False) -> None:
        self.decision_id = decision_id
        self.action = action
        self.ttl_s = ttl_s
        self.reasons = tuple(reasons)
        self.alert_id = alert_id
        self.mode = mode
        self.ts_ms = ts_ms
        self.new_card = new_card
        self.judged: tuple | None = None

    @property
    def until_ms(self) -> int:
        return self.ts_ms + self.ttl_s * 1000

    def snapshot(self) -> list:
        # `new_card` only when set: a decision made otherwise stores exactly as before it existed
        return [self.decision_id, self.action, self.ttl_s, list(self.reasons), self.alert_id, self.mode, self.ts_ms,
                *([1] if self.new_card else [])]

    @classmethod
    def restore(cls, s: list) -> Live:
        return cls(s[0], s[1], s[2], tuple(s[3]), s[4], s[5], s[6], len(s) > 7 and bool(s[7]))


class ClusterState:
    """A cluster's members, linking values and running figures. Besides what `snapshot` stores it keeps
    derived indexes (rebuilt by `restore`), so that a link costs O(log n) at the member cap:
    `_oldest`, a heap of (first_ms, account) with lazy deletion (an entry is current while the member is
    and has that first_ms), the eviction order; `_firsts`, the members' first-request times, sorted, for
    `sync_start`, with `_counts` (once `sync_start` has run, for its window `_counts_w`): for each of
    them the number of members whose first request falls in the window ending there, kept up to date
    as members come and go; `_tmpl` and `_other`, the template and the other linking values in the
    order of `fps`, for `cap_fps`. `rev` counts the changes of what `cluster_signals` and the
    attribution gate read (the members' `figures`, membership, the payment and infra values) except
    time, so that the stage assesses a cluster again only when it changed; `rev_n` counts those of the
    changes that moved only a member's request counts (`quiet`: what they can change is read through
    `request_outcome` and the pooled content verdict), `rev_f` those of a member with a flagged request
    (which, under pooled content, can change its evidence); `assessed` is the stage's
    memo of that assessment and `viewed` attribution's of its view; `reached` is attribution's reach
    index and `touched` the members whose record changed, or who came or went, since it last read them
    (None: no index kept; none of these is stored)."""
    __slots__ = (
        "_counts",
        "_counts_w",
        "_firsts",
        "_oldest",
        "_other",
        "_pool_nonet",
        "_pool_plain",
        "_pool_s",
        "_shared",
        "_tmpl",
        "asns",
        "assessed",
        "blocks",
        "cid",
        "exits",
        "first_ms",
        "flagged_members",
        "flagged_sum",
        "fps",
        "home_nets",
        "hosted",
        "hosted_no_net",
        "hosted_plain",
        "infra_key",
        "infra_orgs",
        "kind",
        "last_ms",
        "live",
        "members",
        "n_sum",
        "nets",
        "netted",
        "network",
        "nonet_blocks",
        "own",
        "pay_key",
        "pay_orgs",
        "pivoted",
        "plain_blocks",
        "pol_action",
        "pol_alert_ms",
        "pol_level",
        "pol_offences",
        "pol_until_ms",
        "reached",
        "rev",
        "rev_f",
        "rev_n",
        "risky",
        "sync",
        "throwaways",
        "touched",
        "viewed",
        "young",
    )

    def __init__(self, cid: str, ts_ms: int, kind: str = COMMUNITY) -> None:
        self.cid = cid
        self.kind = kind
        self.first_ms = ts_ms
        self.last_ms = ts_ms
        self.members: dict[str, Member] = {}
        self.fps: dict[str, Value] = {}      # "scope:value" -> Value
        self.exits = 0                       # of those, IP blocks judged a ring's exit (`Value.exit`; not stored)
        # running figures, so a link costs O(1) instead of a scan of members and values
        self.n_sum = 0          # requests across members (each as of its last summary)
        self.flagged_sum = 0    # flagged requests across members
        self.flagged_members = 0  # members with a flagged request
        self.young = 0          # members new at first use
        self.risky = 0          # members new, with a disposable email or without KYC
        self.own = 0            # members with abuse evidence of their own
        self.network = 0        # ... of which egress through rotating hosting networks
        self.pivoted = 0        # members whose last summary says they pivoted to a new model
        self.throwaways = 0     # members with a disposable email or without KYC
        self.blocks: dict[int, int] = {}  # hosting IP blocks of the members' latest summaries -> members
        self.hosted = 0         # members with a hosting block (the sum of `blocks`)
        self.hosted_plain = 0   # members with a hosting block and no own evidence otherwise
        self.hosted_no_net = 0  # members with a hosting block and no egress evidence of their own
        self.plain_blocks: dict[int, int] = {}  # hosting block -> its members counted in hosted_plain
        self.nonet_blocks: dict[int, int] = {}  # hosting block -> its members counted in hosted_no_net
        self.nets: dict[int, int] = {}  # IP blocks (any network) of the members' latest summaries -> members
        self.netted = 0         # members with a known IP block (the sum of `nets`)
        self.home_nets: dict[int, int] = {}  # ... of those at home (`Member.home`) -> members
        self.asns: dict[int, int] = {}  # network operators (ASNs) of the members' latest summaries -> members
        self.pay_orgs = 0       # risky orgs behind the best shared payment method, and its key
        self.pay_key = ""
        self.infra_orgs = 0     # orgs behind the best shared JA4 / IP block / device, and its key
        self.infra_key = ""
        self.sync = -1          # synchronised-start figure, -1 when the first requests changed
        self.live: Live | None = None
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
        # for a pool's spread `_pool_s` (0: none kept yet): the hosting blocks that many members send from,
        # and the members of `plain_blocks` and `nonet_blocks` behind them (`_pooled`), kept up to date
        self._pool_s = 0
        self._shared: set[int] = set()
        self._pool_plain = self._pool_nonet = 0
        self.rev = 0
        self.rev_n = 0
        self.rev_f = 0
        self.assessed: object = None
        self.viewed: object = None
        self.reached: object = None
        self.touched: set[str] | None = None

    # -- derived indexes ------------------------------------------------------------------------------
    def _reindex(self) -> None:
        """Rebuild the derived indexes from `members` and `fps`."""
        self._oldest = [(m.first_ms, k) for k, m in self.members.items()]
        heapify(self._oldest)
        self._firsts = sorted(m.first_ms for m in self.members.values())
        self._counts = None
        self.sync = -1
        self._tmpl = {k: None for k in self.fps if k.startswith("template:")}
        self._other = {k: None for k in self.fps if not k.startswith("template:")}
        self.reached = self.touched = None

    def touch(self, acct: str) -> None:
        """Note for the reach index (`reached`) that member `acct`'s record changed, or that it came or
        went. Kept only while there is an index; one not read for longer than its members' count of notes
        (about twice) is dropped, so a cluster that is no longer decided keeps nothing."""
        t = self.touched
        if t is not None:
            t.add(acct)
            if len(t) > 2 * len(self.members) + 64:
                self.reached = self.touched = None

    def lift(self, acct: str, m: Member) -> None:
        """Member `acct` (record `m`) no longer holds the decision the cluster carried to it."""
        m.dec_until, m.dec_level = 0, -1
        self.touch(acct)

    def _pop_oldest(self) -> Member:
        """Remove the member with the smallest (first_ms, account); its record."""
        heap, members = self._oldest, self.members
        while True:
            first, k = heappop(heap)
            m = members.get(k)
            if m is not None and m.first_ms == first:
                break
        del members[k]
        self._first_out(first)
        self.touch(k)
        return m

    def _first_in(self, t: int) -> None:
        self.sync = -1
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
        self.sync = -1
        f, counts = self._firsts, self._counts
        lo = bisect_left(f, t)
        del f[lo]
        if counts is not None:
            del counts[lo]
            hi = bisect_right(f, t + self._counts_w)
            if hi > lo:
                counts[lo:hi] = [n - 1 for n in counts[lo:hi]]

    def _evict_to(self, max_members: int) -> Member | None:
        """Drop the oldest members beyond `max_members`; the record of the last one dropped."""
        dropped = None
        while len(self.members) > max_members:
            dropped = self._pop_oldest()
            self._count(dropped, -1)
        if len(self._oldest) > 2 * len(self.members) + 64:  # mostly stale entries: rebuild
            self._oldest = [(m.first_ms, k) for k, m in self.members.items()]
            heapify(self._oldest)
        return dropped

    def _count(self, m: Member, sign: int) -> None:
        self._tally(m.figures(), sign)

    def _retally(self, before: tuple, after: tuple) -> None:
        """`_tally(before, -1)` then `_tally(after, 1)`. Most changes of a member's figures are its request
        counts (a new level of its summary): when its evidence, egress and home figures (own, block, payment,
        harvest, harness, net, asn, home) are the same, only the plain sums move and the per-block counts are
        left as they are (counted out and in they would come back to the same counts)."""
        if before[5] == after[5] and before[7:9] == after[7:9] and before[10:14] == after[10:14] and (
                before[15:] == after[15:]):
            _, young0, risky0, n0, flagged0, _, pivot0, _, _, _, _, _, _, _, throwaway0, _, _ = before
            _, young1, risky1, n1, flagged1, _, pivot1, _, _, _, _, _, _, _, throwaway1, _, _ = after
            self.n_sum += n1 - n0
            self.flagged_sum += flagged1 - flagged0
            self.flagged_members += (flagged1 > 0) - (flagged0 > 0)
            self.young += young1 - young0
            self.risky += risky1 - risky0
            self.pivoted += pivot1 - pivot0
            self.throwaways += throwaway1 - throwaway0
            return
        self._tally(before, -1)
        self._tally(after, 1)

    def _tally(self, fig: tuple, sign: int) -> None:
        """Count a member in (sign 1) or out (-1) of the running figures, from its `Member.figures()` (all
        they read is there, so a member whose figures did not change need not be counted out and in)."""
        (_, young, risky, n, flagged, own, pivot, block, payment, _, harvest, harness, net, asn, throwaway, home,
         _) = fig  # the last: verified, read by the gate from the members (`new_card_community`)
        evidence = _evidence(own, payment, harvest, harness)  # Member.evidence, from its figures
        self.n_sum += sign * n
        self.flagged_sum += sign * flagged
        self.flagged_members += sign * (flagged > 0)
        self.young += sign * young
        self.risky += sign * risky
        self.own += sign * bool(evidence)
        self.network += sign * bool(own & OWN_NETWORK)
        self.pivoted += sign * pivot
        self.throwaways += sign * throwaway
        if net:
            _bump(self.nets, net, sign)
            self.netted += sign
            if home:
                _bump(self.home_nets, net, sign)
        if asn:
            _bump(self.asns, asn, sign)
        if block:
            blocks = self.blocks
            had = blocks.get(block, 0)
            _bump(blocks, block, sign)
            s = self._pool_s
            if s and (had >= s) != (had + sign >= s):  # the block comes to, or leaves, the pool's spread
                if sign > 0:
                    self._shared.add(block)
                else:
                    self._shared.discard(block)
                self._pool_plain += sign * self.plain_blocks.get(block, 0)
                self._pool_nonet += sign * self.nonet_blocks.get(block, 0)
            pooled = s and block in self._shared
            self.hosted += sign
            if not evidence:
                self.hosted_plain += sign
                _bump(self.plain_blocks, block, sign)
                if pooled:
                    self._pool_plain += sign
            if not own & OWN_NETWORK:
                self.hosted_no_net += sign
                _bump(self.nonet_blocks, block, sign)
                if pooled:
                    self._pool_nonet += sign

    # -- serialisation --------------------------------------------------------------------------------
    def snapshot(self) -> list:
        return [6, self.cid, self.kind, self.first_ms, self.last_ms,
                {k: m.snapshot() for k, m in self.members.items()}, {k: v.snapshot() for k, v in self.fps.items()},
                [self.pay_orgs, self.pay_key, self.infra_orgs, self.infra_key],
                self.live.snapshot() if self.live is not None else None,
                self.pol_until_ms, self.pol_level, self.pol_offences, self.pol_alert_ms, self.pol_action]

    @classmethod
    def restore(cls, s: list) -> ClusterState:
        if not s or s[0] != 6:
            raise ValueError(f"unknown cluster state version {s[:1]!r}")
        c = cls(s[1], s[3], s[2])
        (_, _, _, _, c.last_ms, members, fps, best, live, c.pol_until_ms, c.pol_level, c.pol_offences,
         c.pol_alert_ms, c.pol_action) = s
        c.members = {k: Member.restore(m) for k, m in members.items()}
        c.fps = {k: Value.restore(v) for k, v in fps.items()}
        c.exits = sum(1 for v in c.fps.values() if v.exit)
        c.pay_orgs, c.pay_key, c.infra_orgs, c.infra_key = best
        c.live = Live.restore(live) if live is not None else None
        c.recompute()
        c._reindex()
        return c

    # -- membership -----------------------------------------------------------------------------------
    def add(self, s: Summary, max_members: int, tie: str = "", strong_value: str = "", ts_ms: int = 0,
            payment_ring: bool = False, harvest: bool = False, harness: bool = False,
            pool_share: float | None = None) -> bool:
        """Add or refresh a member tied through `tie` (a SCOPE_BITS name), remembering `strong_value` when
        the tie is strong; True when it is new to the cluster. `ts_ms`: the event time of the summary. Its
        own evidence and pivot flag come and go, so they are taken only from a summary at least as recent
        as the last one (links of one account reach this stage through several partitions, in any order),
        and never from a stub (n == 0: a member a fingerprint knew only by its last observation).
        `payment_ring`: the link says it pays with a card risky orgs share and it is a throwaway account;
        `harvest`: that it is a risky account with a flagged request on a harvest template; `harness`: that it is
        a throwaway user of a harness prompt that throwaway orgs run (`mark_harness`) (all three kept).
        `pool_share`: the share of its requests a member's flagged requests make up for pooled content evidence
        (`evidence_of`), when the caller has it: a change of a flagged member's counts that leaves it on the
        same side of it is not counted in `rev_f`."""
        m = self.members.get(s.account_id)
        bit = SCOPE_BITS.get(tie, 0)
        if m is None:
            self.rev += 1
            m = self.members[s.account_id] = Member(s, bit, ts_ms)
            m.payment = payment_ring
            m.harvest = harvest
            m.harness = harness and m.throwaway
            if strong_value:
                m.strong.append(strong_value)
            heappush(self._oldest, (s.first_ms, s.account_id))
            self._first_in(s.first_ms)
            self._count(m, 1)
            self.touch(s.account_id)
            if len(self.members) > max_members:  # the oldest member makes room (maybe the new one)
                self._evict_to(max_members)
            return True
        before = m.figures()
        if s.first_ms < m.first_ms:
            self._first_out(m.first_ms)
            self._first_in(s.first_ms)
            m.first_ms = s.first_ms
            heappush(self._oldest, (s.first_ms, s.account_id))
        # each field written only when it changes (a repeated link changes none): sticky flags, maxima
        if not m.org and s.org:
            m.org = s.org
        if s.young and not m.young:
            m.young = s.young
        if s.risky and not m.risky:
            m.risky = s.risky
        if s.throwaway and not m.throwaway:
            m.throwaway = s.throwaway
        if s.n > m.n:
            m.n = s.n
        if s.flagged > m.flagged:
            m.flagged = s.flagged
        if s.n and ts_ms >= m.seen_ms:
            m.own, m.pivot, m.seen_ms, m.block, m.net, m.asn, m.home = (s.own, s.pivot, ts_ms, s.hosting_block, s.net,
                                                                        s.asn, s.home)
            m.verified = s.verified
        elif not m.block:
            m.block = s.hosting_block  # a value's record of a quiet member's egress (fingerprint._stub)
        if payment_ring and not m.payment:
            m.payment = payment_ring
        if harvest and not m.harvest:
            m.harvest = harvest
        if harness and m.throwaway and not m.harness:
            m.harness = True
        if bit & ~m.ties:
            m.ties |= bit
        if strong_value and strong_value not in m.strong and len(m.strong) < MAX_STRONG_VALUES:
            m.strong.append(strong_value)
            self.touch(s.account_id)
        after = m.figures()
        if after != before:  # counted out as it was and in as it is (the figures read nothing else)
            self._retally(before, after)
            self.rev += 1
            if before[:3] == after[:3] and before[5:9] == after[5:9] and before[10:] == after[10:] and (
                    before[9] == after[9] or (before[9] & STRONG_TIES) == (after[9] & STRONG_TIES)):
                self.rev_n += 1  # only the member's request counts, or a weak tie (`quiet`)
                if (before[4] or after[4]) and (pool_share is None or (
                        bool(before[4]) and before[4] >= pool_share * before[3]) != (
                        bool(after[4]) and after[4] >= pool_share * after[3])):
                    self.rev_f += 1  # ... of a member with a flagged request, whose pooled content evidence may move
            if _reach_moved(before, after):
                self.touch(s.account_id)
        return False

    def remove(self, acct: str) -> Member | None:
        """Take a member out (a ring member that a strong value ties to a community moves there)."""
        m = self.members.pop(acct, None)
        if m is not None:
            self.rev += 1
            self._first_out(m.first_ms)
            self._count(m, -1)
            self.touch(acct)
        return m

    def mark_harness(self, value: str) -> None:
        """A harness prompt `value` turned out to be run by throwaway orgs (`policy.attribution.harness_ring`):
        its throwaway users already in the cluster get the evidence a later one gets from its own link (an
        account whose one agent session is over sends no further link). Once per value (`Value.harness`): a
        later user gets it from its own link."""
        v = self.fps.get(value)
        if v is not None:
            if v.harness:
                return
            v.harness = True
        for acct, m in self.members.items():
            if m.throwaway and not m.harness and value in m.strong:
                self._count(m, -1)
                m.harness = True
                self._count(m, 1)
                self.rev += 1
                self.touch(acct)

    def note_fp(self, key: str, accounts: int, orgs: int, risky_orgs: int, max_values: int, ts_ms: int = 0,
                strong: bool = False, unrelated: bool = False, exit_: bool = False) -> None:
        """Record what a linking value looks like now, keeping the strongest payment and infra values:
        a payment method by the orgs of its risky holders, or of all its holders when they share no network
        (`unrelated`: a lab's or a team's card among colleagues is normal), infrastructure by the orgs behind
        it. `exit_`: an IP block judged a ring's exit (counted in `exits`, which the attribution view and
        FP_SHARED_UNRELATED read)."""
        v = self.fps.get(key)
        if exit_ != (v is not None and v.exit):
            self.rev += 1
            self.exits += 1 if exit_ else -1
        if key == self.pay_key and (v is None or accounts != v.accounts or unrelated != v.unrelated):
            self.rev += 1  # the payment signal's text counts its accounts and says whose card it is
        if unrelated:
            risky_orgs = max(risky_orgs, orgs)
        if v is None:
            v = self.fps[key] = Value(accounts, orgs, risky_orgs, ts_ms, strong, unrelated, exit_)
            (self._tmpl if key.startswith("template:") else self._other)[key] = None
        else:
            v.accounts, v.orgs, v.risky_orgs, v.last_ms = accounts, orgs, risky_orgs, max(ts_ms, v.last_ms)
            v.strong = v.strong or strong
            v.unrelated = unrelated
            v.exit = exit_
        if key.startswith("payment_fp:"):
            if risky_orgs >= 2 and risky_orgs > self.pay_orgs:
                self.pay_orgs, self.pay_key = risky_orgs, key
                self.rev += 1
        elif not key.startswith("template:") and orgs > self.infra_orgs:
            self.infra_orgs, self.infra_key = orgs, key
            self.rev += 1
        self.cap_fps(max_values, key)

    def cap_fps(self, max_values: int, keep: str = "") -> None:
        """At most `max_values` values: the oldest template values go first, then the oldest others;
        the value just seen and the values behind the payment and infra figures are kept."""
        over = len(self.fps) - max_values
        if over <= 0:
            return
        kept = {keep, self.pay_key, self.infra_key}
        drop = _first_not_in(self._tmpl, kept, over)
        if len(drop) < over:
            drop += _first_not_in(self._other, kept, over - len(drop))
        for k in drop:
            if self.fps[k].exit:
                self.rev += 1  # the view and FP_SHARED_UNRELATED read whether a ring's exit links it (`exits`)
                self.exits -= 1
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
        if not self.infra_key:
            return 0, ""
        if not self.infra_stale(now_ms, window_ms):
            return self.infra_orgs, self.infra_key
        best, key = 0, ""
        for k, v in self.fps.items():
            if (now_ms - v.last_ms <= window_ms and v.orgs > best and not k.startswith("template:")
                    and not k.startswith("payment_fp:")):
                best, key = v.orgs, k
        self.infra_orgs, self.infra_key = best, key
        self.rev += 1
        return best, key

    def infra_stale(self, now_ms: int, window_ms: int) -> bool:
        """Whether `fresh_infra` would rescan: the kept best infra value did not link within `window_ms`."""
        if not self.infra_key:
            return False
        v = self.fps.get(self.infra_key)
        return v is None or now_ms - v.last_ms > window_ms

    def recompute(self) -> None:
        self.rev += 1
        self.n_sum = self.flagged_sum = self.young = self.risky = self.own = self.network = self.pivoted = 0
        self.throwaways = 0
        self.flagged_members = 0
        self.hosted = self.hosted_plain = self.hosted_no_net = 0
        self.blocks, self.plain_blocks, self.nonet_blocks = {}, {}, {}
        self.nets, self.netted, self.asns, self.home_nets = {}, 0, {}, {}
        self._pool_s = 0
        for m in self.members.values():
            self._count(m, 1)

    def absorb(self, other: ClusterState, max_members: int) -> None:
        self.rev += 1
        for acct, m in other.members.items():
            mine = self.members.get(acct)
            if mine is None:
                self.members[acct] = m
            else:
                mine.n = max(mine.n, m.n)
                mine.flagged = max(mine.flagged, m.flagged)
                if m.seen_ms > mine.seen_ms:
                    mine.own, mine.pivot, mine.seen_ms, mine.block, mine.net, mine.asn, mine.home = (
                        m.own, m.pivot, m.seen_ms, m.block, m.net, m.asn, m.home)
                mine.payment = mine.payment or m.payment
                mine.harvest = mine.harvest or m.harvest
                mine.harness = mine.harness or m.harness
                mine.throwaway = mine.throwaway or m.throwaway
                mine.young = mine.young or m.young
                mine.risky = mine.risky or m.risky
                mine.ties |= m.ties
                mine.strong = list(dict.fromkeys(mine.strong + m.strong))[:MAX_STRONG_VALUES]
                if m.dec_until > mine.dec_until:
                    mine.dec_until, mine.dec_level = m.dec_until, m.dec_level
        for k, v in other.fps.items():
            self.fps.setdefault(k, v)
        self.exits = sum(1 for v in self.fps.values() if v.exit)
        self._reindex()
        self.recompute()
        self._evict_to(max_members)
        if other.pol_until_ms > self.pol_until_ms:
            # the absorbed cluster was decided: its live decision and policy memory carry over, so
            # members joining the merged cluster are still reached by it
            self.live, self.pol_until_ms, self.pol_level = other.live, other.pol_until_ms, other.pol_level
            self.pol_action, self.pol_alert_ms = other.pol_action, max(self.pol_alert_ms, other.pol_alert_ms)
            self.pol_offences = sorted({*self.pol_offences, *other.pol_offences})[-8:]
        if other.pay_orgs > self.pay_orgs:
            self.pay_orgs, self.pay_key = other.pay_orgs, other.pay_key
        if other.infra_orgs > self.infra_orgs:
            self.infra_orgs, self.infra_key = other.infra_orgs, other.infra_key
        self.cap_fps(max_values(max_members))
        self.first_ms = min(self.first_ms, other.first_ms)
        self.last_ms = max(self.last_ms, other.last_ms)

    def egress_spread(self, at: Attribution) -> int:
        """Whether the members' hosting egress is spread the way a proxy pool spreads it
        (`attribution.egress_spread`): at least `min_blocks` different IP blocks, and at least `min_ratio` of a
        block per member that has one, its members sending from at least `min_asns` network operators. A
        hackathon behind its venue's cloud NAT, a company's office or a tool's servers are one or a few blocks,
        of one or two operators. 0 when it is not; else `min_block_members`, the members a hosting block needs
        for those behind it to have egress evidence (a pool's addresses are reused across its accounts), which
        is what `evidence_of`, `own_count` and `network_count` take as `spread`."""
        hosted = self.hosted
        if (hosted > 0 and len(self.blocks) >= max(at.egress_min_blocks, at.egress_min_ratio * hosted)
                and len(self.asns) >= at.egress_min_asns):
            return max(1, at.egress_min_block_members)
        return 0

    def content_pool(self, min_members: int, min_requests: int, min_share: float) -> bool:
        """Whether the members' requests, pooled, are flagged content: at least `min_share` of at least
        `min_requests` requests, from at least `min_members` members with a flagged request (0: never)."""
        n = self.n_sum
        return (0 < min_members <= self.flagged_members and n >= min_requests
                and self.flagged_sum >= min_share * n)

    def evidence_of(self, m: Member, spread: int, pool_share: float | None = None) -> int:
        """A member's own evidence with the cluster's: egress from a spread pool (`egress_spread`) is pool
        egress evidence (OWN_POOL) when at least `spread` members send from its block and it has no egress
        evidence of its own; with `pool_share` (the community's pooled content is flagged), a strongly tied
        member's own flagged requests count as content evidence from one on, at that share of its
        requests."""
        bits = m.evidence
        if (spread and m.block and not bits & OWN_NETWORK
                and (spread == 1 or self.blocks.get(m.block, 0) >= spread)):
            bits |= OWN_POOL
        if pool_share is not None and m.flagged and m.flagged >= pool_share * m.n and m.ties & STRONG_TIES:
            bits |= OWN_CONTENT
        return bits

    def own_count(self, spread: int) -> int:
        """Members with own evidence, egress from a spread pool (`egress_spread`) included."""
        if not spread:
            return self.own
        if spread == 1:
            return self.own + self.hosted_plain
        self._pool(spread)
        return self.own + self._pool_plain

    def network_count(self, spread: int) -> int:
        """Members with egress evidence, egress from a spread pool included."""
        if not spread:
            return self.network
        if spread == 1:
            return self.network + self.hosted_no_net
        self._pool(spread)
        return self.network + self._pool_nonet

    def shared_blocks(self, spread: int) -> set[int]:
        """The hosting blocks at least `spread` (above 1) members send from (do not change the set)."""
        self._pool(spread)
        return self._shared

    def _pool(self, spread: int) -> None:
        """Keep the blocks with `spread` members, and the plain and no-net members behind them, from now on
        (`_tally` keeps them up to date; counted afresh for another spread)."""
        if spread != self._pool_s:
            blocks = self.blocks
            self._shared = {b for b, n in blocks.items() if n >= spread}
            self._pool_plain = sum(n for b, n in self.plain_blocks.items() if blocks[b] >= spread)
            self._pool_nonet = sum(n for b, n in self.nonet_blocks.items() if blocks[b] >= spread)
            self._pool_s = spread

    def sync_start(self, window_ms: int) -> int:
        """Largest number of members whose first request falls inside one window (cached until a first
        request comes, goes or changes):
        the most first requests in [t - window, t] for a member's first request t."""
        if self.sync < 0 or self._counts_w != window_ms:
            counts = self._counts
            if counts is None or self._counts_w != window_ms:
                f = self._firsts  # == sorted(m.first_ms for m in self.members.values())
                counts = self._counts = [bisect_right(f, t) - bisect_left(f, t - window_ms) for t in f]
                self._counts_w = window_ms
            self.sync = max(counts, default=0)
        return self.sync


def _evidence(own: int, payment: bool, harvest: bool, harness: bool) -> int:
    """A member's own evidence (`Member.evidence`): the account stage's bits and the rings the cluster sees."""
    return (own | (OWN_PAYMENT if payment else 0) | (OWN_HARVEST if harvest else 0)
            | (OWN_HARNESS if harness else 0))


def _reach_moved(before: tuple, after: tuple) -> bool:
    """Whether a member's change of figures (`Member.figures()`: first_ms, young, risky, n, flagged, own, pivot,
    block, payment, ties, harvest, harness, net, asn, throwaway, home) changes what attribution's reach reads of
    its record (its tie and its evidence as any view sees it: `evidence_of`, `tie_cap`): not its first request,
    youth, pivot, network, operator (those reach it through the cluster's figures, whose view is another view)
    or throwaway flag, nor its request count while it has no flagged request (the count only weighs flagged
    requests)."""
    return (before[2] != after[2] or before[4:6] != after[4:6] or before[7:12] != after[7:12]
            or (before[3] != after[3] and (before[4] or after[4])) or before[15] != after[15])


def _bump(counts: dict[int, int], key: int, sign: int) -> None:
    n = counts.get(key, 0) + sign
    if n > 0:
        counts[key] = n
    else:
        counts.pop(key, None)


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


# whose card FP_PAYMENT_SHARED names when its holders share no network (fingerprints.unrelated_card)
_UNRELATED_HOLDERS = "holders who each send from their own hosting network, none shared"

# the signals cluster_signals reads, in the order it reads them
_SIGNAL_CODES = ("CL_SIZE", "CL_CONTENT", "CL_VOLUME", "CL_YOUNG", "CL_EGRESS", "CL_SYNC_START", "CL_MODEL_PIVOT",
                 "ACCT_MODEL_PIVOT", "FP_PAYMENT_SHARED", "FP_SHARED_UNRELATED")
_signals_of: dict[int, tuple] = {}  # id(rules) -> (rules, its signals by code)


def _signals(rules) -> dict:
    """`rules.signal(code)` of every code in _SIGNAL_CODES, looked up once per rules object (not ten times an
    assessment: `per_rules`)."""
    return per_rules(_signals_of, rules, lambda r: {code: r.signal(code) for code in _SIGNAL_CODES})


def cluster_signal(rules, code: str):
    """`rules.signal(code)` for a code in _SIGNAL_CODES, looked up once per rules object."""
    return _signals(rules)[code]


def quiet(c: ClusterState) -> int:
    """The count of the cluster's changes other than a member's request counts or weak ties alone (`rev` less
    `rev_n`): while it stays the same, the members' records are the same but for their request and flagged
    request counts and the weak values they are tied through (a JA4, an IP block, a template: the signals,
    the gate and the view read only whether a member is tied through a strong value). The counts are read by
    the cluster's request totals (CL_CONTENT, CL_VOLUME: `request_outcome`; the pooled content verdict,
    `content_pool`) and, under pooled content only, by a flagged member's evidence (`evidence_of`, changed
    only with `rev_f`): with those the same, the same signals fire and the gate and the view are the same;
    only the texts' figures differ."""
    return c.rev - c.rev_n


def request_outcome(c: ClusterState, rules) -> tuple[bool, bool]:
    """Whether CL_CONTENT and CL_VOLUME fire, as `cluster_signals` tests them (the two signals that read the
    cluster's request totals; see `quiet`)."""
    sig = _signals(rules)
    n, flagged = c.n_sum, c.flagged_sum
    s = sig["CL_CONTENT"]
    content = s is not None and n >= s.min_requests and bool(flagged) and flagged / n >= s.threshold
    s = sig["CL_VOLUME"]
    volume = s is not None and len(c.members) >= s.min_requests and n >= s.threshold
    return content, volume


def cluster_signals(c: ClusterState, rules, texts: bool = True) -> list[Hit]:
    """Every cluster signal that fires on the cluster as it is now, with its figure. `texts` False: without
    their texts (empty details; the same hits otherwise, the same effects on the cluster)."""
    hits: list[Hit] = []
    sig = _signals(rules).__getitem__
    at_least = _at_least if texts else fired
    size = len(c.members)
    n, flagged, young, pivoted = c.n_sum, c.flagged_sum, c.young, c.pivoted
    at_least(sig("CL_SIZE"), size, lambda: f"{size} accounts linked through shared "
             + ("payment methods, devices or a harness system prompt" if c.kind == COMMUNITY
                else "infrastructure or templates, each with abuse evidence of its own"), hits)
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
    s = sig("CL_EGRESS")
    net = c.network_count(c.egress_spread(rules.policy.attribution))
    if s is not None and size >= s.min_requests and net:
        at_least(s, net / size, lambda: f"{net} of {size} accounts send through rotating egress (hosting networks, "
                                "or home and phone networks across countries) or a pool's shared hosting blocks",
                 hits)
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
    if s is not None and c.pay_key:
        pay_orgs, pay_key = c.pay_orgs, c.pay_key
        accounts = c.fps[pay_key].accounts if pay_key in c.fps else pay_orgs
        whose = (_UNRELATED_HOLDERS if pay_key in c.fps and c.fps[pay_key].unrelated
                 else "new, disposable or KYC-less holders")
        at_least(s, pay_orgs, lambda: f"{pay_orgs} different orgs of {whose} ({accounts} accounts in all) pay with "
                                      f"{pay_key}", hits)
    s = sig("FP_SHARED_UNRELATED")
    # shared by mostly new or unverified accounts, or through a ring's exit (fingerprints.exit_ring: an IP block
    # whose users are mostly accounts of several orgs with flagged requests through it), whoever they are
    if s is not None and size and c.infra_key and (young / size >= s.min_young_share or c.exits):
        infra_orgs, infra_key = c.infra_orgs, c.infra_key
        if s.window_ms:
            infra_orgs, infra_key = c.fresh_infra(c.last_ms, s.window_ms)
        infra = c.fps.get(infra_key)
        if infra_key and (young / size >= s.min_young_share or (infra is not None and infra.exit)):
            at_least(s, infra_orgs, lambda: f"{infra_key} is shared by accounts of {infra_orgs} different orgs", hits)
    return hits
