"""The Faust worker: the same three core stages as replay, each an agent over its own topic and table.

    gateway.requests (6, by account) ─► accounts agent ─► <app>-observations (6, by fingerprint)
         ▲  records whose key is not their account_id are re-keyed through <app>-requests-rekeyed
    <app>-observations ─► fingerprints agent ─► <app>-links (1)
    <app>-links ─► clusters agent
    every agent ─► distill.alerts, ratelimit.decisions; bad records ─► distill.dlq

Tables (changelogged): accounts (6), fingerprints (6), clusters (1), cluster-index (1), feedback (1).

Analysts' verdicts (distill.feedback, 1 partition) are checked by the feedback agent and handed to the
clusters agent through <app>-links, where they are applied with the cluster state (app.policy.feedback) and
kept in the feedback table; every worker follows that table's changelog into the registry its stages
consult (`_follow_feedback`).

Each agent takes its input in batches (`noack_take`), runs the core over a batch, sends its outputs and
waits for the broker's acknowledgement in the background (at most PIPELINE_DEPTH batches in flight); state
is written when a flush is due (DG_STATE_FLUSH_MS) and the inputs behind it are acknowledged after that.
Every batch first passes the input order guard (app/drivers/order.py). docs/design.md describes the batch
protocol, crash safety and the guard."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import os
import socket
import time
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry

from app.detect.account import AccountState
from app.detect.cluster import ClusterState
from app.detect.fingerprint import FpState
from app.detect.messages import Link, Observation, Summary
from app.drivers import faust_compat
from app.drivers.content_pool import ContentPool, resolve_jobs
from app.drivers.faust_store import FaustStore
from app.drivers.order import Fill, InputOrder
from app.drivers.transport import install as install_transport
from app.emit.records import DeadLetter
from app.engine import AccountStage, ClusterStage, FingerprintStage, IndexEntry, Output
from app.errors import RulesError
from app.feedback.wire import UNKNOWN_SUBJECT, parse_verdict
from app.ingest.parse import Rejection, parse_record
from app.metrics import Metrics
from app.policy.feedback import FeedbackState, Verdict, VerdictRecord
from app.rules.load import load_rules
from app.rules.model import Rules
from app.settings import Settings, compression_type
from app.state.store import Provenance

log = logging.getLogger("distill_guard.worker")

STAGE_FAILED_EXIT = 70  # EX_SOFTWARE
STREAM_BUFFER_BATCHES = 4
PIPELINE_DEPTH = 2  # batches per stage whose outputs/state/acks are still finishing
BUNDLE_BITS = 20  # position of item i of the bundle at offset o: (o << 20) + i; a bundle holds < 2**20
BUNDLE_MAX_BYTES = 256 * 1024  # well under the producer's max request (1 MiB) and the topics' max message
ORDER_CHECK_S = 5.0  # how often partitions stuck behind a lost record are looked for
READ_RANGE_TIMEOUT_S = 30.0  # reading records Faust lost; past it the stage fails (and the worker restarts)
VERDICT_KEY = b"verdict"  # a verdict handed to the clusters agent on <app>-links (bundles are keyed b"links")
RELOAD_SETTLE_S = 1.0  # a rules or allowlist file modified more recently than this is not read yet
COMPILE_AFTER_S = 5.0  # cue regexes are compiled after the first accounts batch, or this long after start


def start_warm_up() -> Future:
    """Derive every language's cue sets and load the cue pre-filter (app.features.content.warm_up, seconds
    of CPU) in a thread of its own, while the worker checks its topics, joins its group and recovers its
    tables (`distill-guard worker` calls it first). Nothing may use the content module until it is done:
    the accounts stage waits for it before its first batch. Once per process. The cue regexes are compiled
    later, between batches (`Worker._compile_cues`)."""
    global _WARM
    if _WARM is None:
        from app.features.content import warm_up

        ex = ThreadPoolExecutor(1, thread_name_prefix="dg-warm-up")
        _WARM = ex.submit(warm_up, False)
        ex.shutdown(wait=False)
    return _WARM


_WARM: Future | None = None


def group_instance_id(s: Settings) -> str | None:
    """The worker's static group membership id (Settings.group_instance_id): None for "off", the setting
    when given, else the app id, the host name and a digest of the data directory's path."""
    v = s.group_instance_id.strip()
    if v.lower() == "off":
        return None
    if v:
        return v
    digest = hashlib.sha256(str(s.data_dir.resolve()).encode()).hexdigest()[:12]
    return f"{s.app_id}-{socket.gethostname()}-{digest}"


_enter = faust_compat.set_current_event  # table reads and writes go to the current event's partition


