"""``resnetlab watch RUN``: following a run that another process writes to the run store."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from desktop_helpers import colours, gui_env, skip_if_toolkit_failed

from resnetlab.errors import StoreError
from resnetlab.live.watch import RunFollower, watch_run
from resnetlab.metrics.stream import MetricStream
from resnetlab.store import RunStore


def write_steps(store: RunStore, run_id: int, start: int, stop: int) -> None:
    for step in range(start, stop):
        store.log_metrics(
            run_id, step, {"loss": 2.0 / (1 + step), "accuracy": step / stop}, epoch=step // 10
        )
        if step % 5 == 4:
            store.log_metrics(
                run_id,
                step,
                {"val_loss": 2.5 / (1 + step)},
                epoch=step // 10,
                time_s=time.time() + 0.001,
            )
    store.flush()


def test_follower_copies_new_rows_into_the_stream(tmp_path):
    from resnetlab.live.dashboard import Dashboard

    writer = RunStore(tmp_path / "runs.db")
    run_id = writer.create_run("fm-small")
    write_steps(writer, run_id, 0, 20)
    reader = RunStore(tmp_path / "runs.db")  # as another process would open it
    stream = MetricStream()
    follower = RunFollower(reader, run_id, stream)
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend="agg")
    assert follower.poll() == 20 * 2 + 4
    assert dash.refresh() is True
    assert stream.series("loss")[0].tolist() == list(range(20))
    assert stream.series("val_loss")[0].tolist() == [4, 9, 14, 19]
    assert len(stream) == 24  # one record per log_metrics call, as the trainer appended
    assert follower.poll() == 0 and dash.refresh() is False
    write_steps(writer, run_id, 20, 25)
    assert follower.poll() == 5 * 2 + 1
    assert stream.series("loss")[0][-1] == 24 and dash.refresh() is True
    assert follower.status == "running"


def test_watch_names_what_is_missing(tmp_path):
    with pytest.raises(StoreError, match="--runs-db"):
        watch_run("1", runs_db=tmp_path / "nope.db")
    RunStore(tmp_path / "runs.db").close()
    with pytest.raises(StoreError, match="no run 'ghost'"):
        watch_run("ghost", runs_db=tmp_path / "runs.db")


def test_watch_cli_follows_a_live_run_in_a_window(xvfb_display, tmp_path):
    store = RunStore(tmp_path / "runs.db")
    run_id = store.create_run("live-run")
    write_steps(store, run_id, 0, 10)
    done = threading.Event()

    def trainer():  # the "other process": keeps writing while watch runs
        step = 10
        while not done.is_set() and step < 400:
            write_steps(store, run_id, step, step + 5)
            step += 5
            time.sleep(0.1)

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resnetlab",
            "watch",
            "live-run",
            "--backend",
            "tk",
            "--runs-db",
            str(tmp_path / "runs.db"),
            "--poll",
            "0.2",
            "--rate",
            "4",
            "--panels",
            "loss",
            "accuracy",
            "--exit-after",
            "4",
            "--grab",
            str(tmp_path / "w.png"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=gui_env(xvfb_display),
    )
    thread = threading.Thread(target=trainer, daemon=True)
    thread.start()
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        done.set()
        thread.join()
        if proc.poll() is None:
            proc.kill()
    skip_if_toolkit_failed(None, err)
    if "TkAgg is not available" in err or "cannot open a TkAgg window" in err:
        pytest.skip(err.strip().splitlines()[-1])
    assert proc.returncode == 0, err[-3000:]
    assert f"watching run {run_id} (live-run, running)" in out
    seen = int(out.strip().splitlines()[-1].split(";")[1].split()[0])
    assert seen > 12  # more than the 10 + 2 records stored before watch started
    assert colours(tmp_path / "w.png") > 20
