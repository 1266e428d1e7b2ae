"""Per-fingerprint state (payment method, JA4, IP prefix, device, prompt template): which accounts are
behind a value, how many orgs they span, and whether the value is rare enough to link them.

A value is popular and links nothing when more distinct accounts than `popular_accounts` use it, or
while at least `popular_established` established (old, verified) accounts make up half or more of its
users: a common SDK's JA4, a big NAT or a team card is "not rare elsewhere". Otherwise, once eligible
(new or unverified; any account for a payment method or device) accounts from two or more orgs share
it, it links them: a `Link` goes to the cluster stage for every eligible member, then for each
new member and whenever a member's summary moves up a level.

A system prompt (template value "sys:<hash>") is judged by who uses it, not only by how many: one that
more than `popular_accounts` accounts share stays linkable while at least `campaign_prompt.min_young_share`
of them are new or unverified (a campaign's agentic harness; an IDE's or an SDK's prompt is used mostly by
established customers, a consumer app's by a majority of them) and it has at most
`campaign_prompt.max_accounts` users. Such a campaign-like prompt, once it has `campaign_prompt.min_accounts`
users, links its established members too, the way a payment method or a device does. `popularity()` gives
the verdict with a reason code and its figures."""

from __future__ import annotations

from itertools import islice
from operator import itemgetter

from app.detect.messages import Link, Observation, Summary
from app.rules.model import CampaignPrompt, Rules

# member record: [last_ms, org or "", eligible, level]
STRONG_SCOPES = frozenset({"payment_fp", "device_id"})
_LAST, _ORG, _ELIG, _LEVEL = range(4)
_last_of = itemgetter(_LAST)


class FpState:
    __slots__ = ("anchor", "distinct", "established", "first_ms", "last_ms", "linking", "members", "popular")

    def __init__(self, ts_ms: int) -> None:
        self.first_ms = ts_ms
        self.last_ms = ts_ms
        self.distinct = 0                    # distinct accounts ever added (upper bound past the cap)
        self.established = 0                 # of those, not new and not unverified
        self.members: dict[str, list] = {}   # at most max_members, most recent kept
        self.linking = False
        self.popular = False
        self.anchor: str | None = None

    def snapshot(self) -> list:
        return [2, self.first_ms, self.last_ms, self.distinct, self.established, self.members,
                int(self.linking), int(self.popular), self.anchor]

    @classmethod
    def restore(cls, s: list) -> FpState:
        if not s or s[0] != 2:
            raise ValueError(f"unknown fingerprint state version {s[:1]!r}")
        f = cls.__new__(cls)
        _, f.first_ms, f.last_ms, f.distinct, f.established, f.members, linking, popular, f.anchor = s
        f.linking, f.popular = bool(linking), bool(popular)
        return f

    def orgs(self) -> int:
        return len({m[_ORG] or f"~{acct}" for acct, m in self.members.items()})


def _oldest(members: dict[str, list]) -> str:
    """The member least recently seen; on a tie the first in dict order, exactly like
    ``min(members, key=lambda k: members[k][_LAST])`` but without a Python call per member."""
    lasts = list(map(_last_of, members.values()))
    return next(islice(members, lasts.index(min(lasts)), None))


def _eligible(members: dict[str, list], everyone: bool = False) -> list[str]:
    if everyone:
        return list(members)
    return [a for a, r in members.items() if r[_ELIG]]


def is_system_prompt(scope: str, value: str) -> bool:
    return scope == "template" and value.startswith("sys:")


def popularity(fp: FpState, scope: str, value: str, rules: Rules) -> tuple[str, float, float, str]:
    """The verdict `observe` applies to a value, as (code, figure, threshold, detail):
    FP_POPULAR_ACCOUNTS or FP_POPULAR_ESTABLISHED (links nothing), FP_CAMPAIGN_PROMPT (a system prompt
    whose users look like a campaign: linkable past `popular_accounts`, established members included),
    FP_RARE (linkable by count: new/unverified members only, or everyone for a payment method/device)."""
    fr = rules.fingerprints
    cp = fr.campaign_prompt
    young = fp.distinct - fp.established
    if fp.established >= fr.popular_established and fp.established * 2 >= fp.distinct:
        return ("FP_POPULAR_ESTABLISHED", fp.established, fr.popular_established,
                f"{fp.established} of {fp.distinct} accounts using it are established (half or more)")
    if cp is not None and is_system_prompt(scope, value) and _campaign_like(fp, cp):
        share = young / fp.distinct
        return ("FP_CAMPAIGN_PROMPT", round(share, 4), cp.min_young_share,
                f"{young} of {fp.distinct} accounts using this system prompt are new or unverified "
                f"(>= {cp.min_young_share:g}, {cp.min_accounts}..{cp.max_accounts} users): a campaign's "
                "harness, not a product's")
    if fp.distinct > fr.popular_accounts:
        return ("FP_POPULAR_ACCOUNTS", fp.distinct, fr.popular_accounts,
                f"{fp.distinct} accounts use it (> popular_accounts {fr.popular_accounts})")
    return ("FP_RARE", fp.distinct, fr.popular_accounts, f"{fp.distinct} accounts, {young} new or unverified")


