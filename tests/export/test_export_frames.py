"""Runs as data: ``RunStore.dataframe()`` / ``metrics_frame()`` / ``resnetlab.runs()`` hold
what ``resnetlab show`` and ``resnetlab export --csv`` print for the same runs."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys

import pytest

import resnetlab
from resnetlab.cli import main
from resnetlab.errors import ConfigError, StoreError
from resnetlab.store import RunStore
from resnetlab.store.frames import flatten_config

pd = pytest.importorskip("pandas")


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
