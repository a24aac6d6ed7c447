"""Stored runs reach a dashboard as series (store/series.py): read once, drawn dotted."""

from __future__ import annotations

import numpy as np
import pytest

from resnetlab.errors import StoreError
from resnetlab.live import Dashboard, MetricStream
from resnetlab.store import RunStore
from resnetlab.store.series import RunSeries, load_run_series


@pytest.fixture
def runs_db(tmp_path):
    db = tmp_path / "runs.db"
    with RunStore(db) as store:
        run_id = store.create_run("baseline")
        store.log_metrics(run_id, 0, {"loss": 3.0, "accuracy": 0.1})
        store.log_metrics(run_id, 5, {"loss": 2.0})
        store.finish_run(run_id)
    return db, run_id


def test_a_stored_run_reads_as_series(runs_db):
    db, run_id = runs_db
    run = load_run_series("baseline", store=db)
    assert isinstance(run, RunSeries) and run.label == f"run {run_id}: baseline"
    assert sorted(run.keys()) == ["accuracy", "loss"]
    xs, ys = run.series("loss")
    np.testing.assert_array_equal(xs, [0.0, 5.0])
    np.testing.assert_array_equal(ys, [3.0, 2.0])
    assert run.series("lr")[0].size == 0
    with RunStore(db) as store:  # an open store is read, not closed
        assert load_run_series(run_id, store=store).name == "baseline"
        assert store.get_run(run_id).name == "baseline"


def test_a_missing_store_is_an_error_and_nothing_is_created(tmp_path):
    with pytest.raises(StoreError, match=r"no run store at .*nope\.db"):
        load_run_series(1, store=tmp_path / "nope.db")
    assert list(tmp_path.iterdir()) == []


def test_compare_and_compare_run_draw_the_same_dotted_line(runs_db):
    db, run_id = runs_db
    dash = Dashboard(["loss"], stream=MetricStream(), backend="agg")
    dash.compare_run(run_id, store=db)
    dash.compare("again", load_run_series(run_id, store=db))
    dash.stream.log(0, loss=1.0)
    dash.refresh()
    lines = {ln.get_label(): ln for ln in dash.figures[0].axes[0].get_lines()}
    stored, again = lines[f"loss (run {run_id}: baseline)"], lines["loss (again)"]
    assert stored.get_linestyle() == ":" and list(stored.get_ydata()) == [3.0, 2.0]
    assert list(again.get_ydata()) == [3.0, 2.0]
    # replacing a compared source redraws it from the new one
    dash.compare("again", {"loss": ([0, 1], [9.0, 8.0])})
    lines = {ln.get_label(): ln for ln in dash.figures[0].axes[0].get_lines()}
    assert [9.0, 8.0] in [list(ln.get_ydata()) for ln in lines.values()]
