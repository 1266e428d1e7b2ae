"""Frozen view of a validated rules file. The core reads thresholds, weights, TTLs from here only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def per_rules(cache: dict[int, tuple[Any, Any]], rules: Any, make: Callable[[Any], Any]) -> Any:
    """`make(rules)`, made once per rules object and kept in `cache` (id -> (rules, value)): the hot paths look
    their signals up once instead of at every event. The rules object is kept beside its value, so a new
    object at a reused id is made afresh; rules change rarely (a reload, explain's variants), so a few are
    kept."""
    got = cache.get(id(rules))
    if got is not None and got[0] is rules:
        return got[1]
    if len(cache) >= 8:
        cache.clear()
    value = make(rules)
    cache[id(rules)] = (rules, value)
    return value


@dataclass(frozen=True, slots=True)
class TableBounds:
    ttl_ms: int
    max_keys: int
    max_members: int = 0


@dataclass(frozen=True, slots=True)
class Signal:
    code: str
    family: str
    weight: float
    threshold: float
    window_ms: int = 0
    min_requests: int = 1
    min_young_share: float = 0.0
    min_share: float = 0.0
    # ACCT_PROXY_GEO: whether requests from one foreign country through a home, mobile or office network count
    stable_foreign: bool = True
    # ACCT_EGRESS_ROTATION, ACCT_RESIDENTIAL_ROTATION: network operators (ASNs) its blocks must span, at least
    min_asns: int = 1
    # ACCT_RESIDENTIAL_ROTATION: countries its blocks must span, at least, and returns to a country it had left
    # on the same type of network, at least
    min_countries: int = 1
    min_returns: int = 0
    # ... or, returns or not, at least this many countries (0: off)
    spread_countries: int = 0
    enabled: bool = True
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class ActionStep:
    min_score: float
    action: str
    ttl_s: int
    limit_rpm: int | None = None


@dataclass(frozen=True, slots=True)
class AllowEntry:
    scope: str
    value: str
    expires_at_ms: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who a cluster's decision may reach, and how far (app.policy.attribution)."""
    own_signals: frozenset[str]          # signal codes whose firing is an account's own abuse evidence
    own_content_min_flagged: int = 2     # ... and flagged requests, at least this many
    own_content_min_share: float = 0.05  # ... making up at least this share of the account's requests
    cluster_min_own_members: int = 2     # a cluster is decided only with this many members with own evidence
    cluster_min_risky_share: float = 0.5 # ... and when at least this share of its members is risky
    # ... but a community of two or more members, every one new at first use and tied by a payment method or a
    # device, is decided with this many members with own evidence when that many of them are not at home
    # (`Summary.home`): a hydra's replacement on its predecessor's card (app.policy.attribution.new_card_community),
    # unless more than new_card_max_verified_share of its members have a verified identity (people who know each
    # other; None: any share). 0: off (cluster_min_own_members alone)
    new_card_min_own_members: int = 0
    new_card_max_verified_share: float | None = None
    payment_ring: bool = True            # a throwaway holder of a card risky orgs share: own evidence
    # a community whose members' hosting egress spans this many IP blocks, and this many per hosted member,
    # gives each hosted member egress evidence (a proxy pool, not a venue's or an office's NAT)
    egress_min_blocks: int = 5
    egress_min_ratio: float = 0.5
    # ... but only to a member whose hosting block at least this many members send from: a pool's addresses
    # are reused across its accounts; independent users each on their own cloud machine share none (1: any)
    egress_min_block_members: int = 1
    # ... and only when its members send from at least this many network operators (ASNs): a hosted tool's
    # servers are one or two clouds' blocks, a proxy pool's exits span operators (1: any)
    egress_min_asns: int = 1
    # a community whose members' requests, pooled, are flagged at this share (over at least pool_min_requests
    # requests, from at least pool_min_members members with a flagged request) gives each strongly tied
    # member with a flagged request of its own, at own_content_min_share of its requests, content evidence
    # (a slow campaign's accounts each send too few requests for own_content alone). 0 members: off
    pool_min_members: int = 0
    pool_min_requests: int = 10
    pool_min_share: float = 0.25
    # a throwaway account (disposable email or no KYC) on a campaign's harness system prompt whose users are
    # throwaway accounts of at least harness_min_orgs orgs and harness_min_share of its orgs has evidence of
    # its own (a harness ring), reaching as far as association. 0 orgs: off
    harness_min_orgs: int = 0
    harness_min_share: float = 0.25
    # a community below cluster_min_risky_share is still decided (its other gates permitting) when its members
    # send from spread networks: at least spread_min_members members with a known IP block, on at least
    # spread_min_share distinct blocks per such member or with no block holding more than
    # spread_max_block_share of them (0: that test off), of at least spread_min_asns network operators (a
    # lab's students share the campus NAT, an office its network, an eval vendor the blocks of its cloud
    # tenancy; a campaign's aged card holders each send from their own proxy exit). Its members that are not
    # risky are then reached at most as spread_aged_max_action. 0 members: off
    spread_min_members: int = 0
    spread_min_share: float = 0.8
    spread_min_asns: int = 2
    spread_max_block_share: float = 0.0
    # ... or (of as many operators) with at least spread_pool_min_blocks IP blocks each sent from by two or more
    # members, together holding spread_pool_min_share of the members with a known block, and no block holding
    # site_min_share of them: a residential proxy pool's few exits, each reused by members of different orgs (a
    # lab's or an office's members share one block, its site; those at home each their own). 0 blocks: off
    spread_pool_min_blocks: int = 0
    spread_pool_min_share: float = 0.8
    spread_aged_max_action: str = "challenge"
    # a community most of whose members (site_min_share of those with a known IP block, at least
    # site_min_members of them) send from one IP block that is not hosting egress is a cohort at one site (a
    # hackathon at its venue, a class on its campus, new hires in their office): it is not decided, whatever
    # it shares and however many of its members have evidence of their own; they are judged on their own
    # behaviour, unless site_max_throwaway_share or more of its members are throwaway accounts (a card ring's
    # bought accounts behind one line). A campaign's accounts send through a proxy pool's exits or cloud
    # machines. 0 members: off
    site_min_members: int = 0
    site_min_share: float = 0.5
    site_max_throwaway_share: float = 0.25
    # ... and so is a community most of whose members (home_min_share of those with a known IP block, at least
    # home_min_members of them) each send from an IP block of their own that no other member uses, every
    # request of theirs from their billing country and none through a proxy, a VPN or a hosting network
    # (`Summary.home`): a cohort at home (an online course's live lesson, its students each on their own home
    # line or phone), unless home_max_throwaway_share or more of its members are throwaway accounts. A
    # campaign's accounts share a proxy pool's exits, rotate, or send from abroad or from clouds. 0 members: off
    home_min_members: int = 0
    home_min_share: float = 0.7
    home_max_throwaway_share: float = 0.5
    # a member at home (`Summary.home`) whose own evidence is only what it sends (flagged requests, on a harvest
    # template or not), reached through a weak tie (a ring's evidence, or a harvest template), gets at most
    # this ("none": nothing; it is judged on its own behaviour): a student's chain-of-thought exercise reads
    # like trace elicitation and shares a campaign's phrasing. The default: own_weak_max_action's
    home_weak_max_action: str = "challenge"
    own_strong_max_action: str = "block"      # own evidence plus a strong tie to the cluster
    own_weak_max_action: str = "challenge"    # own evidence, tied to the cluster by weak values only
    association_max_action: str = "challenge" # a strong tie to a member with own evidence, none of its own
    established_association_max_action: str = "challenge"  # the same, for an aged non-disposable account


@dataclass(frozen=True, slots=True)
class Policy:
    alert_min_score: float
    severity_medium: float
    severity_high: float
    severity_critical: float
    actions: tuple[ActionStep, ...]          # sorted by min_score ascending
    block_min_families: int
    cooldown_ms: int
    escalation_window_ms: int
    ttl_multiplier: float
    max_ttl_s: int
    fanout_max_accounts: int
    established_max_action: str | None = None
    # an established customer is acted on for its own behaviour only when one of these signals fires
    established_requires: frozenset[str] = frozenset()
    attribution: Attribution = Attribution(frozenset())


@dataclass(frozen=True, slots=True)
class CampaignPrompt:
    """When a system prompt shared by many accounts is a campaign's rather than a product's."""
    min_young_share: float      # new/unverified share of its distinct accounts, at least
    min_accounts: int           # it links established members from this many distinct accounts on
    max_accounts: int           # past this many distinct accounts it is popular whoever uses it
    link_established: bool = True
    # once judged a campaign's harness, it stays one while more than this share of its accounts are new or
    # unverified: a verdict that does not flip with each new user near min_young_share (1: off)
    keep_young_share: float = 1.0


@dataclass(frozen=True, slots=True)
class PoolPrompt:
    """When a system prompt used mostly by established accounts is still a campaign's harness: most of the
    members it keeps send from hosting networks that rotate (their own ACCT_EGRESS_ROTATION evidence), over
    about as many IP blocks as there are such members and several network operators: a harness run by bought,
    aged accounts through a data-centre proxy pool. A product's prompt used from its vendor's servers comes
    from a few blocks of one cloud; customers running a tool on their own cloud machines do not rotate."""
    min_members: int            # kept members whose egress rotates, at least (0: off)
    min_share: float            # ... and at least this share of the members kept
    min_block_share: float      # their hosting blocks, at least this many per such member
    min_asns: int               # ... of at least this many network operators (ASNs)
    max_accounts: int           # past this many distinct accounts it is popular whoever uses it
    # once it links as a harness, it stays one while at least this share of the members kept rotate (1: off)
    keep_share: float = 1.0
    # ... or, whether its users rotate or not, when at least this many of the members kept (0: off), and this
    # share of those on hosting networks, send from a hosting block a member of another org sends from too
    shared_members: int = 0
    shared_share: float = 1.0
    # ... their orgs at least this share of their number (a company's employees are many of one org)
    shared_org_share: float = 0.5
    # ... or when at least min_members, and min_share, of the members kept last sent from a home or phone
    # network outside their billing country, in at least this many countries (0: off) ...
    abroad_countries: int = 0
    # ... through at least this many network operators, their orgs at least shared_org_share of their number
    abroad_asns: int = 4


@dataclass(frozen=True, slots=True)
class UnrelatedCard:
    """When a payment method shared across orgs ties its holders to a ring whoever they are: every holder it
    keeps, of at least `min_orgs` orgs, last sent from a hosting block no other holder sends from, the blocks
    of at least `min_asns` network operators in at least `min_countries` countries. A lab's grant card is held
    behind the campus address, a team's behind its office or its VPN's shared exits, a household's on one
    line, a red team's on cloud boxes in one country; a ring's bought accounts each send from their own proxy
    exit."""
    min_orgs: int               # orgs behind the card, at least
    min_asns: int               # network operators behind its holders' blocks, at least
    min_countries: int = 1      # countries of its holders' addresses, at least (a team works from one)
    # the share of its holders with a verified identity (KYC id_verified), at most: more is people who know each
    # other; None: any
    max_verified_share: float | None = None
    # a card held only by established accounts (none new, on a disposable email or without KYC) opened more
    # than this many days apart, at most: a ring opens or buys its accounts in a batch, a security programme's
    # researchers signed up over months or years; None: any
    max_established_spread_days: int | None = None


@dataclass(frozen=True, slots=True)
class HarvestTemplate:
    """When a prompt template (a MinHash band key) is a campaign's harvest prompt: its users' requests on it
    are mostly flagged content and its users are mostly new or unverified. A new, disposable or KYC-less
    account with a flagged request on it is linkable through it, with that request as its own evidence."""
    min_accounts: int           # distinct accounts of as many orgs, at least
    min_hit_share: float        # share of its members whose requests on it were flagged, at least
    min_young_share: float      # new/unverified share of its distinct accounts, at least


@dataclass(frozen=True, slots=True)
class ExitRing:
    """When an IP block of a VPN or a proxy (`asn_types`), or a home or phone network's block its users send
    from abroad (`abroad`: a residential proxy's exit), is a ring's exit: accounts of at
    least `min_orgs` orgs sent content-flagged requests through it, and they are at least `min_share` of the
    accounts it keeps. Its flagged members are linked whoever they are (aged, verified accounts included) and
    a ring cluster it links is decided like a community on spread networks (aged members: a challenge at
    most). A commercial VPN's exit serves many unrelated customers, few of them flagged; a campaign's aged
    accounts harvesting through a handful of exits are most of their users."""
    min_orgs: int               # orgs of its flagged members, at least
    min_share: float            # its flagged members' share of the accounts it keeps, at least
    asn_types: frozenset[str]   # the networks whose blocks may be a ring's exit
    # ... and a home or phone network's block its member sends from abroad (`Summary.abroad`): a residential
    # proxy pool's exit
    abroad: bool = False


# every ASN type that is hosting egress: what a rules file without fingerprints.hosting_asn_types counts
ALL_HOSTING_ASN_TYPES = frozenset({"cloud", "datacenter", "proxy", "vpn"})
# the home and phone networks: what a rules file without fingerprints.residential_asn_types counts
RESIDENTIAL_ASN_TYPES = frozenset({"residential", "mobile"})


@dataclass(frozen=True, slots=True)
class FingerprintRules:
    scopes: tuple[str, ...]
    popular_accounts: int
    popular_established: int
    young_ms: int
    unverified_kyc: frozenset[str]
    abused_channels: frozenset[str]
    campaign_prompt: CampaignPrompt | None = None
    harvest_template: HarvestTemplate | None = None
    pool_prompt: PoolPrompt | None = None
    unrelated_card: UnrelatedCard | None = None
    exit_ring: ExitRing | None = None
    # an account reports a fingerprint value it already reported at the same summary level at most once
    # per this many ms (0: every event reports every value); see AccountState.unreported
    refresh_ms: int = 0
    # the ASN types whose addresses are hosting egress: what ACCT_EGRESS_ROTATION, pool egress and a member's
    # hosting block count (app.detect.account)
    hosting_asn_types: frozenset[str] = ALL_HOSTING_ASN_TYPES
    # the ASN types of home and phone networks: what ACCT_RESIDENTIAL_ROTATION counts (app.detect.account)
    residential_asn_types: frozenset[str] = RESIDENTIAL_ASN_TYPES
    # the system prompt hashes that are the provider's own (its consumer app's default prompt): not a value
    # that links anyone (app.stages.account)
    first_party_prompts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rules:
    mode: str
    account: TableBounds
    fingerprint: TableBounds
    cluster: TableBounds
    sweep_every_events: int
    content_lsh_bands: int
    content_max_chars: int
    content_flag_min: float
    signals: dict[str, Signal]
    fingerprints: FingerprintRules
    policy: Policy
    allowlist: tuple[AllowEntry, ...] = ()
    source: str = field(default="<memory>", compare=False)

    def signal(self, code: str) -> Signal | None:
        """The signal's parameters, or None when the rules file leaves it out or disables it."""
        s = self.signals.get(code)
        return s if s is not None and s.enabled else None

    def severity(self, score: float) -> str:
        p = self.policy
        if score >= p.severity_critical:
            return "critical"
        if score >= p.severity_high:
            return "high"
        if score >= p.severity_medium:
            return "medium"
        return "low"
