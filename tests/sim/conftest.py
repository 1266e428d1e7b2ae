"""Fixtures of the simulator tests: the smoke scenario generated once per session."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.sim import generator, scenario

ROOT = Path(__file__).resolve().parents[2]
SMOKE_SEED = 7


@pytest.fixture(scope="session")
def smoke_seed() -> int:
    return SMOKE_SEED


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    generator.write(generator.build(scenario.load("smoke"), SMOKE_SEED), out)
    return out


@pytest.fixture(scope="session")
def smoke_events(smoke_dir: Path) -> list[dict]:
    with (smoke_dir / "events.jsonl").open("rb") as f:
        return [orjson.loads(line) for line in f]


@pytest.fixture(scope="session")
def smoke_labels(smoke_dir: Path) -> dict[str, dict]:
    return orjson.loads((smoke_dir / "labels.json").read_bytes())
