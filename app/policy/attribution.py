"""Who a cluster's decision reaches, and how far: evidence attributed per member (rules:
`policy.attribution`). An account is acted on for evidence that ties *it* to abuse, never for the company
it keeps in a cluster alone.

- own evidence: the account's own abuse signals (`own_signals`) or flagged requests (`own_content`);
- a cluster is decided only with `cluster_min_own_members` members with own evidence (a community of new
  accounts tied by a card or a device: `new_card_community`), and only when at least
  `cluster_min_risky_share` of its members are risky (new, disposable email, no KYC);
- a member with own evidence and a strong tie (payment method, device, harness prompt) gets the
  cluster's decision, up to `own_strong_max_action`; tied by weak values only (a ring), or with no own
  evidence but a flagged request on a harvest template (`fingerprints.harvest_template`), up to
  `own_weak_max_action`;
- a member without own evidence is reached only when a strong value it holds is also held by a member
  with own evidence (*association*), at most `association_max_action`
  (`established_association_max_action` for an aged account without a disposable email); a throwaway
  account on a card risky orgs share (`payment_ring`) or on a harness prompt throwaway orgs run
  (`harness_ring`), or one whose only evidence is its egress (its own
  rotating through hosting networks, or a hosting block its community's pool-like egress reuses:
  `egress_spread`), is reached as far as association: that is evidence about how it pays, connects or signed
  up, not about what it sends;
- anyone else in the cluster is not reached at all."""

from __future__ import annotations

from dataclasses import dataclass

from app.allowlist import Allowlist
from app.detect.cluster import COMMUNITY, RING, SCOPE_BITS, ClusterState, Live, Member, quiet
from app.detect.hits import Hit
from app.detect.messages import (
    OWN_CONTENT,
    OWN_HARNESS,
    OWN_HARVEST,
    OWN_NAMES,
    OWN_NETWORK,
    OWN_OTHER,
    OWN_PAYMENT,
    OWN_POOL,
    OWN_STRUCTURAL,
    OWN_VOLUME,
)
from app.emit.records import Decision, Reason, stable_id
from app.policy.decide import LEVELS
from app.rules.load import KNOWN_SIGNALS
from app.rules.model import Attribution, Rules

_FAMILY_BIT = {"content": OWN_CONTENT, "network": OWN_NETWORK, "volume": OWN_VOLUME}
# a member tied by a payment method or a device (`new_card_community`)
CARD_TIES = SCOPE_BITS["payment_fp"] | SCOPE_BITS["device_id"]
# own evidence that does not by itself take a strongly tied member to `own_strong_max_action`: a flagged
# request on a harvest template (a ring member's reach), egress, its own or its pool's, and a harness ring
# (association's)
_NOT_STRONG = OWN_HARVEST | OWN_POOL | OWN_NETWORK | OWN_HARNESS
# own evidence that is only what the account sends (its flagged requests, on a harvest template or not)
_SENT_ONLY = OWN_CONTENT | OWN_HARVEST


def _home_weak(m: Member, own: int) -> bool:
    """A member at home (`at_home`) whose own evidence `own` is only what it sends, reached through a ring's
    evidence or a harvest template (a weak tie): `home_weak_max_action` caps it."""
    return not own & ~_SENT_ONLY and at_home(m)


def _structural(bits: int) -> bool:
    """Evidence only about how the member pays or connects (a ring's card, its own rotating egress, its
    community's egress pool)."""
    return bool(bits) and not bits & ~OWN_STRUCTURAL

# Values a cluster decision is also issued for. A fingerprint-scoped decision applies to every request on
# the value at the rate limiter (contract v1), so it is only issued where every account behind it is
# reached: a payment method or a device links every account that uses it. A JA4 or an IP block also
# carries bystanders (resold genuine traffic, colleagues behind a NAT), who would be penalised without
# being implicated: those values are not decided; their implicated accounts get account decisions.
DECISION_SCOPES = ("payment_fp", "device_id")


def own_bits(hits: list[Hit], rules: Rules) -> int:
    """The own-evidence bits of an account's firing (enforcing) signals (`own_signals`). A volume or egress
    signal that fired stays evidence for the account's life in state (the account keeps these bits)."""
    a = rules.policy.attribution
    bits = 0
    for h in hits:
        if h.signal.code in a.own_signals and not h.signal.shadow:
            bits |= _FAMILY_BIT.get(h.signal.family, OWN_OTHER)
    return bits


def payment_ring(link_scope: str, risky_orgs: int, throwaway: bool, rules: Rules, unrelated: bool = False) -> bool:
    """A throwaway account (disposable email, no KYC) paying with a card that new, disposable or KYC-less
    accounts of at least FP_PAYMENT_SHARED's threshold of orgs pay with (`attribution.payment_ring`), or any
    holder of a card whose holders share no network, each on its own hosting block (`unrelated`, judged by
    `fingerprints.unrelated_card`): own evidence of a payment ring. A company's new hires on its card have
    corporate emails and KYC and sit behind its office; a lab's students behind the campus address."""
    if link_scope != "payment_fp":
        return False
    if unrelated:
        return True
    if not rules.policy.attribution.payment_ring or not throwaway:
        return False
    s = rules.signal("FP_PAYMENT_SHARED")
    return s is not None and risky_orgs >= s.threshold


def harness_ring(tie: str, orgs: int, throwaway_orgs: int, rules: Rules) -> bool:
    """A campaign's harness system prompt whose users are throwaway accounts (disposable email, no KYC) of at
    least `harness_ring.min_orgs` orgs and `min_share` of its orgs: its throwaway users have evidence of their
    own (`OWN_HARNESS`). Developers trying a new agent framework sign up with their own emails, a classroom
    or a hackathon with email KYC; a campaign's one-session agent accounts are bought throwaways."""
    a = rules.policy.attribution
    return (tie == "harness" and a.harness_min_orgs > 0 and throwaway_orgs >= a.harness_min_orgs
            and throwaway_orgs >= a.harness_min_share * orgs)


