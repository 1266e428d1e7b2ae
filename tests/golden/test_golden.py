"""Golden replay cases as data (CrowdSec `testdata/<case>/` style): each folder's events.jsonl is
replayed with a fixed pipeline clock and the records must equal the expected files exactly. After an
intentional change: `.venv/bin/python tests/golden/regen.py` and review the diff (tests/golden/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.golden.regen import FILES, HERE, cases, run_case

CASES = cases()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_there_are_cases_and_each_is_complete_and_documented():
    assert len(CASES) >= 6
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    for case in CASES:
        for name in FILES:
            assert (case / name).is_file(), f"{case.name}/{name} missing (run tests/golden/regen.py)"
        assert f"`{case.name}`" in readme, f"{case.name} has no line in tests/golden/README.md"
    strays = sorted(p.name for p in HERE.iterdir()
                    if p.is_dir() and not p.name.startswith((".", "__")) and p not in CASES)
    assert strays == [], f"folders without events.jsonl: {strays}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Path, schemas: dict):
    alerts, decisions, dlq = run_case(case)
    assert alerts == _jsonl(case / "expected_alerts.jsonl")
    assert decisions == _jsonl(case / "expected_decisions.jsonl")
    expected_dlq = [line for line in (case / "expected_dlq_codes.txt").read_text().splitlines() if line.strip()]
    assert dlq == expected_dlq
    # the expectations themselves are contract v1 records
    for name, records in (("alert", alerts), ("decision", decisions)):
        validator = Draft202012Validator(schemas[name], format_checker=Draft202012Validator.FORMAT_CHECKER)
        for r in records:
            errors = [e.message for e in validator.iter_errors(r)]
            assert errors == [], (name, r, errors)

