"""`replay --rules-at TS=FILE` / `--allowlist-at TS=FILE`: rules switch at an event time, as a worker's hot
reload does, so a reload is replayed exactly; and a property over generated rule switches: once the rules in
force are shadow (globally or every signal), no decision made from then on is enforced, and nothing an
allowlist entry in force names is."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from app.drivers.replay import content_config, replay
from app.emit.records import Decision, iso_ms
from app.emit.sinks import ListSink
from app.engine import Engine
from app.ingest.parse import parse_record
from app.rules.load import compile_rules
from app.rules.model import Rules
from app.settings import DEFAULT_RULES
from app.stages.account import AccountStage
from tests.brakes import DAY, Scenario, build, lines

T = 1_780_000_000_000
NOW = T + DAY


def doc() -> dict:
    return yaml.safe_load(DEFAULT_RULES.read_text())


@pytest.fixture(scope="module")
def default_rules() -> Rules:
    return compile_rules(doc(), "<default>")


@pytest.fixture(scope="module")
def scenario(default_rules) -> Scenario:
    return build(T, default_rules)


@pytest.fixture(scope="module")
def events_file(tmp_path_factory, scenario) -> Path:
    p = tmp_path_factory.mktemp("rulesat") / "events.jsonl"
    p.write_bytes(b"\n".join(lines(scenario.events)) + b"\n")
    return p


def by_hand(sc: Scenario, rules: Rules, switches: list[tuple[int, Rules]]) -> list[dict]:
    """The oracle: event by event, the rules switched before the first event whose time reaches each switch
    (the event-time watermark), content analysed under the rules in force."""
    eng = Engine(rules)
    pending = sorted(switches, key=lambda s: s[0])
    mark = None
    out = []
    for e in sc.events:
        ev = parse_record(orjson.dumps(e), NOW)
        mark = ev.ts_ms if mark is None else max(mark, ev.ts_ms)
        while pending and pending[0][0] <= mark:
            eng.set_rules(pending.pop(0)[1])
        out += [d.wire() for d in eng.process(ev).decisions]
    return out


def test_content_config_is_the_account_stages():
    d = doc()
    d["content"]["lsh_bands"] = 8
    d["content"]["max_chars"] = 1234
    r = compile_rules(d, "<test>")
    assert content_config(r) == AccountStage(r).content_cfg


@pytest.mark.parametrize("jobs", [0, 2])
def test_switches_are_applied_at_their_event_time(tmp_path, events_file, scenario, default_rules, jobs):
    d = doc()
    d["mode"] = "shadow"
    d["content"]["max_chars"] = 60  # the content stage's knobs change too: a chunk must not straddle it
    shadow = compile_rules(d, "<shadow>")
    back = compile_rules(doc(), "<back>")
    switches = [(T, shadow), (T + 5 * 60_000, back)]
    sink = ListSink()
    stats = replay(events_file, default_rules, sink, now_ms=NOW, content_jobs=jobs, switches=switches)
    assert stats.switches == 2
    got = [x.wire() for x in sink.decisions]
    assert got == by_hand(scenario, default_rules, switches)
    assert {x["mode"] for x in got if T <= _ms(x) < T + 5 * 60_000} == {"shadow"}
    assert "enforce" in {x["mode"] for x in got if _ms(x) >= T + 5 * 60_000}
    assert {x["mode"] for x in got if _ms(x) < T} == {"enforce"}


def _ms(d: dict) -> int:
    from app.ingest.parse import parse_ts

    return parse_ts(d["ts"], "ts")


def test_cli_rules_at_and_allowlist_at(tmp_path, events_file, scenario, default_rules):
    d = doc()
    d["mode"] = "shadow"
    shadow_file = tmp_path / "shadow.yaml"
    shadow_file.write_text(yaml.safe_dump(d))
    allow_file = tmp_path / "allow.yaml"
    allow_file.write_text(yaml.safe_dump(scenario.allowlist()))
    t2 = T + 2 * 60_000
    code = main(["replay", str(events_file), "--out", str(tmp_path / "out"), "--now", str(NOW),
                 "--rules", str(DEFAULT_RULES), "--rules-at", f"{iso_ms(T)}={shadow_file}",
                 "--allowlist-at", f"{t2}={allow_file}", "--content-jobs", "0"])
    assert code == 0
    got = [orjson.loads(x) for x in (tmp_path / "out" / "decisions.jsonl").read_bytes().splitlines()]
    with_allow = compile_rules(dict(d, allowlist=scenario.allowlist()), "<both>")
    assert got == by_hand(scenario, default_rules, [(T, compile_rules(d, "<shadow>")), (t2, with_allow)])
    assert not [x for x in got if _ms(x) >= T and x["mode"] == "enforce" and x["action"] != "lift"]
    assert [x for x in got if x["action"] == "lift"]  # the allowlist took effect at t2 (in shadow mode: enforced)


@pytest.mark.parametrize("value, message", [
    ("2026-05-28T20:26:40Z", "wants TS=FILE"),
    ("yesterday=x.yaml", "--rules-at 'yesterday=x.yaml'"),
    ("2026-05-28T20:26:40Z=/no/such/file.yaml", "no such file"),
])
def test_cli_rules_at_errors(tmp_path, events_file, capsys, value, message):
    code = main(["replay", str(events_file), "--out", str(tmp_path / "out"), "--rules-at", value])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_rules_at_invalid_file(tmp_path, events_file, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: sometimes\n")
    code = main(["replay", str(events_file), "--out", str(tmp_path / "out"), "--rules-at", f"{T}={bad}"])
    assert code == 2
    assert "bad.yaml" in capsys.readouterr().err


# ---------------------------------------------------------------------------- property: generated switches
def _rules_for(kind: str, signals: frozenset[str], allow: bool, sc: Scenario) -> Rules:
    d = doc()
    if kind == "shadow":
        d["mode"] = "shadow"
    elif kind == "signals":
        for code in d["signals"]:
            d["signals"][code]["shadow"] = True
    elif kind == "some_signals":
        for code in signals:
            d["signals"][code]["shadow"] = True
    if allow:
        d["allowlist"] = sc.allowlist()
    return compile_rules(d, f"<{kind}>")


SIGNALS = sorted(doc()["signals"])
SPAN = 9 * 60 * 60_000  # the scenario's events fall within T - 7 h .. T + 2 h
switch = st.tuples(
    st.integers(min_value=-7 * 60, max_value=2 * 60).map(lambda m: T + m * 60_000),
    st.sampled_from(["enforce", "shadow", "signals", "some_signals"]),
    st.frozensets(st.sampled_from(SIGNALS), max_size=6),
    st.booleans(),
)


@functools.cache
def _property_data() -> tuple[Scenario, Path, Rules]:
    """Module-level (hypothesis reprs its arguments: the scenario is not one to print)."""
    rules = compile_rules(doc(), "<default>")
    sc = build(T, rules)
    path = Path(tempfile.mkdtemp(prefix="dg-rulesat-")) / "events.jsonl"
    path.write_bytes(b"\n".join(lines(sc.events)) + b"\n")
    return sc, path, rules


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(switch, min_size=1, max_size=4))
def test_no_enforcing_decision_while_shadow_or_allowlisted(plan):
    scenario, events_file, default_rules = _property_data()
    switches = [(ts, _rules_for(kind, sig, allow, scenario)) for ts, kind, sig, allow in plan]
    sink = ListSink()
    replay(events_file, default_rules, sink, now_ms=NOW, switches=switches)
    # the rules in force at each decision: the last switch at or before its time (decisions come in event-
    # time order per actor, and each actor's events are in time order in the file)
    order = sorted(zip([ts for ts, *_ in plan], range(len(plan)), plan, strict=True))

    def in_force(ts_ms: int):
        cur = None
        for at, _, p in order:
            if at <= ts_ms:
                cur = p
        return cur

    orgs = scenario.orgs()
    entries = {(a["scope"], a["value"]) for a in scenario.allowlist()}

    def named(d: Decision) -> bool:
        """The decision's subject is allowlisted: the account or its org, the value, or an account that had
        used the value by then (a value's decision reaches every request on it)."""
        if d.scope == "account":
            return ("account", d.value) in entries or ("org", orgs.get(d.value, "")) in entries
        holders = scenario.holders(d.ts_ms).get((d.scope, d.value), ())
        return (d.scope, d.value) in entries or any(
            ("account", a) in entries or ("org", orgs[a]) in entries for a in holders)

    for d in sink.decisions:
        p = in_force(d.ts_ms)
        if p is None or d.action == "lift":
            assert d.action != "lift" or d.mode == "enforce", d
            continue
        _, kind, _, allow = p
        if kind in ("shadow", "signals"):
            assert d.mode == "shadow", (d, p)
        if allow and named(d):
            assert d.mode == "shadow", (d, p)
