"""The docs test's summary: how long each snippet ran (the test durations include the
time spent waiting for the snippets started before it)."""

from __future__ import annotations

import pytest

from .runner import FINISHED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    outcomes = sorted(FINISHED, key=lambda o: -o.seconds)
    if not outcomes:
        return
    terminalreporter.section("snippet run times")
    for o in outcomes:
        status = "timeout" if o.returncode is None else f"exit {o.returncode}"
        terminalreporter.write_line(f"{o.seconds:7.1f} s  {status:8}  {o.snippet.id}")