def bundles(items: list, stamps: list[float], max_bytes: int = BUNDLE_MAX_BYTES) -> list[bytes]:
    """Many stage messages (observations or links) per Kafka record, split so that no record exceeds
    `max_bytes` (a batch of thousands of events must not make a record larger than the producer or the
    broker accept; an item larger than that on its own goes alone):

        [oldest source timestamp (s), [item.wire_ref(i), ...], [summary.wire(), ...], [ms, ...]]

    An account's summary is shared by every observation of its event (and often by its links): each
    record carries each distinct summary once and its items refer to it by index. `stamps` holds each
    item's own source timestamp (the broker timestamp of the gateway record it comes from, in s); a
    record carries them as whole milliseconds after the oldest of them, so the last stage times a
    decision from the request behind it."""
    if not items:
        return []
    dumps = orjson.dumps
    oldest = min(stamps)
    head = b"[" + dumps(oldest) + b",["
    out: list[bytes] = []
    parts: list[bytes] = []
    sums: list[bytes] = []
    offs: list[bytes] = []
    refs: dict[int, int] = {}
    size = len(head) + 6

    def close() -> None:
        out.append(head + b",".join(parts) + b"],[" + b",".join(sums) + b"],[" + b",".join(offs) + b"]]")

    for x, stamp in zip(items, stamps, strict=True):
        s = x.summary
        ref = refs.get(id(s))
        sb = b""
        if ref is None:
            sb = dumps(s.wire())
        b = dumps(x.wire_ref(len(sums) if ref is None else ref))
        ob = b"%d" % round((stamp - oldest) * 1000)
        if parts and size + len(b) + len(sb) + len(ob) + 3 > max_bytes:
            close()
            parts, sums, offs, refs, size = [], [], [], {}, len(head) + 6
            sb = dumps(s.wire())
            b = dumps(x.wire_ref(0))
            ref = None
        if ref is None:
            refs[id(s)] = len(sums)
            sums.append(sb)
            size += len(sb) + 1
        parts.append(b)
        offs.append(ob)
        size += len(b) + len(ob) + 2
    close()
    return out


def _unbundle(events: list, message: type) -> Iterator[tuple[Any, int, float, Any]]:
    """(event, position, source timestamp, item) for every item of every bundle in `events`, `message`
    (Observation or Link) decoding the items; each bundle's event is made current while its items are
    handled. Only the form `bundles` writes is read."""
    unwire_ref = message.unwire_ref
    for event in events:
        msg = event.message
        ts_s, items, sums, offs = orjson.loads(msg.value)
        _enter(event)
        base = msg.offset << BUNDLE_BITS
        summaries = list(map(Summary.unwire, sums))
        for i, (w, off) in enumerate(zip(items, offs, strict=True)):
            yield event, base + i, ts_s + off / 1000.0, unwire_ref(w, summaries)


async def _or_exit(what: str, work: Any) -> None:
    """Await `work`; if it fails, exit the process. Faust would restart a failed agent in the same
    process, past the batch that failed and with that batch's partial effect in the caches: a worker
    that looks alive but is wrong or stuck. The restarted worker instead recovers its tables from the
    changelogs and skips re-delivered input its state already applied (the path a SIGKILL takes,
    tests/faults)."""
    try:
        await work
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception:
        log.exception("%s failed; exiting so the worker restarts from committed state", what)
        for h in logging.getLogger().handlers:
            h.flush()
        os._exit(STAGE_FAILED_EXIT)


@dataclass(slots=True)
class _StageCtx:
    """A running stage: its stream, batch function and state stores, the lock its batches run under (the
    stage loop, the overdue fills and the state flushes), its batches still finishing, and the inputs
    whose outputs went out but whose state is not written yet (`held`, since loop time `held_since`)."""
    stream: Any
    batch_fn: Any
    stores: list
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    inflight: deque = field(default_factory=deque)
    held: list = field(default_factory=list)
    held_since: float | None = None


_queued = faust_compat.queued  # records waiting in an agent stream's queue


def _position(event: Any) -> tuple[Any, int]:
    return event.message.tp, event.message.offset


def _brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


