"""What the stages tell each other. In replay these pass in-process; in the worker they travel over
internal topics (observations keyed by fingerprint, links to the single cluster partition), encoded
as compact orjson lists.

They are frozen `msgspec.Struct`s rather than frozen dataclasses: the account stage makes a Summary per
event and an Observation per reported value, the fingerprint stage a Link per link, and a frozen
dataclass's `__init__` sets each field through `object.__setattr__` (about 1 µs for an Observation, 0.1 µs
as a Struct). Same fields, order, defaults, equality and hashing; `gc=False`: they hold only scalars and
each other, never a cycle."""

from __future__ import annotations

from msgspec import Struct

# An account's own abuse evidence, as bits in `Summary.own` (which signals set them: rules'
# policy.attribution.own_signals, by family; flagged requests set OWN_CONTENT too)
OWN_CONTENT, OWN_NETWORK, OWN_VOLUME, OWN_OTHER = 1, 2, 4, 8
# set by the cluster stage: a throwaway account (disposable email or no KYC) paying with a card that new,
# disposable or KYC-less accounts of other orgs pay with too, or any holder of a card whose holders share no
# network (policy.attribution.payment_ring, fingerprints.unrelated_card)
OWN_PAYMENT = 16
# set by the cluster stage from the fingerprint stage's verdict: a new, disposable or KYC-less account sent a
# flagged request on a prompt template whose users' requests on it are mostly flagged and whose users are
# mostly new or unverified (fingerprints.harvest_template): a campaign's paraphrased harvest prompt
OWN_HARVEST = 32
# given by a cluster, never stored: a member sends from a hosting block that other members of its community,
# whose egress is spread like a proxy pool's, send from too (policy.attribution.egress_spread)
OWN_POOL = 64
# set by the cluster stage: a throwaway account (disposable email or no KYC) running a campaign's harness system
# prompt whose users are throwaway accounts of at least policy.attribution.harness_ring's orgs and share of its
# orgs (a launch crowd trying a new agent framework signs up with real emails; a campaign buys throwaways)
OWN_HARNESS = 128
OWN_NAMES = {OWN_CONTENT: "content", OWN_NETWORK: "egress", OWN_VOLUME: "volume", OWN_OTHER: "behaviour",
             OWN_PAYMENT: "payment ring", OWN_HARVEST: "harvest template", OWN_POOL: "egress pool",
             OWN_HARNESS: "harness ring"}
# evidence about how an account pays, connects or signed up, not about what it sends: on its own it reaches the
# account as far as association (policy.attribution.association_max_action), never to a block. Its own egress
# rotating through hosting networks (OWN_NETWORK) is a proxy pool's, and also a commercial VPN's that hands
# out a new exit per connection: a team behind one, on its company card, looks like a ring by that alone
OWN_STRUCTURAL = OWN_PAYMENT | OWN_POOL | OWN_NETWORK | OWN_HARNESS


def trimmed(tail: list) -> list:
    """`tail` without its trailing unset fields: a record stores only up to the last one set, so a record
    without the newer fields is stored exactly as before they existed."""
    while tail and not tail[-1]:
        tail.pop()
    return tail


