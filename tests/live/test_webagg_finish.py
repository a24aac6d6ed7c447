"""The WebAgg page outlives the run: when training ends the server keeps serving the final
dashboard (until the process exits or an explicit close) and the page says the run has
finished; once the server is gone, an open tab says that too."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from suite_support import CHROMIUM_ARGS

from resnetlab.live import MetricStream, live_dashboard

from .image_checks import assert_whole_image
from .test_webagg_browser import _changed_shot, _feed, _settled_shot, _shows

NOTICE = "#resnetlab-status"


def _session(tmp_path, in_process=True, **options):
    return live_dashboard(
        MetricStream(),
        backend="webagg",
        run_dir=tmp_path,
        system_monitor=False,
        in_process=in_process,
        panels=["loss", "accuracy"],
        title="finishing run",
        rate_hz=5,
        **options,
    )


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].strip("/"))


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


@pytest.mark.parametrize("in_process", [True, False], ids=["in-process", "render-process"])
def test_finish_keeps_the_server_and_tells_the_page(in_process, tmp_path):
    session = _session(tmp_path, in_process)
    stream = session.dashboard.stream if in_process else session.render_process.stream
    try:
        url = session.url
        assert json.loads(_get(url + "status")) == {"finished": None}
        _feed(stream, 0, 30)
        session.finish("Training finished at 12:00:00.")  # what the trainer does at the end
        assert session.finished and not session.closed
        # still served: the page (with the notice in it), its status, the final picture
        assert "Training finished at 12:00:00." in _get(url)
        assert json.loads(_get(url + "status")) == {"finished": "Training finished at 12:00:00."}
        with urllib.request.urlopen(url + "1/download.png", timeout=10) as png:
            (tmp_path / "downloaded.png").write_bytes(png.read())
        assert_whole_image(tmp_path / "downloaded.png")
        assert_whole_image(tmp_path / "dashboard-final.png")
        session.finish()  # idempotent
        if not in_process:
            assert session.render_process.alive  # the child serves on after the run
    finally:
        session.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", _port(url)), timeout=1):
        pass  # an explicit close stops the server


def test_the_default_notice_says_when_the_run_finished(tmp_path):
    session = _session(tmp_path)
    try:
        session.finish()
        status = json.loads(_get(session.url + "status"))["finished"]
        assert status.startswith("The run finished at ") and "final dashboard" in status
    finally:
        session.close()


def test_an_open_tab_shows_the_end_of_the_run_and_reloads_the_final_picture(
    chromium_path, tmp_path
):
    from playwright.sync_api import sync_playwright

    session = _session(tmp_path)
    stream = session.dashboard.stream
    url = session.url
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 600})
                page.goto(url, wait_until="load")
                page.wait_for_selector("div.resnetlab-figure canvas", timeout=15_000)
                assert not page.locator(NOTICE).is_visible()  # no notice while it runs
                first = _settled_shot(page)
                _feed(stream, 0, 60)
                _changed_shot(page, first)

                session.finish()  # training ended
                # The open tab learns it by itself (no reload), within its poll interval.
                page.wait_for_function(
                    f"document.querySelector('{NOTICE}').textContent.includes('finished')",
                    timeout=30_000,
                )
                assert page.locator(NOTICE).is_visible()
                final = _settled_shot(page)

                page.reload(wait_until="load")  # the page still loads, with the notice
                page.wait_for_selector("div.resnetlab-figure canvas", timeout=15_000)
                assert "finished" in page.locator(NOTICE).inner_text()
                assert page.locator(NOTICE).is_visible()
                _shows(page, final)  # the final figure, whole

                session.close()  # an explicit close: the tab says the server is gone
                page.wait_for_function(
                    f"document.querySelector('{NOTICE}').textContent.includes('stopped')",
                    timeout=30_000,
                )
            finally:
                browser.close()
    finally:
        session.close()


@pytest.mark.timeout(300)
def test_after_training_the_page_still_serves_the_final_dashboard(
    chromium_path, fashion_mnist_dir, tmp_path
):
    """``resnetlab.train(live="webagg")``: the page outlives the training (render process)."""
    import io

    import numpy as np
    from PIL import Image
    from playwright.sync_api import sync_playwright

    import resnetlab

    result = resnetlab.train(
        "resnetv2-micro",
        data="fashion-mnist",
        data_dir=fashion_mnist_dir,
        epochs=1,
        batch_size=64,
        train_limit=768,
        test_limit=128,
        val_size=256,
        device="cpu",
        store=tmp_path / "runs.db",
        run_dir=str(tmp_path / "run"),
        live="webagg",
        progress=False,
        verbose=False,
    )
    session = result.dashboard
    try:
        assert result.status == "completed" and session.url
        assert session.render_process.alive  # training is over, the page is not
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                for _visit in range(2):  # a first load and a reload
                    page.goto(session.url, wait_until="load")
                    page.wait_for_selector("div.resnetlab-figure canvas", timeout=15_000)
                    assert "finished" in page.locator(NOTICE).inner_text()
                    assert page.locator(NOTICE).is_visible()
                    _settled_shot(page)
                    shot = page.locator("div.resnetlab-figure canvas.mpl-canvas").first.screenshot()
                    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))
                    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
                    assert colours > 20, "the page shows no dashboard"
            finally:
                browser.close()
        assert_whole_image(result.run_dir / "dashboard-final.png")
    finally:
        session.close()
    assert not session.render_process.alive


def test_the_render_process_leaves_when_the_training_process_dies(tmp_path):
    """After finish() the child serves on, but only as long as its training process lives:
    the end of its stdin (the parent's exit, even a SIGKILL) ends it."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    code = (
        "import sys, time\n"
        "from resnetlab.live import MetricStream, live_dashboard\n"
        "s = MetricStream()\n"
        "session = live_dashboard(s, backend='webagg', system_monitor=False, panels=['loss'])\n"
        "s.log(0, loss=1.0)\n"
        "session.finish()\n"
        "print(session.render_process.pid, session.url, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid, url = parent.stdout.readline().split()
        child = psutil.Process(int(pid))
        assert "finished" in _get(url)  # serving after the run's end
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
    child.wait(30)  # raises psutil.TimeoutExpired if the child lingers
    assert not child.is_running()
