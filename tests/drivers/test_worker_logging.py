"""The worker's faust.Worker must leave the root logger at the chosen level (no spinner handler)."""

from __future__ import annotations

import logging

import faust

from app.drivers.worker_cli import _quiet_worker_class


def test_root_logger_keeps_the_chosen_level() -> None:
    app = faust.App("dg-test-logging", broker="memory://", store="memory://", web_enabled=False)
    worker = _quiet_worker_class()(app, loglevel="warn")
    root = logging.Logger("fake-root")
    root.addHandler(logging.StreamHandler())
    root.setLevel(logging.WARNING)
    worker.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.WARNING
    assert len(root.handlers) == 1
    assert not root.isEnabledFor(logging.DEBUG)


def test_plain_faust_worker_would_lower_it() -> None:
    """What the subclass is for: Faust's own worker sets the root logger to DEBUG at WARN."""
    app = faust.App("dg-test-logging-2", broker="memory://", store="memory://", web_enabled=False)
    worker = faust.Worker(app, loglevel="warn")
    root = logging.Logger("fake-root-2")
    root.addHandler(logging.StreamHandler())
    root.setLevel(logging.WARNING)
    worker.on_setup_root_logger(root, logging.WARNING)
    assert root.level == logging.DEBUG
