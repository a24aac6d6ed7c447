"""Start a real ``jupyter lab`` on 127.0.0.1 with its own temp dirs and token, for tests."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    """A port that was free a moment ago: a first guess only (the server may move on)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_info(runtime: Path, pid: int) -> dict | None:
    """What the server wrote about itself (its real URL and port) once it listens."""
    path = runtime / f"jpserver-{pid}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet, or half-written
        return None


def write_notebook(path: Path, cells: list[str]) -> Path:
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"c{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))
    return path


@contextmanager
def jupyter_lab(root: Path, timeout: float = 180.0, env: dict[str, str] | None = None):
    """Yields the base URL (with ``?token=``-ready token) of a running JupyterLab.

    ``env``: extra environment variables for the server and so for its kernels.
    """
    port, token = _free_port(), secrets.token_hex(16)
    home = root / ".home"
    for sub in ("config", "data", "runtime", "ipython", "workspaces", "settings"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    # No news/update popups in the screenshots.
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"})
    )
    env = {
        **os.environ,
        **(env or {}),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(home / "lab.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            # The guessed port may be taken by the time the server binds (other test runs):
            # it then tries the next ones, and the real port is read from its runtime file.
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=50",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--ServerApp.disable_check_xsrf=False",
            f"--LabApp.user_settings_dir={home / 'settings'}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=root,
    )
    try:
        deadline = time.time() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(home / 'lab.log').read_text()[-2000:]}")
            info = _server_info(home / "runtime", proc.pid)
            if info is not None:
                base = f"http://127.0.0.1:{int(info['port'])}"
                try:
                    with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                        break
                except OSError:
                    pass
            if time.time() > deadline:
                raise RuntimeError(
                    f"jupyter lab did not answer in time: {(home / 'lab.log').read_text()[-2000:]}"
                )
            time.sleep(0.3)
        yield base, token, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