class Worker:
    """Builds the Faust app around the core stages; `app` is what `faust.Worker` runs."""

    def __init__(self, settings: Settings, rules: Rules, registry: CollectorRegistry | None = None,
                 warm: Future | None = None) -> None:
        """`warm`: the content warm-up already started (`start_warm_up`), or None to run it here."""
        self.settings = s = settings
        self._t_start = time.monotonic()
        self.rules = rules
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self._rules_mtime = self._mtimes()  # the files behind the rules in force
        self._rules_seen = self._rules_mtime  # ... and as the last reload check saw them
        self.app = app = faust.App(
            s.app_id,
            broker=_brokers(s.bootstrap_servers),
            store=s.store,
            datadir=str(s.data_dir),
            web_enabled=False,
            topic_partitions=s.requests_partitions,
            topic_replication_factor=s.replication_factor,
            producer_acks=-1,
            producer_linger_ms=2,
            producer_compression_type=compression_type(s.compression),
            # bounded input buffers: what a stage has not taken yet waits in Kafka, not in memory
            # (Faust's take() stops filling a batch while the previous one is processed; records wait in
            # this buffer meanwhile, and a buffer of one batch paused fetching every batch: 4 batches
            # and 1 MiB fetches drained the bench's topic ~1.5x faster than 1 batch and 256 KiB)
            stream_buffer_maxsize=STREAM_BUFFER_BATCHES * s.batch_max,
            consumer_max_fetch_size=1024 * 1024,
            producer_max_batch_size=512 * 1024,
            consumer_auto_offset_reset="earliest",
            table_standby_replicas=0,
            broker_credentials=self._credentials(),
            # a restarted worker takes its partitions back at once (docs/design.md, "Restart after a crash")
            consumer_group_instance_id=group_instance_id(s),
        )
        # before anything asks for the transport: Faust's fixed 1.5 s fetch wait delays the internal hops
        install_transport(app, s.fetch_max_wait_ms)
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        n = s.requests_partitions
        self.requests = app.topic(s.requests_topic, f"{s.app_id}-requests-rekeyed", partitions=n, **raw)
        self.rekeyed = app.topic(f"{s.app_id}-requests-rekeyed", partitions=n, internal=True, **raw)
        self.observations = app.topic(f"{s.app_id}-observations", partitions=n, internal=True, **raw)
        self.links = app.topic(f"{s.app_id}-links", partitions=1, internal=True, **raw)
        self.alerts = app.topic(s.alerts_topic, **raw)
        self.decisions = app.topic(s.decisions_topic, **raw)
        self.dlq = app.topic(s.dlq_topic, **raw)
        self.feedback_in = app.topic(s.feedback_topic, **raw)

        # RocksDB's defaults (2 GiB block cache, 3 x 64 MiB memtables per partition database) are sized
        # for a dedicated machine; 14 partition databases here would claim gigabytes
        rocks = {"write_buffer_size": 4 << 20, "max_write_buffer_number": 2, "block_cache_size": 16 << 20,
                 "block_cache_compressed_size": 4 << 20}
        table = {"key_type": str, "value_type": bytes, "default": None, "options": rocks}
        self.t_accounts = app.Table("accounts", partitions=n, **table)
        self.t_fps = app.Table("fingerprints", partitions=n, **table)
        self.t_clusters = app.Table("clusters", partitions=1, **table)
        self.t_index = app.Table("cluster-index", partitions=1, **table)
        self.t_feedback = app.Table("feedback", partitions=1, **table)
        cache = s.state_cache
        self.s_accounts = FaustStore("accounts", self.t_accounts, AccountState.restore, cache)
        self.s_fps = FaustStore("fingerprints", self.t_fps, FpState.restore, cache)
        self.s_clusters = FaustStore("clusters", self.t_clusters, ClusterState.restore, cache)
        self.s_index = FaustStore("cluster-index", self.t_index, IndexEntry.restore, cache)
        self.s_feedback = FaustStore("feedback", self.t_feedback, VerdictRecord.restore, cache)
        # every language's cue filters now, not on the first live prompts (seconds of them); the regexes are
        # compiled between batches once the first batch is out
        if warm is None:  # in this thread: the caller may use the content module right after
            from app.features.content import warm_up

            warm_up(compile_all=False)
        self._warm: Future | None = warm
        self._first_batch = asyncio.Event()
        self.account_stage = AccountStage(rules, self.s_accounts)
        self.fp_stage = FingerprintStage(rules, self.s_fps)
        self.cluster_stage = ClusterStage(rules, self.s_clusters, self.s_index, self.s_feedback)
        self.feedback = FeedbackState()  # the verdicts in force, from the feedback table's changelog
        for stage in (self.account_stage, self.fp_stage, self.cluster_stage):
            stage.use_feedback(self.feedback)
        self.content = ContentPool(resolve_jobs(s.content_jobs), compile_all=True)
        self._wire()

    def close(self) -> None:
        """Stop the content processes (they also exit by themselves when this process dies)."""
        self.content.close()

    def _credentials(self) -> Any:
        s = self.settings
        if not s.sasl_username:
            return None
        return faust.SASLCredentials(username=s.sasl_username, password=s.sasl_password)

    # -- outputs
    async def _send(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> Any:
        """Straight to the app's producer (the topics exist: app.topics creates them); returns the
        delivery future."""
        return await self.app.producer.send(topic, key, value, partition, None, None)

    async def _send_outputs(self, out: Output, futs: list) -> None:
        for a in out.alerts:
            futs.append(await self._send(self.settings.alerts_topic, a.key.encode(), orjson.dumps(a.wire())))
        for d in out.decisions:
            futs.append(await self._send(self.settings.decisions_topic, d.key.encode(), orjson.dumps(d.wire())))
        self.metrics.record_outputs(out.alerts, out.decisions)

    async def _dead_letter(self, msg: Any, rej: Rejection, futs: list) -> None:
        dl = DeadLetter(int(time.time() * 1000), {"topic": msg.topic, "partition": msg.partition,
                                                   "offset": msg.offset}, rej.code, rej.message, msg.value or b"")
        futs.append(await self._send(self.settings.dlq_topic, rej.code.encode(), orjson.dumps(dl.wire())))
        self.metrics.dead_lettered.labels(rej.code).inc()

    async def _deliver(self, futs: list, stage: str) -> None:
        """Wait until every record of the batch is acknowledged by the broker: only then is the
        batch's state written and its input acknowledged (see FaustStore)."""
        if futs:
            t0 = time.perf_counter()
            await asyncio.gather(*futs)
            self.metrics.deliver_seconds.labels(stage).observe(time.perf_counter() - t0)

    # -- one batch per stage
    async def accounts_batch(self, events: list) -> tuple[list, list, int]:
        await self._feedback_ready.wait()  # the verdicts in force are known before any event is judged
        if self._warm is not None:  # the content module is this thread's once its warm-up is done
            await asyncio.wrap_future(self._warm)
            self._warm = None
        m = self.metrics
        store = self.s_accounts
        stage = self.account_stage
        now_ms = int(time.time() * 1000)
        futs: list = []
        out = Output()
        by_partition: dict[int, list] = {}
        stamps: dict[int, list[float]] = {}  # per destination partition: each observation's source timestamp
        n_obs = 0
        latencies: list[tuple[float, int]] = []  # (source timestamp, decisions made so far)
        t0 = time.perf_counter()
        valid = 0
        kept: list[tuple[Any, Any, Any, str]] = []  # (event, message, parsed, source) to run through the stage
        for event in events:
            msg = event.message
            raw = msg.value if isinstance(msg.value, bytes) else (event.value or b"")
            ev = parse_record(raw, now_ms)
            if isinstance(ev, Rejection):
                await self._dead_letter(msg, ev, futs)
                continue
            want = ev.account_id.encode()
            if msg.key != want:
                # keyed elsewhere (or not at all): its state lives in the account's partition
                futs.append(await self._send(self.rekeyed.get_topic_name(), want, raw))
                self._m_rekeyed.inc()
                continue
            valid += 1
            _enter(event)
            source = "r" if msg.topic == self.settings.requests_topic else "k"
            if store.applied(ev.account_id, source) >= msg.offset:
                self._m_skipped.inc()
                continue  # applied before a crash; its outputs went out before its state was written
            kept.append((event, msg, ev, source))
        # the prompts are analysed in the content processes meanwhile the loop runs the other stages
        restarts = self.content.restarts
        pending = self.content.submit([stage.content_input(ev) for _, _, ev, _ in kept], stage.content_cfg)
        features = await pending.wait()
        if self.content.restarts > restarts:
            m.content_restarts.inc(self.content.restarts - restarts)
        for (event, msg, ev, source), cf in zip(kept, features, strict=True):
            _enter(event)
            m.lag.observe(max(0.0, (now_ms - ev.ts_ms) / 1000.0))
            before = len(out.decisions)
            seen = len(out.observations)
            stage.process(ev, out, cf, Provenance(event, source, msg.offset))
            ts = msg.timestamp
            if len(out.decisions) > before:
                latencies.append((ts, len(out.decisions) - before))
            for obs in out.observations[seen:]:
                p = zlib.crc32(obs.key.encode()) % self._n
                if p in by_partition:
                    by_partition[p].append(obs)
                    stamps[p].append(ts)
                else:
                    by_partition[p], stamps[p] = [obs], [ts]
            n_obs += len(out.observations) - seen
            del out.observations[:]
        m.valid.inc(valid)
        m.batch_seconds.labels("accounts").observe(time.perf_counter() - t0)
        for p, items in by_partition.items():
            for bundle in bundles(items, stamps[p]):
                futs.append(await self._send(self.observations.get_topic_name(), b"%d" % p, bundle, p))
        self._m_obs.inc(n_obs)
        await self._send_outputs(out, futs)
        self._first_batch.set()
        return futs, latencies, len(events)

    async def fingerprints_batch(self, events: list) -> tuple[list, list, int]:
        store = self.s_fps
        stage = self.fp_stage
        out = Output()
        stamps: list[float] = []  # each link's source timestamp: that of the observation that made it
        t0 = time.perf_counter()
        n = 0
        for event, pos, ts_s, obs in _unbundle(events, Observation):
            n += 1
            if store.applied(obs.key, "o") >= pos:
                self._m_skipped.inc()
                continue
            before = len(out.links)
            stage.process(obs, out, Provenance(event, "o", pos))
            if len(out.links) > before:
                stamps += [ts_s] * (len(out.links) - before)
        self.metrics.batch_seconds.labels("fingerprints").observe(time.perf_counter() - t0)
        futs: list = []
        if out.links:
            for bundle in bundles(out.links, stamps):
                futs.append(await self._send(self.links.get_topic_name(), b"links", bundle, 0))
            self._m_links.inc(len(out.links))
        return futs, [], n

    async def clusters_batch(self, events: list) -> tuple[list, list, int]:
        await self._feedback_ready.wait()
        index = self.s_index
        account_key = self.cluster_stage.account_key
        out = Output()
        latencies: list[tuple[float, int]] = []
        t0 = time.perf_counter()
        n = 0
        futs: list = []
        for event, pos, ts_s, link in self._cluster_inputs(events):
            n += 1
            if isinstance(link, dict):
                await self._apply_verdict(event, pos, link, out, futs)
                continue
            # every link re-points its account's index entry: a newer position there means applied
            if index.applied(account_key(link.summary.account_id), "l") >= pos:
                self._m_skipped.inc()
                continue
            before = len(out.decisions)
            self.cluster_stage.process(link, out, Provenance(event, "l", pos))
            if len(out.decisions) > before:
                latencies.append((ts_s, len(out.decisions) - before))
        self.metrics.batch_seconds.labels("clusters").observe(time.perf_counter() - t0)
        await self._send_outputs(out, futs)
        return futs, latencies, n

    # -- analysts' verdicts
    async def feedback_batch(self, events: list) -> tuple[list, list, int]:
        """Verdicts from the feedback topic: a bad one is dead-lettered; a good one goes to the clusters agent
        (through <app>-links, so that it is applied in order with the links, with the cluster state, under
        that agent's batch protocol). A verdict naming a decision must come resolved (`distill-guard feedback
        --decision` does that): the worker keeps no index of the decisions it published."""
        futs: list = []
        links = self.links.get_topic_name()
        for event in events:
            msg = event.message
            v = parse_verdict(msg.value if isinstance(msg.value, bytes) else event.value)
            if not isinstance(v, Verdict):
                await self._dead_letter(msg, v, futs)
                continue
            if v.scope == "decision":
                await self._dead_letter(msg, Rejection(UNKNOWN_SUBJECT, f"decision {v.value!r}: the worker cannot "
                                                       "resolve a decision id; publish the verdict with its account "
                                                       "or cluster (distill-guard feedback --decision does)"), futs)
                continue
            envelope = {"v": v.wire(), "src": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
                        "raw": msg.value.decode("utf-8")}
            futs.append(await self._send(links, VERDICT_KEY, orjson.dumps(envelope), 0))
        return futs, [], len(events)

    def _cluster_inputs(self, events: list) -> Iterator[tuple[Any, int, float, Any]]:
        """The clusters agent's input in order: link bundles item by item (`_unbundle`), and each verdict the
        feedback agent handed on as its envelope (a dict)."""
        run: list = []
        for event in events:
            if event.message.key == VERDICT_KEY:
                yield from _unbundle(run, Link)
                run = []
                _enter(event)
                yield event, event.message.offset << BUNDLE_BITS, event.message.timestamp, orjson.loads(
                    event.message.value)
            else:
                run.append(event)
        yield from _unbundle(run, Link)

    async def _apply_verdict(self, event: Any, pos: int, envelope: dict, out: Output, futs: list) -> None:
        """Apply one verdict with the cluster state (skipped when its record says it was: a re-delivery)."""
        v = Verdict.from_wire(envelope["v"])
        if self.s_feedback.applied(v.verdict_id, "l") >= pos:
            self._m_skipped.inc()
            return
        why = self.cluster_stage.apply_verdict(v, out, Provenance(event, "l", pos))
        if why is not None:
            src = envelope["src"]
            dl = DeadLetter(int(time.time() * 1000), src, UNKNOWN_SUBJECT, why, envelope["raw"].encode())
            futs.append(await self._send(self.settings.dlq_topic, UNKNOWN_SUBJECT.encode(), orjson.dumps(dl.wire())))
            self.metrics.dead_lettered.labels(UNKNOWN_SUBJECT).inc()

    async def _follow_feedback(self) -> None:
        """Keep this process's registry of verdicts (`self.feedback`) as the feedback table's changelog has it:
        read from its first record at start (the stages wait for that: `_feedback_ready`), then followed. Every
        worker does this, so the account partitions of a worker that does not run the clusters agent see the
        verdicts too (a second or so after they were applied, once the clusters agent's state is written)."""
        from aiokafka.structs import TopicPartition

        topic = self.t_feedback.changelog_topic.get_topic_name()
        fb = self.feedback
        while True:  # the changelog appears once Faust has declared it
            c = self._filling_consumer()
            await c.start()
            try:
                exists = topic in await c.topics()
            finally:
                await c.stop()
            if exists:
                break
            self._feedback_ready.set()  # no changelog, no verdicts
            await asyncio.sleep(2.0)
        tp = TopicPartition(topic, 0)
        c = self._filling_consumer()
        await c.start()
        try:
            c.assign([tp])
            await c.seek_to_beginning(tp)
            end = (await c.end_offsets([tp]))[tp]
            while True:
                if not self._feedback_ready.is_set() and await c.position(tp) >= end:
                    log.info("feedback: %d verdicts in force from %s", len(fb), topic)
                    self._feedback_ready.set()
                batch = await c.getmany(tp, timeout_ms=1000)
                for r in batch.get(tp, ()):
                    key = orjson.loads(r.key)
                    if r.value is None:
                        fb.remove(key)
                    else:
                        rec = VerdictRecord.restore(orjson.loads(r.value)["s"])
                        if key not in fb:
                            fb.put(rec)
        finally:
            await c.stop()

    def _observe_latency(self, stage: str, latencies: list[tuple[float, int]]) -> None:
        """Source record's broker timestamp to the decision acknowledged by the broker."""
        if not latencies:
            return
        now = time.time()
        hist = self.metrics.decision_latency.labels(stage)
        for ts_s, n in latencies:
            for _ in range(n):
                hist.observe(max(0.0, now - ts_s))

    async def _finish(self, prev: asyncio.Future | None, stage: str, stream: Any, events: list, futs: list,
                      writes: list, latencies: list, items: int) -> None:
        """The end of a batch, in the background while the next one is computed, and strictly after the
        previous batch of the same stage: outputs acknowledged by the broker, then state written, then
        input acknowledged (`writes` and `events` are empty for a batch whose state is held for a later
        flush: see `_run_batch`)."""
        if prev is not None:
            await prev
        await self._deliver(futs, stage)
        self._observe_latency(stage, latencies)
        for store, detached in writes:
            await store.write(detached, _enter, self.app.producer)
        for event in events:
            await stream.ack(event)
        self.metrics.stage_items.labels(stage).inc(items)

    async def _run_stage(self, stage: str, stream: Any, batch_fn: Any) -> None:
        await _or_exit(f"stage {stage}", self._stage_loop(stage, stream, batch_fn))

    async def _stage_loop(self, stage: str, stream: Any, batch_fn: Any) -> None:
        ctx = self._stage_ctx[stage] = _StageCtx(stream, batch_fn, self._stage_stores[stage])
        self._take_gaps()
        within = self.settings.batch_within_ms / 1000.0
        async for taken in stream.noack_take(self.settings.batch_max, within=within):
            async with ctx.lock:
                events, dropped = await self._in_order(stage, taken)
                await self._run_batch(stage, ctx, events, dropped)

    async def _run_batch(self, stage: str, ctx: _StageCtx, events: list, dropped: list,
                         flush: bool = False) -> None:
        """One batch through the stage's core; its end (outputs acknowledged, state written, input
        acknowledged) runs in the background, at most PIPELINE_DEPTH batches of a stage at a time.
        `dropped`: duplicates the order guard took out, acknowledged with the batch (after every batch
        before it, which holds the copy that was processed).

        State is written only when a flush is due (`_flush_due`: DG_STATE_FLUSH_MS after the first input
        held, a bound on what is held, a rebalance) or asked for (`flush`, with or without a batch):
        until then the batch's outputs still go out at once, and its inputs wait, unacknowledged, in
        `ctx.held`. A key that many inputs changed meanwhile is serialised and written once. After a
        crash the held inputs are delivered again and computed again from the state written before
        them (the same outputs, with the same ids)."""
        m = self.metrics
        if events:
            m.batch_records.labels(stage).observe(len(events))
            if stage == "accounts":
                topics: dict[str, int] = {}
                for event in events:
                    t = event.message.topic
                    topics[t] = topics.get(t, 0) + 1
                for t, k in topics.items():
                    m.consumed.labels(t).inc(k)
            futs, latencies, items = await ctx.batch_fn(events)
        elif dropped or (flush and ctx.held):
            futs, latencies, items = [], [], 0
        else:
            return
        ctx.held += events
        ctx.held += dropped
        if ctx.held_since is None:
            ctx.held_since = asyncio.get_running_loop().time()
        if flush or self._flush_due(ctx):
            writes = [(store, store.detach()) for store in ctx.stores]
            acks, ctx.held, ctx.held_since = ctx.held, [], None
            m.state_flushes.labels(stage).inc()
        else:
            writes, acks = [], []
        inflight = ctx.inflight
        prev = inflight[-1] if inflight else None
        task = asyncio.ensure_future(
            self._finish(prev, stage, ctx.stream, acks, futs, writes, latencies, items))
        inflight.append(task)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        while inflight and (len(inflight) > PIPELINE_DEPTH or inflight[0].done()):
            await inflight.popleft()  # bounded: at most PIPELINE_DEPTH batches finishing; errors surface

    def _flush_due(self, ctx: _StageCtx) -> bool:
        if not ctx.held:
            return False
        if (self._flush_s <= 0 or self.app.rebalancing or len(ctx.held) >= self._flush_max_held
                or any(store.pending() >= self._flush_max_dirty for store in ctx.stores)):
            return True
        return asyncio.get_running_loop().time() - (ctx.held_since or 0.0) >= self._flush_s

    async def _flush_held(self, due_only: bool) -> None:
        """Write the state of every stage holding inputs (those whose flush is due, with `due_only`) and
        acknowledge the inputs: for a stage waiting for input (the stage loop flushes as it goes), and
        for all of them before a rebalance drops the caches."""
        for stage, ctx in list(self._stage_ctx.items()):
            if not ctx.held or (due_only and (ctx.lock.locked() or not self._flush_due(ctx))):
                continue
            async with ctx.lock:
                if ctx.held:
                    await self._run_batch(stage, ctx, [], [], flush=True)

    # -- input order (see app.drivers.order: Faust can lose or repeat records around a rebalance)
    def _committed(self, tp: Any) -> int | None:
        return faust_compat.committed_offset(self.app.consumer, tp)

    async def _in_order(self, stage: str, events: list) -> tuple[list, list]:
        """The batch as the stage may process it: records of partitions this worker no longer holds
        dropped (their new owner reads them from the committed offset), duplicates dropped (and returned
        second, to be acknowledged), and offsets that never arrived read from the broker and put in
        their place."""
        consumer = self.app.consumer
        assigned = consumer.assignment()
        owned = [e for e in events if e.message.tp in assigned]
        repairs = self.metrics.input_repairs
        if len(owned) < len(events):
            repairs.labels(stage, "revoked_dropped").inc(len(events) - len(owned))
        adm = self.order.admit(owned, _position)
        if adm.duplicates:
            repairs.labels(stage, "duplicate_dropped").inc(adm.duplicates)
        if not adm.fills:
            return adm.items, adm.dropped
        out: list = []
        for x in adm.items:
            if isinstance(x, Fill):
                got = await self._read_range(x)
                repairs.labels(stage, "filled").inc(len(got))
                log.warning("%s: offsets %d..%d of %s/%d were never delivered; read %d records of them "
                            "from the broker", stage, x.start, x.end - 1, x.tp.topic, x.tp.partition, len(got))
                out += got
            else:
                out.append(x)
        return out, adm.dropped

    async def _fill_overdue(self) -> None:
        """Partitions whose next record the consumer has read but never delivered (the last records
        lost, with nothing after them yet): read those records from the broker and run them through
        their stage. Not while a rebalance or a recovery is under way, and not for a stage that still
        has records queued (they are on their way: during a broker outage a stage waits with a full
        queue for its outputs to be acknowledged)."""
        app = self.app
        if app.rebalancing or getattr(app, "in_recovery", False):
            return
        consumer = app.consumer
        inputs = self._input_topics
        idle = {stage for stage, ctx in self._stage_ctx.items() if not _queued(ctx.stream)}
        parts = [tp for tp in consumer.assignment() if inputs.get(tp.topic) in idle]
        for fill in self.order.overdue(parts, lambda tp: faust_compat.read_offset(consumer, tp)):
            stage = inputs[fill.tp.topic]
            ctx = self._stage_ctx[stage]
            async with ctx.lock:
                todo = self.order.remaining(fill)  # the stage may have had them meanwhile
                if todo is None:
                    continue
                got = await self._read_range(todo)
                adm = self.order.admit(got, _position)
                events = [x for x in adm.items if not isinstance(x, Fill)]  # what the broker has is all
                self.metrics.input_repairs.labels(stage, "filled_overdue").inc(len(events))
                log.warning("%s: offsets %d..%d of %s/%d were read but never delivered; read %d records of "
                            "them from the broker (%d already processed)", stage, todo.start, todo.end - 1,
                            todo.tp.topic, todo.tp.partition, len(events), len(adm.dropped))
                await self._run_batch(stage, ctx, events, adm.dropped)
                self.order.filled(todo.tp, todo.end)

    async def _read_range(self, fill: Fill) -> list:
        """Records [fill.start, fill.end) of one partition, read with a consumer of their own (no group,
        nothing committed), as events of this app that the stage can process and acknowledge."""
        from aiokafka.structs import TopicPartition
        from faust.types.tuples import ConsumerMessage

        # a consumer per read: one kept between reads could apply a fetch still in flight for an earlier
        # position after the seek, and move past records it never returned (seen once in a broker restart)
        c = self._filling_consumer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READ_RANGE_TIMEOUT_S
        tp = TopicPartition(fill.tp.topic, fill.tp.partition)
        records: list = []
        await c.start()
        try:
            c.assign([tp])
            c.seek(tp, fill.start)
            while await c.position(tp) < fill.end:
                if loop.time() > deadline:
                    raise RuntimeError(f"could not read offsets {fill.start}..{fill.end - 1} of "
                                       f"{tp.topic}/{tp.partition} in {READ_RANGE_TIMEOUT_S:.0f} s")
                batch = await c.getmany(tp, timeout_ms=500)
                records += [r for r in batch.get(tp, ()) if fill.start <= r.offset < fill.end]
        finally:
            await c.stop()
        # what the broker has no records for (transaction markers, compaction) Faust may commit past
        have = {r.offset for r in records}
        start = None
        for off in range(fill.start, fill.end + 1):
            if off < fill.end and off not in have:
                start = off if start is None else start
            elif start is not None:
                await self._broker_gap(fill.tp, start, off - 1)
                start = None
        gen = self.app.consumer_generation_id
        events = []
        for r in records:
            msg = ConsumerMessage(r.topic, r.partition, r.offset, r.timestamp / 1000.0, r.timestamp_type,
                                  r.headers, r.key, r.value, r.checksum, tp=fill.tp, generation_id=gen)
            msg.incref()
            events.append(faust.Event(self.app, r.key, r.value, {}, msg))
        return events

    def _take_gaps(self) -> None:
        """Faust records offsets missing from what its fetcher hands on as gaps it may commit past, meant
        for transaction markers; but it cannot tell them from records it lost itself, and a lost record
        committed past is lost for good (the guard reads it back, and the gap would then count it twice
        when Faust computes what to commit). So the guard decides: Faust's own gap recording is turned
        off, and `_read_range` records the offsets the broker really has nothing for."""
        if self._faust_add_gap is None:
            self._faust_add_gap = faust_compat.take_over_gaps(self.app.consumer)

    async def _broker_gap(self, tp: Any, first: int, last: int) -> None:
        if self._faust_add_gap is not None:
            await self._faust_add_gap(tp, first, last)

    def _filling_consumer(self) -> Any:
        from aiokafka import AIOKafkaConsumer
        from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

        s = self.settings
        # connects exactly as the app's own consumer does (Faust's mapping of the same credentials);
        # a range retention has already deleted the start of reads from the oldest record left
        return AIOKafkaConsumer(bootstrap_servers=s.bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id=f"{s.app_id}-fill",
                                **credentials_to_aiokafka_auth(self._credentials()))

    # -- agents
    def _wire(self) -> None:
        app = self.app
        m = self.metrics
        self._n = self.settings.requests_partitions
        self._inflight: set[asyncio.Future] = set()
        self._m_rekeyed = m.internal.labels("requests-rekeyed")
        self._m_obs = m.internal.labels("observations")
        self._m_links = m.internal.labels("links")
        self._m_skipped = m.redelivered_skipped
        self.order = InputOrder(self._committed)
        self._faust_add_gap: Any = None  # Faust's own gap recording, taken over by the guard (_take_gaps)
        self._stage_ctx: dict[str, _StageCtx] = {}
        self._stage_stores = {"accounts": [self.s_accounts], "fingerprints": [self.s_fps],
                              "clusters": [self.s_clusters, self.s_index, self.s_feedback], "feedback": []}
        self._feedback_ready = asyncio.Event()
        s = self.settings
        self._flush_s = s.state_flush_ms / 1000.0
        self._flush_max_held = STREAM_BUFFER_BATCHES * s.batch_max  # inputs held unacknowledged, per stage
        self._flush_max_dirty = max(1, s.state_cache // 2)  # changed keys held, per table
        self._input_topics = {self.settings.requests_topic: "accounts", self.rekeyed.get_topic_name(): "accounts",
                              self.observations.get_topic_name(): "fingerprints",
                              self.links.get_topic_name(): "clusters", self.settings.feedback_topic: "feedback"}

        @app.agent(self.requests, name="accounts")
        async def accounts(stream: Any) -> None:
            await self._run_stage("accounts", stream, self.accounts_batch)

        @app.agent(self.observations, name="fingerprints")
        async def fingerprints(stream: Any) -> None:
            await self._run_stage("fingerprints", stream, self.fingerprints_batch)

        @app.agent(self.links, name="clusters")
        async def clusters(stream: Any) -> None:
            await self._run_stage("clusters", stream, self.clusters_batch)

        @app.agent(self.feedback_in, name="feedback")
        async def feedback(stream: Any) -> None:
            await self._run_stage("feedback", stream, self.feedback_batch)

        @app.task
        async def compile_cues() -> None:
            await _or_exit("cue compiling", self._compile_cues())

        @app.task
        async def follow_feedback() -> None:
            await _or_exit("feedback follower", self._follow_feedback())

        @app.timer(self.settings.rules_reload_s)
        async def reload_rules() -> None:
            self.maybe_reload()

        @app.timer(ORDER_CHECK_S)
        async def fill_overdue() -> None:
            await _or_exit("overdue fill", self._fill_overdue())  # it runs stage batches too

        @app.timer(min(1.0, max(0.1, self._flush_s / 4)))
        async def flush_state() -> None:
            await _or_exit("state flush", self._flush_held(due_only=True))

        @app.timer(10.0)
        async def state_gauges() -> None:
            for store in (self.s_accounts, self.s_fps, self.s_clusters, self.s_index, self.s_feedback):
                n = store.count_keys()
                if n is not None:
                    m.state_keys.labels(store.name).set(n)

        @app.task
        async def serve_metrics() -> None:
            from prometheus_client import start_http_server

            start_http_server(self.settings.metrics_port, registry=self.registry)
            log.info("metrics on :%d/metrics", self.settings.metrics_port)

        async def drop_caches(*_: Any, **__: Any) -> None:
            await self._flush_held(due_only=False)  # state held in memory is written before it goes
            if self._inflight:  # let batches in flight finish writing before the caches go
                await asyncio.gather(*list(self._inflight), return_exceptions=True)
            for store in (self.s_accounts, self.s_fps, self.s_clusters, self.s_index, self.s_feedback):
                store.clear_cache()
            self.order.reset()  # positions are checked against the committed offsets again

        async def before_wait_empty() -> None:
            # Faust waits for every input handed on to be acknowledged (on a rebalance, on stop): the ones
            # held for the next flush are, once their state is written; a flush that fails exits (a crash)
            await _or_exit("state flush", self._flush_held(due_only=False))

        app.transport.before_wait_empty = before_wait_empty
        app.on_partitions_revoked.connect(drop_caches)
        app.on_partitions_assigned.connect(drop_caches)

    async def _compile_cues(self) -> None:
        """Compile the cue regexes a cue set at a time between batches, once the first accounts batch is out
        (or COMPILE_AFTER_S after start): after a restart the worker's first outputs do not wait for seconds
        of compiling, and a piece the first batches need is compiled on its first use meanwhile, as `hits`
        does. Then the objects made so far are frozen out of the garbage collector, as at start."""
        if self._warm is not None:
            await asyncio.wrap_future(self._warm)
        startup = self.metrics.startup
        startup.labels("cues").set(time.monotonic() - self._t_start)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_batch.wait(), COMPILE_AFTER_S)
        from app.features.content import compile_steps

        t0 = time.perf_counter()
        for _ in compile_steps():
            await asyncio.sleep(0)
        gc.freeze()
        startup.labels("regexes").set(time.monotonic() - self._t_start)
        log.info("cue regexes compiled in %.1f s (between batches)", time.perf_counter() - t0)

    # -- rules reload without restart: state stays, thresholds change
    def _mtimes(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(modification time ns, size, inode) of the rules file and of the allowlist file: a file replaced by
        a rename (a Kubernetes ConfigMap's symlink swap) changes its inode even within one mtime tick."""
        def mt(p: Any) -> tuple[int, int, int]:
            try:
                st = os.stat(p) if p else None
            except OSError:
                st = None
            return (st.st_mtime_ns, st.st_size, st.st_ino) if st is not None else (0, 0, 0)

        return mt(self.settings.rules_path), mt(self.settings.allowlist_path)

    def maybe_reload(self, now_s: float | None = None) -> bool:
        """Load the rules and allowlist files when either changed, and put them in force in all three stages
        at once; True when it did. Never half a file: a file modified less than RELOAD_SETTLE_S ago (still
        being written, most likely) is left for a later check, and one that changes while it is read is
        read again at the next check (a file dated in the future, clocks apart, once two checks saw it
        unchanged). A file that fails validation keeps the rules in force: logged, counted
        (`rules_reloads_total{result="rejected"}`) and flagged (`rules_reload_failing` 1) until a valid one
        loads."""
        seen = self._mtimes()
        if seen == self._rules_mtime:
            return False
        now = time.time() if now_s is None else now_s
        ages = [now - mtime_ns / 1e9 for mtime_ns, _, _ in seen]
        settled = all(age >= RELOAD_SETTLE_S or (age < 0 and seen == self._rules_seen) for age in ages)
        self._rules_seen = seen
        if not settled:
            return False  # being written, most likely: read it once it is still (or seen twice the same)
        try:
            rules = load_rules(self.settings.rules_path, self.settings.allowlist_path)
        except RulesError as exc:
            if self._mtimes() != seen:
                return False  # changed while it was read: the next check reads the new version
            self._rules_mtime = seen
            log.error("rules reload rejected, keeping the rules in force (from %s): %s", self.rules.source, exc)
            self.metrics.rules_reloads.labels("rejected").inc()
            self.metrics.rules_reload_failing.set(1)
            return False
        if self._mtimes() != seen:
            return False  # changed while it was read: the next check reads the new version
        self._rules_mtime = seen
        self.rules = rules
        for stage in (self.account_stage, self.fp_stage, self.cluster_stage):
            stage.set_rules(rules)
        self.metrics.rules_reloads.labels("ok").inc()
        self.metrics.rules_reload_failing.set(0)
        log.warning("rules reloaded from %s (mode %s, %d allowlist entries)", self.settings.rules_path, rules.mode,
                    len(rules.allowlist))
        return True