def content_now(flagged: int, n: int, rules: Rules) -> int:
    """OWN_CONTENT while the account's flagged requests are at least `own_content.min_flagged` and
    `own_content.min_share` of its requests: judged on its life so far at every request, not kept once
    seen, so a few misread requests early in a long benchmark sweep do not stay evidence."""
    a = rules.policy.attribution
    return OWN_CONTENT if flagged >= a.own_content_min_flagged and flagged >= a.own_content_min_share * n else 0


def own_text(bits: int) -> str:
    return "+".join(name for bit, name in OWN_NAMES.items() if bits & bit) or "none"


def established(young: bool, kyc: str | None, email: str | None) -> bool:
    """An established customer: not new, card- or ID-verified, no disposable email. On its own behaviour it
    is acted on at most as `policy.established_max_action` (blocking a paying customer is an analyst's call)."""
    return not young and kyc in ("card", "id_verified") and email != "disposable"


def account_limits(young: bool, kyc: str | None, email: str | None, hits: list[Hit],
                   rules: Rules) -> tuple[str | None, Reason | None]:
    """(cap, gate) of an account-scoped decision for this account: the highest action it may take (None:
    no cap), and why it may take none at all (None: it may). An established customer is acted on for its
    own behaviour only when one of `policy.established_requires` fires (trace elicitation, say: an LLM-as-
    judge pipeline's rubric prompts at volume from a cloud region is what such customers do), and then at
    most as `policy.established_max_action`."""
    p = rules.policy
    if not established(young, kyc, email):
        return None, None
    needs = p.established_requires
    if needs and not any(h.signal.code in needs and not h.signal.shadow for h in hits):
        return p.established_max_action, Reason(
            "NOT_DECIDED_ESTABLISHED_CUSTOMER", 0, len(needs),
            "an established, verified customer is acted on for its own behaviour only with one of "
            + ", ".join(sorted(needs)))
    return p.established_max_action, None


# -- clusters -------------------------------------------------------------------------------------------
def cluster_gate(c: ClusterState, rules: Rules, texts: bool = True) -> Reason | None:
    """Why this cluster may not be decided (the reason its alert carries), or None when it may. Shared
    values alone are not a campaign (a lab's grant card, a company's onboarding card, a hackathon's starter
    prompt): a cluster is decided only with members whose own behaviour is flagged, and only when it is
    made of new, disposable or KYC-less accounts, or its members send from spread networks
    (`spread_networks`): aged, verified colleagues share a site's network and are colleagues, whatever they
    share and whatever a content classifier makes of their prompts. `texts` False: the reason without its
    text (an empty detail)."""
    at = rules.policy.attribution
    size = len(c.members)
    v = view(c, rules)
    own = own_members(c, v, at.cluster_min_own_members)
    if own < at.cluster_min_own_members and not new_card_community(c, v, own, at):
        # (with fewer members with evidence than even that route needs, the count says it all)
        why = new_card_miss(c, v, own, at) if texts and 0 < at.new_card_min_own_members <= own else None
        return Reason("NOT_DECIDED_OWN_EVIDENCE", own, at.cluster_min_own_members,
                      f"{own} of {size} members have abuse evidence of their own: shared values alone are "
                      f"not acted on{f' (not a community of new accounts on one card: {why})' if why else ''}"
                      if texts else "")
    if v.aged_cap == NOTHING:  # mostly aged, verified members, not on spread networks (`aged_cap`)
        return Reason("NOT_DECIDED_ESTABLISHED", round(c.risky / size, 4), at.cluster_min_risky_share,
                      f"{c.risky} of {size} members are new, disposable or KYC-less, and its {c.netted} members "
                      f"with a known network send from {len(c.nets)} IP blocks of {len(c.asns)} network operators: "
                      "a community of aged, verified accounts on shared networks is colleagues, whatever its "
                      "members' content looks like (a lab's benchmark sweeps can read like trace elicitation)"
                      if texts else "")
    if v.aged_cap == COHORT:  # a cohort at one site (`site_cohort`) or at home (`home_cohort`)
        site = site_cohort(c, rules)
        if site:
            return Reason("NOT_DECIDED_SITE_COHORT", round(site / c.netted, 4), at.site_min_share,
                          f"{site} of its {c.netted} members with a known network send from one IP block that is "
                          "not hosting egress: a cohort at one site (a hackathon at its venue, a class on its "
                          "campus, new hires in their office), whatever its members share; each is judged on its "
                          "own behaviour" if texts else "")
        home = home_cohort(c, rules)
        return Reason("NOT_DECIDED_HOME_COHORT", round(home / c.netted, 4), at.home_min_share,
                      f"{home} of its {c.netted} members with a known network each send from an IP block of their "
                      "own, every request from their billing country and none through a proxy, a VPN or a hosting "
                      "network: a cohort at home (an online course's live lesson, its students each on their own "
                      "line), whatever its members share; each is judged on its own behaviour" if texts else "")
    return None


def new_card_community(c: ClusterState, v: View, own: int, at: Attribution) -> bool:
    """Whether the community is decided on fewer members with own evidence than `cluster_min_own_members`
    (`own` of them): at least `new_card_min_own_members` (`new_card_community.min_own_members`; 0: never) of
    them not at home (`at_home`), in a community of two or more members, every one new at first use and tied
    to it by a payment method or a device. A hydra replaces each banned account with a new one of another org
    on the same card: a card's holders come in pairs, the predecessor with evidence, the replacement on its
    first request. Colleagues on a lab's or a company's card are held at a site (`site_cohort`, asked after
    this); a teammate with flagged probes from home does not decide the pair, nor do members more than
    `new_card_max_verified_share` of whom have a verified identity (people who know each other: a security
    programme's researchers); new accounts that share only a system prompt (a hackathon's, an agent framework's
    launch crowd) are not this community."""
    return new_card_miss(c, v, own, at) is None


