"""The worker's hot reload (`Worker.maybe_reload`, no broker): a valid file goes into all three stages at
once; a file that fails validation keeps the rules in force, is logged with the reason, counted and flagged
by `distill_guard_rules_reload_failing` until a valid file loads; a file still being written (or changing
while it is read) is never loaded half."""

from __future__ import annotations

import logging
import os
import time

import pytest
import yaml
from prometheus_client import CollectorRegistry

from app.drivers import worker as worker_mod
from app.drivers.worker import RELOAD_SETTLE_S, Worker
from app.rules import load as load_mod
from app.rules.load import load_rules
from app.settings import DEFAULT_RULES, Settings


def doc() -> dict:
    return yaml.safe_load(DEFAULT_RULES.read_text())


def write(path, data: dict | str, age_s: float = 10.0) -> None:
    """Write a file and date it `age_s` seconds ago (negative: in the future)."""
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    t = time.time() - age_s
    os.utime(path, (t, t))


def metric(w: Worker, name: str, **labels) -> float:
    v = w.registry.get_sample_value(name, labels or None)
    return 0.0 if v is None else v


@pytest.fixture
def files(tmp_path):
    rules, allow = tmp_path / "rules.yaml", tmp_path / "allow.yaml"
    write(rules, doc())
    write(allow, "[]\n")
    return rules, allow


@pytest.fixture
def worker(tmp_path, files):
    rules, allow = files
    s = Settings(store="memory://", data_dir=tmp_path / "data", metrics_port=0, rules_path=rules,
                 allowlist_path=allow)
    w = Worker(s, load_rules(rules, allow), registry=CollectorRegistry())
    yield w
    w.close()


def stages_rules(w: Worker) -> set[int]:
    return {id(st.rules) for st in (w.account_stage, w.fp_stage, w.cluster_stage)}


def test_a_valid_change_goes_into_every_stage_at_once(worker, files):
    rules, allow = files
    assert worker.maybe_reload() is False  # nothing changed
    d = doc()
    d["mode"] = "shadow"
    write(rules, d)
    write(allow, [{"scope": "account", "value": "a-1"}])
    assert worker.maybe_reload() is True
    assert stages_rules(worker) == {id(worker.rules)} and worker.rules.mode == "shadow"
    assert worker.cluster_stage.allow.allows("account", "a-1", 0)
    assert metric(worker, "distill_guard_rules_reloads_total", result="ok") == 1
    assert metric(worker, "distill_guard_rules_reload_failing") == 0
    assert worker.maybe_reload() is False  # loaded once


def test_an_invalid_file_keeps_the_rules_in_force_logs_why_and_flags_until_fixed(worker, files, caplog):
    rules, _ = files
    before = worker.rules
    write(rules, "mode: sometimes\nsignals: 7\n")
    with caplog.at_level(logging.ERROR, logger="distill_guard.worker"):
        assert worker.maybe_reload() is False
    assert worker.rules is before and stages_rules(worker) == {id(before)}
    assert metric(worker, "distill_guard_rules_reloads_total", result="rejected") == 1
    assert metric(worker, "distill_guard_rules_reload_failing") == 1
    (msg,) = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert "keeping the rules in force" in msg and "rules.yaml" in msg and "required property" in msg
    # the same broken file is not read, logged or counted again at every check; the flag stays up
    assert worker.maybe_reload() is False
    assert metric(worker, "distill_guard_rules_reloads_total", result="rejected") == 1
    assert metric(worker, "distill_guard_rules_reload_failing") == 1
    # a semantically invalid file (valid YAML, a check the schema cannot make) too
    d = doc()
    d["policy"]["severity"] = {"medium": 90, "high": 50, "critical": 95}
    write(rules, d)
    assert worker.maybe_reload() is False
    assert metric(worker, "distill_guard_rules_reloads_total", result="rejected") == 2
    write(rules, doc())
    assert worker.maybe_reload() is True
    assert metric(worker, "distill_guard_rules_reload_failing") == 0


def test_an_invalid_allowlist_file_keeps_the_rules_in_force_too(worker, files):
    _, allow = files
    before = worker.rules
    write(allow, [{"scope": "planet", "value": "mars"}])
    assert worker.maybe_reload() is False
    assert worker.rules is before
    assert metric(worker, "distill_guard_rules_reload_failing") == 1


def test_a_file_being_written_is_not_read_until_it_is_still(worker, files):
    """The first half of a rules file can be a valid rules file (cut inside the allowlist, say): a reload
    that read it would run with half the entries. A file modified within RELOAD_SETTLE_S is left alone."""
    rules, _ = files
    d = doc()
    d["mode"] = "shadow"
    d["allowlist"] = [{"scope": "account", "value": f"a-{k}"} for k in range(40)]
    text = yaml.safe_dump(d, sort_keys=False)  # the allowlist last, as an operator appends entries
    cut = text.index("- scope: account\n  value: a-20")
    half = load_mod.compile_rules(yaml.safe_load(text[:cut]), "<half>")
    assert len(half.allowlist) == 20  # the half alone is a valid rules file
    write(rules, text[:cut], age_s=0.0)
    assert worker.maybe_reload() is False  # just written: not read
    assert worker.rules.mode == "enforce"
    write(rules, text, age_s=0.0)  # the rest arrives
    assert worker.maybe_reload(now_s=time.time() + RELOAD_SETTLE_S / 2) is False
    assert worker.maybe_reload(now_s=time.time() + RELOAD_SETTLE_S + 0.1) is True
    assert len(worker.rules.allowlist) == 40


def test_a_file_that_changes_while_it_is_read_is_read_again(worker, files, monkeypatch):
    rules, _ = files
    d = doc()
    d["mode"] = "shadow"
    write(rules, d)
    real = load_mod.load_rules
    calls = []

    def load_and_touch(*args, **kwargs):
        out = real(*args, **kwargs)
        if not calls:
            write(rules, d, age_s=5.0)  # rewritten meanwhile (another mtime): what was read may be stale
        calls.append(1)
        return out

    monkeypatch.setattr(worker_mod, "load_rules", load_and_touch)
    assert worker.maybe_reload() is False
    assert worker.rules.mode == "enforce"
    assert worker.maybe_reload() is True and len(calls) == 2
    assert worker.rules.mode == "shadow"


def test_a_file_dated_in_the_future_loads_once_two_checks_saw_it_unchanged(worker, files):
    rules, _ = files
    d = doc()
    d["mode"] = "shadow"
    write(rules, d, age_s=-3600)  # the writer's clock is an hour ahead
    assert worker.maybe_reload() is False
    assert worker.maybe_reload() is True and worker.rules.mode == "shadow"
