"""Per-fingerprint state (payment method, JA4, IP prefix, device, prompt template): which accounts are
behind a value, how many orgs they span, and whether the value is rare enough to link them.

A value is popular and links nothing when more distinct accounts than `popular_accounts` use it, or
while at least `popular_established` established (old, verified) accounts make up half or more of its
users: a common SDK's JA4, a big NAT or a team card is "not rare elsewhere". Otherwise, once linkable
accounts from two or more orgs share it, it links them: a `Link` goes to the cluster stage for every
linkable member, then only when the cluster stage has something new to take from it (`link_due`): a new
(account, value) edge, a new level of the member's summary, or a refresh once per half the cluster stage's
idle TTL, so that what the cluster keeps of an active member does not expire between level changes. A payment
method or a device is a *strong* value: every account on it is linkable. A JA4, an IP block or a prompt
template is *weak*: it links only new, disposable or KYC-less accounts with abuse evidence of their own (`own`).

A system prompt (template value "sys:<hash>") is judged by who uses it, not only by how many: one that
more than `popular_accounts` accounts share stays linkable while at least `campaign_prompt.min_young_share`
of them are new or unverified (a campaign's agentic harness; an IDE's or an SDK's prompt is used mostly by
established customers, a consumer app's by a majority of them) and it has at most
`campaign_prompt.max_accounts` users. Such a campaign-like prompt, once it has `campaign_prompt.min_accounts`
users, is a strong value: it links every member, established ones too, the way a payment method or a device
does. So is a system prompt used mostly by established accounts whose kept members mostly send from hosting
networks that rotate, over about as many blocks as members and several operators (`pool_prompt`): a harness
run by bought, aged accounts through a data-centre proxy pool. `popularity()` gives
the verdict with a reason code and its figures."""

from __future__ import annotations

from heapq import heapify, heappop, heappush

from app.detect.messages import OWN_NETWORK, Link, Observation, Summary, trimmed
from app.rules.model import CampaignPrompt, ExitRing, HarvestTemplate, PoolPrompt, Rules, UnrelatedCard

STRONG_SCOPES = frozenset({"payment_fp", "device_id"})


class FpMember:
    """What a value keeps of one account behind it, as of the account's last observation on it. Flags are
    0/1 ints, as stored."""
    # `seq`: its place in the value's member order, set only while the value keeps an eviction heap (FpState)
    __slots__ = ("asn", "block", "cc", "created", "eligible", "hit", "home", "last_ms", "level", "linkable", "net",
                 "org", "own", "risky", "seq", "throwaway", "verified", "young")

    def __init__(self, last_ms: int, org: str, linkable: int, level: int, risky: int, young: int, own: int,
                 eligible: int, throwaway: int, hit: int = 0, block: int = 0, net: int = 0, asn: int = 0,
                 cc: str = "", verified: int = 0, home: int = 0, created: int = 0) -> None:
        self.last_ms = last_ms        # event time it was last seen on this value
        self.org = org                # "" when none
        self.linkable = linkable      # the value may link it
        self.level = level            # Summary.level of its last link through this value (-1: not linked)
        self.risky = risky
        self.young = young
        self.own = own                # own-evidence bits (OWN_*)
        self.eligible = eligible      # new or unverified (Summary.eligible)
        self.throwaway = throwaway
        self.hit = hit                # it sent a flagged request on this value (kept)
        # the hosting IP block of its last observation (Summary.hosting_block; 0: none): what a cluster knows of
        # its egress when this value links it while it is quiet (a one-session account linked once a later
        # account turns the value linking)
        self.block = block
        # ... and the IP block of its last observation, whatever the network (Summary.net; 0: none, and on a
        # weak value): whether a quiet member sends from a site's network (a campus NAT) that its cohort shares
        self.net = net
        # ... and the network operator (ASN) of its last observation (Summary.asn; 0: none), on a system prompt
        # only: whether the members rotating through hosting networks do so over several operators (pool_prompt)
        self.asn = asn
        # ... and the country of its last observation's address, on a payment method: whether a card's holders
        # work from one country, as a team does (unrelated_card); on a system prompt only when that address is a
        # home or phone network outside its billing country (Summary.abroad): whether its users send from a
        # residential proxy pool's exits abroad (pool_prompt.abroad_countries)
        self.cc = cc
        # ... and whether its identity is verified (Summary.verified), on a payment method only: a card that
        # mostly verified people share is colleagues' (unrelated_card.max_verified_share)
        self.verified = verified
        # ... and whether it is at home (Summary.home), on every value: a weak value links a quiet member by
        # this record alone (`_stub`), and a member at home is capped on a weak tie (home_weak_max_action)
        self.home = home
        # ... and the day its account was opened (Summary.created_day; 0: unknown), on a payment method only: a
        # card held by established accounts opened months apart is a programme's, not a ring's batch
        # (unrelated_card.max_established_spread_days)
        self.created = created

    def snapshot(self) -> list:
        """The stored form: a list in constructor order, so that `FpMember(*snapshot)` restores it; `hit`,
        `block`, `net`, `asn`, `cc`, `verified`, `home` and `created` only up to the last one set (nine fields
        when none is, as before they existed)."""
        tail = trimmed([self.hit, self.block, self.net, self.asn, self.cc, self.verified, self.home, self.created])
        return [self.last_ms, self.org, self.linkable, self.level, self.risky, self.young, self.own, self.eligible,
                self.throwaway, *tail]




