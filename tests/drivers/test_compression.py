"""DG_COMPRESSION: the record-batch compression of everything the worker produces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.codec import has_lz4, has_zstd

from app.drivers.worker import Worker
from app.rules.load import load_rules
from app.settings import COMPRESSION_TYPES, DEFAULT_RULES, Settings, compression_type

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("value", "expected"), [("none", None), ("lz4", "lz4"), (" ZSTD ", "zstd"),
                                                 ("gzip", "gzip")])
def test_values_as_the_producer_takes_them(value: str, expected: str | None) -> None:
    assert compression_type(value) == expected


@pytest.mark.parametrize("value", ["", "snappy", "lz5", "off"])
def test_anything_else_is_refused_with_the_choices(value: str) -> None:
    with pytest.raises(ValueError, match="none, gzip, lz4, zstd"):
        compression_type(value)


def test_every_codec_offered_is_installed() -> None:
    # lz4 and zstd come from cramjam: without it aiokafka refuses to build a batch at the first send
    assert "lz4" in COMPRESSION_TYPES and has_lz4()
    assert "zstd" in COMPRESSION_TYPES and has_zstd()
    # ... and kafka-python, which the CLI tools (demo, standdown) and the tests read the worker's topics with,
    # decodes zstd through zstandard
    from kafka.codec import has_zstd as kafka_python_has_zstd

    assert kafka_python_has_zstd()


def test_zstd_by_default_and_none_turns_it_off(tmp_path: Path) -> None:
    assert Settings.from_env({}).compression == "zstd"
    assert Settings.from_env({"DG_COMPRESSION": "lz4"}).compression == "lz4"
    for value, expected in (("zstd", "zstd"), ("lz4", "lz4"), ("none", None)):
        w = Worker(Settings(store="memory://", data_dir=tmp_path, metrics_port=0, compression=value),
                   load_rules(DEFAULT_RULES))
        try:
            assert w.app.conf.producer_compression_type == expected
            assert w.app.producer.compression_type == expected  # the producer of outputs and changelogs
        finally:
            w.close()


def test_the_worker_refuses_a_bad_value_before_it_connects() -> None:
    env = dict(os.environ, DG_COMPRESSION="brotli", KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    r = subprocess.run([sys.executable, "-m", "app.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                       timeout=60)
    assert r.returncode == 2
    assert b"DG_COMPRESSION" in r.stderr and b"brotli" in r.stderr
