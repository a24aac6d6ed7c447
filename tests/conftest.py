"""Fixtures shared by the whole suite: real data locations, browsers, virtual displays.

Tests that need something this machine lacks are skipped with the reason printed (the
``-ra`` summary lists them), never silently.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Headless by default: a test that wants a GUI backend asks for it explicitly.
os.environ.setdefault("MPLBACKEND", "Agg")

from kernel_generations import GENERATIONS, KernelGeneration, make_generation  # noqa: E402
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
        pytest.skip(
            f"real Fashion-MNIST not found in {FASHION_MNIST_DIR} "
            "(apt-get install dataset-fashion-mnist)"
        )
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
    # -displayfd: Xvfb picks a free display itself and writes its number once it accepts
    # clients. Choosing a number here raced with other X servers started at the same time
    # (another test session's), and a test could end up on a display that went away.
    # -noreset: by default an X server resets when its last client disconnects, and refuses
    # connections while it does; a window opened just after another closed then failed
    # with "could not connect to display" (seen with Qt on a loaded machine).
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            xvfb,
            "-displayfd",
            str(write_fd),
            "-noreset",
            "-screen",
            "0",
            "1280x1024x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    number = b""
    with os.fdopen(read_fd, "rb") as pipe:
        ready, _, _ = select.select([pipe], [], [], 30)
        if ready:
            number = pipe.readline().strip()
    if not number.isdigit():
        proc.kill()
        pytest.skip("Xvfb did not start (no display number after 30 s)")
    display = f":{number.decode()}"
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


@pytest.fixture(scope="module", params=GENERATIONS)
def kernel_generation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> KernelGeneration:
    """Each ipykernel generation in turn (the test id says which); see kernel_generations.py.

    Module scope: a module that keeps one kernel for its tests keeps one per generation.
    """
    return make_generation(request.param, tmp_path_factory.mktemp("kernelspecs"))