class FpState:
    # `heap` and `next_seq` are not stored: the eviction heap of a value at its member cap (`evict_oldest`),
    # made again from the members when first needed after a restore. Nor is `n_linkable`, the number of
    # members whose `linkable` is set, made again by `restore` (`observe` and `evict_oldest` keep it: nothing
    # else changes members), nor `n_rot`, the number of members whose own egress rotates (OWN_NETWORK), nor
    # `n_cc`, the number with a country kept (`FpMember.cc`: a card's holders, a system prompt's users abroad)
    __slots__ = ("abroad", "anchor", "distinct", "established", "exit", "exits", "first_ms", "harvest", "heap", "hits",
                 "last_ms", "linking", "members", "n_cc", "n_linkable", "n_rot", "next_seq", "popular", "strong",
                 "unrelated")

    def __init__(self, ts_ms: int) -> None:
        self.first_ms = ts_ms
        self.last_ms = ts_ms
        self.distinct = 0                    # distinct accounts ever added (upper bound past the cap)
        self.established = 0                 # of those, not new and not unverified
        self.members: dict[str, FpMember] = {}  # at most max_members, most recent kept
        self.linking = False
        self.popular = False
        self.strong = False                  # links as a strong value (its links join clusters)
        self.anchor: str | None = None
        self.hits = 0                        # kept members with a flagged request on it
        self.harvest = False                 # judged a harvest template (kept while the value lives)
        self.heap: list[tuple[int, int, str]] | None = None  # (last_ms, seq, account), see evict_oldest
        self.next_seq = 0
        self.n_linkable = 0                  # members with `linkable` set
        self.n_rot = 0                       # members whose own egress rotates (OWN_NETWORK in `own`)
        self.n_cc = 0                        # members with a country kept (`FpMember.cc`)
        # a payment method's links last said its holders share no network (unrelated_card): when that turns
        # true, the holders linked before are linked again with it
        self.unrelated = False
        # an IP block judged a ring's exit (exit_ring): its flagged members are linked whoever they are
        self.exit = False
        # a system prompt's verdict by pool_prompt's shared exits (`_shared_exits` is not None), made again
        # when a member joins or moves to another hosting block (None: not made yet; not stored)
        self.exits: bool | None = None
        # ... and by its users abroad (`_abroad_pool` is not None), made again when a member joins or its
        # country abroad changes (None: not made yet; not stored)
        self.abroad: bool | None = None

    def snapshot(self) -> list:
        # the harvest, unrelated and exit verdicts only when set: a value without them stores exactly as before
        # they existed
        tail = trimmed([int(self.harvest), int(self.unrelated), int(self.exit)])
        return [3, self.first_ms, self.last_ms, self.distinct, self.established,
                {a: m.snapshot() for a, m in self.members.items()}, int(self.linking), int(self.popular), self.anchor,
                int(self.strong), *tail]

    @classmethod
    def restore(cls, s: list) -> FpState:
        if not s or s[0] != 3:
            raise ValueError(f"unknown fingerprint state version {s[:1]!r}")
        f = cls.__new__(cls)
        f.first_ms, f.last_ms, f.distinct, f.established, members, linking, popular, f.anchor, strong = s[1:10]
        f.members = {a: FpMember(*m) for a, m in members.items()}
        f.linking, f.popular, f.strong = bool(linking), bool(popular), bool(strong)
        f.harvest = len(s) > 10 and bool(s[10])
        f.unrelated = len(s) > 11 and bool(s[11])
        f.exit = len(s) > 12 and bool(s[12])
        f.hits = sum(m.hit for m in f.members.values())
        f.heap = None
        f.exits = None
        f.abroad = None
        f.next_seq = 0
        f.n_linkable = sum(m.linkable for m in f.members.values())
        f.n_rot = sum(1 for m in f.members.values() if m.own & OWN_NETWORK)
        f.n_cc = sum(1 for m in f.members.values() if m.cc)
        return f

    def evict_oldest(self) -> FpMember:
        """Drop the member least recently seen, on a tie the first in member (insertion) order: what
        ``min(members, key=lambda k: members[k].last_ms)`` picks. A value at its member cap evicts one member
        per new one; instead of scanning its members each time it keeps a heap of (last_ms, seq, account),
        `seq` being the member's place in insertion order. `note` pushes an entry whenever a member is added
        or its last_ms grows; entries of evicted members or of an older last_ms are dropped when they come to
        the top. Made from the members when first needed, and again when stale entries outnumber them."""
        members = self.members
        heap = self.heap
        if heap is None or len(heap) > 2 * len(members) + 16:
            heap = self.heap = []
            for seq, (acct, r) in enumerate(members.items()):
                r.seq = seq
                heap.append((r.last_ms, seq, acct))
            heapify(heap)
            self.next_seq = len(heap)
        while True:
            last, seq, acct = heappop(heap)
            r = members.get(acct)
            if r is not None and r.seq == seq and r.last_ms == last:
                del members[acct]
                self.n_linkable -= r.linkable
                if r.own & OWN_NETWORK:
                    self.n_rot -= 1
                if r.cc:
                    self.n_cc -= 1
                if acct == self.anchor:
                    self.anchor = None
                return r

    def note(self, acct: str, r: FpMember, is_new: bool) -> None:
        """Member `acct` was added (`is_new`) or its last_ms grew: its entry in the eviction heap, if kept."""
        heap = self.heap
        if heap is not None:
            if is_new:
                r.seq = self.next_seq
                self.next_seq += 1
            heappush(heap, (r.last_ms, r.seq, acct))

    def orgs(self, risky_only: bool = False, throwaway_only: bool = False) -> int:
        return len({m.org or f"~{acct}" for acct, m in self.members.items()
                    if (not risky_only or m.risky) and (not throwaway_only or m.throwaway)})


