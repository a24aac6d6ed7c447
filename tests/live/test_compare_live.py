"""Compared runs: a live source (``job.stream`` of a job still training) keeps growing on
the dashboard, and every compared run has a colour of its own."""

from __future__ import annotations

import time

import numpy as np
import pytest

from resnetlab.jobs import JobRegistry
from resnetlab.jobs.training import start_training
from resnetlab.live import Dashboard, MetricStream

from .image_checks import assert_whole_image


def tiny_train(*, epochs: int, batch_delay: float, seed: int, callbacks=(), stream=None) -> dict:
    """A real Trainer on a tiny synthetic task, each batch slowed by ``batch_delay`` s."""
    import torch
    from torch import nn

    from resnetlab.training.config import TrainConfig
    from resnetlab.training.trainer import Trainer

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 1, 4, 4, generator=gen)
    y = (x.mean((1, 2, 3)) > 0).long()
    loader = [(x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]) for i in range(12)]

    class Slow:
        def on_batch_end(self, trainer, logs):
            time.sleep(batch_delay)

    config = TrainConfig(
        epochs=epochs,
        batch_size=8,
        device="cpu",
        log_every=1,
        lr=0.05,
        schedule="constant",
        channels_last=False,
        val_size=0,
    )
    trainer = Trainer(
        nn.Sequential(nn.Flatten(), nn.Linear(16, 2)),
        loader,
        config=config,
        stream=stream,
        callbacks=[Slow(), *callbacks],  # the job's control callbacks (pause, stop)
    )
    trainer.fit()
    return {"status": trainer.status, "step": trainer.step}


def _lines(dash: Dashboard, panel: int = 0) -> dict:
    return {ln.get_label(): ln for ln in dash.figures[0].axes[panel].get_lines()}


def _last_step(line) -> float:
    xs = line.get_xdata()
    return float(xs[-1]) if len(xs) else -1.0


def _wait_refreshing(dash: Dashboard, condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        dash.refresh()
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.timeout(180)
def test_a_compared_background_job_keeps_growing_beside_the_live_one(tmp_path):
    pytest.importorskip("torch", reason="torch not installed")
    registry = JobRegistry(tmp_path / "logs", stop_timeout=2.0)
    jobs = [
        start_training(
            kind="thread",
            name=name,
            train_fn=tiny_train,
            registry=registry,
            epochs=500,
            batch_delay=0.02,
            seed=seed,
        )
        for seed, name in enumerate(("run-a", "run-b"))
    ]
    a, b = jobs
    try:
        # Compared at once, before job b has logged anything: the frozen copy of an empty
        # (or one-point) stream used to leave a legend entry without a line.
        dash = Dashboard(["loss"], stream=a.stream, backend="agg")
        dash.compare("run-b", b.stream)
        _wait_refreshing(
            dash,
            lambda: (
                {"loss", "loss (run-b)"} <= set(_lines(dash))
                and all(len(_lines(dash)[k].get_xdata()) >= 3 for k in ("loss", "loss (run-b)"))
            ),
            "both jobs' lines to have data",
        )
        main, other = _lines(dash)["loss"], _lines(dash)["loss (run-b)"]
        first = (_last_step(main), _last_step(other))
        _wait_refreshing(
            dash,
            lambda: _last_step(main) > first[0] and _last_step(other) > first[1],
            "both lines to grow",
        )
        # The compared line follows job b's stream, not a copy taken at compare().
        steps, losses = b.stream.series("loss")
        assert _last_step(other) <= steps[-1] and len(other.get_xdata()) >= 4
        assert np.isfinite(other.get_ydata()).all()
        # Its own colour, dotted; the live run's line is solid in another colour.
        assert other.get_color() != main.get_color()
        assert other.get_linestyle() == ":" and main.get_linestyle() == "-"
        # Every legend entry has a line with data behind it.
        legend = [t.get_text() for t in dash.figures[0].axes[0].get_legend().get_texts()]
        assert set(legend) == {"loss", "loss (run-b)"}
        assert all(len(_lines(dash)[label].get_xdata()) for label in legend)
        dash.draw()
        (png,) = dash.save(tmp_path / "compared.png")
        assert_whole_image(png)
    finally:
        for job in jobs:
            job.stop(save=False)
        for job in jobs:
            job.wait(60)
        registry.stop_all(timeout=1.0)


def test_each_compared_run_has_its_own_colour_in_every_panel():
    live = MetricStream()
    runs = {name: MetricStream(name=name) for name in ("a", "b")}
    for offset, stream in enumerate(runs.values()):
        for i in range(10):
            stream.log(i, loss=2.0 - i * 0.1 + offset, accuracy=0.5 + offset * 0.1)
        stream.log(9, val_loss=1.5 + offset, val_accuracy=0.4)
    dash = Dashboard(["loss", "accuracy"], stream=live, backend="agg", compare=runs)
    live.log(0, loss=2.5, accuracy=0.3)
    live.log(0, val_loss=2.4, val_accuracy=0.3)
    dash.refresh()
    loss, acc = _lines(dash, 0), _lines(dash, 1)
    for name in runs:
        # one colour per run, the same in both panels
        assert loss[f"loss ({name})"].get_color() == acc[f"accuracy ({name})"].get_color()
        # training dotted, validation dash-dot with markers
        assert loss[f"loss ({name})"].get_linestyle() == ":"
        val = loss[f"val_loss ({name})"]
        assert val.get_linestyle() == "-." and val.get_marker() == "o"
        assert val.get_color() == loss[f"loss ({name})"].get_color()
    run_colours = {loss[f"loss ({name})"].get_color() for name in runs}
    live_colours = {loss["loss"].get_color(), acc["accuracy"].get_color()}
    assert len(run_colours) == 2 and not run_colours & live_colours
    # the live run: solid training line, dashed validation line
    assert loss["loss"].get_linestyle() == "-" and loss["val_loss"].get_linestyle() == "--"
    # a compared stream keeps growing; a replaced source is drawn from the new one
    runs["a"].log(20, loss=0.1)
    assert dash.refresh()
    assert _last_step(_lines(dash)["loss (a)"]) == 20
    dash.compare("a", {"loss": ([0, 1], [9.0, 8.0])})
    dash.refresh()
    assert list(_lines(dash)["loss (a)"].get_ydata()) == [9.0, 8.0]
    assert sum(label == "loss (a)" for label in _lines(dash)) == 1


def test_compared_runs_show_without_live_data():
    """Two runs compared on a dashboard whose own stream is still empty: both are drawn."""
    runs = {name: MetricStream(name=name) for name in ("a", "b")}
    for stream in runs.values():
        for i in range(5):
            stream.log(i, loss=1.0 / (i + 1))
    dash = Dashboard(["loss"], stream=MetricStream(), backend="agg", compare=runs)
    assert dash.refresh()
    lines = _lines(dash)
    assert {"loss (a)", "loss (b)"} <= set(lines)
    assert all(len(lines[f"loss ({n})"].get_xdata()) == 5 for n in runs)
    lo, hi = dash.figures[0].axes[0].get_xlim()
    assert lo <= 0 and hi >= 4  # the limits follow the compared lines
