"""Shared fixtures. Tests marked `kafka` use the real broker that `make test` starts; they fail (not
skip) when it is not there, so a broken broker start can never pass as a green run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = "127.0.0.1:9092"


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.items and not session.config.getoption("collectonly"):
        raise pytest.UsageError("no tests collected: refusing to report an empty run as a pass")


@pytest.fixture(scope="session")
def rules():
    from app.rules.load import load_rules

    return load_rules(ROOT / "app" / "rules" / "default.yaml")


@pytest.fixture(scope="session")
def schemas() -> dict:
    return {p.name.removesuffix(".schema.json"): json.loads(p.read_text())
            for p in (ROOT / "schemas").glob("*.schema.json")}


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=5000)
        admin.describe_cluster()
        admin.close()
    except KafkaError as exc:
        pytest.fail(f"the Kafka broker on {BOOTSTRAP} is not up (run `make kafka-up`): {exc}")
    return BOOTSTRAP


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