class Summary(Struct, frozen=True, gc=False):
    """What the fingerprint and cluster stages know of an account (no content, only figures)."""
    account_id: str
    org: str | None
    first_ms: int
    young: bool
    unverified: bool
    n: int
    flagged: int
    pivot: bool = False   # moved most of its traffic to a model it first used recently (ACCT_MODEL_PIVOT)
    # new, disposable-email or KYC-less: a holder whose sharing of a card means something
    risky: bool = False
    # the account's own abuse evidence so far (OWN_* bits, app.policy.attribution): what lets a cluster's
    # decision reach it for its own behaviour, and what makes a weak shared value link it at all
    own: int = 0
    # a disposable email or no KYC at all: nobody's customer record to lose
    throwaway: bool = False
    # the IP block (crc32) of its latest request from a hosting address (fingerprints.hosting_asn_types); 0: none
    hosting_block: int = 0
    # the IP block (crc32) of its latest request, whatever the network; 0: none. Colleagues share a site's
    # network (a campus NAT, an office); a campaign's holders of one card each send from their own proxy exit
    net: int = 0
    # the network operator (ASN) of its latest request; 0: none. A site (a campus, an office, an eval vendor's
    # cloud tenancy) is one operator however many IP blocks it has; a proxy pool's exits are many operators'
    asn: int = 0
    # the country of its latest request's address ("": unknown): a team works from one country; a proxy pool's
    # exits are spread over several (fingerprints.unrelated_card)
    country: str = ""
    # its identity verified (KYC id_verified): a person, whom a ring does not buy by the dozen
    # (fingerprints.unrelated_card.max_verified_share)
    verified: bool = False
    # every request so far from a home or phone network (fingerprints.residential_asn_types) in its billing
    # country, so none through a proxy, a VPN or a hosting network: a person at home or on a phone
    # (policy.attribution.home_cohort, home_weak_max_action). Once lost, not regained
    home: bool = False
    # its latest request from a home or phone network outside its billing country: a residential proxy's exit
    # abroad, or a traveller at a hotel (fingerprints.pool_prompt.abroad_countries)
    abroad: bool = False
    # the day its account was opened (days since 1970; 0: unknown), on an event paying with a card only: a
    # ring's accounts are opened or bought in a batch, a programme's members over months or years
    # (fingerprints.unrelated_card.max_established_spread_days)
    created_day: int = 0
    # its latest request through a VPN or a proxy (fingerprints.exit_ring.asn_types), or from a home or phone
    # network abroad (exit_ring.abroad and `abroad`); False when the rules have no exit ring: whether its IP
    # block may be a ring's exit
    veiled: bool = False

    @property
    def eligible(self) -> bool:
        """Sharing only links accounts that are new or unverified: colleagues on a team card or a NAT
        with established, verified accounts are not a campaign by sharing alone."""
        return self.young or self.unverified

    @property
    def level(self) -> int:
        """Changes when n or flagged crosses a power of two, the own-evidence bits change, or the pivot or home
        flag flips: when an update is worth forwarding."""
        return ((((self.n.bit_length() * 64 + self.flagged.bit_length()) * 16 + self.own) * 2 + self.pivot) * 2
                + self.home)

    @property
    def signature(self) -> int:
        """Everything a fingerprint's state keeps of a member besides when it was last seen: its level,
        eligibility and risk. An account re-reports its values at once when this changes."""
        # level and eligible written out (this runs on every event): the same figures without two property calls
        level = ((((self.n.bit_length() * 64 + self.flagged.bit_length()) * 16 + self.own) * 2 + self.pivot) * 2
                 + self.home)
        return ((level * 2 + (self.young or self.unverified)) * 2 + self.risky) * 2 + self.throwaway

    def wire(self) -> list:
        return [self.account_id, self.org, self.first_ms, int(self.young), int(self.unverified),
                self.n, self.flagged, int(self.pivot), int(self.risky), self.own, int(self.throwaway),
                self.hosting_block, self.net, self.asn,
                *trimmed([self.country, int(self.verified), int(self.home), int(self.abroad), self.created_day,
                           int(self.veiled)])]

    @classmethod
    def unwire(cls, w: list) -> Summary:
        # a record from before `net` (twelve fields) knows no network, one from before `asn` (thirteen) no
        # operator, one without `country` (fourteen) no country, one without `verified` (fifteen) no verified
        # identity, one without `home` (sixteen) no home, one without `abroad` (seventeen) is not abroad, one
        # without `created_day` (eighteen) has no opening day, one without `veiled` (nineteen) is not veiled
        return cls(w[0], w[1], w[2], bool(w[3]), bool(w[4]), w[5], w[6], bool(w[7]), bool(w[8]), w[9], bool(w[10]),
                   w[11], w[12] if len(w) > 12 else 0, w[13] if len(w) > 13 else 0, w[14] if len(w) > 14 else "",
                   len(w) > 15 and bool(w[15]), len(w) > 16 and bool(w[16]), len(w) > 17 and bool(w[17]),
                   w[18] if len(w) > 18 else 0, len(w) > 19 and bool(w[19]))


