"""A render process in ``frames`` mode sends back every frame it renders, as a PNG with
the records it shows (what the ipympl widget of a kernel is fed while training): whole
first, then as diffs a page paints over what it shows, whole again when asked."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
from PIL import Image

from resnetlab.live import MetricStream
from resnetlab.live.render_process import FRAMES, RenderProcess

from .test_png_frames import paint


def test_frames_come_back_as_pngs_of_the_dashboard_with_what_they_show():
    stream = MetricStream()
    got: list[dict] = []
    arrived = threading.Condition()

    def collect(msg: dict) -> None:
        with arrived:
            got.append(msg)
            arrived.notify_all()

    proc = RenderProcess(stream, FRAMES, ["loss"], rate_hz=5.0, on_frame=collect).start()
    try:
        for step in range(5):
            stream.log(step, loss=1.0 / (step + 1))
        with arrived:  # a frame that shows all five records
            assert arrived.wait_for(lambda: got and got[-1]["records"] >= 5, timeout=120)
        stream.log(5, loss=0.1)
        with arrived:  # and the picture follows a new record
            assert arrived.wait_for(lambda: got[-1]["records"] >= 6, timeout=120)
        asked = len(got)
        proc.request_full(0)  # e.g. the page reloaded: the next frame must be whole
        stream.log(6, loss=0.05)
        with arrived:
            assert arrived.wait_for(lambda: got[-1]["records"] >= 7, timeout=120)
    finally:
        proc.close()
    modes = [m["mode"] for m in got]
    assert modes[0] == "full" and "diff" in modes[:asked], modes
    assert "full" in modes[asked:], modes
    page = None
    for msg in got:
        page = paint(page, msg["mode"], base64.b64decode(msg["png"]))
    last = got[-1]
    first = np.asarray(Image.open(io.BytesIO(base64.b64decode(got[0]["png"]))))
    assert page.shape[1::-1] == first.shape[1::-1] == tuple(last["size"])  # (width, height)
    assert len(np.unique(page.reshape(-1, page.shape[-1]), axis=0)) > 20  # a real plot
    assert not np.array_equal(page, paint(None, "full", base64.b64decode(got[0]["png"])))
    records, _ = stream.read_since(0)
    assert last["newest"] == records[last["records"] - 1].time
    assert [m["records"] for m in got] == sorted(m["records"] for m in got)
