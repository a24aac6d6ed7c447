"""Live frames sent as diffs: a page that paints each diff over what it shows (as ipympl's
widget does) shows exactly the dashboard's picture, for a fraction of the bytes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from resnetlab.live import Dashboard, MetricStream
from resnetlab.live.png_frames import FrameDiffer


def paint(page: np.ndarray | None, mode: str, png: bytes) -> np.ndarray:
    """What ipympl's page does with an image: 'full' clears the canvas first, 'diff' is
    drawn over it (its transparent pixels leave the old ones)."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    if mode == "full" or page is None:
        return image.copy()
    out = page.copy()
    opaque = image[..., 3] == 255
    out[opaque] = image[opaque]
    return out


def _feed(stream: MetricStream, step: int) -> None:
    stream.log(step, loss=float(np.exp(-step / 50)), accuracy=1 - float(np.exp(-step / 40)))


def test_diffs_painted_over_the_page_show_the_dashboard_exactly():
    stream = MetricStream()
    for step in range(20):
        _feed(stream, step)
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend="agg")
    frames = FrameDiffer(full_every=5)
    page, sizes = None, {"full": [], "diff": []}
    try:
        for step in range(20, 60, 3):
            _feed(stream, step)
            dash.refresh()
            dash.draw()
            picture = np.asarray(dash.figures[0].canvas.buffer_rgba()).copy()
            mode, png = frames.encode(0, picture)
            sizes[mode].append(len(png))
            page = paint(page, mode, png)
            assert np.array_equal(page, picture), f"the page differs after a {mode} frame"
        assert len(sizes["full"]) >= 2  # the first, then one every 5 frames at least
        assert np.median(sizes["diff"]) < 0.5 * np.median(sizes["full"])
        frames.reset(0)  # the page lost its picture: the next frame is whole
        _feed(stream, 61)
        dash.refresh()
        dash.draw()
        mode, _ = frames.encode(0, np.asarray(dash.figures[0].canvas.buffer_rgba()))
        assert mode == "full"
    finally:
        dash.close()


def test_a_new_size_or_transparency_is_sent_whole():
    frames = FrameDiffer()
    opaque = np.full((4, 6, 4), 255, np.uint8)
    assert frames.encode(0, opaque)[0] == "full"
    assert frames.encode(0, opaque)[0] == "diff"
    assert frames.encode(1, opaque)[0] == "full"  # each figure has its own last frame
    assert frames.encode(0, np.full((5, 6, 4), 255, np.uint8))[0] == "full"
    see_through = np.full((5, 6, 4), 255, np.uint8)
    see_through[0, 0, 3] = 0
    assert frames.encode(0, see_through)[0] == "full"