class Observation(Struct, frozen=True, gc=False):
    scope: str
    value: str
    ts_ms: int
    event_id: str
    summary: Summary
    hit: bool = False  # the request that carried this report was content-flagged

    @property
    def key(self) -> str:
        return f"{self.scope}:{self.value}"

    def wire(self) -> list:
        return [self.scope, self.value, self.ts_ms, self.event_id, self.summary.wire(), int(self.hit)]

    def wire_ref(self, ref: int) -> list:
        """`wire` with the summary replaced by its index in a table the bundle carries once."""
        return [self.scope, self.value, self.ts_ms, self.event_id, ref, int(self.hit)]

    @classmethod
    def unwire_ref(cls, w: list, summaries: list[Summary]) -> Observation:
        # a record from before `hit` (five fields) was not flagged as far as anyone knows
        return cls(w[0], w[1], w[2], w[3], summaries[w[4]], len(w) > 5 and bool(w[5]))


class Link(Struct, frozen=True, gc=False):
    """Account `summary.account_id` shares the rare fingerprint `fp` with `anchor` (its first linkable
    member). `strong`: the value ties its holders to one operator (a payment method, a device, a campaign's
    harness system prompt) and joins their clusters; a weak value (an IP block, a JA4, a prompt template)
    links only accounts with abuse evidence of their own and never joins two clusters.
    `fp_risky_orgs`: orgs behind the value among its risky (new, disposable, KYC-less) holders.
    `harvest`: the member sent a flagged request on this value, a harvest template (`OWN_HARVEST`).
    `fp_throwaway_orgs`: orgs behind a campaign's harness prompt among its throwaway (disposable-email or
    KYC-less) users (`OWN_HARNESS`); 0 for every other value.
    `fp_unrelated`: a payment method whose holders share no network, each on its own hosting block
    (`fingerprints.unrelated_card`: a ring's card, `OWN_PAYMENT` for every holder).
    `fp_exit`: an IP block of a VPN, a proxy or a home network abroad whose users are mostly accounts of several
    orgs with content-flagged requests through it (`fingerprints.exit_ring`: a ring's exit)."""
    fp: str
    ts_ms: int
    event_id: str
    summary: Summary
    anchor: str
    fp_accounts: int
    fp_orgs: int
    strong: bool = False
    fp_risky_orgs: int = 0
    harvest: bool = False
    fp_throwaway_orgs: int = 0
    fp_unrelated: bool = False
    fp_exit: bool = False

    def wire(self) -> list:
        return [self.fp, self.ts_ms, self.event_id, self.summary.wire(), self.anchor, self.fp_accounts,
                self.fp_orgs, int(self.strong), self.fp_risky_orgs, int(self.harvest), self.fp_throwaway_orgs,
                *trimmed([int(self.fp_unrelated), int(self.fp_exit)])]

    def wire_ref(self, ref: int) -> list:
        return [self.fp, self.ts_ms, self.event_id, ref, self.anchor, self.fp_accounts, self.fp_orgs,
                int(self.strong), self.fp_risky_orgs, int(self.harvest), self.fp_throwaway_orgs,
                *trimmed([int(self.fp_unrelated), int(self.fp_exit)])]

    @classmethod
    def unwire_ref(cls, w: list, summaries: list[Summary]) -> Link:
        # a record from before `harvest` (nine fields) or `fp_throwaway_orgs` (ten) carries neither; one
        # without `fp_unrelated` (eleven) is not a ring's card, one without `fp_exit` (twelve) not a ring's exit
        return cls(w[0], w[1], w[2], summaries[w[3]], w[4], w[5], w[6], bool(w[7]), w[8], len(w) > 9 and bool(w[9]),
                   w[10] if len(w) > 10 else 0, len(w) > 11 and bool(w[11]), len(w) > 12 and bool(w[12]))
