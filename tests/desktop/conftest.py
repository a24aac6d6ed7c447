"""Fixtures of the desktop-window tests (helpers live in desktop_helpers.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from desktop_helpers import HERE, gui_env, skip_if_toolkit_failed


@pytest.fixture
def run_gui(xvfb_display: str):
    """Run ``tests/desktop/<script> args...`` under Xvfb; returns its last JSON line."""

    def run(script: str, *args: str, timeout: float = 90) -> dict:
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=gui_env(xvfb_display),
        )
        skip_if_toolkit_failed(proc, proc.stderr)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        assert proc.returncode == 0 and lines, (
            f"{script} {args} failed (status {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
        )
        report = json.loads(lines[-1])
        if "skip" in report:
            pytest.skip(report["skip"])
        return report

    return run
