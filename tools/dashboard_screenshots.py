"""Regenerate the dashboard screenshots in docs/img/ (JupyterLab, browser, Agg snapshot).

    MPLBACKEND=Agg .venv/bin/python tools/dashboard_screenshots.py

Needs /usr/bin/chromium and Playwright. The JupyterLab picture is taken by the end-to-end
test (tests/live/test_jupyterlab.py, a real background training run of resnetv2-micro on a
Fashion-MNIST subset with live="ipympl") with RESNETLAB_SCREENSHOTS set; the browser and Agg
pictures by a simulated run below (a producer thread standing in for training, plus the
real SystemMonitor).
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMG = ROOT / "docs" / "img"
sys.path.insert(0, str(ROOT / "tests"))


def simulated_run(stream, stop: threading.Event, steps_per_s: float = 40.0) -> None:
    rng = random.Random(0)
    step = 0
    layers = [f"stacks.{s}.units.{u}.conv" for s in range(3) for u in range(3)]
    while not stop.is_set():
        stream.log(
            step,
            loss=2.3 * math.exp(-step / 150) + 0.25 + 0.08 * rng.random(),
            accuracy=0.92 * (1 - math.exp(-step / 120)) + 0.02 * rng.random(),
            lr=0.1 * 0.5 * (1 + math.cos(math.pi * min(step / 2000, 1))),
            images_per_s=2400 + 150 * rng.random(),
        )
        if step % 50 == 49:
            stream.log(
                step,
                val_loss=2.3 * math.exp(-step / 150) + 0.32,
                val_accuracy=0.9 * (1 - math.exp(-step / 120)),
            )
        if step % 5 == 0:
            stream.append(
                step,
                {
                    f"grad_norm/{name}": 10 ** (-i / 4)
                    * (1 + 0.3 * rng.random())
                    * (1 + math.exp(-step / 100))
                    for i, name in enumerate(layers)
                },
            )
        step += 1
        time.sleep(1 / steps_per_s)


def browser_and_agg() -> None:
    from conftest import CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    from resnetlab.live import Dashboard, MetricStream, SystemMonitor

    stream = MetricStream(name="resnetv2-mini")
    stop = threading.Event()
    producer = threading.Thread(target=simulated_run, args=(stream, stop), daemon=True)
    producer.start()
    monitor = SystemMonitor(stream, interval=0.5).start()
    panels = ["loss", "accuracy", "lr", "throughput", "cpu", "ram", "grad_norms", "sys/rss_gb"]
    dash = Dashboard(
        panels,
        stream=stream,
        backend="webagg",
        ncols=4,
        panel_size=(3.2, 2.6),
        title="resnetv2-mini on Fashion-MNIST (simulated)",
        draw_budget=0.5,
    )
    dash.start(rate_hz=2)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1330, "height": 660})
            page.goto(dash.url, wait_until="load")
            page.wait_for_selector("canvas.mpl-canvas")
            time.sleep(12)
            page.screenshot(path=str(IMG / "dashboard-webagg.png"))
            browser.close()
        dash.save(IMG / "dashboard-agg.png")
    finally:
        stop.set()
        dash.close()
        monitor.stop()


def jupyterlab() -> None:
    env = {**os.environ, "RESNETLAB_SCREENSHOTS": str(IMG)}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/live/test_jupyterlab.py"],
        cwd=ROOT,
        env=env,
        check=True,
    )


if __name__ == "__main__":
    IMG.mkdir(parents=True, exist_ok=True)
    browser_and_agg()
    jupyterlab()
    print("wrote", *sorted(p.name for p in IMG.glob("dashboard-*.png")))
