"""`replay --rules-at TS=FILE` / `--allowlist-at TS=FILE`: rules switch at an event time, as a worker's hot
reload does, so a reload is replayed exactly."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from app.cli import main
from app.drivers.replay import content_config, replay
from app.emit.records import iso_ms
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
