"""A Qt dashboard window of a training process (Qt offscreen) keeps getting new frames
while the model trains on the main thread, as many as the dashboard reports making."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .frame_counting import MIN_NEW_FRAMES, WINDOW_SAMPLES

HERE = Path(__file__).parent


def test_qt_window_gets_new_frames_while_training_on_the_main_thread(
    xvfb_display, fashion_mnist_dir
):
    pytest.importorskip("matplotlib.backends.qt_compat")
    # The offscreen platform draws into memory; DISPLAY only satisfies the toolkit check.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(DISPLAY=xvfb_display, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, str(HERE / "qt_frames.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    report = json.loads(lines[-1])
    if "skip" in report:
        pytest.skip(report["skip"])
    print("qt window:", report)  # the figures, for the report (pytest -s)
    assert report["samples"] >= WINDOW_SAMPLES and report["steps"] > 0, report
    assert report["new_frames"] >= MIN_NEW_FRAMES, report
    # Each new frame reached the window: its canvas painted (at least) that often.
    assert report["paints"] >= 0.7 * report["new_frames"], report
