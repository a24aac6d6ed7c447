"""Dashboard.set_title: a new suptitle reaches the next draw (not hidden behind the blitted
background) and the next refresh asks for that draw."""

from __future__ import annotations

import numpy as np

from resnetlab.live import Dashboard, MetricStream


def test_set_title_redraws_the_figure_in_full():
    stream = MetricStream()
    for i in range(20):
        stream.log(i, loss=1.0 / (i + 1))
    dash = Dashboard(["loss"], stream=stream, backend="agg", title="run 1: base")
    dash.refresh()
    fig = dash.figures[0]
    fig.canvas.draw()
    fig.canvas.draw()  # the second one blits
    assert fig.blit_draws >= 1
    before = np.asarray(fig.canvas.buffer_rgba()).copy()
    assert not dash.refresh()  # nothing new
    dash.set_title("run 1: base (completed)")
    assert fig.get_suptitle() == "run 1: base (completed)"
    assert dash.refresh()  # the loop draws again although no data came in
    full = fig.full_draws
    fig.canvas.draw()
    assert fig.full_draws == full + 1
    after = np.asarray(fig.canvas.buffer_rgba())
    top = slice(0, after.shape[0] // 8)  # the suptitle's band changed
    assert np.any(after[top] != before[top])


def test_set_title_on_several_figures_numbers_them():
    dash = Dashboard([["loss"], ["accuracy"]], stream=MetricStream(), backend="agg", title="a")
    dash.set_title("b")
    assert [f.get_suptitle() for f in dash.figures] == ["b (1)", "b (2)"]
