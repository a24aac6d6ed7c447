"""Saves of a desktop dashboard (Qt, Tk, GTK3 windows under Xvfb; Qt offscreen) are whole
pictures: opaque, with titles and tick labels, after blitted redraws, after stop(), and
the ``dashboard-final.png`` a live session writes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from desktop_helpers import HERE, gui_env, skip_if_toolkit_failed
from live.image_checks import assert_whole_image


def _check(report: dict) -> None:
    assert report["blit_draws"] >= 2, report  # the window blitted before the saves
    for name in ("running", "stopped", "grab", "final"):
        assert_whole_image(report[name])


@pytest.mark.parametrize("kit", ["qt", "tk", "gtk"])
def test_window_saves_and_the_final_png_are_whole(kit, run_gui, tmp_path):
    _check(run_gui("save_check.py", kit, str(tmp_path), timeout=240))


def test_qt_offscreen_saves_are_whole(xvfb_display, tmp_path):
    # The offscreen platform draws into memory; DISPLAY only satisfies the toolkit check.
    env = {**gui_env(xvfb_display), "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run(
        [sys.executable, str(HERE / "save_check.py"), "qt", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    skip_if_toolkit_failed(proc, proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    report = json.loads(lines[-1])
    if "skip" in report:
        pytest.skip(report["skip"])
    _check(report)