def _campaign_like(fp: FpState, cp: CampaignPrompt) -> bool:
    return (cp.min_accounts <= fp.distinct <= cp.max_accounts
            and fp.distinct - fp.established >= cp.min_young_share * fp.distinct)


def observe(fp: FpState, obs: Observation, rules: Rules) -> list[Link]:
    s = obs.summary
    ts = obs.ts_ms
    fp.last_ms = max(fp.last_ms, ts)
    bounds = rules.fingerprint
    members = fp.members
    m = members.get(s.account_id)
    is_new = m is None
    # a payment method or a device shared across orgs is evidence whoever holds it (aged, bought or
    # verified accounts included): for those scopes every account is linkable, and only sheer numbers
    # make the value popular; weaker values (JA4, IP block, template) link only new/unverified accounts
    strong = obs.scope in STRONG_SCOPES
    eligible = strong or s.eligible
    if is_new:
        fp.distinct += 1
        if not eligible:
            fp.established += 1
        m = [ts, s.org or "", int(eligible), -1]
        members[s.account_id] = m
        if len(members) > bounds.max_members:
            oldest = _oldest(members)
            del members[oldest]
            if oldest == fp.anchor:
                fp.anchor = None
    else:
        m[_LAST] = max(m[_LAST], ts)
        m[_ELIG] = int(eligible)
    # popular while mostly established accounts use it (a common SDK, an IDE's system prompt); a value
    # that a campaign's aged accounts share with its new ones stays linkable
    fr = rules.fingerprints
    cp = fr.campaign_prompt
    # a system prompt whose users look like a campaign (mostly new/unverified): judged by who uses it
    camp = cp is not None and is_system_prompt(obs.scope, obs.value) and _campaign_like(fp, cp)
    fp.popular = (fp.distinct > fr.popular_accounts and not camp) or (
        fp.established >= fr.popular_established and fp.established * 2 >= fp.distinct)
    if fp.popular:
        return []
    # ... and links its established members too, like a payment method or a device
    everyone = camp and cp.link_established
    # the eligible list, the org count and the links are built only when this call can use them: most
    # observations of a linking value come from a member already linked at its current level
    eligible = None
    if not fp.linking:
        eligible = _eligible(members, everyone)
        if len(eligible) < 2 or len({members[a][_ORG] or f"~{a}" for a in eligible}) < 2:
            return []
        fp.linking = True
    if fp.anchor is None or fp.anchor not in members:
        if eligible is None:
            eligible = _eligible(members, everyone)
        fp.anchor = min(eligible, key=lambda a: (members[a][_LAST], a)) if eligible else None
    if fp.anchor is None or not (m[_ELIG] or everyone):
        return []
    key = obs.key
    n_org = -1  # members do not change from here on: count orgs once, for the first link
    links = []
    if is_new or m[_LEVEL] < 0:
        # first link for this fingerprint: bring along the members that were waiting for a second org
        if eligible is None:
            eligible = _eligible(members, everyone)
        for acct in eligible:
            r = members[acct]
            if r[_LEVEL] < 0 and acct != s.account_id:
                r[_LEVEL] = 0
                if n_org < 0:
                    n_org = fp.orgs()
                links.append(Link(key, ts, obs.event_id, _stub(acct, r), fp.anchor, len(members), n_org))
    level = s.level
    if level != m[_LEVEL]:
        m[_LEVEL] = level
        if n_org < 0:
            n_org = fp.orgs()
        links.append(Link(key, ts, obs.event_id, s, fp.anchor, len(members), n_org))
    return links


def _stub(acct: str, r: list) -> Summary:
    """A member known to this fingerprint only by org and eligibility: its full summary reaches the
    cluster stage with its own next observation."""
    return Summary(acct, r[_ORG] or None, r[_LAST], bool(r[_ELIG]), bool(r[_ELIG]), 0, 0)
