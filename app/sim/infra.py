"""The simulated world's network: ASNs by country and type, IP addresses, TLS/SDK client stacks (JA4 + UA).

The catalogue is fixed (seeded by a constant, not the scenario seed): the same ASN always owns the same
prefixes, and the same popular SDK always has the same JA4, whatever scenario runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# (asn, type, country) - real ASN numbers of well-known networks; prefixes below are synthetic
_ASNS: tuple[tuple[int, str, str], ...] = (
    (7922, "residential", "US"), (20115, "residential", "US"), (7018, "residential", "US"),
    (701, "residential", "US"), (21928, "mobile", "US"), (22394, "mobile", "US"),
    (2856, "residential", "GB"), (5089, "residential", "GB"), (12576, "mobile", "GB"),
    (3320, "residential", "DE"), (3209, "residential", "DE"), (3215, "residential", "FR"),
    (12322, "residential", "FR"), (4713, "residential", "JP"), (2516, "residential", "JP"),
    (17676, "mobile", "JP"), (55836, "mobile", "IN"), (24560, "residential", "IN"),
    (28573, "residential", "BR"), (18881, "mobile", "BR"), (812, "residential", "CA"),
    (577, "residential", "CA"), (1221, "residential", "AU"), (4804, "mobile", "AU"),
    (7473, "residential", "SG"), (55430, "mobile", "SG"), (3462, "residential", "TW"),
    (4780, "mobile", "TW"), (4788, "residential", "MY"), (9534, "mobile", "MY"),
    (4766, "residential", "KR"), (9318, "mobile", "KR"), (3352, "residential", "ES"),
    (1136, "residential", "NL"), (5617, "residential", "PL"), (8151, "residential", "MX"),
    (6830, "residential", "AT"), (3301, "residential", "SE"), (9121, "residential", "TR"),
    (8452, "residential", "EG"), (36935, "mobile", "KE"), (9829, "residential", "IN"),
    # cloud and hosting
    (16509, "cloud", "US"), (14618, "cloud", "US"), (15169, "cloud", "US"), (396982, "cloud", "US"),
    (8075, "cloud", "US"), (31898, "cloud", "US"), (16509, "cloud", "DE"), (16509, "cloud", "SG"),
    (15169, "cloud", "NL"), (8075, "cloud", "IE"), (16276, "datacenter", "FR"), (24940, "datacenter", "DE"),
    (14061, "datacenter", "US"), (63949, "datacenter", "US"), (20473, "datacenter", "US"),
    (14061, "datacenter", "SG"), (24940, "datacenter", "FI"), (51167, "datacenter", "DE"),
    # VPN / proxy exits
    (9009, "vpn", "GB"), (9009, "vpn", "US"), (60068, "vpn", "NL"), (212238, "vpn", "US"),
    (136787, "vpn", "SG"), (208323, "proxy", "US"), (49453, "proxy", "NL"), (62240, "proxy", "DE"),
    # universities and enterprises (classified "unknown" by the IP-intelligence feed)
    (3, "unknown", "US"), (25, "unknown", "US"), (786, "unknown", "GB"), (680, "unknown", "DE"),
    (2200, "unknown", "FR"), (2907, "unknown", "JP"), (7539, "unknown", "TW"), (7575, "unknown", "AU"),
    (13335, "unknown", "US"), (2914, "unknown", "US"), (3356, "unknown", "US"), (1299, "unknown", "SE"),
)

_RESERVED_FIRST_OCTETS = {0, 10, 100, 127, 169, 172, 192, 198, 203, 224}


@dataclass(frozen=True, slots=True)
class Asn:
    number: int
    type: str
    country: str
    v4: tuple[tuple[int, int], ...]  # /16 prefixes (first two octets)
    v6: str  # a /32 as "xxxx:xxxx"

    def ip(self, rng: random.Random, v6_share: float = 0.0) -> str:
        if v6_share and rng.random() < v6_share:
            b = rng.getrandbits(96)
            return (f"{self.v6}:{b >> 80 & 0xFFFF:x}:{b >> 64 & 0xFFFF:x}:{b >> 48 & 0xFFFF:x}:"
                    f"{b >> 32 & 0xFFFF:x}:{b >> 16 & 0xFFFF:x}:{b & 0xFFFF:x}")
        a, b = self.v4[int(rng.random() * len(self.v4))]
        return f"{a}.{b}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _build_world() -> tuple[Asn, ...]:
    rng = random.Random("distill-guard-world-v1")
    used: set[tuple[int, int]] = set()
    out = []
    for number, typ, cc in _ASNS:
        prefixes: list[tuple[int, int]] = []
        want = rng.randint(2, 5)
        while len(prefixes) < want:
            first = rng.randint(2, 222)
            if first in _RESERVED_FIRST_OCTETS:
                continue
            p = (first, rng.randint(0, 255))
            if p not in used:
                used.add(p)
                prefixes.append(p)
        v6 = f"2{rng.randint(0x400, 0x6ff):03x}:{rng.getrandbits(16):x}"
        out.append(Asn(number, typ, cc, tuple(prefixes), v6))
    return tuple(out)


WORLD: tuple[Asn, ...] = _build_world()


def asns(asn_type: str | None = None, country: str | None = None) -> list[Asn]:
    """ASNs of one type (and country, falling back to any country of that type)."""
    of_type = [a for a in WORLD if asn_type is None or a.type == asn_type]
    if country is not None:
        local = [a for a in of_type if a.country == country]
        if local:
            return local
    return of_type


# --- client stacks: the JA4 of a TLS library is shared by everyone who uses it -------------------------
@dataclass(frozen=True, slots=True)
class Stack:
    name: str
    ja4: str
    user_agents: tuple[str, ...]


_CHROME = "t13d1516h2_8daaf6152771_02713d6af862"
_SAFARI = "t13d2014h2_a09f3c656075_14788d8d241b"
_PY = "t13d1812h1_85036bcba153_375ca2c5e164"
_NODE = "t13d5911h1_a33745022dd6_1f22a2ca17c4"

STACKS: dict[str, Stack] = {s.name: s for s in (
    Stack("chrome", _CHROME, tuple(
        f"Mozilla/5.0 ({os}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
        for os in ("Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64")
        for v in (131, 132, 133))),
    Stack("edge", _CHROME, ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                            "Chrome/132.0.0.0 Safari/537.36 Edg/132.0.0.0",)),
    Stack("safari", _SAFARI, tuple(
        f"Mozilla/5.0 ({os}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Safari/605.1.15"
        for os in ("Macintosh; Intel Mac OS X 10_15_7", "iPhone; CPU iPhone OS 18_2 like Mac OS X")
        for v in ("18.2", "18.3"))),
    Stack("firefox", "t13d1715h2_5b57614c22b0_3d5424432f57", tuple(
        f"Mozilla/5.0 ({os}; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
        for os in ("Windows NT 10.0; Win64; x64", "X11; Linux x86_64") for v in (133, 134))),
    Stack("ios_app", "t13d2014h2_a09f3c656075_e42f34c56612", tuple(
        f"AtlasChat/{v} (iPhone; iOS 18.{m}; Scale/3.00)" for v in ("2.14.0", "2.15.1") for m in (1, 2, 3))),
    Stack("android_app", "t13d1513h2_8daaf6152771_b0da82dd1658", tuple(
        f"AtlasChat/{v} (Android {a}; okhttp/4.12.0)" for v in ("2.14.0", "2.15.1") for a in (13, 14, 15))),
    Stack("python_sdk", _PY, tuple(
        f"atlas-sdk-python/{v} (CPython 3.{p}; {os})" for v in ("1.41.0", "1.42.2", "1.43.0")
        for p in (10, 11, 12) for os in ("Linux", "Darwin"))),
    Stack("python_httpx", _PY, ("python-httpx/0.27.2", "python-httpx/0.28.1")),
    Stack("python_requests", _PY, ("python-requests/2.32.3", "python-requests/2.31.0")),
    Stack("node_sdk", _NODE, tuple(f"atlas-sdk-node/{v} (node {n})" for v in ("0.38.0", "0.39.1")
                                   for n in ("20.18.1", "22.12.0"))),
    Stack("ide_agent", "t13d1516h2_8daaf6152771_e5627efa2ab1", tuple(
        f"{tool}/{v} (vscode {c})" for tool in ("codepilot-agent", "devmate") for v in ("1.8.2", "1.9.0")
        for c in ("1.96.2", "1.97.0"))),
    Stack("cli_agent", _NODE, tuple(f"atlas-code/{v} (cli; node 22.12.0)" for v in ("0.9.4", "0.9.7", "1.0.1"))),
    Stack("go_http", "t13d1310h2_e8f1e7e78f70_b26ce05bbdd6", ("Go-http-client/2.0", "Go-http-client/1.1")),
    Stack("java_http", "t13d4312h2_c866b44c5a26_d7ce4e7a7c42", ("Java-http-client/21.0.5", "okhttp/4.12.0")),
    Stack("curl", "t13d3112h2_e8f1e7e78f70_6bebaf5329ac", ("curl/8.5.0", "curl/8.11.1")),
)}


def rare_ja4(rng: random.Random) -> str:
    """A JA4 nobody else has: custom TLS configuration, uncommon library build."""
    ciphers, exts = rng.randint(8, 60), rng.randint(8, 20)
    alpn = rng.choice(("h2", "h1", "00"))
    return f"t13{rng.choice('di')}{ciphers:02d}{exts:02d}{alpn}_{rng.getrandbits(48):012x}_{rng.getrandbits(48):012x}"


# A long tail of uncommon clients (Rust, PHP, .NET, old SDK builds...), the same in every scenario
_TAIL_RNG = random.Random("distill-guard-tail-v1")
TAIL_STACKS: tuple[Stack, ...] = tuple(
    Stack(f"tail{i}", rare_ja4(_TAIL_RNG), (ua,))
    for i, ua in enumerate(f"{lib}/{_TAIL_RNG.randint(0, 9)}.{_TAIL_RNG.randint(0, 40)}.{_TAIL_RNG.randint(0, 9)}"
                           for lib in ("reqwest", "guzzle", "dotnet-httpclient", "aiohttp", "ruby-faraday",
                                       "dart-http", "elixir-finch", "libcurl-php", "okhttp", "axios") * 8)
)


def pick_stack(rng: random.Random, weights: dict[str, float], tail_share: float) -> Stack:
    """A stack by popularity; with `tail_share`, one of the long tail (zipf-ish: some tail stacks recur)."""
    if tail_share and rng.random() < tail_share:
        i = min(int(rng.paretovariate(1.1)) - 1, len(TAIL_STACKS) - 1)
        return TAIL_STACKS[i]
    names = list(weights)
    return STACKS[rng.choices(names, [weights[n] for n in names])[0]]


# Countries and their UTC offsets (hours) for diurnal cycles
TZ: dict[str, float] = {
    "US": -6, "CA": -5, "MX": -6, "BR": -3, "GB": 0, "IE": 0, "FR": 1, "DE": 1, "NL": 1, "ES": 1, "PL": 1,
    "AT": 1, "SE": 1, "FI": 2, "TR": 3, "EG": 2, "KE": 3, "IN": 5.5, "SG": 8, "MY": 8, "TW": 8, "JP": 9,
    "KR": 9, "AU": 10, "HK": 8, "RU": 3, "VN": 7, "CN": 8,
}
