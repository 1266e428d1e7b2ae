"""Same scenario and seed, same bytes; another seed, other traffic."""

from __future__ import annotations

import hashlib
from pathlib import Path

from app.cli import main


def _digest(d: Path) -> tuple[str, str]:
    return (hashlib.sha256((d / "events.jsonl").read_bytes()).hexdigest(),
            hashlib.sha256((d / "labels.json").read_bytes()).hexdigest())


def test_same_seed_gives_identical_bytes(smoke_dir: Path, smoke_seed: int, tmp_path: Path) -> None:
    assert main(["simulate", "--scenario", "smoke", "--seed", str(smoke_seed), "--out", str(tmp_path)]) == 0
    assert _digest(tmp_path) == _digest(smoke_dir)


def test_different_seed_gives_different_traffic(smoke_dir: Path, smoke_seed: int, tmp_path: Path) -> None:
    assert main(["simulate", "--scenario", "smoke", "--seed", str(smoke_seed + 1), "--out", str(tmp_path)]) == 0
    ev_a, lab_a = _digest(tmp_path)
    ev_b, lab_b = _digest(smoke_dir)
    assert ev_a != ev_b and lab_a != lab_b


def test_start_override_shifts_the_day(tmp_path: Path) -> None:
    assert main(["simulate", "--scenario", "smoke", "--seed", "1", "--start", "2026-03-10T06:00:00Z",
                 "--out", str(tmp_path)]) == 0
    with (tmp_path / "events.jsonl").open() as f:
        first = f.readline()
    assert '"ts":"2026-03-10T06:' in first


def test_identical_across_processes_with_different_hash_seeds(smoke_dir: Path, smoke_seed: int,
                                                              tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "app.cli", "simulate", "--scenario", "smoke", "--seed", str(smoke_seed),
                    "--out", str(tmp_path)], check=True, env=env, capture_output=True,
                   cwd=Path(__file__).resolve().parents[2])
    assert _digest(tmp_path) == _digest(smoke_dir)
