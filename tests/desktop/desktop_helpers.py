"""Helpers for the desktop-window tests (imported by conftest.py and the tests): run a GUI script in its own process under Xvfb.

A process can host only one GUI toolkit, and a toolkit that cannot start may abort the
whole process (Qt's platform plugin), so every window lives in a subprocess with a
timeout. A missing toolkit or library is a skip with the reason, never a silent pass.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent

QT_PLUGIN_HINT = (
    "Qt's xcb platform plugin cannot load here (apt-get install libxcb-icccm4 "
    "libxcb-keysyms1 libxcb-cursor0 libxcb-shape0 libxcb-render-util0 "
    "libxcb-image0 libxkbcommon-x11-0)"
)


def gui_env(display: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "QT_QPA_PLATFORM")}
    env["DISPLAY"] = display
    env["PYTHONUNBUFFERED"] = "1"
    return env


def skip_if_toolkit_failed(proc: subprocess.CompletedProcess | None, stderr: str) -> None:
    if "Could not load the Qt platform plugin" in stderr and "connect to display" not in stderr:
        pytest.skip(QT_PLUGIN_HINT)


def load_rgb(path: str | Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def changed_fraction(a: str | Path, b: str | Path) -> float:
    """Share of pixels that differ between two screenshots of the same window."""
    x, y = load_rgb(a), load_rgb(b)
    assert x.shape == y.shape, f"window size changed between grabs: {x.shape} vs {y.shape}"
    return float((np.abs(x - y).sum(axis=-1) > 0).mean())


def colours(path: str | Path) -> int:
    """How many distinct colours a screenshot has (a blank window has one or two)."""
    x = load_rgb(path).reshape(-1, 3)
    return len(np.unique(x, axis=0))