def new_card_miss(c: ClusterState, v: View, own: int, at: Attribution) -> str | None:
    """Why the cluster is not a community of new accounts on one card decidable on `own` members with own
    evidence (`new_card_community`), in words for its alert; None when it is one. The tests in the order
    `new_card_community` asks them, the cheap ones first."""
    need = at.new_card_min_own_members
    members = c.members
    if not need:
        return "off"
    if own < need:
        return f"{own} members with evidence of their own, fewer than {need}"
    if c.kind != COMMUNITY or len(members) < 2:
        return "not a community of two or more members"
    if c.young < len(members):
        return f"{len(members) - c.young} of its {len(members)} members not new at first use"
    if not all(m.ties & CARD_TIES for m in members.values()):
        return "a member not tied to it by a payment method or a device"
    share = at.new_card_max_verified_share
    verified = sum(1 for m in members.values() if m.verified) if share is not None else 0
    if share is not None and verified > share * len(members):
        return f"{verified} of its {len(members)} members ID-verified, more than {share:g}"
    away = 0
    for m in members.values():
        if not at_home(m) and member_evidence(c, m, v):
            away += 1
            if away >= need:
                return None
    return ("its members with evidence of their own send from home, each on a home line or phone in its billing "
            "country")


def site_cohort(c: ClusterState, rules: Rules) -> int:
    """Whether the community is a cohort at one site (`attribution.site_cohort`): the members sending from
    its most used IP block that is not hosting egress (that of their latest request; no member sends from it
    as a hosting address: a campaign's accounts on one cloud machine are no site), when that block holds at
    least `min_share` of the members with a known block and at least `min_members` of them, and fewer than
    `max_throwaway_share` of its members are throwaway accounts (disposable email, no KYC): a hackathon's or a
    class's participants sign up with their own emails, a card ring's bought accounts from one line do not.
    0: not a cohort."""
    at = rules.policy.attribution
    if at.site_min_members <= 0 or c.kind != "community" or c.netted < at.site_min_members:
        return 0
    # the cheap tests first (this runs whenever a community's figures change): a campaign's throwaway
    # accounts, or no block at all holding enough members, rule it out without a scan of its blocks
    if c.throwaways >= at.site_max_throwaway_share * len(c.members):
        return 0
    nets = c.nets
    need = max(at.site_min_members, at.site_min_share * c.netted)
    if max(nets.values()) < need:
        return 0
    # the most used block that is not hosting egress (a count, whichever block holds it: no order to depend on)
    blocks = c.blocks
    n = max((k for b, k in nets.items() if b not in blocks), default=0)
    return 0 if n < need else n


def home_cohort(c: ClusterState, rules: Rules) -> int:
    """Whether the community is a cohort at home (`attribution.home_cohort`): its members at home
    (`Member.home`: every request of theirs from their billing country, none through a proxy, a VPN or a
    hosting network) each on an IP block no other member sends from (that of their latest request), when they
    are at least `min_share` of the members with a known block and at least `min_members` of them, and fewer
    than `max_throwaway_share` of its members are throwaway accounts: an online course's students in a live
    lesson, each on their own home line or phone. A campaign's accounts share a proxy pool's exits, rotate
    through them, or send from abroad or from clouds. 0: not a cohort."""
    at = rules.policy.attribution
    if at.home_min_members <= 0 or c.kind != "community" or c.netted < at.home_min_members:
        return 0
    home_nets = c.home_nets
    # a member alone on its block holds a block of its own: too few such blocks, and no need to count them
    if len(home_nets) < at.home_min_members or len(home_nets) < at.home_min_share * c.netted:
        return 0
    nets = c.nets
    alone = sum(1 for b, k in home_nets.items() if k == 1 and nets[b] == 1)
    if alone < at.home_min_members or alone < at.home_min_share * c.netted:
        return 0
    return 0 if c.throwaways >= at.home_max_throwaway_share * len(c.members) else alone


def spread_networks(c: ClusterState, rules: Rules) -> bool:
    """Whether the community's members send from spread networks (`attribution.spread_networks`): at least
    `min_members` of them with a known IP block (that of their latest request, any network), on at least
    `min_share` distinct blocks per such member or with no block holding more than `max_block_share` of them
    (a pool reused by a large campaign's members) or on several blocks each shared by members (`pool_blocks`: a
    small residential pool's exits), of at least `min_asns` network operators (ASNs).
    Colleagues share a site's network (a lab's campus NAT, an eval vendor's or a company's network, a
    household's line): one operator, however many blocks a cloud tenancy or an office hands out, and one
    block most of them send from; a campaign's aged holders of one card, of different orgs, each send from
    their own proxy exit, its pool spanning many operators."""
    at = rules.policy.attribution
    netted = c.netted
    if not (at.spread_min_members > 0 and c.kind == "community" and netted >= at.spread_min_members
            and len(c.asns) >= at.spread_min_asns):
        return False
    nets = c.nets
    if len(nets) >= at.spread_min_share * netted or max(nets.values()) <= at.spread_max_block_share * netted:
        return True
    return at.spread_pool_min_blocks > 0 and pool_blocks(nets, netted, at) >= at.spread_pool_min_blocks


def pool_blocks(nets: dict[int, int], netted: int, at: Attribution) -> int:
    """The IP blocks two or more members send from, when they are a pool's exits (`spread_networks.pool_*`):
    together holding at least `pool_min_share` of the `netted` members with a known block, none of them
    `site_cohort.min_share` of those members (a site). 0 otherwise."""
    shared = [k for k in nets.values() if k >= 2]
    if not shared or sum(shared) < at.spread_pool_min_share * netted or max(shared) >= at.site_min_share * netted:
        return 0
    return len(shared)


