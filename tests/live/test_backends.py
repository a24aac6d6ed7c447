"""Backend discovery and the `resnetlab backends` command."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from resnetlab.errors import BackendError
from resnetlab.live.backends import backend_names, list_backends, pick_backend


def test_backends_command_checks_in_subprocesses_and_picks():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    # A few representative backends: the full list spawns one interpreter per backend,
    # which takes half a minute on a busy two-core machine.
    cmd = [sys.executable, "-m", "resnetlab", "backends", "agg", "webagg", "svg", "wx", "qtagg"]
    out = subprocess.run(
        [*cmd, "--json"], capture_output=True, text=True, env=env, timeout=240, check=True
    )
    report = json.loads(out.stdout)
    by_name = {b["name"]: b for b in report["backends"]}
    assert by_name["agg"]["importable"] and not by_name["agg"]["interactive"]
    assert by_name["webagg"]["importable"] and by_name["webagg"]["interactive"]
    assert by_name["webagg"]["driver"] == "webagg" and by_name["svg"]["driver"] is None
    assert not by_name["wx"]["importable"] and "wx" in by_name["wx"]["detail"]
    qt_installed = importlib.util.find_spec("PySide6") is not None
    assert by_name["qtagg"]["importable"] == qt_installed
    assert report["auto"]["backend"] == "agg"  # headless, not in Jupyter
    table = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=240, check=True
    ).stdout
    assert "--live auto picks here: agg" in table
    assert any(line.split()[:3] == ["webagg", "interactive", "yes"] for line in table.splitlines())


def test_backend_list_covers_matplotlib_and_rejects_unknown_names():
    import matplotlib.backends

    names, interactive = backend_names()
    assert set(matplotlib.backends.backend_registry.list_builtin()) <= set(names)
    assert "widget" in names and "qtagg" in interactive and "agg" not in interactive
    with pytest.raises(BackendError, match="unknown matplotlib backend.*nope"):
        list_backends(["nope"])


def test_auto_pick_prefers_a_desktop_toolkit_when_the_display_works(monkeypatch, xvfb_display):
    if importlib.util.find_spec("PySide6") is None and importlib.util.find_spec("tkinter") is None:
        pytest.skip("neither PySide6 nor tkinter installed")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", xvfb_display)  # a live X server (Xvfb)
    choice = pick_backend()
    assert choice.name in ("qt", "tk", "gtk") and "display" in choice.reason
    # DISPLAY set but nothing there (a stale ssh -X variable): a window could never
    # open, so --live auto falls back to snapshots instead of training without a dashboard
    monkeypatch.setenv("DISPLAY", ":12345")
    choice = pick_backend()
    assert choice.name == "agg" and "':12345' cannot be opened" in choice.reason
    monkeypatch.delenv("DISPLAY")
    assert pick_backend().name == "agg"
