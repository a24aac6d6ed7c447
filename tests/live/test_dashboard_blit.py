"""Redraws that only move lines reuse the cached background (blitting) and still render
the complete figure: the same pixels a full draw gives, in PNG snapshots and SVG too."""

from __future__ import annotations

import numpy as np

from resnetlab.live import Dashboard, MetricStream


def _feed(s: MetricStream, step: int, t0: float) -> None:
    s.append(
        step,
        {
            "loss": float(np.exp(-step / 300)),
            "accuracy": 1 - float(np.exp(-step / 300)),
            **{f"grad_norm/layer{i}": 0.1 * (i + 1) for i in range(4)},
        },
        time=t0 + step / 10,
    )
    s.append(
        step,
        {"sys/cpu_percent": 40.0 + (step % 7), "sys/proc_cpu_percent": 20.0},
        time=t0 + step / 10,
    )


def _pixels(fig) -> np.ndarray:
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def test_line_only_updates_blit_and_match_a_full_draw(tmp_path):
    s = MetricStream()
    t0 = 1_000_000.0
    for step in range(0, 1000, 10):
        _feed(s, step, t0)
    dash = Dashboard(["loss", "accuracy", "cpu", "grad_norms"], stream=s, backend="agg")
    dash.refresh()
    dash.draw()
    fig = dash.figures[0]
    full_before, blit_before = fig.full_draws, fig.blit_draws
    for step in range(1000, 1050, 10):  # inside the headroom: limits stay, lines move
        _feed(s, step, t0)
        assert dash.refresh()
        dash.draw()
    # at most one full draw (a limit may be reached once), the rest only move lines
    assert fig.blit_draws - blit_before >= 4 and fig.full_draws - full_before <= 1
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "loss")
    assert line.get_xdata()[-1] == 1040
    blitted = _pixels(fig)
    fig.blit.invalidate()  # force a full draw of the same state
    fig.canvas.draw()
    full = _pixels(fig)
    assert blitted.shape == full.shape
    differ = np.any(blitted != full, axis=-1).mean()
    assert differ < 0.002, f"{differ:.4%} of pixels differ between a blit and a full draw"
    # An SVG (a non-Agg renderer) still holds every line.
    (svg,) = dash.save(tmp_path / "dash.svg")
    assert svg.read_text().count("<path") > 0
    assert fig.axes[0].get_lines()[0].get_animated() is False


def test_data_leaving_the_limits_forces_a_full_draw_with_new_limits():
    s = MetricStream()
    for step in range(100):
        s.log(step, loss=1.0 + step / 100)
    dash = Dashboard(["loss"], stream=s, backend="agg")
    dash.refresh()
    dash.draw()
    ax = dash.figures[0].axes[0]
    lo, hi = ax.get_ylim()
    s.log(100, loss=50.0)  # far above the view
    dash.refresh()
    dash.draw()
    assert ax.get_ylim()[1] >= 50.0 > hi
    assert ax.get_xlim()[1] >= 100


def test_a_panel_whose_limits_move_is_redrawn_alone_and_matches_a_full_draw():
    s = MetricStream()
    for step in range(100):
        s.log(step, loss=1.0 + step / 100, accuracy=0.5)
    dash = Dashboard(["loss", "accuracy"], stream=s, backend="agg")
    dash.refresh()
    dash.draw()
    dash.draw()  # the layout-free draw after the first: the background is kept
    fig = dash.figures[0]
    full_before, axes_before = fig.full_draws, fig.axes_draws
    acc_limits = fig.axes[1].get_ylim()
    s.log(100, loss=50.0, accuracy=0.5)  # only the loss panel's y limits move
    dash.refresh()
    dash.draw()
    assert fig.axes[0].get_ylim()[1] >= 50.0
    assert fig.axes[1].get_ylim() == acc_limits
    assert fig.axes_draws == axes_before + 1 and fig.full_draws == full_before
    partial = _pixels(fig)
    fig.blit.invalidate()
    fig.canvas.draw()
    differ = np.any(partial != _pixels(fig), axis=-1).mean()
    assert differ < 0.002, f"{differ:.4%} of pixels differ between a panel redraw and a full draw"


def test_every_render_is_a_frame_with_the_records_it_shows():
    s = MetricStream()
    dash = Dashboard(["loss"], stream=s, backend="agg")
    for step in range(3):
        s.log(step, loss=1.0 / (step + 1))
        dash.refresh()
        dash.draw()
    frames = [f for f in dash.frames if f.figure == 0]
    assert [f.records for f in frames] == [1, 2, 3]
    records, _ = s.read_since(0)
    assert [f.newest for f in frames] == [r.time for r in records]
    assert all(f.produced >= f.newest for f in frames)
