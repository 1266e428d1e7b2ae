"""Prints the fault-tolerance summary table (one row per scenario that ran) at the end of the run, in
the Markdown form the README uses."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.faults.harness import SUMMARY, format_summary

    if SUMMARY:
        terminalreporter.write_sep("=", "fault tolerance summary (tests/faults)")
        terminalreporter.write_line(format_summary())