def _linkable(members: dict[str, FpMember]) -> list[str]:
    """The members the value may link (as of each one's last observation)."""
    return [a for a, r in members.items() if r.linkable]


def _may_link(r: FpMember, strong_scope: bool, everyone: bool, camp: bool, harvest: bool,
              exit_: bool = False) -> int:
    """Whether the value may link member `r` (as of its last observation): everyone on a payment method or a
    device, or on a campaign prompt that links established members; its new or unverified users on a
    campaign prompt; otherwise a risky member with evidence of its own, or, on a harvest template, with a
    flagged request on it; or any member whose own egress rotates through home and phone networks only
    (`OWN_NETWORK` and never a hosting block: `ACCT_RESIDENTIAL_ROTATION`, a residential pool's exits; a
    router or a hosted tool's customer rotates through hosting networks); or, on a ring's exit (`exit_ring`),
    any member with a flagged request through it."""
    return int(strong_scope or everyone or (camp and bool(r.eligible))
               or (bool(r.risky) and bool(r.own or (harvest and r.hit)))
               or (bool(r.own & OWN_NETWORK) and not r.block)
               or (exit_ and bool(r.hit)))


def exit_ring(fp: FpState, er: ExitRing) -> bool:
    """Whether an IP block is a ring's exit (`fingerprints.exit_ring`), as of its kept members: those with a
    flagged request through it (`FpMember.hit`) are at least `min_share` of them, of at least `min_orgs` orgs.
    Asked when a member joins or first sends a flagged request through it: by one sending through a VPN, a proxy
    or a home network abroad (`Summary.veiled`), and by anyone once the block is an exit."""
    hits = fp.hits
    if hits < er.min_orgs or hits < er.min_share * len(fp.members):
        return False
    return _hit_orgs(fp) >= er.min_orgs


def _hit_orgs(fp: FpState) -> int:
    """Orgs of the value's kept members with a flagged request on it (an org-less account is its own)."""
    return len({m.org or acct for acct, m in fp.members.items() if m.hit})


def is_system_prompt(scope: str, value: str) -> bool:
    return scope == "template" and value.startswith("sys:")


