"""``resnetlab watch`` on a real run: the CPU/RAM panels fill from the system samples the
run stored, and when the run ends the figures' title and a printed line say so."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from live.image_checks import assert_whole_image

from resnetlab.live.watch import RunFollower, open_watch
from resnetlab.metrics.stream import MetricStream
from resnetlab.store import RunStore

TRAIN = """
import resnetlab

resnetlab.train(
    "resnetv2-micro",
    data="fashion-mnist",
    data_dir={data!r},
    epochs=2,
    batch_size=64,
    train_limit=1024,
    test_limit=128,
    val_size=256,
    device="cpu",
    store={store!r},
    live="agg",
    progress=False,
)
"""


def test_the_follower_reports_the_end_of_the_run_once(tmp_path):
    writer = RunStore(tmp_path / "runs.db")
    run_id = writer.create_run("short")
    writer.log_metrics(run_id, 0, {"loss": 1.0})
    writer.flush()
    seen: list[str] = []
    reader = RunStore(tmp_path / "runs.db")
    follower = RunFollower(reader, run_id, MetricStream(), on_finished=seen.append)
    follower.poll()
    assert seen == [] and not follower.finished  # still running
    writer.log_metrics(run_id, 1, {"loss": 0.5})
    writer.finish_run(run_id, "completed")
    writer.flush()
    follower.poll()
    assert seen == ["completed"] and follower.finished
    follower.poll()
    assert seen == ["completed"]  # once
    assert follower.stream.series("loss")[0].tolist() == [0, 1]
    reader.close()
    writer.close()


def _wait(condition, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _axes(dash, title: str):
    return next(ax for fig in dash.figures for ax in fig.axes if ax.get_title() == title)


@pytest.mark.timeout(400)
def test_watch_a_real_run_shows_its_system_panels_and_its_end(fashion_mnist_dir, tmp_path, capsys):
    db = tmp_path / "runs.db"
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(TRAIN.format(data=str(fashion_mnist_dir), store=str(db))))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH")) if p)
    trainer = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watch = None
    try:

        def run_exists() -> bool:
            assert trainer.poll() in (None, 0), trainer.stdout.read()[-3000:]
            if not db.exists():
                return False
            with RunStore(db) as store:
                return bool(store.list_runs())

        _wait(run_exists, "the training run to be created", 240)
        watch = open_watch(1, runs_db=db, backend="webagg", poll_interval=0.2, rate_hz=4)
        dash = watch.dashboard
        _wait(lambda: watch.follower.finished, "the run to finish", 300)
        assert watch.follower.status == "completed"
        _wait(lambda: dash.figures[0].get_suptitle().endswith("(finished: completed)"), "title", 10)
        assert "run 1 has finished (completed)" in capsys.readouterr().out
        dash.refresh()
        # The system samples of the training process came with the run: the panels fill.
        assert {"sys/cpu_percent", "sys/ram_used_gb"} <= set(watch.stream.keys())
        for title in ("CPU %", "RAM (GiB)"):
            lines = [ln for ln in _axes(dash, title).get_lines() if len(ln.get_xdata())]
            assert lines, f"the {title} panel has no data"
        (png,) = dash.save(tmp_path / "watched.png")
        assert_whole_image(png)
    finally:
        if watch is not None:
            watch.close()
        if trainer.poll() is None:
            trainer.kill()
        trainer.wait(30)
