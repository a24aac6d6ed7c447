"""Every saved dashboard image is whole: opaque, with its titles, tick labels and axis labels.

A save lays the figure out first in a measuring pass that paints nothing; the blitting
figure used to keep that empty pass as its background and blit the lines onto it, so
``dash.save()`` after ``refresh()`` or ``start()``/``stop()``, and every
``dashboard-final.png``, was a transparent picture of lines without axes.
"""

from __future__ import annotations

import time

import pytest
from suite_support import free_port

from resnetlab.live import Dashboard, MetricStream, live_dashboard

from .image_checks import assert_whole_image, whole_image_problems


def _feed(stream: MetricStream, start: int, stop: int) -> None:
    for i in range(start, stop):
        stream.log(i, loss=2.0 / (i + 1) + 0.05 * (i % 7), accuracy=1 - 1 / (i + 2))


def _options(backend: str) -> dict:
    # Agg without a directory renders on every draw (and so blits); with one, it writes
    # snapshots (checked with the live sessions below).
    return {} if backend == "agg" else {"port": free_port()}


def test_the_check_sees_a_transparent_picture_of_lines_only(tmp_path):
    """The check itself: a figure saved with its axes off and a see-through background
    (what the broken saves looked like) fails it; the same figure whole passes."""
    stream = MetricStream()
    _feed(stream, 0, 40)
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend="agg")
    dash.refresh()
    (whole,) = dash.save(tmp_path / "whole.png")
    assert whole_image_problems(whole) == []
    for ax in dash.figures[0].axes:
        ax.set_axis_off()
        ax.set_title("")
    (lines_only,) = dash.save(tmp_path / "lines.png", transparent=True)
    problems = whole_image_problems(lines_only)
    assert any("not opaque" in p for p in problems)
    assert any("no text" in p for p in problems)


@pytest.mark.parametrize("backend", ["agg", "webagg"])
def test_saves_are_whole_after_refresh_update_start_and_stop(backend, tmp_path):
    stream = MetricStream()
    _feed(stream, 0, 30)
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend=backend, **_options(backend))
    fig = dash.figures[0]
    try:
        dash.refresh()
        (path,) = dash.save(tmp_path / "after-refresh.png")
        assert_whole_image(path)

        dash.update(30, loss=0.4, accuracy=0.7)
        (path,) = dash.save(tmp_path / "after-update.png")
        assert_whole_image(path)

        dash.start(rate_hz=20)
        blits = fig.blit_draws
        # Lines that move inside the limits are blitted: the state a save used to break.
        # Keep feeding until the background loop has blitted one.
        step = 31
        deadline = time.monotonic() + 60
        while fig.blit_draws <= blits:
            assert time.monotonic() < deadline, "the running dashboard never blitted"
            stream.log(step, loss=0.4 - step * 1e-4, accuracy=0.7)
            step += 1
            time.sleep(0.05)
        (path,) = dash.save(tmp_path / "while-running.png")
        assert_whole_image(path)
        dash.stop()
        (path,) = dash.save(tmp_path / "after-stop.png")
        assert_whole_image(path)
        # The next on-screen draw after a save still shows the whole figure.
        stream.log(step, loss=0.39, accuracy=0.7)
        dash.refresh()
        fig.canvas.draw()
        (path,) = dash.save(tmp_path / "after-redraw.png")
        assert_whole_image(path)
    finally:
        dash.close()


def test_saves_between_blitted_draws_leave_the_on_screen_picture_whole(tmp_path):
    """A save (its measuring pass clears the canvas's renderer) must not leave the live
    canvas's background empty: the buffer after the next draw holds the axes too."""
    import numpy as np

    stream = MetricStream()
    _feed(stream, 0, 30)
    dash = Dashboard(["loss"], stream=stream, backend="agg")
    dash.refresh()
    fig = dash.figures[0]
    fig.canvas.draw()
    fig.canvas.draw()  # blitted
    dash.save(tmp_path / "between.png")
    stream.log(30, loss=0.5)
    dash.refresh()
    fig.canvas.draw()
    from PIL import Image

    Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).save(tmp_path / "buffer.png")
    assert_whole_image(tmp_path / "buffer.png")


@pytest.mark.parametrize(
    ("backend", "in_process"),
    [("agg", False), ("agg", True), ("webagg", False), ("webagg", True)],
)
def test_the_final_png_of_a_live_session_is_whole(backend, in_process, tmp_path):
    stream = MetricStream()
    session = live_dashboard(
        stream,
        backend=backend,
        run_dir=tmp_path,
        system_monitor=False,
        in_process=in_process,
        rate_hz=10,
        panels=["loss", "accuracy"],
        title=f"{backend} run",
    )
    try:
        _feed(stream, 0, 60)
    finally:
        session.close()
    assert_whole_image(tmp_path / "dashboard-final.png")
    if backend == "agg":  # the driver's last snapshot, written as it stops
        assert_whole_image(tmp_path / "dashboard.png")
