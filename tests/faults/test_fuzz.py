"""Malformed and adversarial input through the running worker: >= 10,000 generated records (random bytes,
truncated JSON, deep nesting, huge strings, wrong types, unicode edge cases including lone surrogates
escaped in JSON, absurd numbers, extreme timestamps, tombstones), mixed with valid but hostile events.

Every record must be accounted for: consumed = valid + dead-lettered on the metrics page, per reason
exactly what the contract's validator says, the DLQ topic holds one record per dead letter, the worker
stays up and its memory stays bounded."""

from __future__ import annotations

import json
import random
import time
from collections import Counter

import orjson
import pytest

from app.emit.records import iso_ms
from app.ingest.parse import Rejection, parse_record
from tests.faults.harness import (
    FaultWorker,
    HarnessError,
    add_summary,
    fault_seed,
    new_uid,
    produce_all,
    read_all,
    release,
    start_worker,
    wait_until,
)
from tests.integration.workerproc import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_MALFORMED = 10_000
N_VALID = 600
RSS_GROWTH_MAX_MB = 150  # after warm-up; the worker sits around 100 MiB
RSS_MAX_MB = 600

WORDS = ["reason", "step", "think", "hidden", "chain", "thought", "verbatim", "grade", "rubric", "score",
         "rewrite", "official", "translate", "python", "proof", "lemma", "explain", "internal", "思考", "推理",
         "过程", "рассуждения", "шаг", "razonamiento", "pensamiento", "raisonnement", "Begründung"]
UNICODE = ["\u0000", "\u200b", "\u202e", "\ufeff", "\ufffe", "\uffff", "\U0010ffff", "\U0001f600", "e\u0301",
           "\u0130", "ß", "\u2028", "\u2029", "\x7f", "\t", "\\", '"', "𝕏", "\u3000", "١٢٣"]
LONE_SURROGATES = ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud83d", "\\ude00x", "\\ud800\\ud800"]
ABSURD_NUMBERS = [b"-1", b"1e308", b"-1e308", b"1e400", b"-0", b"-0.0", b"0.5", b"NaN", b"Infinity",
                  b"-Infinity", b"18446744073709551615", b"18446744073709551616", b"9223372036854775808",
                  b"-9223372036854775809", b"1" + b"0" * 400, b"0x10", b"1_000", b"01", b"1e-400", b"+1"]
EXTREME_TS = [-(2**63), 2**63 - 1, 2**64 - 1, 0, -1, 253402300799999, -62135596800000,
              "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2026-13-45T25:61:61Z",
              "2026-02-30T00:00:00Z", "2016-12-31T23:59:60Z", "２０２６-01-01T00:00:00Z",
              "2026-01-01T00:00:00+25:00", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "+2026-01-01T00:00:00Z",
              "1970-01-01T00:00:00.000000000000000001Z", "2026-01-01T00:00:00Z" + " " * 30, "", "T" * 20,
              "1900-01-01T00:00:00-23:59", "2200-01-01T00:00:00+00:00", True, None, 1.5, [], {}]
TYPES = [None, True, False, 0, -7, 3.25, "", "x", "x" * 200, [], [1, "a"], {}, {"k": [None]}]
OPTIONAL = {None: ["org_id", "api_key_id"],
            "account": ["created_at", "tier", "signup_channel", "kyc", "payment_fp", "billing_country",
                        "email_domain_class"],
            "client": ["ip", "asn", "asn_type", "country", "ja4", "user_agent", "device_id", "access_path"],
            "request": ["model", "prompt", "system_prompt_hash", "input_tokens", "cache_read_tokens", "thinking",
                        "tools", "images", "turn"],
            "response": ["status", "output_tokens", "thinking_tokens", "latency_ms"]}


