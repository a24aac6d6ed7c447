"""The viewer process: a dashboard window that stays live while its parent is blocked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psutil
import pytest
from desktop_helpers import HERE, changed_fraction, colours, gui_env, skip_if_toolkit_failed


def test_viewer_redraws_while_the_parent_main_thread_sleeps(run_gui, tmp_path):
    r = run_gui("viewer_parent.py", "sleep", "qt", str(tmp_path), timeout=240)
    g = r["grabs"]
    assert "error" not in g, g
    assert g["main_asleep"], "grabs must be taken while the parent's main thread blocks"
    assert colours(g["A"]) > 20
    # Grabs do not redraw the window; the viewer's own refresh timer redrew it meanwhile...
    assert g["B_draws"] >= g["A_draws"] + 3, g
    # ...and what it shows moved with the data.
    assert changed_fraction(g["A"], g["B"]) > 0.01
    assert r["viewer_alive_after_close"] is False


def test_killing_the_viewer_leaves_the_parent_unaffected(run_gui, tmp_path):
    r = run_gui("viewer_parent.py", "kill-viewer", "tk", str(tmp_path))
    assert r["alive"] is False
    assert r["records_grew"] is True  # the parent's work went on
    assert "not running" in r["grab_error"] or "exited" in r["grab_error"]
    assert r["feeder_alive"] is False  # and it stopped feeding a dead pipe


def test_killing_the_parent_makes_the_viewer_exit(xvfb_display, tmp_path):
    parent = subprocess.Popen(
        [sys.executable, str(HERE / "viewer_parent.py"), "orphan", "tk", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=gui_env(xvfb_display),
    )
    try:
        line = parent.stdout.readline()
        if not line:
            stderr = parent.stderr.read()
            skip_if_toolkit_failed(None, stderr)
            pytest.fail(f"parent died: {stderr[-2000:]}")
        report = json.loads(line)
        if "skip" in report:
            pytest.skip(report["skip"])
        viewer = psutil.Process(report["viewer_pid"])
        assert viewer.is_running()
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if not viewer.is_running() or viewer.status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.1)
        else:
            viewer.kill()
            pytest.fail("the viewer outlived its parent by 15 s")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
