"""TensorBoard: the event files of ``resnetlab export RUN --tensorboard`` and of the live
``TensorBoardCallback`` hold every scalar of the store, read back with TensorBoard's own
``EventAccumulator``."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from resnetlab.cli import main
from resnetlab.errors import ConfigError
from resnetlab.store import RunStore

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
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