def popularity(fp: FpState, scope: str, value: str, rules: Rules) -> tuple[str, float, float, str]:
    """The verdict `observe` applies to a value, as (code, figure, threshold, detail):
    FP_POPULAR_ACCOUNTS or FP_POPULAR_ESTABLISHED (links nothing), FP_CAMPAIGN_PROMPT (a system prompt
    whose users look like a campaign: linkable past `popular_accounts`, established members included),
    FP_POOL_PROMPT (a system prompt mostly established accounts use, run through a proxy pool: the same),
    FP_HARVEST_TEMPLATE (a prompt template whose users' requests on it are mostly flagged, its users mostly
    new: links its risky users with a flagged request on it), FP_EXIT_RING (an IP block of a VPN, a proxy or
    a home network abroad whose users are mostly accounts of several orgs with flagged requests through it:
    links those, established ones too), FP_RARE (linkable by count: new/unverified members with evidence of
    their own only, or everyone for a payment method/device)."""
    fr = rules.fingerprints
    er = fr.exit_ring
    if fp.exit and er is not None:
        orgs = _hit_orgs(fp)
        return ("FP_EXIT_RING", round(fp.hits / len(fp.members), 4) if fp.members else 0.0, er.min_share,
                f"a ring's exit: {fp.hits} of the {len(fp.members)} accounts kept sent flagged requests through "
                f"this block of a VPN, a proxy or a home network abroad, of {orgs} orgs (>= {er.min_share:g} and "
                f"{er.min_orgs}); links those, established ones too")
    cp = fr.campaign_prompt
    young = fp.distinct - fp.established
    pp = fr.pool_prompt
    if pp is not None and is_system_prompt(scope, value) and not (cp is not None and _campaign_like(fp, cp)):
        pool = _pool_figures(fp, pp, fp.strong and not fp.popular)
        if pool is not None:
            rot, blocks, asns = pool
            return _pool_verdict(fp, pp, rot, "send from networks that rotate", (
                f"{f'over {blocks} hosting blocks ' if blocks else ''}of {asns} network operators: a harness run "
                "through a proxy pool"))
        exits = _shared_exits(fp, pp) if pp.shared_members else None
        if exits is not None:
            shared, hosted, asns = exits
            return ("FP_POOL_PROMPT", round(shared / hosted, 4), pp.shared_share,
                    f"{shared} of the {hosted} accounts kept on hosting networks send from a hosting block that an "
                    f"account of another org sends from too (>= {pp.shared_members} and {pp.shared_share:g}), of "
                    f"{asns} network operators: a harness run through a proxy pool's shared exits, not a product's "
                    f"prompt ({fp.established} of {fp.distinct} established)")
        abroad = _abroad_pool(fp, pp, fp.strong and not fp.popular) if pp.abroad_countries else None
        if abroad is not None:
            n, asns, countries = abroad
            return _pool_verdict(fp, pp, n, "last sent from a home or phone network outside their billing country", (
                f"of {asns} network operators in {countries} countries (>= {pp.abroad_asns} and "
                f"{pp.abroad_countries}): a harness run through a residential proxy pool's exits abroad"))
    if fp.established >= fr.popular_established and fp.established * 2 >= fp.distinct:
        return ("FP_POPULAR_ESTABLISHED", fp.established, fr.popular_established,
                f"{fp.established} of {fp.distinct} accounts using it are established (half or more)")
    if cp is not None and is_system_prompt(scope, value) and _campaign_like(fp, cp):
        share = young / fp.distinct
        bound = (f">= {cp.min_young_share:g}" if share >= cp.min_young_share else
                 f"judged so at >= {cp.min_young_share:g}, kept while > {cp.keep_young_share:g}")
        return ("FP_CAMPAIGN_PROMPT", round(share, 4), cp.min_young_share,
                f"{young} of {fp.distinct} accounts using this system prompt are new or unverified "
                f"({bound}, {cp.min_accounts}..{cp.max_accounts} users): a campaign's harness, not a product's")
    if fp.distinct > fr.popular_accounts:
        return ("FP_POPULAR_ACCOUNTS", fp.distinct, fr.popular_accounts,
                f"{fp.distinct} accounts use it (> popular_accounts {fr.popular_accounts})")
    if fp.harvest:
        return ("FP_HARVEST_TEMPLATE", fp.hits, len(fp.members),
                f"a harvest template: {fp.hits} of the {len(fp.members)} accounts kept sent a flagged request on "
                f"it, {young} of {fp.distinct} new or unverified; links its new, disposable or KYC-less users with "
                "a flagged request on it")
    return ("FP_RARE", fp.distinct, fr.popular_accounts, f"{fp.distinct} accounts, {young} new or unverified")


def _pool_verdict(fp: FpState, pp: PoolPrompt, n: int, what: str, how: str) -> tuple[str, float, float, str]:
    """`popularity`'s FP_POOL_PROMPT verdict: `n` of the members kept do `what` (their share against
    `min_share`, or `keep_share` once judged), `how` the pool shows."""
    share = n / len(fp.members)
    bound = (f">= {pp.min_share:g}" if share >= pp.min_share else
             f"judged so at >= {pp.min_share:g}, kept while >= {pp.keep_share:g}")
    return ("FP_POOL_PROMPT", round(share, 4), pp.min_share,
            f"{n} of the {len(fp.members)} accounts kept {what} ({bound}), {how}, not a product's prompt "
            f"({fp.established} of {fp.distinct} established)")


def _harvest_like(fp: FpState, ht: HarvestTemplate) -> bool:
    """A prompt template most of whose users sent flagged requests on it, most of them new or unverified,
    from `ht.min_accounts` orgs or more (`fingerprints.harvest_template`)."""
    n = len(fp.members)
    return (n >= ht.min_accounts and fp.hits >= ht.min_hit_share * n
            and fp.distinct - fp.established >= ht.min_young_share * fp.distinct and fp.orgs() >= ht.min_accounts)


def _pool_figures(fp: FpState, pp: PoolPrompt, kept: bool = False) -> tuple[int, int, int] | None:
    """(members whose own egress rotates, their hosting blocks, their operators) when the value's kept members
    are a proxy pool's users by `pool_prompt`, else None: at least `min_share` (`keep_share` for a value that
    links as a harness already, `kept`: new members arrive before their rotation shows, and the share of a
    pool's users that rotate dips with each) and `min_members` of them rotate,
    their latest operators are at least `min_asns`, and those rotating through hosting networks send from at
    least `min_block_share` of a hosting block each. `n_rot` is kept by `observe`: the members are
    scanned only when enough of them rotate, which a product's prompt's users rarely do."""
    rot = fp.n_rot
    if not _enough(fp, pp, rot, kept):
        return None
    blocks = set()
    asns = set()
    hosted = 0
    for m in fp.members.values():
        if m.own & OWN_NETWORK:
            if m.block:
                hosted += 1
                blocks.add(m.block)
            if m.asn:
                asns.add(m.asn)
    # the block share is about hosting egress (a hosted tool's servers are a few blocks of one cloud); a member
    # rotating through home and phone networks (ACCT_RESIDENTIAL_ROTATION) has no hosting block, and a
    # residential pool's dozen exits carry hundreds of accounts: its operators are what count
    if len(blocks) < pp.min_block_share * hosted or len(asns) < pp.min_asns:
        return None
    return rot, len(blocks), len(asns)


