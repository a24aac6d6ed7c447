"""Frames a render process makes, forwarded by the kernel to ipympl widgets: a diff goes
only to a page that shows the last forwarded frame; otherwise nothing is sent and the
next frame is asked for whole, so the page never paints a diff over the wrong picture."""

from __future__ import annotations

import base64
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from resnetlab.live import Dashboard, MetricStream
from resnetlab.live.png_frames import encode_png
from resnetlab.live.render_process import FRAMES, RenderProcess
from resnetlab.live.session import _forwarder

pytest.importorskip("ipympl")


class FullRequests:
    """Stands in for the render process's parent-to-child pipe: records what is asked."""

    def __init__(self) -> None:
        self.figures: list[int] = []
        self.ratios: list[float] = []

    def request_full(self, figure: int, pixel_ratio: float = 1.0) -> None:
        self.figures.append(figure)
        self.ratios.append(pixel_ratio)


def _frame(size: tuple[int, int], mode: str, shade: int) -> dict:
    pixels = np.full((size[1], size[0], 4), shade, dtype=np.uint8)
    png = encode_png(pixels)
    encoded = base64.b64encode(png).decode()
    return {
        "figure": 0,
        "size": list(size),
        "mode": mode,
        "png": encoded,
        "records": 7,
        "newest": 1.0,
    }


@pytest.fixture
def widget_page():
    """A dashboard's ipympl widget with a page connected (ipympl's own 'initialized'
    handling) and every binary image it sends recorded."""
    stream = MetricStream()
    stream.log(0, loss=1.0)
    dash = Dashboard(["loss"], stream=stream, backend="ipympl", display=False)
    dash.show()
    canvas = dash.driver.canvases[0]
    sent: list[tuple[str, bytes]] = []
    real_send = canvas.send

    def record(content, buffers=None):
        if buffers and json.loads(content["data"])["type"] == "binary":
            sent.append((canvas._image_mode, bytes(buffers[0])))
        return real_send(content, buffers=buffers)

    canvas.send = record
    canvas._handle_message(canvas, {"type": "initialized"}, [])
    try:
        yield dash, canvas, sent
    finally:
        dash.close()


def test_a_diff_reaches_only_a_page_that_holds_the_last_forwarded_frame(widget_page):
    dash, canvas, sent = widget_page
    proc = FullRequests()
    forward = _forwarder(dash, proc)
    size = tuple(canvas.get_width_height(physical=True))
    shown_before = len(dash.frames)

    forward(_frame(size, "diff", 10))  # the page holds the kernel's picture, not a frame
    assert sent == [] and proc.figures == [0] and len(dash.frames) == shown_before

    forward(_frame(size, "full", 20))
    forward(_frame(size, "diff", 30))
    assert [mode for mode, _ in sent] == ["full", "diff"]
    assert sent[1][1] == base64.b64decode(_frame(size, "diff", 30)["png"])
    assert proc.figures == [0] and len(dash.frames) == shown_before + 2
    assert dash.frames[-1].records == 7

    canvas._handle_message(canvas, {"type": "refresh"}, [])  # the page reloaded
    forward(_frame(size, "diff", 40))
    assert len(sent) == 2 and proc.figures == [0, 0]

    forward(_frame(size, "full", 50))
    dash.refresh()
    dash.draw()  # the kernel paints its own picture: a diff from the child must wait
    kernel_images = len(sent) - 3
    assert kernel_images >= 1
    forward(_frame(size, "diff", 60))
    assert len(sent) == 3 + kernel_images and proc.figures == [0, 0, 0]


def test_a_hidpi_page_gets_the_kernels_picture_then_frames_at_its_own_pixel_size(widget_page):
    dash, canvas, sent = widget_page
    canvas._handle_message(canvas, {"type": "set_device_pixel_ratio", "device_pixel_ratio": 2}, [])
    width, height = canvas.get_width_height(physical=True)
    assert (width, height) == tuple(2 * v for v in canvas.get_width_height())
    outcomes: list[str] = []
    show_frame = dash.driver.show_frame

    def recorded(*args):
        outcomes.append(show_frame(*args))
        return outcomes[-1]

    dash.driver.show_frame = recorded
    shown = threading.Condition()
    proc = RenderProcess(dash.stream, FRAMES, ["loss"], rate_hz=5.0)
    forward = _forwarder(dash, proc)

    def on_frame(msg: dict) -> None:
        forward(msg)
        with shown:
            shown.notify_all()

    proc.on_frame = on_frame
    proc.start()
    try:
        with shown:  # the child's frames at 1x do not fit; once told, they do
            for step in range(1, 40):
                before = len(outcomes)
                dash.stream.log(step, loss=1.0 / (step + 1))
                assert shown.wait_for(lambda n=before: len(outcomes) > n, timeout=120), outcomes
                if outcomes.count("shown") >= 3:
                    break
    finally:
        proc.close()
    assert outcomes.count("shown") >= 3, outcomes
    assert outcomes[0] == "unfit" and "unfit" not in outcomes[outcomes.index("shown") :]
    for _, png in sent:  # the kernel's picture and the child's frames: the page's pixels
        assert Image.open(io.BytesIO(png)).size == (width, height)
    assert len(sent) >= 4
