"""The SQLite run store: runs, batched metrics, polling from another process, dead owners."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from resnetlab.errors import StoreError
from resnetlab.store import COMPLETED, INTERRUPTED, RUNNING, RunStore, default_store_path


def test_runs_and_metrics_round_trip(tmp_path):
    with RunStore(tmp_path / "r.db") as store:
        a = store.create_run(
            "baseline",
            config={"lr": 0.1, "milestones": (0.5, 0.75)},
            model="resnetv2-mini",
            dataset="fashion-mnist",
        )
        b = store.create_run()
        store.log_metrics(a, 10, {"loss": 0.9, "accuracy": 0.6}, epoch=0)
        store.log_metrics(a, 20, {"loss": float("nan")}, epoch=0)
        assert store.pending == 3 and store.metrics(a) == []  # buffered, not written yet
        assert store.flush() == 3 and store.pending == 0
        store.finish_run(a, COMPLETED, final_metrics={"test_accuracy": 0.93})

        run = store.get_run("baseline")
        assert (run.id, run.status, run.model) == (a, COMPLETED, "resnetv2-mini")
        assert run.config == {"lr": 0.1, "milestones": [0.5, 0.75]}
        assert run.final_metrics == {"test_accuracy": 0.93}
        assert run.ended_at >= run.started_at
        assert store.get_run(str(b)).name == f"run-{b}"
        assert [r.id for r in store.list_runs()] == [b, a]
        assert [r.id for r in store.list_runs(status=RUNNING)] == [b]
        rows = store.metrics(a, keys=["loss"])
        assert [r.step for r in rows] == [10, 20]
        assert rows[0].value == 0.9 and rows[1].value != rows[1].value  # NaN survives
        assert store.metric_keys(a) == ["loss", "accuracy"]


def test_unknown_run_names_the_fix(tmp_path):
    with RunStore(tmp_path / "r.db") as store, pytest.raises(StoreError, match="resnetlab runs"):
        store.get_run("nope")


def test_another_connection_polls_new_rows_while_a_run_writes(tmp_path):
    db = tmp_path / "r.db"
    writer = RunStore(db)
    run = writer.create_run("live")
    reader = RunStore(db)
    writer.log_metrics(run, 1, {"loss": 2.0})
    writer.flush()
    first = reader.metrics(run)
    assert [r.value for r in first] == [2.0]
    writer.log_metrics(run, 2, {"loss": 1.5})
    writer.flush()
    new = reader.metrics(run, since_rowid=first[-1].rowid)
    assert [(r.step, r.value) for r in new] == [(2, 1.5)]
    assert reader.get_run(run).status == RUNNING  # the writer is alive
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    writer.close()
    reader.close()


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_a_run_whose_process_is_gone_becomes_interrupted(tmp_path, ending):
    db = tmp_path / "runs.db"
    code = (
        "import os, signal, sys; from resnetlab.store import RunStore; "
        "s = RunStore(sys.argv[1]); r = s.create_run('x'); "
        "s.log_metrics(r, 1, {'loss': 1.0}); s.flush(); "
        "s.log_metrics(r, 2, {'loss': 0.5}); "  # buffered only: lost with the process
        + ("os._exit(0)" if ending == "exit" else "os.kill(os.getpid(), signal.SIGKILL)")
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=False)
    with RunStore(db) as store:
        run = store.get_run("x")
        assert run.status == INTERRUPTED
        assert [r.value for r in store.metrics(run.id)] == [1.0]


def test_not_a_database_is_a_store_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="bad.db: cannot open the run store"):
        RunStore(bad)


def test_default_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("RESNETLAB_RUNS", raising=False)
    assert str(default_store_path()) == "runs/resnetlab.db"
    monkeypatch.setenv("RESNETLAB_RUNS", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"


def test_recorder_copies_the_runs_stream_records_in_batches_system_samples_too(tmp_path):
    from resnetlab.metrics.stream import MetricStream
    from resnetlab.store import StoreRecorder

    class FakeTrainer:  # only .stream is read
        stream = MetricStream()

    trainer = FakeTrainer()
    trainer.stream.append(0, {"loss": 9.0})  # before the run: not part of it
    with RunStore(tmp_path / "r.db") as store:
        run = store.create_run("rec")
        rec = StoreRecorder(store, run, flush_every_s=3600)
        rec.on_fit_start(trainer, {})
        trainer.stream.append(1, {"loss": 2.0, "lr": 0.1}, epoch=0)
        # A system monitor's sample, stamped with the step the stream had reached: stored
        # with the run like any metric (``resnetlab watch`` shows the training machine).
        trainer.stream.append(1, {"sys/cpu_percent": 55.0})
        assert store.metrics(run) == [] and rec.mirror.backlog == 2  # until a flush is due
        rec.on_epoch_end(trainer, {})
        rows = store.metrics(run)
        assert sorted((r.step, r.key, r.value, r.epoch) for r in rows) == [
            (1, "loss", 2.0, 0),
            (1, "lr", 0.1, 0),
            (1, "sys/cpu_percent", 55.0, None),
        ]
        trainer.stream.append(2, {"loss": 1.5}, epoch=0)
        rec.on_end(trainer, {})
        assert store.series(run, "loss") == ([1, 2], [2.0, 1.5])
        assert not rec.mirror.is_alive()  # its thread is gone


def test_recorder_mirrors_a_stream_in_the_background_and_a_dashboard_compares_it(tmp_path):
    from resnetlab.live import Dashboard
    from resnetlab.metrics.stream import MetricStream
    from resnetlab.store import StoreRecorder

    db = tmp_path / "runs.db"
    s = MetricStream()
    with RunStore(db) as store:
        run_id = store.create_run("baseline")
        rec = StoreRecorder(store, run_id, s, flush_every_s=0.05).start()
        for i in range(100):
            s.log(i, loss=3.0 - i / 50)
        deadline = time.monotonic() + 30  # the background thread writes without a flush
        while len(store.metrics(run_id)) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(store.metrics(run_id)) == 100
        s.log(100, loss=1.0)
        rec.stop()
        store.finish_run(run_id)
    with RunStore(db) as store:  # a fresh connection reads what was written
        steps, values = store.series(run_id, "loss")
    assert steps == list(range(101)) and values[50] == 2.0

    live = MetricStream()
    dash = Dashboard(["loss"], stream=live, backend="agg")
    dash.compare_run("baseline", store=db)
    live.log(0, loss=1.0)
    dash.refresh()
    labels = {ln.get_label(): ln for ln in dash.figures[0].axes[0].get_lines()}
    old = labels[f"loss (run {run_id}: baseline)"]
    assert list(old.get_ydata()[:2]) == [3.0, 3.0 - 1 / 50]
    dash.close()


def test_paths_are_stored_absolute_and_work_from_another_directory(tmp_path, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    with RunStore("runs/resnetlab.db") as store:  # relative, as the default is
        assert store.path == tmp_path / "project" / "runs" / "resnetlab.db"
        run = store.create_run("a", run_dir="runs/run-1")
        store.update_run(run, checkpoint_last="runs/run-1/last.pt")
    monkeypatch.chdir(tmp_path / "elsewhere")
    with RunStore("../project/runs/resnetlab.db") as store:
        info = store.get_run("a")
    assert info.run_dir == str(tmp_path / "project" / "runs" / "run-1")
    assert info.checkpoint_last == str(tmp_path / "project" / "runs" / "run-1" / "last.pt")


def test_relative_paths_of_older_rows_resolve_against_the_database_folder(tmp_path, monkeypatch):
    # An older version stored paths relative to the directory training ran in.
    run_dir = tmp_path / "project" / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / "last.pt").write_bytes(b"x")
    db = tmp_path / "project" / "runs" / "resnetlab.db"
    with RunStore(db) as store:
        run = store.create_run("old")
    con = sqlite3.connect(db)
    con.execute(
        "UPDATE runs SET run_dir = 'runs/run-1', checkpoint_last = "
        "'runs/run-1/last.pt', checkpoint_best = 'runs/run-1/best.pt' WHERE id = ?",
        (run,),
    )
    con.commit()
    con.close()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with RunStore(db) as store:
        info = store.get_run("old")
    assert info.run_dir == str(run_dir)
    assert info.checkpoint_last == str(run_dir / "last.pt")
    assert info.checkpoint_best == "runs/run-1/best.pt"  # exists nowhere: left as stored


def test_truncate_metrics_forgets_the_steps_a_resume_replays(tmp_path):
    with RunStore(tmp_path / "r.db") as store:
        run, other = store.create_run("a"), store.create_run("b")
        for step in (2, 4, 6, 8):
            store.log_metrics(run, step, {"loss": 1.0 / step}, epoch=0, time_s=100.0 + step)
            store.log_metrics(other, step, {"loss": 1.0}, epoch=0, time_s=100.0 + step)
        store.flush()
        store.log_metrics(run, 10, {"loss": 0.1}, epoch=1, time_s=110.0)
        # A row at step 6 logged after the checkpoint of step 6 was saved (at t=106.5).
        store.log_metrics(run, 6, {"grad_norm/conv": 0.3}, epoch=1, time_s=107.0)
        store.flush()
        store.log_metrics(run, 12, {"loss": 0.05}, epoch=1, time_s=112.0)  # still buffered
        # Stored: steps 8 and 10, and the late row of step 6; the buffered one goes too.
        assert store.truncate_metrics(run, 6, logged_after=106.5) == 3
        assert store.pending == 0
        store.flush()
        assert [(r.step, r.key) for r in store.metrics(run)] == [
            (2, "loss"),
            (4, "loss"),
            (6, "loss"),
        ]
        assert [r.step for r in store.metrics(other)] == [2, 4, 6, 8]


def test_statuses_are_the_shared_run_status_stored_as_plain_text(tmp_path):
    from resnetlab.states import RunStatus
    from resnetlab.store.cli import STORED_STATUSES
    from resnetlab.store.runstore import FINAL_STATUSES, STATUSES

    assert STORED_STATUSES == STATUSES and RUNNING not in FINAL_STATUSES
    with RunStore(tmp_path / "r.db") as store:
        run = store.create_run("a")
        store.finish_run(run, "stopped")  # a plain string is accepted
        assert store.get_run(run).status is RunStatus.STOPPED
        with pytest.raises(StoreError) as err:
            store.finish_run(run, "paused")
        assert str(err.value) == (
            "finish_run: status 'paused' is not one of "
            "('completed', 'stopped', 'failed', 'interrupted')"
        )
    with sqlite3.connect(tmp_path / "r.db") as conn:
        assert conn.execute("SELECT status, typeof(status) FROM runs").fetchall() == [
            ("stopped", "text")
        ]