def _established_majority(c: ClusterState, rules: Rules) -> bool:
    """Fewer than `cluster_min_risky_share` of the cluster's members are risky."""
    size = len(c.members)
    return bool(size) and c.risky < rules.policy.attribution.cluster_min_risky_share * size


# `aged_cap` when the community looks like colleagues again: its aged members are reached by nothing
NOTHING = "nothing"
# `aged_cap` of a community that is a cohort at one site (`site_cohort`) or at home (`home_cohort`): no member
# is reached
COHORT = "cohort"
# `View.aged_cap` of a cluster whose live decision was made as a community of new accounts on one card
# (`Live.new_card`: on fewer members with own evidence than `cluster_min_own_members`) and that is no longer
# one, nor decidable otherwise: the live decision reaches none of its members that are not risky (an aged,
# verified account that pays with a hydra pair's card after the pair was decided on one member's evidence is
# no new account, and a decision made for new accounts does not carry over to it)
UNDECIDABLE = "undecidable"


def aged_cap(c: ClusterState, rules: Rules) -> str | None:
    """The most a member that is not risky may get from this cluster, when the cluster is below
    `cluster_min_risky_share`: `spread_networks.aged_max_action` while its members send from spread networks,
    and `NOTHING` while they do not (aged, verified accounts sharing a site's network are colleagues: a
    decision made while the route was open, still live, reaches none of them from then on). Otherwise
    `COHORT` while the community is a cohort at one site (`site_cohort`) or at home (`home_cohort`): a decision
    made before it was one reaches none of its members from then on, risky or not. A ring linked through a
    ring's exit (`fingerprints.exit_ring`: an IP block of a VPN, a proxy or a home network abroad whose users are
    mostly accounts of several orgs with flagged requests through it) is such a pool too. None: no cap."""
    if not _established_majority(c, rules):
        return COHORT if site_cohort(c, rules) or home_cohort(c, rules) else None
    if spread_networks(c, rules) or (c.kind == RING and c.exits):
        return rules.policy.attribution.spread_aged_max_action
    return NOTHING


def _aged(cap: str | None, m: Member, aged: str | None) -> str | None:
    """A tie's cap `cap`, lowered to the aged cap `aged` for a member that is not risky (for every member of a
    cohort at one site: nothing)."""
    if aged is None or cap is None:
        return cap
    if aged == COHORT:
        return None
    if m.risky:
        return cap
    return None if aged in (NOTHING, UNDECIDABLE) else _capped(cap, aged)


def spread(c: ClusterState, rules: Rules) -> int:
    """Whether the cluster's hosting egress is spread like a proxy pool's (`attribution.egress_spread`):
    then every member sending from a hosting block that `min_block_members` members send from has pool
    egress evidence (OWN_POOL), however few its own requests. 0: not spread; else that number
    (`ClusterState.egress_spread`)."""
    at = rules.policy.attribution
    if c.kind != "community":
        return 0
    return c.egress_spread(at)


def pooled(c: ClusterState, rules: Rules) -> bool:
    """Whether the community's requests, pooled over its members, are flagged content
    (`attribution.content_pool`): then each strongly tied member with flagged requests of its own, at
    `own_content.min_share` of its requests, has content evidence from its first flagged request on. A
    slow campaign's accounts send a handful of requests each, too few for `own_content.min_flagged`; what
    its members send together is the campaign's content. A hackathon's or an onboarding wave's prompts
    are not flagged, and a lab of aged students is stopped by the risky share whatever its content."""
    at = rules.policy.attribution
    return c.kind == "community" and c.content_pool(at.pool_min_members, at.pool_min_requests, at.pool_min_share)


@dataclass(frozen=True, slots=True)
class View:
    """How a cluster's pooled figures extend its members' own evidence, as of one moment: `spread` (egress
    from a proxy pool: 0 none, else the members a hosting block needs), `pool_share` (pooled flagged content:
    the share of its requests a member's own flagged requests must make up; None: no pooled content
    evidence) and `shared_blocks` (with `spread` above 1, the hosting blocks that many members send from:
    a member's egress evidence changes when another member comes to or leaves its block, so a view with
    other blocks is another view, and the reach index is made again)."""
    spread: int
    pool_share: float | None
    shared_blocks: frozenset[int] = frozenset()
    aged_cap: str | None = None  # `aged_cap`: the most a member that is not risky may get


def view(c: ClusterState, rules: Rules) -> View:
    """Made again only when the cluster's figures or the rules changed (`ClusterState.rev`)."""
    memo = c.viewed
    # (the live decision too: whether it was made as a community of new accounts on one card, `UNDECIDABLE`)
    if memo is not None and memo[1] is rules and memo[5] is c.live:
        if memo[0] == c.rev:
            return memo[2]
        if memo[3] == quiet(c):
            # only members' request counts moved (`quiet`): the view reads them through the pooled content
            # verdict alone
            pool = pooled(c, rules)
            if pool == memo[4]:
                c.viewed = (c.rev, rules, memo[2], memo[3], pool, c.live)
                return memo[2]
    sp = spread(c, rules)
    shared = frozenset(c.shared_blocks(sp)) if sp > 1 else frozenset()
    pool = pooled(c, rules)
    at = rules.policy.attribution
    aged = aged_cap(c, rules)
    v = View(sp, at.own_content_min_share if pool else None, shared, aged)
    live = c.live
    if aged not in (NOTHING, COHORT) and live is not None and live.new_card:
        # decided as a community of new accounts on one card: while it is not one, nor decidable otherwise,
        # its members that are not risky get nothing
        own = own_members(c, v, at.cluster_min_own_members)
        if own < at.cluster_min_own_members and not new_card_community(c, v, own, at):
            v = View(sp, v.pool_share, shared, UNDECIDABLE)
    c.viewed = (c.rev, rules, v, quiet(c), pool, live)
    return v