def _enough(fp: FpState, pp: PoolPrompt, n: int, kept: bool) -> bool:
    """Whether `n` of the value's kept members are enough for a pool test: `min_members`, and `min_share` of
    them (`keep_share` for a value that links as a harness already, `kept`), on a value of at most
    `max_accounts` distinct accounts."""
    share = min(pp.keep_share, pp.min_share) if kept else pp.min_share
    return n >= pp.min_members and n >= share * len(fp.members) and fp.distinct <= pp.max_accounts


def _abroad_pool(fp: FpState, pp: PoolPrompt, kept: bool = False) -> tuple[int, int, int] | None:
    """(members abroad, their operators, their countries) when the value's kept members are a residential
    proxy pool's users by `pool_prompt`'s abroad test, else None: at least `min_members` and `min_share`
    (`keep_share` for a value that links as a harness already, `kept`) of them last sent from a home or phone
    network outside their billing country (`FpMember.cc`), of at least `abroad_asns` operators in at least
    `abroad_countries` countries, their orgs at least `shared_org_share` of their number. A pool's bought,
    aged accounts each send from the pool's exits in whatever country; a product's users are mostly at home;
    a team on a trip shares its hotel's and airport's few networks, and is a few orgs. `n_cc` is kept by
    `observe`: the members are scanned only when enough of them are abroad."""
    n = fp.n_cc
    if not _enough(fp, pp, n, kept):
        return None
    asns = set()
    countries = set()
    orgs = set()
    for acct, m in fp.members.items():
        if m.cc:
            asns.add(m.asn)
            countries.add(m.cc)
            orgs.add(m.org or acct)  # an account without an org is its own, as in `FpState.orgs`
    asns.discard(0)
    if len(countries) < pp.abroad_countries or len(asns) < pp.abroad_asns or len(orgs) < pp.shared_org_share * n:
        return None
    return n, len(asns), len(countries)


def _shared_exits(fp: FpState, pp: PoolPrompt) -> tuple[int, int, int] | None:
    """(members sending from a shared exit, members on hosting networks, their operators) when the value's
    kept members are a proxy pool's users by `pool_prompt`'s shared exits, else None: at least `min_share` of
    them last sent from a hosting block (`FpMember.block`) and do not rotate, of at least `min_asns`
    operators, of at least `shared_org_share` as many orgs as members, and at least `shared_members` of those,
    and `shared_share` of them, from a block that such a member of another org sent from too.
    A pool's sticky sessions each hold an exit for hours, and each exit carries several of its accounts;
    customers running a tool on their own cloud machines each have their own (an agent framework's launch
    crowd: none shared over five or six providers); a product's vendor sends its customers' requests from any
    of its addresses, a few blocks of one cloud (its customers rotate, if anything: `_pool_figures` judges
    those by their blocks per member). A pool's bought accounts are each their own org, a company's
    employees behind its security vendor's shared cloud egress many of one (companies of several vendors,
    their exits shared with other companies; while the first employees of many companies arrive one by one
    the orgs are as many as the members, and the prompt reads as a pool's until the companies' others
    come)."""
    members = fp.members
    if not members or fp.distinct > pp.max_accounts:
        return None
    orgs: dict[int, set[str]] = {}  # hosting block -> orgs of the members on it
    every: set[str] = set()
    asns = set()
    blocks = []  # the hosting block of each member that does not rotate
    for acct, m in members.items():
        if m.block and not m.own & OWN_NETWORK:
            blocks.append(m.block)
            org = m.org or acct
            orgs.setdefault(m.block, set()).add(org)
            every.add(org)
            if m.asn:
                asns.add(m.asn)
    hosted = len(blocks)
    if (hosted < pp.min_share * len(members) or len(asns) < pp.min_asns
            or len(every) < pp.shared_org_share * hosted):
        return None
    shared = sum(1 for b in blocks if len(orgs[b]) > 1)
    if shared < pp.shared_members or shared < pp.shared_share * hosted:
        return None
    return shared, hosted, len(asns)


def _campaign_like(fp: FpState, cp: CampaignPrompt) -> bool:
    """A system prompt whose users look like a campaign's: at least `min_young_share` of them new or
    unverified, or, while it links as a strong value (`fp.strong` and not popular: judged so before), more
    than `keep_young_share` of them. Without the second bound a prompt whose share hovers about the first flips
    between strong and weak with each new user, and every flip links its members again."""
    n = fp.distinct
    if not cp.min_accounts <= n <= cp.max_accounts:
        return False
    young = n - fp.established
    return young >= cp.min_young_share * n or (fp.strong and not fp.popular and young > cp.keep_young_share * n)


