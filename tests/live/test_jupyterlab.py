"""JupyterLab end to end: an ipympl dashboard keeps moving while another cell runs."""

from __future__ import annotations

import hashlib
import os
import re
import time

import psutil
import pytest
from suite_support import CHROMIUM_ARGS

from .lab_server import jupyter_lab, write_notebook

pytest.importorskip("ipympl")
pytest.importorskip("jupyterlab")

TRAIN_CELL = """%matplotlib widget
import threading, time, math, random
from resnetlab.live import Dashboard, MetricStream, SystemMonitor
stream = MetricStream(name="notebook-run")
dash = Dashboard(["loss", "accuracy", "cpu"], stream=stream, backend="ipympl", title="live run",
                 panel_size=(3.2, 2.4), draw_budget=0.5)
monitor = SystemMonitor(stream, interval=0.5).start()
state = {"stop": False}
def produce():  # stands in for training in a background thread
    step = 0
    while not state["stop"]:
        stream.log(step, loss=2 * math.exp(-step / 60) + 0.1 * random.random(),
                   accuracy=1 - math.exp(-step / 50))
        step += 1
        time.sleep(0.05)
threading.Thread(target=produce, daemon=True).start()
dash.start(rate_hz=4)
"""
BUSY_CELL = """t0 = len(stream)
time.sleep(6)   # the kernel's main thread is busy for 6 s
print("other cell ran;", len(stream) - t0, "records arrived meanwhile")
"""
STOP_CELL = """state["stop"] = True; dash.stop(); monitor.stop(); print("stopped")"""


def _figure_shot(page) -> str:
    data = page.locator(".jupyter-matplotlib-canvas-div").first.screenshot()
    return hashlib.sha1(data).hexdigest()


def test_ipympl_dashboard_updates_while_another_cell_runs(tmp_path, chromium_path):
    from playwright.sync_api import sync_playwright

    write_notebook(tmp_path / "live.ipynb", [TRAIN_CELL, BUSY_CELL, STOP_CELL])
    shots_dir = os.environ.get("RESNETLAB_SCREENSHOTS")
    with jupyter_lab(tmp_path) as (base, token, server), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/live.ipynb?token={token}", wait_until="load")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            # the kernel is connected once the status bar says "... | Idle"
            page.get_by_text(re.compile(r"\(ipykernel\) \| Idle")).wait_for(timeout=60_000)
            page.locator(".jp-Cell").nth(0).click()
            page.keyboard.press("Escape")
            page.keyboard.press("Shift+Enter")  # run the training cell
            try:
                page.wait_for_selector(".jupyter-matplotlib-canvas-div canvas", timeout=60_000)
            except Exception:
                page.screenshot(path=str(tmp_path / "failed.png"))
                raise AssertionError(f"no figure; see {tmp_path / 'failed.png'}") from None
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=60_000)
            time.sleep(1.5)
            page.keyboard.press("Shift+Enter")  # run the busy cell; kernel now blocked
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='busy']",
                                   timeout=10_000)
            shots = []
            for _ in range(4):  # during the busy cell
                time.sleep(1.0)
                shots.append(_figure_shot(page))
            if shots_dir:
                page.screenshot(path=os.path.join(shots_dir, "dashboard-jupyterlab.png"))
            busy_output = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output")
            busy_output.filter(has_text="other cell ran").wait_for(timeout=30_000)
            text = busy_output.inner_text()
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                                   timeout=30_000)
            # the figure is still in the first cell's output, and still alone there
            first_outputs = page.locator(".jp-Cell").nth(0).locator(".jupyter-matplotlib")
            assert first_outputs.count() == 1
            page.locator(".jp-Cell").nth(2).click()
            page.keyboard.press("Escape")
            page.keyboard.press("Shift+Enter")
            page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea-output").filter(
                has_text="stopped").wait_for(timeout=30_000)
        finally:
            browser.close()
        # kernels are children of the server; make sure nothing outlives the test
        kernels = psutil.Process(server.pid).children(recursive=True)
    # the plot kept changing while the kernel's main thread was blocked
    assert len(set(shots)) >= 3, shots
    n = int(text.split(";")[1].split()[0])
    assert n > 20  # the producer kept appending during the busy cell
    for k in kernels:
        assert not k.is_running() or k.status() == psutil.STATUS_ZOMBIE
