"""The bench reads latency quantiles from the worker's Prometheus histogram: summed over the stage
label, or for one stage, and only over what was counted after a scrape taken before the load."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.bench.__main__ import _quantile, _quantile_counts

NAME = "distill_guard_decision_latency_seconds"


def _scrape(registry) -> dict:
    return {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}


@pytest.fixture
def hist():
    registry = CollectorRegistry()
    h = Histogram(NAME, "test", ["stage"], buckets=(0.1, 0.2, 0.5, 1.0), registry=registry)
    return registry, h


def test_quantiles_sum_the_stages_or_pick_one(hist):
    registry, h = hist
    for _ in range(90):
        h.labels("accounts").observe(0.05)  # bucket (0, 0.1]
    for _ in range(10):
        h.labels("clusters").observe(0.7)  # bucket (0.5, 1.0]
    fams = _scrape(registry)
    assert _quantile_counts(fams) == 100
    assert _quantile_counts(fams, stage="clusters") == 10
    assert _quantile(fams, NAME, 0.5) == pytest.approx(0.1 * 50 / 90)
    assert _quantile(fams, NAME, 0.95) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert _quantile(fams, NAME, 0.5, stage="accounts") == pytest.approx(0.1 * 45 / 90)
    assert _quantile(fams, NAME, 0.5, stage="clusters") == pytest.approx(0.75)


def test_what_was_counted_before_the_load_is_left_out(hist):
    registry, h = hist
    for _ in range(1000):
        h.labels("accounts").observe(5.0)  # warm-up: all above the top bucket
    base = _scrape(registry)
    for _ in range(10):
        h.labels("accounts").observe(0.15)
    fams = _scrape(registry)
    assert _quantile(fams, NAME, 0.99, base) == pytest.approx(0.1 + 0.1 * 9.9 / 10)
    assert _quantile(fams, NAME, 0.99) == 1.0  # without `since`: the warm-up dominates (top bucket)
    assert _quantile_counts(fams) - _quantile_counts(base) == 10


def test_nothing_counted_is_zero_not_an_error(hist):
    registry, _ = hist
    fams = _scrape(registry)
    assert _quantile(fams, NAME, 0.99) == 0.0
    assert _quantile(fams, NAME, 0.99, stage="clusters") == 0.0
    assert _quantile({}, NAME, 0.5) == 0.0