class Gen:
    """Seeded generator of (key, value) records; value None is a tombstone."""

    def __init__(self, seed: int, now_ms: int) -> None:
        self.rng = random.Random(seed)
        self.now = now_ms
        self.n = 0

    def valid(self, acct: str | None = None) -> dict:
        r = self.rng
        self.n += 1
        acct = acct or f"fz-{r.randrange(300)}"
        ts = self.now - r.randrange(60_000, 20 * 86_400_000)
        return {
            "event_id": f"fz-{self.n}-{r.randrange(10**9)}", "ts": iso_ms(ts) if r.random() < 0.7 else ts,
            "account_id": acct, "org_id": f"org-{acct}",
            "account": {"created_at": iso_ms(ts - r.randrange(1, 10**10)), "kyc": r.choice(["none", "email", "card"]),
                        "tier": "free", "payment_fp": f"pf-{r.randrange(50)}", "billing_country": "US"},
            "client": {"ip": r.choice([f"203.0.113.{r.randrange(256)}", "2001:db8::1", "::ffff:1.2.3.4"]),
                       "asn": r.randrange(70000), "asn_type": "residential", "country": "US",
                       "ja4": f"t13d_{r.randrange(20)}", "access_path": "api"},
            "request": {"model": "model-a", "prompt": " ".join(r.choice(WORDS) for _ in range(r.randrange(1, 40))),
                        "input_tokens": r.randrange(5000), "thinking": r.random() < 0.5, "turn": 1},
            "response": {"status": 200, "output_tokens": r.randrange(9000), "latency_ms": r.randrange(5000)},
        }

    def dumps(self, obj) -> bytes:
        return json.dumps(obj, ensure_ascii=self.rng.random() < 0.5).encode("utf-8", "surrogatepass")

    def _set(self, obj: dict, value) -> None:
        group = self.rng.choice([*OPTIONAL, None, None])
        name = self.rng.choice(OPTIONAL[group] + (["event_id", "account_id", "ts"] if group is None else []))
        if group is None:
            obj[name] = value
        else:
            obj.setdefault(group, {})
            if isinstance(obj[group], dict):
                obj[group][name] = value

    # -- malformed and adversarial kinds; each returns raw bytes (or None)
    def random_bytes(self) -> bytes:
        return self.rng.randbytes(self.rng.randrange(0, 300))

    def truncated(self) -> bytes:
        raw = self.dumps(self.valid())
        return raw[: self.rng.randrange(1, len(raw))]

    def deep(self) -> bytes:
        r = self.rng
        d = r.choice([300, 1100, 1100, 5000]) if r.random() < 0.97 else 30_000
        nest = "[" * d + "]" * d if r.random() < 0.5 else '{"a":' * d + "1" + "}" * d
        where = r.choice(["top", "extra", "account"])
        if where == "top":
            return nest.encode()
        raw = self.dumps(self.valid())
        return raw[:-1] + f', "{"extra" if where == "extra" else "account"}": {nest}}}'.encode()

    def huge(self) -> bytes:
        r = self.rng
        obj = self.valid()
        kind = r.randrange(5)
        if kind == 0:
            obj["event_id"] = "e" * r.choice([129, 5000, 20_000])
        elif kind == 1:
            obj["client"]["user_agent"] = "U" * r.choice([1025, 20_000])
        elif kind == 2:
            obj["account_id"] = "A" * r.choice([129, 20_000])
        elif kind == 3 and r.random() < 0.15:
            obj["request"]["prompt"] = "P" * (1024 * 1024 + 10)  # too_large
        else:
            n = r.randrange(100, 2000) if r.random() < 0.95 else 20_000
            obj["request"]["prompt"] = r.choice(WORDS) * n  # large but within limits
        return self.dumps(obj)

    def wrong_type(self) -> bytes:
        obj = self.valid()
        if self.rng.random() < 0.15:
            obj[self.rng.choice(["account", "client", "request", "response"])] = self.rng.choice(TYPES[1:])
        else:
            self._set(obj, self.rng.choice(TYPES))
        return self.dumps(obj)

    def unicode(self) -> bytes:
        r = self.rng
        obj = self.valid()
        kind = r.randrange(5)
        if kind == 0:  # a lone surrogate, escaped in JSON
            raw = self.dumps(obj)
            field = r.choice([b'"event_id": "', b'"account_id": "', b'"prompt": "', b'"ja4": "'])
            return raw.replace(field, field + r.choice(LONE_SURROGATES).encode(), 1)
        if kind == 1:  # bytes that are not UTF-8 inside an otherwise fine record
            raw = self.dumps(obj)
            bad = r.choice([b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", b"\xf4\x90\x80\x80", b"\xe2\x82"])
            i = raw.find(b'"prompt": "') + 11
            return raw[:i] + bad + raw[i:]
        if kind == 2:  # edge characters in ids and text (valid)
            s = "".join(r.choice(UNICODE) for _ in range(r.randrange(1, 12)))
            obj["request"]["prompt"] = s * r.randrange(1, 50)
            obj["client"]["ja4"] = ("j" + s)[:128]
            if r.random() < 0.5:
                obj["account_id"] = ("u-" + s)[:128]
            return self.dumps(obj)
        if kind == 3:
            return b"\xef\xbb\xbf" + self.dumps(obj)  # BOM
        obj["request"]["prompt"] = "".join(chr(r.randrange(0x20, 0x2FFFF)) for _ in range(r.randrange(1, 400)))
        return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")  # may carry raw surrogates

    def absurd_number(self) -> bytes:
        obj = self.valid()
        placeholder = "__NUM__"
        self._set(obj, placeholder)
        return self.dumps(obj).replace(b'"__NUM__"', self.rng.choice(ABSURD_NUMBERS))

    def extreme_ts(self) -> bytes:
        obj = self.valid()
        v = self.rng.choice(EXTREME_TS)
        if self.rng.random() < 0.7:
            obj["ts"] = v
        else:
            obj["account"]["created_at"] = v
        return self.dumps(obj)

    def structural(self) -> bytes | None:
        return self.rng.choice([None, b"", b" ", b"\n", b"null", b"true", b"0", b'"str"', b"[]", b"{}",
                                b'{"event_id": "a", "event_id": 1, "ts": 1, "account_id": "x"}',
                                b"{" + b" " * 5000 + b"}", self.dumps([self.valid()]),
                                self.dumps(self.valid()) + b"garbage", self.dumps(self.valid()) * 2])

    def missing(self) -> bytes:
        obj = self.valid()
        del obj[self.rng.choice(["event_id", "account_id", "ts"])]
        return self.dumps(obj)

    KINDS = ("random_bytes", "truncated", "deep", "huge", "wrong_type", "unicode", "absurd_number", "extreme_ts",
             "structural", "missing")

    def key(self, value: bytes | None, account: str | None) -> bytes | None:
        r = self.rng.random()
        if value is None:  # a tombstone needs a key
            return b"tomb-%d" % self.rng.randrange(10**6)
        if account is not None and r < 0.8:
            return account.encode("utf-8")
        return None if r < 0.9 else self.rng.randbytes(self.rng.randrange(0, 40))


def _expect(value: bytes | None, now_ms: int):
    return parse_record(value if value is not None else b"", now_ms)


@pytest.fixture(scope="module")
def run(tmp_path_factory, kafka_bootstrap):
    seed = fault_seed()
    tmp = tmp_path_factory.mktemp("fuzz")
    now_ms = int(time.time() * 1000)
    g = Gen(seed, now_ms)
    warm = [g.valid() for _ in range(300)]
    warm_recs = [(e["account_id"].encode(), orjson.dumps(e)) for e in warm]
    records: list[tuple[bytes | None, bytes | None]] = []
    kinds: Counter = Counter()
    expect: Counter = Counter()
    rekeyed = 0
    malformed = 0
    while malformed < N_MALFORMED:
        kind = g.rng.choice(Gen.KINDS)
        value = getattr(g, kind)()
        res = _expect(value, now_ms)
        acct = res.account_id if not isinstance(res, Rejection) else None
        key = g.key(value, acct)
        if isinstance(res, Rejection):
            malformed += 1
            kinds[kind] += 1
            expect[res.code] += 1
        else:
            kinds[kind + " (valid)"] += 1
            rekeyed += key != acct.encode("utf-8")
        records.append((key, value))
    for _ in range(N_VALID):
        e = g.valid()
        records.append((e["account_id"].encode() if g.rng.random() < 0.9 else None, orjson.dumps(e)))
        rekeyed += records[-1][0] is None
    g.rng.shuffle(records)
    valid = sum(1 for _, v in records if not isinstance(_expect(v, now_ms), Rejection))
    print(f"generated {len(records)} records: {malformed} malformed, {valid} valid ({rekeyed} keyed by something "
          f"else than their account); kinds {dict(kinds)}; expected dead letters {dict(expect)}")

    w = FaultWorker(new_uid(), tmp / "state", tmp / "worker.log", free_port())
    rss: list[int] = []
    t_setup = time.monotonic()
    try:
        start_worker(w)
        print(f"[{time.monotonic() - t_setup:.1f}s] worker up")
        produce_all(w.topic("requests"), warm_recs)
        wait_until(lambda: w.consumed() >= len(warm_recs), 120, 0.5, "warm-up consumed")
        rss_before = w.rss_kb()
        print(f"[{time.monotonic() - t_setup:.1f}s] warm-up done")
        produce_all(w.topic("requests"), records)
        total = len(warm_recs) + len(records) + rekeyed

        def done() -> bool:
            if not w.alive():
                raise HarnessError(f"worker died: {w.tail()}")
            rss.append(w.rss_kb())
            return w.consumed() >= total

        took = wait_until(done, 300, 1.0, f"{total} records consumed")
        time.sleep(2)
        counters = w.counters()
        rss_after = w.rss_kb()
        alive = w.alive()
        dlq = read_all(w.topic("dlq"))
        print(f"[{time.monotonic() - t_setup:.1f}s] DLQ read")
        code = w.stop()
        print(f"[{time.monotonic() - t_setup:.1f}s] worker stopped")
    finally:
        release(w)
    out = {"records": records, "warm": len(warm_recs), "valid": valid, "rekeyed": rekeyed, "expect": expect,
           "counters": counters, "dlq": dlq, "rss_before": rss_before, "rss_after": rss_after,
           "rss_peak": max([*rss, rss_after]), "alive": alive, "exit": code, "log": w.tail(), "took": took,
           "malformed": malformed}
    dead = sum(counters["dead"].values())
    print(f"fuzz: {len(records)} records in {took:.1f}s; consumed {counters['consumed']:.0f}, valid "
          f"{counters['valid']:.0f}, dead-lettered {dead:.0f}, DLQ topic {len(dlq)}; RSS {rss_before // 1024} -> "
          f"{rss_after // 1024} MiB (peak {out['rss_peak'] // 1024})")
    unaccounted = len(records) + len(warm_recs) - int(counters["valid"]) - int(dead)
    add_summary("fuzz: malformed + adversarial", f"{len(records)} records (+{len(warm_recs)} warm-up) in {took:.0f}s",
                f"{malformed} malformed of 10 kinds, {valid} valid incl. hostile text/unicode, tombstones",
                len(records), f"{unaccounted} unaccounted",
                f"DLQ {len(dlq)} = expected {sum(expect.values())}; RSS {rss_before // 1024}->{rss_after // 1024} MiB "
                f"(peak {out['rss_peak'] // 1024})")
    return out


def test_at_least_ten_thousand_malformed_records(run):
    assert run["malformed"] >= 10_000


def test_worker_stays_alive(run):
    assert run["alive"], run["log"]
    assert run["exit"] == 0, run["log"]


def test_every_record_is_accounted_for_on_the_metrics_page(run):
    c = run["counters"]
    n = len(run["records"]) + run["warm"]
    assert c["consumed"] == n + run["rekeyed"]
    assert c["rekeyed"] == run["rekeyed"]
    assert c["valid"] == run["valid"] + run["warm"]
    assert {k: int(v) for k, v in c["dead"].items() if v} == dict(run["expect"])
    assert c["valid"] + sum(c["dead"].values()) == n


def test_dlq_topic_holds_one_record_per_dead_letter(run):
    dlq = [orjson.loads(r.value) for r in run["dlq"]]
    assert Counter(d["error"]["code"] for d in dlq) == run["expect"]
    for d in dlq:
        assert len(d["payload"]) <= 4096 and d["payload_encoding"] in ("utf-8", "base64")


def test_memory_stays_bounded(run):
    growth_mb = (run["rss_after"] - run["rss_before"]) / 1024
    assert growth_mb < RSS_GROWTH_MAX_MB, growth_mb
    assert run["rss_peak"] / 1024 < RSS_MAX_MB
