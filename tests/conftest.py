"""Fixtures shared by the whole suite: real data locations, browsers, virtual displays.

Tests that need something this machine lacks are skipped with the reason printed (the
``-ra`` summary lists them), never silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Headless by default: a test that wants a GUI backend asks for it explicitly.
os.environ.setdefault("MPLBACKEND", "Agg")

from suite_support import CHROMIUM, CHROMIUM_ARGS, FASHION_MNIST_DIR, free_port  # noqa: E402

__all__ = ["CHROMIUM_ARGS", "free_port"]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep dataset caches and run stores of the tests out of the user's home."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    os.environ.pop("RESNETLAB_DATA", None)


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """One intra-op thread: small test models run faster, and parallel test processes
    (torchrun ranks, kernels, viewers) do not oversubscribe the machine's cores."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The real Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package."""
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real Fashion-MNIST not found in {FASHION_MNIST_DIR} "
                    "(apt-get install dataset-fashion-mnist)")
    return FASHION_MNIST_DIR


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, for Playwright's ``executable_path``."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def xvfb_display() -> str:
    """A virtual X display (Xvfb) for desktop-window tests: the ``DISPLAY`` value to pass on."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb not found (apt-get install xvfb)")
    for number in range(90, 120):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(f"/tmp/.X{number}-lock").exists():
            break
    display = f":{number}"
    proc = subprocess.Popen([xvfb, display, "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.skip(f"Xvfb did not start on {display}")
        time.sleep(0.05)
    # The socket appears before Xvfb accepts clients: wait until a client really connects.
    probe = "import matplotlib as m, sys; sys.exit(0 if m._c_internal_utils.display_is_valid() else 1)"
    while subprocess.run([sys.executable, "-c", probe], env={**os.environ, "DISPLAY": display}).returncode:
        if proc.poll() is not None or time.time() > deadline + 20:
            proc.kill()
            pytest.skip(f"Xvfb on {display} does not accept connections")
        time.sleep(0.2)
    # Not exported to os.environ: tests pass it to the GUI subprocesses they start, so a
    # later test that checks headless behaviour never sees a display by accident.
    yield display
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def python_exe() -> str:
    """The interpreter running the tests (the project's virtual environment)."""
    return sys.executable
