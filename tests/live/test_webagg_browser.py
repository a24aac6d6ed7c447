"""WebAgg dashboard in a real browser (Debian Chromium via Playwright)."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time

import psutil
import pytest
from suite_support import CHROMIUM_ARGS

from resnetlab.errors import BackendError
from resnetlab.live import Dashboard, MetricStream

_SHOTS: dict[str, bytes] = {}  # screenshot hash -> its PNG, for same_picture()


def _shot(page) -> str:
    data = page.locator("div.resnetlab-figure canvas.mpl-canvas").first.screenshot()
    digest = hashlib.sha1(data).hexdigest()
    _SHOTS[digest] = data
    return digest


def same_picture(a: str, b: str, max_fraction: float = 0.001) -> bool:
    """Whether two screenshots (by hash) show the same picture: at most ``max_fraction``
    of the pixels differ. A live frame pastes each legend's kept pixels where a full
    draw (after a reload) draws it again; the two may differ in a pixel column of the
    legend's frame, while a stale or other picture differs in thousands."""
    import numpy as np

    x, y = _pixels(a), _pixels(b)
    if x.shape != y.shape:
        return False
    return np.any(x != y, axis=2).mean() <= max_fraction


def _pixels(digest: str):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(_SHOTS[digest])).convert("RGB"))


def _blank(digest: str) -> bool:
    """Whether a screenshot is one flat colour: the canvas has received no frame yet."""
    x = _pixels(digest)
    return bool((x == x[0, 0]).all())


def _describe(digest: str) -> str:
    x = _pixels(digest)
    return f"{x.shape[1]}x{x.shape[0]} px, {'blank' if _blank(digest) else 'drawn'}"


def _settled_shot(page, timeout: float = 15.0) -> str:
    """A screenshot once the canvas shows a frame and two consecutive shots agree (the
    last frame has arrived). A blank canvas (no frame received yet) never counts."""
    deadline = time.time() + timeout
    last = _shot(page)
    while time.time() < deadline:
        time.sleep(0.6)
        now = _shot(page)
        if now == last and not _blank(now):
            return now
        last = now
    raise AssertionError(
        f"the page never settled on a drawn picture in {timeout:.0f} s (last: {_describe(last)})"
    )


def _shows(page, expected: str, timeout: float = 30.0) -> str:
    """The screenshot once the page shows the picture ``expected`` (by hash).

    A reloaded page gets its first frame after its websocket's refresh round trip with
    the server, which on a loaded machine can take seconds: wait for it, not a time."""
    deadline = time.time() + timeout
    while True:
        now = _shot(page)
        if same_picture(now, expected):
            return now
        if time.time() > deadline:
            raise AssertionError(
                f"after {timeout:.0f} s the page shows another picture ({_describe(now)}) "
                f"than the expected one ({_describe(expected)})"
            )
        time.sleep(0.3)


