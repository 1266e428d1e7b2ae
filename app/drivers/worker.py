"""The Faust worker: the same three core stages as replay, each an agent over its own topic and table.

    gateway.requests (6, by account) ─► accounts agent ─► <app>-observations (6, by fingerprint)
         ▲  records whose key is not their account_id are re-keyed through <app>-requests-rekeyed
    <app>-observations ─► fingerprints agent ─► <app>-links (1)
    <app>-links ─► clusters agent
    every agent ─► distill.alerts, ratelimit.decisions; bad records ─► distill.dlq

Tables (changelogged): accounts (6), fingerprints (6), clusters (1), cluster-index (1)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry

from app.detect.account import AccountState
from app.detect.cluster import ClusterState
from app.detect.fingerprint import FpState
from app.detect.messages import Link, Observation
from app.drivers.faust_store import FaustStore
from app.emit.records import DeadLetter
from app.engine import AccountStage, ClusterStage, FingerprintStage, IndexEntry, Output
from app.errors import RulesError
from app.ingest.parse import Rejection, parse_record
from app.metrics import Metrics
from app.rules.load import load_rules
from app.rules.model import Rules
from app.settings import Settings

log = logging.getLogger("distill_guard.worker")


def _brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


class Worker:
    """Builds the Faust app around the core stages; `app` is what `faust.Worker` runs."""

    def __init__(self, settings: Settings, rules: Rules, registry: CollectorRegistry | None = None) -> None:
        self.settings = s = settings
        self.rules = rules
        self.registry = registry or CollectorRegistry()
        self.metrics = Metrics(self.registry)
        self._rules_mtime = self._mtimes()
        self.app = app = faust.App(
            s.app_id,
            broker=_brokers(s.bootstrap_servers),
            store=s.store,
            datadir=str(s.data_dir),
            web_enabled=False,
            topic_partitions=s.requests_partitions,
            topic_replication_factor=1,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            table_standby_replicas=0,
            broker_credentials=self._credentials(),
        )
        raw = {"key_serializer": "raw", "value_serializer": "raw"}
        n = s.requests_partitions
        self.requests = app.topic(s.requests_topic, f"{s.app_id}-requests-rekeyed", partitions=n, **raw)
        self.rekeyed = app.topic(f"{s.app_id}-requests-rekeyed", partitions=n, internal=True, **raw)
        self.observations = app.topic(f"{s.app_id}-observations", partitions=n, internal=True, **raw)
        self.links = app.topic(f"{s.app_id}-links", partitions=1, internal=True, **raw)
        self.alerts = app.topic(s.alerts_topic, **raw)
        self.decisions = app.topic(s.decisions_topic, **raw)
        self.dlq = app.topic(s.dlq_topic, **raw)

        table = {"key_type": str, "value_type": bytes, "default": None}
        self.t_accounts = app.Table("accounts", partitions=n, **table)
        self.t_fps = app.Table("fingerprints", partitions=n, **table)
        self.t_clusters = app.Table("clusters", partitions=1, **table)
        self.t_index = app.Table("cluster-index", partitions=1, **table)
        self.s_accounts = FaustStore("accounts", self.t_accounts, AccountState.restore)
        self.s_fps = FaustStore("fingerprints", self.t_fps, FpState.restore)
        self.s_clusters = FaustStore("clusters", self.t_clusters, ClusterState.restore)
        self.s_index = FaustStore("cluster-index", self.t_index, IndexEntry.restore)
        from app.features.content import warm_up

        warm_up()  # build every language's cue filters now, not on the first live prompt of each language
        self.account_stage = AccountStage(rules, self.s_accounts)
        self.fp_stage = FingerprintStage(rules, self.s_fps)
        self.cluster_stage = ClusterStage(rules, self.s_clusters, self.s_index)
        self._wire()

    def _credentials(self) -> Any:
        s = self.settings
        if not s.sasl_username:
            return None
        return faust.SASLCredentials(username=s.sasl_username, password=s.sasl_password)

    # -- outputs
    async def _publish(self, out: Output) -> None:
        for a in out.alerts:
            await self.alerts.send(key=a.key.encode(), value=orjson.dumps(a.wire()))
        for d in out.decisions:
            await self.decisions.send(key=d.key.encode(), value=orjson.dumps(d.wire()))
        self.metrics.record_outputs(out.alerts, out.decisions)

    async def _dead_letter(self, msg: Any, rej: Rejection) -> None:
        dl = DeadLetter(int(time.time() * 1000), {"topic": msg.topic, "partition": msg.partition,
                                                   "offset": msg.offset}, rej.code, rej.message, msg.value or b"")
        await self.dlq.send(key=rej.code.encode(), value=orjson.dumps(dl.wire()))
        self.metrics.dead_lettered.labels(rej.code).inc()

    # -- agents
    def _wire(self) -> None:
        app = self.app
        m = self.metrics

        @app.agent(self.requests, name="accounts")
        async def accounts(stream: Any) -> None:
            async for event in stream.events():
                msg = event.message
                m.consumed.labels(msg.topic).inc()
                raw = msg.value if isinstance(msg.value, bytes) else (event.value or b"")
                now_ms = int(time.time() * 1000)
                ev = parse_record(raw, now_ms)
                if isinstance(ev, Rejection):
                    await self._dead_letter(msg, ev)
                    continue
                want = ev.account_id.encode()
                if msg.key != want:
                    # keyed elsewhere (or not at all): its state lives in the account's partition
                    await self.rekeyed.send(key=want, value=raw)
                    m.internal.labels("requests-rekeyed").inc()
                    continue
                m.valid.inc()
                m.lag.observe(max(0.0, (now_ms - ev.ts_ms) / 1000.0))
                t0 = time.perf_counter()
                out = Output()
                self.account_stage.process(ev, out)
                m.batch_seconds.labels("accounts").observe(time.perf_counter() - t0)
                for obs in out.observations:
                    await self.observations.send(key=obs.key.encode(), value=obs.encode())
                m.internal.labels("observations").inc(len(out.observations))
                await self._publish(out)

        @app.agent(self.observations, name="fingerprints")
        async def fingerprints(stream: Any) -> None:
            async for value in stream:
                obs = Observation.decode(value)
                out = Output()
                t0 = time.perf_counter()
                self.fp_stage.process(obs, out)
                m.batch_seconds.labels("fingerprints").observe(time.perf_counter() - t0)
                for link in out.links:
                    await self.links.send(key=b"links", value=link.encode())
                m.internal.labels("links").inc(len(out.links))

        @app.agent(self.links, name="clusters")
        async def clusters(stream: Any) -> None:
            async for value in stream:
                out = Output()
                t0 = time.perf_counter()
                self.cluster_stage.process(Link.decode(value), out)
                m.batch_seconds.labels("clusters").observe(time.perf_counter() - t0)
                await self._publish(out)

        @app.timer(self.settings.rules_reload_s)
        async def reload_rules() -> None:
            self.maybe_reload()

        @app.timer(10.0)
        async def state_gauges() -> None:
            for store in (self.s_accounts, self.s_fps, self.s_clusters, self.s_index):
                m.state_keys.labels(store.name).set(len(store))

        @app.task
        async def serve_metrics() -> None:
            from prometheus_client import start_http_server

            start_http_server(self.settings.metrics_port, registry=self.registry)
            log.info("metrics on :%d/metrics", self.settings.metrics_port)

        async def drop_caches(*_: Any, **__: Any) -> None:
            for store in (self.s_accounts, self.s_fps, self.s_clusters, self.s_index):
                store.clear_cache()

        app.on_partitions_revoked.connect(drop_caches)
        app.on_partitions_assigned.connect(drop_caches)

    # -- rules reload without restart: state stays, thresholds change
    def _mtimes(self) -> tuple[float, float]:
        def mt(p: Any) -> float:
            try:
                return os.stat(p).st_mtime if p else 0.0
            except OSError:
                return 0.0

        return mt(self.settings.rules_path), mt(self.settings.allowlist_path)

    def maybe_reload(self) -> bool:
        now = self._mtimes()
        if now == self._rules_mtime:
            return False
        self._rules_mtime = now
        try:
            rules = load_rules(self.settings.rules_path, self.settings.allowlist_path)
        except RulesError as exc:
            log.error("rules reload rejected, keeping the previous rules: %s", exc)
            self.metrics.rules_reloads.labels("rejected").inc()
            return False
        self.rules = rules
        for stage in (self.account_stage, self.fp_stage, self.cluster_stage):
            stage.set_rules(rules)
        self.metrics.rules_reloads.labels("ok").inc()
        log.warning("rules reloaded from %s", self.settings.rules_path)
        return True
