"""Scenario files load and validate; a broken one fails fast naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.cli import main
from app.sim import scenario
from app.sim.scenario import ScenarioError


@pytest.mark.parametrize("name", ["default", "smoke", "hydra", "stealth"])
def test_packaged_scenarios_load(name: str) -> None:
    sc = scenario.load(name)
    assert sc.name == name
    assert sc.populations and sc.campaigns
    assert sc.end_ms - sc.start_ms == 24 * 3_600_000


def test_every_packaged_file_is_listed() -> None:
    assert set(scenario.available()) >= {"default", "smoke", "hydra", "stealth"}


def _broken(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load((scenario.SCENARIO_DIR / "smoke.yaml").read_text(encoding="utf-8"))
    edit(doc)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["campaigns"][1].__setitem__("paraphrase_rate", 1.5), "campaigns[1].paraphrase_rate"),
    (lambda d: d["campaigns"][0].__setitem__("requests_per_account_hour", 90),
     "campaigns[0].requests_per_account_hour"),
    (lambda d: d["campaigns"][2].__setitem__("cover_traffic_fraction", 0.95), "campaigns[2].cover_traffic_fraction"),
    (lambda d: d["campaigns"][0].__setitem__("template_families", {"no_such_family": 1}),
     "campaigns[0].template_families.no_such_family"),
    (lambda d: d["campaigns"][3].__setitem__("live_accounts", 10_000), "campaigns[3].live_accounts"),
    (lambda d: d["campaigns"][0].__setitem__("shifts", [[5, 40]]), "campaigns[0].shifts[0]"),
    (lambda d: d["populations"][2].__setitem__("kind", "pirates"), "populations[2].kind"),
    (lambda d: d["populations"][0].__setitem__("accounts", -3), "populations[0].accounts"),
    (lambda d: d["populations"][0].__setitem__("asn_types", {"satellite": 1}), "populations[0].asn_types"),
    (lambda d: d["populations"][1].__setitem__("colour", "blue"), "populations[1]"),
    (lambda d: d["campaigns"][4].pop("archetype"), "campaigns[4]"),
    (lambda d: d["populations"][1].__setitem__("name", d["populations"][0]["name"]), "populations[1].name"),
    (lambda d: d["release"].__setitem__("at_hours", 30), "release.at_hours"),
    (lambda d: d["campaigns"][0].__setitem__("account_age_hours", [50, 10]), "campaigns[0].account_age_hours"),
])
def test_broken_scenario_names_file_and_field(tmp_path: Path, edit, field: str) -> None:
    path = _broken(tmp_path, edit)
    with pytest.raises(ScenarioError) as info:
        scenario.load(str(path))
    msg = str(info.value)
    assert str(path) in msg
    assert f": {field}" in msg, msg


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\npopulations: [\n  {name: a, kind: b\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"bad\.yaml: line \d+"):
        scenario.load(str(path))


def test_cli_reports_a_broken_scenario_and_exits_2(tmp_path: Path, capsys) -> None:
    path = _broken(tmp_path, lambda d: d["campaigns"][0].__setitem__("paraphrase_rate", 2))
    assert main(["simulate", "--scenario", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "campaigns[0].paraphrase_rate" in err
    assert not (tmp_path / "o").exists()


def test_unknown_scenario_name_lists_packaged_ones() -> None:
    with pytest.raises(ScenarioError, match="smoke"):
        scenario.load("no-such-scenario")