def decided_as_new_card(c: ClusterState, rules: Rules) -> bool:
    """Whether a decision made on the cluster now is made as a community of new accounts on one card: on
    fewer members with own evidence than `cluster_min_own_members` (`Live.new_card`)."""
    at = rules.policy.attribution
    return own_members(c, view(c, rules), at.cluster_min_own_members) < at.cluster_min_own_members


def at_home(m: Member) -> bool:
    """Whether member `m` is at home (`Member.home`, `home_weak_max_action`): every request of its from its
    billing country on home or phone networks, none through a proxy, a VPN or a hosting network. Throwaway
    accounts (disposable email, no KYC) too: an online lesson's students sign up with whatever email they
    have, and throwaway students whose chain-of-thought exercises the classifier flags were throttled through
    their lesson's ring in 20 of 84 odd worlds (29 students, 1 to 4 a world) until they were held at home too;
    the cost over those worlds, 26 campaign accounts of 47,265, mostly a stealth campaign's throwaways on
    residential exits in their billing countries. A function of its own record only, so the reach index stays exact
    (`_Index`). Whether another member shares its block is not asked: over 48 odd worlds that test kept 17
    more campaign accounts of 24,955 in reach and cost the cluster stage a quarter more per link (a view per
    change of the shared blocks, and the index made again with it)."""
    return bool(m.home)


def member_evidence(c: ClusterState, m: Member, v: View) -> int:
    """A member's own evidence as its cluster sees it (`View`)."""
    return c.evidence_of(m, v.spread, v.pool_share)


def own_members(c: ClusterState, v: View, need: int | None = None) -> int:
    """Members with own evidence as the cluster sees it. With pooled content evidence they are counted over
    the members, stopping at `need` (the count is exact below it)."""
    own = c.own_count(v.spread)
    if v.pool_share is None or (need is not None and own >= need):
        return own
    n = 0
    for m in c.members.values():
        if c.evidence_of(m, v.spread, v.pool_share):
            n += 1
            if need is not None and n >= need:
                break
    return n


def flagged_values(c: ClusterState, rules: Rules) -> set[str]:
    """The strong values held by members with own evidence."""
    v = view(c, rules)
    return {val for m in c.members.values() if member_evidence(c, m, v) for val in m.strong}


@dataclass(frozen=True, slots=True)
class Tie:
    """How a member is tied to its cluster's evidence: `kind` own_strong, own_weak, association or none;
    `cap` the highest action it may get (None: not reached); `code` the reason code its decisions carry."""
    kind: str
    cap: str | None
    code: str
    detail: str


def member_tie(m: Member, bad_values: set[str], rules: Rules, evidence: int | None = None,
               aged: str | None = None) -> Tie:
    """`evidence`: the member's own evidence as its cluster sees it (`member_evidence`); `aged`: the most a
    member that is not risky may get (`View.aged_cap`)."""
    tie = _tie(m, bad_values, rules, evidence)
    cap = _aged(tie.cap, m, aged)
    if cap == tie.cap:
        return tie
    if cap is None and aged == COHORT:
        return Tie(tie.kind, None, tie.code, f"{tie.detail}; at most nothing: a member of a cohort at one site "
                   "(most of its members send from one IP block that is not hosting egress) or at home (most of its "
                   "members each on a home line or phone of their own in their billing country), whatever it was "
                   "decided on before")
    if cap is None and aged == UNDECIDABLE:
        return Tie(tie.kind, None, tie.code, f"{tie.detail}; at most nothing: an aged, verified member of a cluster "
                   "that has fewer members with abuse evidence of their own than a decision needs now, whatever it "
                   "was decided on before")
    if cap is None:
        return Tie(tie.kind, None, tie.code, f"{tie.detail}; at most nothing: an aged, verified member of a community "
                   "of mostly aged, verified accounts on shared networks, colleagues whatever it was decided on before")
    return Tie(tie.kind, cap, tie.code, f"{tie.detail}; at most {cap}: an aged, verified member of a community of "
               "mostly aged, verified accounts, decided on its members' spread networks")


def _tie(m: Member, bad_values: set[str], rules: Rules, evidence: int | None) -> Tie:
    at = rules.policy.attribution
    own = m.evidence if evidence is None else evidence
    assoc = at.association_max_action if at.association_max_action != "none" else None
    if _structural(own):
        if own & OWN_NETWORK:
            # its requests hop between hosting networks, or back and forth between home and phone networks
            # across countries: a proxy pool's exits, or a VPN's
            return Tie("egress_rotation", assoc, "EGRESS_ROTATION",
                       "its own egress rotates through hosting networks, or back and forth between home and phone "
                       "networks of several operators and countries (a proxy pool's exits, or a VPN's that hands "
                       "out a new one per connection); nothing it sends is evidence")
        if own & OWN_POOL:
            # it sends from an address its community's pool reuses: about how it connects, not what it sends
            return Tie("egress_pool", assoc, "EGRESS_POOL",
                       "sends from a hosting block that other members of its community, spread over many such "
                       "blocks like a proxy pool, send from too; nothing it sends is evidence")
        if own & OWN_PAYMENT:
            # a throwaway account on a ring's card: its own doing, but about payment, not about what it sends
            return Tie("payment_ring", assoc,
                       "PAYMENT_RING", "pays with a ring's card: a throwaway account (disposable email or no KYC) "
                       "on a card new, disposable or KYC-less accounts of other orgs pay with, or a holder of a "
                       "card whose holders of several orgs each send from their own hosting network")
        # a throwaway account on a harness prompt that throwaway orgs run: who signed it up, not what it sends
        return Tie("harness_ring", assoc,
                   "HARNESS_RING", "a throwaway account (disposable email or no KYC) running a campaign's harness "
                   "system prompt that throwaway accounts of other orgs run")
    if own:
        if m.strongly_tied and own & ~_NOT_STRONG:
            return Tie("own_strong", at.own_strong_max_action, "OWN_EVIDENCE",
                       f"own evidence ({own_text(own)}) and a strong tie to the cluster")
        if m.strongly_tied:
            tie = Tie("own_weak", at.own_weak_max_action, "OWN_EVIDENCE_WEAK_TIE",
                      "own evidence only a flagged request on a harvest template: acted on as a ring member, "
                      "whatever its strong ties")
        else:
            tie = Tie("own_weak", at.own_weak_max_action, "OWN_EVIDENCE_WEAK_TIE",
                      f"own evidence ({own_text(own)}), tied to the cluster by shared infrastructure or "
                      "templates only")
        if _home_weak(m, own):
            cap = _capped(at.own_weak_max_action, _action_or_none(at.home_weak_max_action))
            if cap != tie.cap:
                return Tie("own_weak", cap, "OWN_EVIDENCE_WEAK_TIE",
                           f"{tie.detail}; at most {cap or 'nothing'}: at home (every request from its billing "
                           "country, none through a proxy, a VPN or a hosting network), its own evidence only "
                           "what it sends")
        return tie
    shared = [v for v in m.strong if v in bad_values]
    if shared:
        cap = at.association_max_action if m.risky else at.established_association_max_action
        return Tie("association", None if cap == "none" else cap, "ASSOCIATION",
                   f"no abuse evidence of its own; shares {shared[0]} with members that have")
    return Tie("none", None, "", "no abuse evidence of its own and no strong value shared with a member that has")


