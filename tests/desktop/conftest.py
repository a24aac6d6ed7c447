"""Fixtures of the desktop-window tests (helpers live in desktop_helpers.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from desktop_helpers import HERE, gui_env, skip_if_toolkit_failed


@pytest.fixture(scope="session")
def xvfb_display(xvfb_display: str) -> str:
    """The suite's Xvfb, once it accepts connections (its socket appears a little earlier)."""
    import time

    probe = "import matplotlib as m, sys; sys.exit(0 if m._c_internal_utils.display_is_valid() else 1)"
    deadline = time.monotonic() + 30
    while subprocess.run([sys.executable, "-c", probe], env=gui_env(xvfb_display)).returncode:
        if time.monotonic() > deadline:
            pytest.skip(f"Xvfb on {xvfb_display} does not accept connections after 30 s")
        time.sleep(0.2)
    return xvfb_display


@pytest.fixture
def run_gui(xvfb_display: str):
    """Run ``tests/desktop/<script> args...`` under Xvfb; returns its last JSON line."""

    def run(script: str, *args: str, timeout: float = 90) -> dict:
        proc = subprocess.run([sys.executable, str(HERE / script), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env=gui_env(xvfb_display))
        skip_if_toolkit_failed(proc, proc.stderr)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        assert proc.returncode == 0 and lines, (
            f"{script} {args} failed (status {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
        report = json.loads(lines[-1])
        if "skip" in report:
            pytest.skip(report["skip"])
        return report

    return run