def refresh_ms(rules: Rules) -> int:
    """How often a linked member's edge is sent again at an unchanged level: half the cluster stage's idle
    TTL. The cluster stage expires an account's and a value's index entries, and a cluster, by event time
    once no link has touched them for `state.cluster.ttl_s`; an active member refreshed every half of that
    is never idle there for longer than the TTL. Nothing else the cluster stage keeps needs a repeat: its
    figures change only with the summary's level, and FP_SHARED_UNRELATED's window is about new links."""
    return max(1, rules.cluster.ttl_ms // 2)


def link_due(level: int, linked_level: int, ts_ms: int, prev_ms: int, first_ms: int, period_ms: int) -> bool:
    """Whether a linkable member's observation of a linking value sends the cluster stage a link.

    The cluster stage reads from a link the edge (account, value: how it is tied, which cluster it joins),
    the value's figures and the member's summary: its requests and flagged requests (as of the last
    power of two, which is what the level holds), its own-evidence bits and pivot flag. Its young, risky,
    org and first-request figures are sticky there (once set, a later summary does not unset them), its
    hosting block and throwaway flag ride on the next link without causing one, and a member that turns
    ineligible is not linked at all. So a link is due on:
    - a new edge: `linked_level` < 0 (never linked through this value, or relinked after the value changed
      kind);
    - a new level (`Summary.level`: the bit length of n and of flagged, the own-evidence bits, the pivot);
    - a refresh: the first observation in a new period of `period_ms` counted from the account's first
      request (`first_ms`), whatever the level, so an active member's edge reaches the cluster stage at
      least once per period (`refresh_ms`). `prev_ms` is when the member was last seen on this value.
    Anything else (the same level within a period) changes nothing the cluster stage keeps and is not sent."""
    if level != linked_level:
        return True
    return (ts_ms - first_ms) // period_ms > (prev_ms - first_ms) // period_ms


def observe(fp: FpState, obs: Observation, rules: Rules, key: str | None = None) -> list[Link]:
    """`key`: `obs.key`, when the caller has it already."""
    s = obs.summary
    ts = obs.ts_ms
    if ts > fp.last_ms:
        fp.last_ms = ts
    members = fp.members
    account = s.account_id
    m = members.get(account)
    is_new = m is None
    moved = False  # an existing member's hosting block changed, or whether its egress rotates
    cc_moved = False  # ... or its country kept (`FpMember.cc`)
    scope = obs.scope
    sys_prompt = scope == "template" and obs.value.startswith("sys:")  # is_system_prompt(scope, obs.value)
    # a payment method or a device shared across orgs ties its holders to one operator whoever they are
    # (aged, bought or verified accounts included): for those scopes every account is linkable, and only
    # sheer numbers make the value popular. Weaker values (JA4, IP block, template) link only new, disposable or
    # KYC-less accounts with abuse evidence of their own: sharing a campus NAT or an SDK is not evidence
    strong_scope = scope in STRONG_SCOPES
    # flags are stored as 0/1 ints: `+flag` is int(flag) without a call
    s_eligible = s.young or s.unverified  # Summary.eligible
    # a member's network is kept only where a stub of it can join a community (a strong value, or a system
    # prompt that may turn into one): what a weak value links is a ring, and an IP block is its own network
    net = s.net if strong_scope or sys_prompt else 0
    # ... and its operator on a system prompt (pool_prompt) and on a payment method (unrelated_card)
    card = scope == "payment_fp"
    asn = s.asn if sys_prompt or card else 0
    # ... and its country on a payment method, or abroad on a system prompt (pool_prompt.abroad_countries)
    cc = s.country if card or (sys_prompt and s.abroad) else ""
    verified = +s.verified if card else 0
    created = s.created_day if card else 0
    rot = 1 if s.own & OWN_NETWORK else 0
    hit_new = False  # an existing member's first flagged request on this value
    if is_new:
        prev_ms = ts  # when this member was last seen on this value
        fp.distinct += 1
        if not (strong_scope or s_eligible):
            fp.established += 1
        hit = +obs.hit
        m = FpMember(ts, s.org or "", 0, -1, +s.risky, +s.young, s.own, +s_eligible, +s.throwaway, hit,
                     s.hosting_block, net, asn, cc, verified, +s.home, created)
        members[account] = m
        fp.hits += hit
        fp.n_rot += rot
        if cc:
            fp.n_cc += 1
        if fp.heap is not None:
            fp.note(account, m, True)
        if len(members) > rules.fingerprint.max_members:
            fp.hits -= fp.evict_oldest().hit
    else:
        moved = m.block != s.hosting_block
        prev_ms = m.last_ms
        if ts > prev_ms:
            m.last_ms = ts
            if fp.heap is not None:
                fp.note(account, m, False)
        m.risky = +s.risky
        m.young = +s.young
        if rot != (1 if m.own & OWN_NETWORK else 0):
            fp.n_rot += rot or -1
            moved = True
        m.own = s.own
        m.eligible = +s_eligible
        m.throwaway = +s.throwaway
        m.block = s.hosting_block
        m.net = net
        m.asn = asn
        if cc != m.cc:
            fp.n_cc += (1 if cc else 0) - (1 if m.cc else 0)
            m.cc = cc
            cc_moved = True
        m.verified = verified
        m.home = +s.home
        m.created = created
        if obs.hit and not m.hit:
            m.hit = 1
            fp.hits += 1
            hit_new = True
    # popular while mostly established accounts use it (a common SDK, an IDE's system prompt); a value
    # that a campaign's aged accounts share with its new ones stays linkable
    fr = rules.fingerprints
    cp = fr.campaign_prompt
    # a system prompt whose users look like a campaign (mostly new/unverified): judged by who uses it
    camp = cp is not None and sys_prompt and _campaign_like(fp, cp)
    # ... or, used mostly by established accounts, whose users send from a proxy pool (a harness run by aged,
    # bought accounts): like a campaign's prompt, past popular_established
    pp = fr.pool_prompt
    # the cached pool verdicts below are stale once a member joins or moves, whether or not an earlier test
    # holds this time and skips them: cleared here, made again when next asked
    if is_new or moved:
        fp.exits = None
    if is_new or cc_moved:
        fp.abroad = None
    pool = (not camp and sys_prompt and pp is not None and fp.n_rot >= pp.min_members
            and _pool_figures(fp, pp, fp.strong and not fp.popular) is not None)
    if not pool and not camp and sys_prompt and pp is not None and pp.shared_members:
        # ... or whose users share a proxy pool's exits across orgs, sticky or not (a verdict made again only
        # when a member joins or moves: the members are scanned then)
        if fp.exits is None:
            fp.exits = _shared_exits(fp, pp) is not None
        pool = fp.exits
    if not pool and not camp and sys_prompt and pp is not None and pp.abroad_countries:
        # ... or most of whose users send from home or phone networks abroad, of several operators in several
        # countries (a residential proxy pool's exits: a verdict made again only when a member joins or its
        # country abroad changes)
        if fp.abroad is None:
            fp.abroad = _abroad_pool(fp, pp, fp.strong and not fp.popular) is not None
        pool = fp.abroad
    if pool:
        camp = True
    # an IP block of a VPN or a proxy, or a home network's sent from abroad: a ring's exit when its users are
    # mostly accounts of several orgs with flagged requests through it (a verdict made again when a member joins
    # or first sends a flagged request through it: asked by a member through a VPN, a proxy or from abroad, and
    # of an exit by anyone, a person at home on a residential proxy's block counting among its users)
    er = fr.exit_ring
    exit_ = fp.exit
    if er is not None and (s.veiled or exit_) and scope == "ip_prefix" and (is_new or hit_new):
        exit_ = exit_ring(fp, er)
    distinct, established = fp.distinct, fp.established
    # (a campaign-like prompt is never half established: its young share is above half; a ring's exit is
    # its ring's, however many of its members are established)
    fp.popular = not camp and not exit_ and (distinct > fr.popular_accounts or (
        established >= fr.popular_established and established * 2 >= distinct))
    if fp.popular:
        return []
    # ... and ties everyone on it, its established members too, like a payment method or a device
    everyone = pool or (camp and cp.link_established)
    strong = strong_scope or camp
    # a prompt template whose users' requests on it are mostly flagged, its users mostly new: a harvest
    # prompt, through which a risky user with a flagged request on it is linkable (kept once judged so)
    ht = fr.harvest_template
    changed = False
    if (ht is not None and not fp.harvest and not strong and scope == "template"
            and not sys_prompt and _harvest_like(fp, ht)):
        fp.harvest = changed = True
    harvest = fp.harvest
    if strong != fp.strong or exit_ != fp.exit:
        # the value changed kind (a system prompt turned campaign-like, an IP block a ring's exit)
        fp.strong = strong
        fp.exit = exit_
        changed = True
    if changed:
        # every member is linked again as what the value is now
        fp.linking = False
        n_linkable = 0
        for r in members.values():
            r.level = -1
            r.linkable = lk = _may_link(r, strong_scope, everyone, camp, harvest, exit_)
            n_linkable += lk
        fp.n_linkable = n_linkable
    else:
        was = m.linkable
        m.linkable = now = _may_link(m, strong_scope, everyone, camp, harvest, exit_)
        if now != was:
            fp.n_linkable += now - was
    # the linkable list, the org count and the links are built only when this call can use them: most
    # observations of a linking value come from a member already linked at its current level
    linkable = None
    if not fp.linking:
        # most values that do not link yet have fewer than two linkable members (`n_linkable`: no scan)
        if fp.n_linkable < 2:
            return []
        linkable = _linkable(members)
        if len({members[a].org or f"~{a}" for a in linkable}) < 2:
            return []
        fp.linking = True
    if fp.anchor is None or fp.anchor not in members or not members[fp.anchor].linkable:
        if linkable is None:
            linkable = _linkable(members)
        fp.anchor = min(linkable, key=lambda a: (members[a].last_ms, a)) if linkable else None
    if fp.anchor is None or not m.linkable:
        return []
    if key is None:
        key = obs.key
    n_org = -1  # members do not change from here on: count orgs once, for the first link
    n_risky = n_thr = 0
    unrelated = False
    uc = fr.unrelated_card if card else None
    links = []
    if is_new or m.level < 0:
        # first link for this member: bring along the linkable members that were waiting for a second org
        if linkable is None:
            linkable = _linkable(members)
        for acct in linkable:
            r = members[acct]
            if r.level < 0 and acct != s.account_id:
                r.level = 0
                if n_org < 0:
                    n_org, n_risky, n_thr, unrelated = _org_counts(fp, camp, uc)
                links.append(Link(key, ts, obs.event_id, _stub(acct, r), fp.anchor, len(members), n_org, strong,
                                  n_risky, harvest and bool(r.hit) and bool(r.risky), n_thr, unrelated, exit_))
    level = s.level
    if link_due(level, m.level, ts, prev_ms, s.first_ms, refresh_ms(rules)):
        m.level = level
        if n_org < 0:
            n_org, n_risky, n_thr, unrelated = _org_counts(fp, camp, uc)
        links.append(Link(key, ts, obs.event_id, s, fp.anchor, len(members), n_org, strong, n_risky,
                          harvest and bool(m.hit) and s.risky, n_thr, unrelated, exit_))
    if uc is not None and n_org >= 0 and unrelated != fp.unrelated:
        fp.unrelated = unrelated
        if unrelated:
            # the card turned a ring's (its third org's holder came, or a holder left a shared block): the
            # holders linked while it was not are linked again as what it is now, each with a ring's evidence
            # (a one-session holder is quiet by then, and the community waits for two members with evidence)
            done = {link.summary.account_id for link in links}
            for acct, r in members.items():
                if r.linkable and r.level >= 0 and acct not in done:
                    links.append(Link(key, ts, obs.event_id, _stub(acct, r), fp.anchor, len(members), n_org,
                                      strong, n_risky, False, n_thr, True))
    return links


def unrelated_holders(fp: FpState, uc: UnrelatedCard) -> bool:
    """A payment method whose holders share no network (`fingerprints.unrelated_card`): every member it keeps,
    of at least `min_orgs` orgs, last sent from a hosting block (`FpMember.block`) that no other member sent
    from, those blocks of at least `min_asns` operators in at least `min_countries` countries. A lab's, a
    team's or a household's card is held behind one address (a campus NAT, an office, a VPN's shared exits,
    a home line), a red team's on cloud boxes in one country; a ring's bought accounts each send from their
    own proxy exit. A card more than `max_verified_share` of whose holders have a verified identity, or held
    only by established accounts (none new, on a disposable email or without KYC: `FpMember.risky`) opened
    more than `max_established_spread_days` apart, is held by people who know each other (a security
    programme's researchers of several orgs, each on a cloud box of their own abroad), not by a ring's
    accounts, which are opened or bought in a batch."""
    members = fp.members
    if len(members) < uc.min_orgs:
        return False
    if (uc.max_verified_share is not None
            and sum(m.verified for m in members.values()) > uc.max_verified_share * len(members)):
        return False
    spread = uc.max_established_spread_days
    if spread is not None and not any(m.risky for m in members.values()):
        days = [m.created for m in members.values() if m.created]
        if days and max(days) - min(days) > spread:
            return False
    blocks = set()
    asns = set()
    countries = set()
    orgs = set()
    for acct, m in members.items():
        if not m.block or m.block in blocks:
            return False
        blocks.add(m.block)
        asns.add(m.asn)
        countries.add(m.cc)
        orgs.add(m.org or acct)
    asns.discard(0)
    countries.discard("")
    return len(orgs) >= uc.min_orgs and len(asns) >= uc.min_asns and len(countries) >= uc.min_countries


def _org_counts(fp: FpState, camp: bool, uc: UnrelatedCard | None = None) -> tuple[int, int, int, bool]:
    """(orgs, risky orgs, throwaway orgs, unrelated) behind the value for its links; throwaway orgs only for a
    campaign's harness prompt (`Link.fp_throwaway_orgs`), 0 otherwise; unrelated (`Link.fp_unrelated`) only
    for a payment method, given `uc`. What `fp.orgs()` counts with each filter, in one pass over the members
    instead of three."""
    every: set[str] = set()
    risky: set[str] = set()
    throwaway: set[str] = set()
    for acct, m in fp.members.items():
        org = m.org or f"~{acct}"
        every.add(org)
        if m.risky:
            risky.add(org)
        if camp and m.throwaway:
            throwaway.add(org)
    return len(every), len(risky), len(throwaway) if camp else 0, uc is not None and unrelated_holders(fp, uc)


def _stub(acct: str, r: FpMember) -> Summary:
    """A member known to this fingerprint only by org, eligibility, egress and (on a payment method) identity:
    its full summary reaches the cluster stage with its own next observation (never, for an account whose one
    session is over)."""
    return Summary(acct, r.org or None, r.last_ms, bool(r.young), False, 0, 0, risky=bool(r.risky), own=r.own,
                   throwaway=bool(r.throwaway), hosting_block=r.block, net=r.net, home=bool(r.home),
                   verified=bool(r.verified))
