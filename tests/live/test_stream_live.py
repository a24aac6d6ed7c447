"""MetricStream extensions: decimation, feeding from another process, mirroring."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

from resnetlab.metrics.decimate import minmax_decimate
from resnetlab.metrics.stream import MetricStream


def test_decimation_keeps_extremes_and_ends():
    rng = np.random.default_rng(0)
    x = np.arange(1_000_000, dtype=float)
    y = rng.normal(size=x.size)
    y[123_457] = 50.0  # a spike a mean-based downsampler would flatten
    y[777_777] = -40.0
    y[500_000] = np.nan  # a NaN step must not hide its bucket's extremes
    xs, ys = minmax_decimate(x, y, 500)
    assert xs.size <= 1004
    assert np.nanmax(ys) == 50.0 and np.nanmin(ys) == -40.0
    assert xs[0] == 0 and xs[-1] == x[-1]
    assert np.all(np.diff(xs) > 0)  # still a line in x order
    # every bucket's extremes survive: compare per-bucket max with the original
    size = x.size // 500
    for b in (0, 123_457 // size, 499):
        chunk = y[b * size : (b + 1) * size]
        inside = ys[(xs >= b * size) & (xs < (b + 1) * size)]
        assert np.nanmax(inside) == np.nanmax(chunk)


def test_decimation_leaves_short_series_alone():
    x = np.arange(10.0)
    xs, ys = minmax_decimate(x, x**2, 10)
    np.testing.assert_array_equal(ys, x**2)
    with pytest.raises(ValueError):
        minmax_decimate(x, x, 0)


def test_series_window_and_max_points():
    s = MetricStream()
    for i in range(5000):
        s.log(i, loss=float(i % 100))
    xs, ys = s.series("loss", since=4000)
    assert xs[0] == 4000 and xs.size == 1000
    xs, ys = s.series("loss", max_points=200)
    assert xs.size <= 200 and ys.max() == 99 and ys.min() == 0
    assert s.series_length("loss") == 5000 and s.series_length("nope") == 0


def _worker(feed, n):
    for i in range(n):
        feed.log(i, loss=1.0 / (i + 1), worker_pid=float(multiprocessing.current_process().pid))
    feed.close()


def test_queue_feed_from_a_spawned_process():
    s = MetricStream()
    ctx = multiprocessing.get_context("spawn")
    feed = s.queue_feed(ctx)
    proc = ctx.Process(target=_worker, args=(feed, 300))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    deadline = time.time() + 10
    while s.series_length("loss") < 300 and time.time() < deadline:
        time.sleep(0.02)
    s.close_feeds()
    steps, loss = s.series("loss")
    assert steps.tolist() == list(range(300))
    assert loss[9] == pytest.approx(0.1)
    assert s.last("worker_pid") == proc.pid  # it really came from the other process


def test_mirror_batches_and_keeps_records_when_the_sink_fails():
    s = MetricStream()
    got: list = []
    fail = {"n": 1}

    def sink(records):
        if fail["n"]:
            fail["n"] -= 1
            raise OSError("database is locked")
        got.extend(records)

    m = s.mirror(sink, interval=0.05)
    for i in range(50):
        s.log(i, loss=float(i))
    # the first batch fails, the mirror keeps it and a later batch writes it
    deadline = time.monotonic() + 30
    while len(got) < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fail["n"] == 0 and isinstance(m.error, OSError)
    for i in range(50, 60):
        s.log(i, loss=float(i))
    m.stop()
    assert [r.step for r in got] == list(range(60))  # nothing lost by the failed write


def test_mirror_to_a_real_run_store_and_compare_it_on_a_dashboard(tmp_path):
    from resnetlab.live import Dashboard
    from resnetlab.store import RunStore

    db = tmp_path / "runs.db"
    s = MetricStream()
    with RunStore(db) as store:
        run_id = store.create_run("baseline")
        m = s.mirror_to(store, run_id, interval=0.05)
        for i in range(100):
            s.log(i, loss=3.0 - i / 50)
        m.stop()
        store.finish_run(run_id)
    with RunStore(db) as store:  # a fresh connection reads what was written
        steps, values = store.series(run_id, "loss")
    assert steps == list(range(100)) and values[50] == 2.0

    live = MetricStream()
    dash = Dashboard(["loss"], stream=live, backend="agg")
    dash.compare_run("baseline", store=db)
    live.log(0, loss=1.0)
    dash.refresh()
    labels = {ln.get_label(): ln for ln in dash.figures[0].axes[0].get_lines()}
    old = labels[f"loss (run {run_id}: baseline)"]
    assert list(old.get_ydata()[:2]) == [3.0, 3.0 - 1 / 50]
