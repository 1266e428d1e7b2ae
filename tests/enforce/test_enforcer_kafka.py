"""The enforcer on the real broker: decisions published to the topic take effect (block, throttle, lift,
expiry), a restart rebuilds the same map from the topic, /healthz is 503 until the topic is read to its end,
and the detector's own decisions (replayed from test traffic) are enforced as published."""

from __future__ import annotations

import time

import pytest

from app.drivers.replay import replay
from app.emit.sinks import ListSink
from tests.enforce.enforcerproc import EnforcerProc, create_topic, publish, wait_for
from tests.enforce.records import decision
from tests.integration.workerproc import free_port
from tests.traffic import build

pytestmark = [pytest.mark.kafka]

FILLER = 20_000  # decisions on other accounts published before the start: a rebuild that takes a while


def _metric(m: dict, name: str, **labels: str) -> float:
    return m.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


@pytest.fixture
def enforcer(tmp_path, unique, kafka_bootstrap):
    procs: list[EnforcerProc] = []

    def make(topic: str) -> EnforcerProc:
        e = EnforcerProc(topic, free_port(), tmp_path / f"enforcer{len(procs)}.log")
        procs.append(e)
        return e

    yield make
    for e in procs:
        e.stop()


def test_block_throttle_lift_expiry_and_restart(enforcer, unique) -> None:
    topic = f"t{unique}.decisions"
    create_topic(topic)
    now = int(time.time() * 1000)
    blk = decision("account", "acct-block", "block", now - 60_000, ttl_s=3600)
    thr = decision("account", "acct-throttle", "throttle", now - 60_000, ttl_s=3600, limit_rpm=2)
    to_lift = decision("payment_fp", "pf-ring", "block", now - 60_000, ttl_s=3600)
    shadow = decision("account", "acct-shadow", "block", now - 60_000, mode="shadow")
    stale = decision("account", "acct-stale", "block", now - 7_200_000, ttl_s=3600)
    filler = [decision("account", f"filler-{i}", "throttle", now - 60_000, ttl_s=3600, limit_rpm=6)
              for i in range(FILLER)]
    publish(topic, [blk, thr, *filler[: FILLER // 2], to_lift, shadow, stale, dict(blk),
                    *filler[FILLER // 2:]])

    e = enforcer(topic)
    e.start()
    history = e.health_history()
    assert history[0] == 503, f"/healthz answered {history}: ready before the rebuild"
    # ready means complete: every decision published before the start is in effect at once
    m = e.metrics()
    assert _metric(m, "distill_guard_enforcer_decisions_total", outcome="applied") == FILLER + 3
    assert _metric(m, "distill_guard_enforcer_decisions_total", outcome="duplicate") == 1
    assert _metric(m, "distill_guard_enforcer_decisions_total", outcome="shadow") == 1
    assert _metric(m, "distill_guard_enforcer_decisions_total", outcome="stale") == 1
    assert _metric(m, "distill_guard_enforcer_live_entries") == FILLER + 3
    assert _metric(m, "distill_guard_enforcer_ready") == 1

    status, h = e.check(x_account_id="acct-block", x_org_id="org-1")
    assert (status, h["x-distill-guard-action"], h["x-distill-guard-decision-id"]) == (
        403, "block", blk["decision_id"])
    assert [e.check(x_account_id="acct-throttle")[0] for _ in range(3)] == [200, 200, 429]
    status, h = e.check(x_account_id="acct-throttle")
    assert status == 429 and int(h["retry-after"]) in (29, 30)
    assert h["x-distill-guard-decision-id"] == thr["decision_id"]
    assert e.check(x_account_id="acct-x", x_payment_fp="pf-ring")[0] == 403
    assert e.check(x_account_id="acct-shadow")[0] == 200
    assert e.check(x_account_id="acct-stale")[0] == 200

    # while running: a lift and a new block take effect within moments of being published
    lift = decision("payment_fp", "pf-ring", "lift", int(time.time() * 1000), ttl_s=1)
    new_blk = decision("api_key", "key-new", "block", int(time.time() * 1000), ttl_s=3600)
    publish(topic, [lift, new_blk])
    took = wait_for(lambda: e.check(x_account_id="acct-x", x_payment_fp="pf-ring")[0] == 200
                    and e.check(x_account_id="acct-y", x_api_key_id="key-new")[0] == 403, timeout_s=10)
    assert took < 2.0
    # the lifted decision published again (a worker restart re-publishes) stays lifted
    publish(topic, [dict(to_lift)])
    wait_for(lambda: _metric(e.metrics(), "distill_guard_enforcer_decisions_total", outcome="duplicate") == 2)
    assert e.check(x_account_id="acct-x", x_payment_fp="pf-ring")[0] == 200

    # expiry: a challenge on a /24 that ends 3 s after it is published (event time + ttl_s, against the
    # enforcer's wall clock)
    t = int(time.time() * 1000)
    short = decision("ip_prefix", "203.0.113.0/24", "challenge", t - 57_000, ttl_s=60)
    publish(topic, [short])
    wait_for(lambda: e.check(x_account_id="acct-x", x_client_ip="203.0.113.9")[0] == 403, timeout_s=2)
    assert e.check(x_account_id="acct-x", x_client_ip="203.0.113.9")[1]["x-distill-guard-action"] == "challenge"
    wait_for(lambda: e.check(x_account_id="acct-x", x_client_ip="203.0.113.9")[0] == 200, timeout_s=10)
    assert time.time() >= (t + 3000) / 1000 - 0.05, "over before its expiry"
    # checks compare each decision's own expiry; the map frees it (and counts it) in whole seconds
    wait_for(lambda: _metric(e.metrics(), "distill_guard_enforcer_entries_removed_total", reason="expired") == 1,
             timeout_s=3)
    m = e.metrics()
    assert _metric(m, "distill_guard_enforcer_entries_removed_total", reason="lifted") == 1
    assert _metric(m, "distill_guard_enforcer_apply_delay_seconds_count") == 4  # lift, block, duplicate, short
    assert _metric(m, "distill_guard_enforcer_consume_lag_records") == 0
    assert e.stop() == 0

    # a restart rebuilds the same map from the topic (the limiter's state starts afresh)
    e2 = enforcer(topic)
    e2.start()
    assert e2.health_history()[0] == 503
    assert e2.check(x_account_id="acct-block")[0] == 403
    assert e2.check(x_account_id="acct-x", x_payment_fp="pf-ring")[0] == 200
    assert e2.check(x_account_id="acct-y", x_api_key_id="key-new")[0] == 403
    assert e2.check(x_account_id="acct-x", x_client_ip="203.0.113.9")[0] == 200
    assert e2.check(x_account_id="acct-shadow")[0] == 200
    assert [e2.check(x_account_id="acct-throttle")[0] for _ in range(3)] == [200, 200, 429]
    m = e2.metrics()
    assert _metric(m, "distill_guard_enforcer_live_entries") == FILLER + 3  # block, throttle, key-new + filler
    assert _metric(m, "distill_guard_enforcer_decisions_total", outcome="duplicate") == 2
    assert _metric(m, "distill_guard_enforcer_decisions_total", outcome="lift") == 1


def test_healthz_is_503_while_the_topic_does_not_exist(enforcer, unique) -> None:
    topic = f"t{unique}.decisions"
    e = enforcer(topic)
    e.start()
    wait_for(lambda: _try_status(e) is not None, timeout_s=30)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert e.get("/healthz")[0] == 503
        assert e.check(x_account_id="anyone")[0] == 200, "checks are answered (allow) while not ready"
        time.sleep(0.2)
    create_topic(topic)
    blk = decision("account", "late", "block", int(time.time() * 1000))
    publish(topic, [blk])
    wait_for(lambda: e.get("/healthz")[0] == 200, timeout_s=30)
    wait_for(lambda: e.check(x_account_id="late")[0] == 403, timeout_s=5)


def _try_status(e: EnforcerProc) -> int | None:
    try:
        return e.get("/healthz", timeout=1)[0]
    except OSError:
        return None


def test_the_detectors_decisions_are_enforced(enforcer, unique, tmp_path, rules) -> None:
    """Decisions as the detector makes them (a replay of test traffic, published as the worker would)."""
    now = int(time.time() * 1000)
    records, _ = build(now - 15 * 60_000)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(v + b"\n" for _, v in records))
    sink = ListSink()
    replay(events, rules, sink, now_ms=now)
    wire = [d.wire() for d in sink.decisions]
    live = {}  # (scope, value) -> strongest enforced action still live, by the same rules as the map
    rank = {"block": 0, "challenge": 1, "throttle": 2}
    for d in sink.decisions:
        if d.mode != "enforce" or d.action == "lift" or d.expires_at_ms <= now + 60_000:
            continue
        cur = live.get((d.scope, d.value))
        if cur is None or rank[d.action] < rank[cur]:
            live[(d.scope, d.value)] = d.action
    accounts = {v: a for (s, v), a in live.items() if s == "account"}
    assert len(accounts) >= 5, "the traffic must give the detector accounts to decide"
    assert all(d.action != "lift" for d in sink.decisions), "a lift would need ordering in this check"

    topic = f"t{unique}.decisions"
    create_topic(topic)
    publish(topic, wire)
    e = enforcer(topic)
    e.start()
    e.health_history()
    for acct, action in sorted(accounts.items()):
        status, h = e.check(x_account_id=acct)
        if action == "throttle":
            assert status == 200 and h["x-distill-guard-action"] == "throttle", acct
        else:
            assert (status, h["x-distill-guard-action"]) == (403, action), acct
    assert e.check(x_account_id="never-seen")[0] == 200
