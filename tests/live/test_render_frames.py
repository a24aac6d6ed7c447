"""A render process in ``frames`` mode sends back every frame it renders, as a PNG with
the records it shows (what the ipympl widget of a kernel is fed while training)."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
from PIL import Image

from resnetlab.live import MetricStream
from resnetlab.live.render_process import FRAMES, RenderProcess


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
    finally:
        proc.close()
    last = got[-1]
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(last["png"]))))
    assert image.shape[1::-1] == tuple(last["size"])  # (width, height) as sent
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20  # a real plot
    records, _ = stream.read_since(0)
    assert last["newest"] == records[last["records"] - 1].time
    assert [m["records"] for m in got] == sorted(m["records"] for m in got)