def _action_or_none(action: str) -> str | None:
    return None if action == "none" else action


def _capped(action: str, cap: str | None) -> str | None:
    if cap is None:
        return None
    return LEVELS[min(LEVELS.index(action), LEVELS.index(cap))]


def _limit_rpm(action: str, rules: Rules) -> int | None:
    if action != "throttle":
        return None
    step = next((s for s in rules.policy.actions if s.action == "throttle"), None)
    return step.limit_rpm if step is not None else None


def live_now(live: Live, rules: Rules) -> tuple[str, str]:
    """The cluster's live decision as the rules in force now make it: (action, mode). Its level and reasons
    are facts about the cluster (escalation included); whether and how high it is enforced is the current
    rules' call, exactly as `decide` would make it on the same evidence:
    - global shadow makes it shadow, and a decision made on shadow evidence stays shadow;
    - per-signal shadow: its reasons' signals that enforce now (enabled, not shadow), at their current
      weights, must still reach an action step, otherwise it is shown as shadow only;
    - the policy's steps now: no higher than the highest step, and no block without `block_min_families`
      enforcing families.
    With unchanged rules this is the live decision's own action and mode (decide chose them that way).
    A live decision with a reason that is no signal code was not made by the score alone (an analyst's
    verdict, say): it is not re-judged on signal weights and steps, only global shadow applies.
    Made again only under other rules (`Live.judged`: a live decision's fields do not change)."""
    memo = live.judged
    if memo is not None and memo[0] is rules:
        return memo[1]
    now = _live_now(live, rules)
    live.judged = (rules, now)
    return now


def _live_now(live: Live, rules: Rules) -> tuple[str, str]:
    p = rules.policy
    if not KNOWN_SIGNALS.issuperset(live.reasons):
        return live.action, "shadow" if rules.mode == "shadow" or live.mode == "shadow" else "enforce"
    sigs = [s for s in (rules.signals.get(code) for code in live.reasons) if s is not None and s.enabled]
    enforcing = [s for s in sigs if not s.shadow]
    score = min(100.0, sum(s.weight for s in enforcing))
    enforceable = any(score >= step.min_score for step in p.actions)
    # decide caps a block by the families of the evidence its step came from: the enforcing signals', or
    # all of them for a decision only shadow signals reach
    families = {s.family for s in (enforcing if enforceable else sigs)}
    level = LEVELS.index(live.action)
    if p.actions:
        level = min(level, LEVELS.index(p.actions[-1].action))
    if LEVELS[level] == "block" and len(families) < p.block_min_families:
        level = LEVELS.index("challenge")
    enforce = enforceable and rules.mode != "shadow" and live.mode != "shadow"
    return LEVELS[level], "enforce" if enforce else "shadow"


def _allowed(allow: Allowlist, acct: str, org: str, ts_ms: int) -> bool:
    return bool(allow) and (allow.allows("account", acct, ts_ms) or allow.allows("org", org, ts_ms))