def _changed_shot(page, previous: str, timeout: float = 20.0) -> str:
    """The settled screenshot after the picture has changed from ``previous``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _shot(page) != previous:
            return _settled_shot(page)
        time.sleep(0.3)
    raise AssertionError("the page did not change after new metrics arrived")


def _feed(stream, start, stop):
    for i in range(start, stop):
        stream.log(i, loss=2.0 / (i + 1) + 0.05 * (i % 7), accuracy=1 - 1 / (i + 2))


def test_webagg_page_updates_reloads_and_listens_on_localhost_only(chromium_path):
    from playwright.sync_api import sync_playwright

    stream = MetricStream()
    dash = Dashboard(
        ["loss", "accuracy"], stream=stream, backend="webagg", title="test run", draw_budget=0.5
    )
    _feed(stream, 0, 20)
    dash.start(rate_hz=5)
    try:
        url = dash.url
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1].strip("/"))
        listening = [
            c
            for c in psutil.Process(os.getpid()).net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 600})
                page.goto(url, wait_until="load")
                page.wait_for_selector("div.resnetlab-figure canvas", timeout=15_000)
                assert "test run" in page.title()
                first = _settled_shot(page)

                _feed(stream, 20, 80)  # new metrics arrive -> the picture must change
                second = _changed_shot(page, first)

                page.reload(wait_until="load")  # a reload gets the current picture
                page.wait_for_selector("div.resnetlab-figure canvas", timeout=15_000)
                after_reload = _shows(page, second)  # the current picture, whole
                assert not same_picture(after_reload, first)  # the check can tell them apart

                _feed(stream, 80, 120)  # and keeps updating after the reload
                _changed_shot(page, after_reload)
            finally:
                browser.close()
    finally:
        dash.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # the server is gone after close()


def test_a_page_reloaded_while_frames_stream_shows_the_whole_picture(chromium_path, caplog):
    """Frames come faster than a page decodes them while metrics stream in. A page
    reloaded then must still build on its full frame: losing it under the diffs that
    follow leaves only the lines that moved, on a blank canvas, until the next full frame.
    And the page that went away is no error: writes to its closing socket are dropped."""
    import threading

    from playwright.sync_api import sync_playwright

    from .frame_counting import COUNT_FRAMES_JS

    stream = MetricStream()
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend="webagg", draw_budget=0.5)
    _feed(stream, 0, 20)
    dash.start(rate_hz=20)
    logged = [20]

    def produce(stop: threading.Event) -> None:
        while not stop.is_set():
            _feed(stream, logged[0], logged[0] + 1)
            logged[0] += 1
            stop.wait(0.005)  # pacing of the producer, not a synchronisation

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 600})
                page.add_init_script(COUNT_FRAMES_JS)
                page.goto(dash.url, wait_until="load")
                for _ in range(4):
                    stop = threading.Event()
                    producer = threading.Thread(target=produce, args=(stop,), daemon=True)
                    producer.start()
                    page.reload(wait_until="load")
                    page.wait_for_function("window.__frames >= 4", timeout=30_000)
                    stop.set()
                    producer.join(10)
                    fresh = browser.new_page(viewport={"width": 1000, "height": 600})
                    fresh.goto(dash.url, wait_until="load")  # loaded with nothing streaming
                    expected = _settled_shot(fresh)
                    fresh.close()
                    assert not _blank(expected)
                    _shows(page, expected)
            finally:
                browser.close()
    finally:
        dash.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


def test_webagg_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        dash = Dashboard(["loss"], stream=MetricStream(), backend="webagg", port=port)
        with pytest.raises(
            BackendError, match=f"port {port} on 127.0.0.1 is already in use.*port=0"
        ):
            dash.show()
        dash.close()


def test_webagg_in_a_render_process_serves_the_page_from_the_child():
    import urllib.request

    from resnetlab.live import live_dashboard

    stream = MetricStream()
    session = live_dashboard(
        stream,
        backend="webagg",
        system_monitor=False,
        in_process=False,
        panels=["loss"],
        title="child run",
    )
    try:
        child = psutil.Process(session.render_process.pid)
        assert session.render_process.alive and child.pid != os.getpid()
        port = int(session.url.rsplit(":", 1)[1].strip("/"))
        listening = [
            c
            for c in child.net_connections("inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening)
        with urllib.request.urlopen(session.url, timeout=10) as page:
            assert "child run" in page.read().decode()
        stream.log(0, loss=1.0)
    finally:
        session.close()
    assert not child.is_running()  # ended and reaped


def test_webagg_page_paints_new_frames_while_training(chromium_path, fashion_mnist_dir):
    """live_dashboard(backend="webagg") (the render process) while a real model trains in
    this process: over a window of monitor samples the page paints new frames."""
    import threading

    from playwright.sync_api import sync_playwright

    from resnetlab.live import live_dashboard

    from .frame_counting import CLOCK_KEY, COUNT_FRAMES_JS, MIN_NEW_FRAMES, WINDOW_SAMPLES, train

    stream = MetricStream()
    session = live_dashboard(stream, backend="webagg", monitor_interval=1.0)
    stop, steps = threading.Event(), [0]
    trainer = threading.Thread(target=train, args=(stream, stop, steps), daemon=True)
    trainer.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                page.add_init_script(COUNT_FRAMES_JS)
                page.goto(session.url, wait_until="load")
                page.wait_for_selector("div.resnetlab-figure canvas", timeout=30_000)
                page.wait_for_function("window.__frames > 0", timeout=60_000)
                s0, n0 = stream.series_length(CLOCK_KEY), steps[0]
                painted_before = page.evaluate("window.__frames")
                # polled in the page's own event loop (a condition, not a sleep)
                while stream.series_length(CLOCK_KEY) - s0 < WINDOW_SAMPLES:
                    page.wait_for_timeout(200)
                painted = page.evaluate("window.__frames") - painted_before
            finally:
                browser.close()
    finally:
        stop.set()
        trainer.join(30)
        session.close()
    assert steps[0] > n0, "training did not run during the window"
    print("webagg page painted", painted, "frames in", WINDOW_SAMPLES, "samples")
    assert painted >= MIN_NEW_FRAMES, painted
