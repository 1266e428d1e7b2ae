"""Fingerprint stage: per-value state (who is behind a payment method, JA4, IP block, device or prompt
template) and links between accounts that share a rare value."""

from __future__ import annotations

from app.detect.fingerprint import FpState
from app.detect.fingerprint import observe as fp_observe
from app.detect.messages import Observation
from app.rules.model import Rules
from app.stages.base import Output, Stage
from app.state.store import NO_PROVENANCE, DictStore, Provenance, StateStore


class FingerprintStage(Stage):
    def __init__(self, rules: Rules, store: StateStore | None = None) -> None:
        super().__init__(rules)
        self.store = store if store is not None else DictStore("fingerprints")

    def sweep(self, prov: Provenance = NO_PROVENANCE) -> int:
        b = self.rules.fingerprint
        return self.store.sweep(self.watermark_ms, b.ttl_ms, b.max_keys, prov)

    def process(self, obs: Observation, out: Output, prov: Provenance = NO_PROVENANCE) -> None:
        """`prov`: the observation's provenance, for the state it writes."""
        ts = obs.ts_ms
        # Stage._tick written out: this runs for every observation, several per event
        if ts > self.watermark_ms:
            self.watermark_ms = ts
        self.seen += 1
        if self.seen % self.rules.sweep_every_events == 0:
            self.sweep(prov)
        key = f"{obs.scope}:{obs.value}"  # obs.key
        store = self.store
        st = store.get(key)
        if st is None or ts - st.last_ms > self.rules.fingerprint.ttl_ms:
            st = FpState(ts)
        links = fp_observe(st, obs, self.rules, key)
        if links:
            out.links += links
        store.put(key, st, prov)