def member_decision(c: ClusterState, acct: str, m: Member, tie: Tie, ts_ms: int, rules: Rules,
                    allow: Allowlist, late: bool, now: tuple[str, str] | None = None) -> Decision | None:
    """The cluster's live decision as member `acct` gets it now, or None (not reached, allowlisted, or
    already holding it at this level). `late`: reached after the cluster's own decision event (a late
    joiner, or a member whose tie grew), so the id is named by this event too. `now`: `live_now(c.live, rules)`
    when the caller has it."""
    live = c.live
    if live is None or ts_ms >= live.until_ms or live.action not in LEVELS:
        return None
    now_action, mode = now if now is not None else live_now(live, rules)
    action = _capped(now_action, tie.cap)
    if action is None:
        return None
    level = LEVELS.index(action)
    if m.dec_until >= live.until_ms and m.dec_level >= level:
        return None
    if _allowed(allow, acct, m.org, ts_ms):
        return None
    m.dec_until, m.dec_level = live.until_ms, level
    reasons = (*live.reasons, "CLUSTER_MEMBER", tie.code)
    if action != now_action:
        reasons = (*reasons, "MEMBER_CAP")
    salt = (action, ts_ms) if late else (action,)
    return Decision(
        decision_id=stable_id("dc", live.decision_id, "account", acct, *salt), ts_ms=ts_ms, scope="account",
        value=acct, action=action, ttl_s=max(1, (live.until_ms - ts_ms) // 1000), reasons=reasons,
        alert_id=live.alert_id, mode=mode, limit_rpm=_limit_rpm(action, rules), cluster_id=c.cid)


def reach(c: ClusterState, ts_ms: int, rules: Rules, allow: Allowlist, only: str | None = None) -> list[Decision]:
    """Account decisions for the members the live decision reaches now (all of them, or `only` one), then,
    on a full pass, decisions for the cluster's strong values whose every holder is reached.

    Exactly `member_decision(c, acct, m, member_tie(m, flagged_values(c, rules), rules, member_evidence(c, m,
    view(c, rules)), view(c, rules).aged_cap), ...)` for each member, done with less work, since a link into a
    decided cluster runs a pass (issue 18): the view, `live_now` and the flagged values are the same for every
    member of one pass (nothing a pass changes, a member's `dec_until`/`dec_level` or a value's `decided_until`,
    enters them), so they are made once, and only when needed; a member already holding the live decision at its
    level is skipped before its tie is made (`_Pass.holds`), and so is one without own evidence and without a
    flagged strong value (the tie "none", whose cap None reaches nothing) and one holding the live decision at its
    tie's cap (`_Pass.capped`). A full pass walks only the members its cluster's reach index (`_Index`) has not set
    aside as holding the live decision at their level or cap; the index also keeps the flagged values.
    """
    live = c.live
    if live is None or ts_ms >= live.until_ms:
        return []
    p = _Pass(c, live, rules)
    if only is not None:
        m = c.members.get(only)
        d = p.visit(only, m, ts_ms, allow, True, held=False) if m is not None and not p.holds(m) else None
        return [d] if d is not None else []
    out: list[Decision] = []
    late = ts_ms != live.ts_ms
    cap = rules.policy.fanout_max_accounts
    members = c.members
    for acct in sorted(p.index().todo):
        d = p.visit(acct, members[acct], ts_ms, allow, late)
        if d is not None:
            out.append(d)
            if len(out) >= cap:
                break
    out += value_decisions(c, p.flagged(), ts_ms, rules, allow)
    return out


_NONE: frozenset[str] = frozenset()


class _Index:
    """A cluster's reach index (`ClusterState.reached`), for the live decision, rules and view it was made
    for: `todo`, the members a full pass must look at (every member but those a pass found holding the
    live decision at their level or at their tie's cap), and `counts`, the flagged values (`flagged_values`)
    with the number of members with own evidence holding each (`held`: the values each one's counts). A
    member's record changes only through its cluster, which notes it in `touched`; a noted member is a
    candidate again and its values are counted afresh. Another live decision makes every member a
    candidate; other rules or another view (whether a member has own evidence, and so its tie's cap, are
    read through it) make the index afresh. Exact while a member's tie cap is a function of its own record,
    its evidence as the view sees it and the rules (`tie_cap`)."""
    __slots__ = ("counts", "held", "live", "rules", "todo", "view")

    def __init__(self, c: ClusterState, live: Live, rules: Rules, v: View) -> None:
        self.live, self.rules, self.view = live, rules, v
        self.todo = set(c.members)
        self.counts: dict[str, int] = {}
        self.held: dict[str, list[str]] = {}
        for acct, m in c.members.items():
            self._count(c, acct, m)

    def _count(self, c: ClusterState, acct: str, m: Member) -> None:
        if m.strong and member_evidence(c, m, self.view):
            counts = self.counts
            held = self.held[acct] = list(m.strong)
            for val in held:
                counts[val] = counts.get(val, 0) + 1

    def read(self, c: ClusterState, touched: set[str]) -> None:
        """Take in the members `touched` since the index last read them."""
        members, counts, todo = c.members, self.counts, self.todo
        for acct in touched:
            for val in self.held.pop(acct, ()):
                n = counts[val] - 1
                if n:
                    counts[val] = n
                else:
                    del counts[val]
            m = members.get(acct)
            if m is None:
                todo.discard(acct)
            else:
                todo.add(acct)
                self._count(c, acct, m)
        touched.clear()


def _index(c: ClusterState, live: Live, rules: Rules, v: View) -> _Index:
    """The cluster's reach index for `live`, `rules` and `v`, up to date."""
    idx, touched = c.reached, c.touched
    if not isinstance(idx, _Index) or touched is None or idx.rules is not rules or (idx.view is not v
                                                                                      and idx.view != v):
        idx = c.reached = _Index(c, live, rules, v)
        c.touched = set()
        return idx
    if touched:
        idx.read(c, touched)
    if idx.live is not live:
        idx.live, idx.todo = live, set(c.members)
    return idx


class _Pass:
    """What one `reach` pass shares across its members, each made on first use (see `reach`)."""
    __slots__ = ("_bad", "_idx", "_now", "_view", "c", "live", "rules")

    def __init__(self, c: ClusterState, live: Live, rules: Rules) -> None:
        self.c, self.live, self.rules = c, live, rules
        self._view: View | None = None
        self._now: tuple[str, str] | None = None
        self._idx: _Index | None = None
        self._bad: set[str] | None = None

    def view(self) -> View:
        if self._view is None:
            self._view = view(self.c, self.rules)
        return self._view

    def now(self) -> tuple[str, str] | None:
        """`live_now`, when `member_decision` would make it (the live action is a level)."""
        if self._now is None and self.live.action in LEVELS:
            self._now = live_now(self.live, self.rules)
        return self._now

    def index(self) -> _Index:
        if self._idx is None:
            self._idx = _index(self.c, self.live, self.rules, self.view())
        return self._idx

    def flagged(self) -> set[str]:
        """`flagged_values(c, rules)`."""
        if self._bad is None:
            self._bad = set(self.index().counts)
        return self._bad

    def visit(self, acct: str, m: Member, ts_ms: int, allow: Allowlist, late: bool,
              held: bool | None = None) -> Decision | None:
        """`member_decision` for member `acct`; it leaves the index's candidates when it holds the live
        decision at its level or cap (a decision made here gives it that). `held`: `holds(m)` when the caller
        made it."""
        todo = self.index().todo
        if held if held is not None else self.holds(m):
            todo.discard(acct)
            return None
        if acct not in todo:
            return None  # set aside by the index (a pass found it holding the live decision at its level or cap)
        ev = member_evidence(self.c, m, self.view())
        bad = _NONE if ev else self.flagged()
        if not ev and bad.isdisjoint(m.strong):
            return None  # the tie "none": a candidate still, its strong values may be flagged later
        if self.capped(m, ev):
            todo.discard(acct)
            return None
        d = member_decision(self.c, acct, m, member_tie(m, bad, self.rules, ev, self.view().aged_cap), ts_ms,
                            self.rules, allow, late, now=self.now())
        if d is not None:
            todo.discard(acct)
        return d

    def holds(self, m: Member) -> bool:
        """Whether `m` already holds the live decision at the level `member_decision` would give it, whatever
        its tie: the level is at most `live_now`'s action, which is at most the live action (`live_now` only
        lowers it), so holding either one's level until the live decision's end means None. False when the
        live action is no level (`member_decision` returns None for it anyway)."""
        live = self.live
        if m.dec_until < live.until_ms or live.action not in LEVELS:
            return False
        if m.dec_level >= LEVELS.index(live.action):
            return True
        now = self.now()
        return now is not None and m.dec_level >= LEVELS.index(now[0])

    def capped(self, m: Member, evidence: int) -> bool:
        """Whether `member_decision` returns None for `m`, tied to the cluster's evidence (own evidence or a
        flagged strong value), before its allowlist check, from the cap alone (`tie_cap`): a cap None, or a
        member holding the live decision until its end at min(live_now, cap) (a member capped at a
        challenge, tied by association, a payment ring or a weak tie, holds it from the first pass on)."""
        live, now = self.live, self.now()
        if now is None:
            return True  # the live action is no level
        cap = tie_cap(m, evidence, self.rules, self.view().aged_cap)
        if cap is None:
            return True
        if cap not in LEVELS or m.dec_until < live.until_ms:
            return False
        return m.dec_level >= LEVELS.index(_capped(now[0], cap))


def tie_cap(m: Member, evidence: int, rules: Rules, aged: str | None = None) -> str | None:
    """`member_tie(m, bad, rules, evidence, aged).cap` for a member tied to the cluster's evidence (own evidence,
    or a strong value in `bad`), without the tie's texts (tests/core/test_reach_pass.py checks the two agree)."""
    return _aged(_tie_cap(m, evidence, rules), m, aged)


def _tie_cap(m: Member, evidence: int, rules: Rules) -> str | None:
    at = rules.policy.attribution
    if _structural(evidence):
        return at.association_max_action if at.association_max_action != "none" else None
    if evidence:
        if m.strongly_tied and evidence & ~_NOT_STRONG:
            return at.own_strong_max_action
        if _home_weak(m, evidence):
            return _capped(at.own_weak_max_action, _action_or_none(at.home_weak_max_action))
        return at.own_weak_max_action
    cap = at.association_max_action if m.risky else at.established_association_max_action
    return None if cap == "none" else cap


def value_decisions(c: ClusterState, bad_values: set[str], ts_ms: int, rules: Rules,
                    allow: Allowlist | None = None) -> list[Decision]:
    """Decisions for the cluster's payment methods and devices held by members with own evidence (every
    holder of such a value is reached, at least by association). Capped at the association action unless
    that is none: the rate limiter applies them to every request on the value, so to holders without
    evidence of their own too. Under the rules in force now (`live_now`); not for a value the allowlist
    names, nor for one an allowlisted member holds (the value's decision would reach that member too)."""
    live = c.live
    if live is None or c.kind != "community":
        return []
    until = live.until_ms
    fps = c.fps
    # the values not decided yet until the live decision's end first (most of a pass's flagged values are
    # decided already, or are no payment method or device), then those in key order
    todo = [key for key in bad_values if (v := fps.get(key)) is not None and v.decided_until < until and v.orgs >= 2
            and key.partition(":")[0] in DECISION_SCOPES]
    if not todo:
        return []
    at = rules.policy.attribution
    now_action, mode = live_now(live, rules)
    action = _capped(now_action, None if at.association_max_action == "none" else at.association_max_action)
    if action is None:
        return []
    allowed_holders: set[str] = set()
    if allow:
        for acct, m in c.members.items():
            if _allowed(allow, acct, m.org, ts_ms):
                allowed_holders.update(m.strong)
    out = []
    for key in sorted(todo):
        v = fps[key]
        scope, _, value = key.partition(":")
        if allow and (key in allowed_holders or allow.allows(scope, value, ts_ms)):
            continue
        v.decided_until = until
        reasons = (*live.reasons, "CLUSTER_FP") if action == now_action else (*live.reasons, "CLUSTER_FP",
                                                                               "MEMBER_CAP")
        out.append(Decision(
            decision_id=stable_id("dc", live.decision_id, scope, value), ts_ms=ts_ms, scope=scope, value=value,
            action=action, ttl_s=max(1, (until - ts_ms) // 1000), reasons=reasons, alert_id=live.alert_id,
            mode=mode, limit_rpm=_limit_rpm(action, rules), cluster_id=c.cid))
    return out


def lift_member(acct: str, ts_ms: int, reason: str, rules: Rules, cluster_id: str | None,
                parent_id: str) -> Decision:
    """A `lift` for an account whose live decision came from a cluster's (it was allowlisted since); always
    `mode: enforce`, whatever the rules' mode (see `decide.lift`)."""
    alert_id = stable_id("al", "account", acct, "lift", ts_ms)
    return Decision(
        decision_id=stable_id("dc", alert_id, "account", acct, "lift", parent_id), ts_ms=ts_ms,
        scope="account", value=acct, action="lift", ttl_s=1, reasons=(reason,), alert_id=alert_id,
        mode="enforce", cluster_id=cluster_id,
    )
