"""Runs as data: the DataFrames hold what ``resnetlab show`` / ``export --csv`` print, and
the TensorBoard event files (export and live callback) hold every scalar of the store,
read back with TensorBoard's own ``EventAccumulator``."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest

import resnetlab
from resnetlab.cli import main
from resnetlab.errors import ConfigError, StoreError
from resnetlab.store import RunStore
from resnetlab.store.frames import flatten_config

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


@pytest.fixture(scope="module")
def store_runs(trained_run):
    """The trained run plus a hand-made one with awkward values: (db, [run ids])."""
    result, db, _ = trained_run
    with RunStore(db) as store:
        run = store.create_run(
            "hand made",
            config={"lr": 0.05, "milestones": [1, 2], "extra": {"tag": "x", "deep": {"a": 1}}},
            model="plain-20",
            dataset="mnist",
        )
        store.log_metrics(run, 0, {"loss": 1.0}, time_s=1000.0)
        store.log_metrics(run, 1, {"loss": float("nan"), "acc": 0.5}, epoch=0, time_s=1001.25)
        store.log_metrics(run, 1, {"loss": 0.75}, time_s=1001.5)  # same step: last one wins
        store.log_metrics(run, 3, {"acc": 0.25}, epoch=1, time_s=1003.0)
        store.finish_run(run, "stopped", final_metrics={"acc": 0.25, "bad": float("inf")})
    return db, [result.run_id, run]


def _show(db, run, capsys) -> str:
    assert main(["show", str(run), "--runs-db", str(db)]) == 0
    return capsys.readouterr().out


def _section(text: str, title: str) -> dict[str, str]:
    """``{key: printed value}`` of an indented section of ``resnetlab show``."""
    lines = text.split(f"\n{title}\n", 1)[1].split("\n\n")[0].splitlines()
    return dict(line.strip().split(None, 1) for line in lines if line.strip())


def test_dataframe_rows_are_what_show_prints(store_runs, capsys):
    db, ids = store_runs
    store = RunStore(db)
    frame = store.dataframe()
    assert list(frame["id"]) == sorted(ids, reverse=True)  # newest first, as `runs`
    for run in ids:
        row = frame.set_index("id").loc[run]
        text = _show(db, run, capsys)
        head = re.match(r"run (\d+)  (.*)  \[(\w+)\]\nmodel    (\S+)    data (\S+)", text)
        assert head.groups() == (str(run), row["name"], row["status"], row["model"], row["data"])
        for key, printed in _section(text, "final metrics").items():
            value = row[key]
            assert printed == "-" if math.isnan(value) else float(printed) == round(value, 4)
        config = flatten_config({k: json.loads(v) for k, v in _section(text, "config").items()})
        # pandas keeps a missing value (None) as NaN in a column of numbers
        assert all(pd.isna(row[k]) for k, v in config.items() if v is None)
        assert {k: row[k] for k, v in config.items() if v is not None} == {
            k: v for k, v in config.items() if v is not None
        }
        others = [c for c in frame.columns if c.startswith("config.") and c not in config]
        assert all(pd.isna(row[c]) for c in others)  # fields only the other run has
        assert row["started"].timestamp() == pytest.approx(store.get_run(run).started_at)
    store.close()


def _csv(db, run, *flags) -> list[dict[str, str]]:
    out = io.StringIO()
    sys_stdout, sys.stdout = sys.stdout, out
    try:
        assert main(["export", str(run), "--runs-db", str(db), *flags]) == 0
    finally:
        sys.stdout = sys_stdout
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def _same(cell: str, value) -> bool:
    if cell in ("", "nan"):  # no value at this step, or a stored NaN
        return pd.isna(value)
    return float(cell) == value


def test_metrics_frame_is_export_csv(store_runs):
    db, ids = store_runs
    with RunStore(db) as store:
        for run in ids:
            frame = store.metrics_frame(run)
            rows = _csv(db, run, "--csv")
            assert list(frame.columns) == list(rows[0])
            assert len(frame) == len(rows)
            for (_, got), want in zip(frame.iterrows(), rows, strict=True):
                assert int(want["step"]) == got["step"]
                assert (
                    (want["epoch"] == "")
                    if pd.isna(got["epoch"])
                    else int(want["epoch"]) == got["epoch"]
                )
                assert want["time"] == f"{got['time']:.3f}"
                assert all(_same(want[k], got[k]) for k in frame.columns[3:])
            long = store.metrics_frame(run, long=True)
            rows = _csv(db, run, "--long")
            assert len(long) == len(rows)
            for (_, got), want in zip(long.iterrows(), rows, strict=True):
                assert (int(want["step"]), want["key"]) == (got["step"], got["key"])
                assert _same(want["value"], got["value"])
    with RunStore(db) as store:
        hand = store.metrics_frame(ids[1])
    assert hand["step"].tolist() == [0, 1, 3]
    assert hand["loss"].tolist()[:2] == [1.0, 0.75]  # the last value of step 1 wins
    assert math.isnan(hand["loss"].iloc[2])  # step 3 has no loss
    assert hand["epoch"].isna().tolist() == [True, False, False]
    assert hand["time"].tolist() == [1000.0, 1001.25, 1003.0]  # a step's first wall time


def test_resnetlab_runs_is_the_short_form(store_runs):
    db, _ = store_runs
    with RunStore(db) as store:
        pd.testing.assert_frame_equal(resnetlab.runs(db), store.dataframe())
    with pytest.raises(StoreError, match="no run store at"):
        resnetlab.runs(db.parent / "nothing.db")


def test_without_pandas_the_error_names_the_extra(store_runs, monkeypatch):
    db, _ = store_runs
    monkeypatch.setitem(sys.modules, "pandas", None)
    with RunStore(db) as store, pytest.raises(ConfigError) as info:
        store.dataframe()
    assert str(info.value) == (
        "runs as DataFrames need the pandas package: pip install 'resnetlab[frames]'"
    )


def _read_events(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _assert_holds_the_store(acc: EventAccumulator, store: RunStore, run: int, keys) -> None:
    for key in keys:
        rows = sorted(store.metrics(run, keys=[key]), key=lambda r: r.step)
        events = acc.Scalars(key)
        assert [e.step for e in events] == [r.step for r in rows], key
        # event files hold float32 values and float64 wall times
        want = np.array([r.value for r in rows], dtype=np.float32)
        np.testing.assert_array_equal(np.array([e.value for e in events], np.float32), want)
        assert [e.wall_time for e in events] == pytest.approx([r.time for r in rows], abs=1e-6)


def test_tensorboard_export_holds_every_scalar_of_the_store(store_runs, tmp_path):
    db, ids = store_runs
    for run in ids:
        assert main(["export", str(run), "--runs-db", str(db), "--tensorboard", str(tmp_path)]) == 0
    with RunStore(db) as store:
        for run in ids:
            info = store.get_run(run)
            folder = tmp_path / ("run-1" if run == ids[0] else f"run-{run}-hand_made")
            acc = _read_events(folder)
            keys = store.metric_keys(run)
            finals = [f"final/{k}" for k, v in info.final_metrics.items() if v is not None]
            assert sorted(acc.Tags()["scalars"]) == sorted(keys + finals)
            _assert_holds_the_store(acc, store, run, keys)
            for key, value in info.final_metrics.items():
                if value is not None:
                    assert acc.Scalars(f"final/{key}")[0].value == pytest.approx(value, rel=1e-6)
            # the config: a text table and hparams
            text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
            assert "| lr |" in text
            assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")
    # exporting again replaces the run's events instead of doubling them
    main(["export", str(ids[1]), "--runs-db", str(db), "--tensorboard", str(tmp_path)])
    assert len(list((tmp_path / f"run-{ids[1]}-hand_made").iterdir())) == 1
    assert len(_read_events(tmp_path / f"run-{ids[1]}-hand_made").Scalars("loss")) == 3


def test_live_callback_wrote_what_the_trainer_logged(trained_run):
    result, db, live = trained_run
    acc = _read_events(live / f"run-{result.run_id}")
    with RunStore(db) as store:
        # test_* are measured after the fit, when the callback has closed its file
        keys = [k for k in store.metric_keys(result.run_id) if not k.startswith("test_")]
        assert sorted(acc.Tags()["scalars"]) == sorted(keys)
        _assert_holds_the_store(acc, store, result.run_id, keys)
    assert "_hparams_/experiment" in acc.PluginTagToContent("hparams")


def test_without_tensorboard_the_error_names_the_extra(store_runs, tmp_path, monkeypatch, capsys):
    from resnetlab.export import TensorBoardCallback

    db, ids = store_runs
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ConfigError, match=r"^TensorBoardCallback needs the tensorboard package"):
        TensorBoardCallback(tmp_path)
    assert main(["export", str(ids[0]), "--runs-db", str(db), "--tensorboard", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "error: writing TensorBoard event files needs the tensorboard package: "
        "pip install 'resnetlab[tensorboard]'\n"
    )
