"""What makes a restarted worker publish again within seconds (docs/design.md, "Restart after a crash"):
static group membership with an id stable across restarts of one worker and distinct between workers, and
the content warm-up run in a thread that the first batch waits for. tests/faults/test_sigkill.py measures
the restart itself."""

from __future__ import annotations

from pathlib import Path

from app.drivers.worker import Worker, group_instance_id, start_warm_up
from app.rules.load import load_rules
from app.settings import DEFAULT_RULES, Settings


def test_the_instance_id_is_stable_for_a_worker_and_distinct_between_workers(tmp_path) -> None:
    a = Settings(app_id="dg", data_dir=tmp_path / "a")
    assert group_instance_id(a) == group_instance_id(Settings(app_id="dg", data_dir=tmp_path / "a"))
    assert group_instance_id(a) != group_instance_id(Settings(app_id="dg", data_dir=tmp_path / "b"))
    assert group_instance_id(a).startswith("dg-")
    # the same directory however it is named
    assert group_instance_id(a) == group_instance_id(Settings(app_id="dg", data_dir=tmp_path / "x" / ".." / "a"))


def test_an_explicit_id_or_off() -> None:
    assert group_instance_id(Settings(group_instance_id="worker-0")) == "worker-0"
    assert group_instance_id(Settings(group_instance_id="off")) is None
    assert Settings.from_env({"DG_GROUP_INSTANCE_ID": "pod-3"}).group_instance_id == "pod-3"


def test_the_worker_joins_as_a_static_member(tmp_path: Path) -> None:
    s = Settings(store="memory://", data_dir=tmp_path, metrics_port=0)
    w = Worker(s, load_rules(DEFAULT_RULES))
    try:
        assert w.app.conf.consumer_group_instance_id == group_instance_id(s)
    finally:
        w.close()
    off = Worker(Settings(store="memory://", data_dir=tmp_path, metrics_port=0, group_instance_id="off"),
                 load_rules(DEFAULT_RULES))
    try:
        assert off.app.conf.consumer_group_instance_id is None
    finally:
        off.close()


def test_the_warm_up_runs_once_per_process_in_a_thread() -> None:
    f = start_warm_up()
    assert start_warm_up() is f
    f.result(timeout=120)  # it derives every language's cue sets without error
