"""Statuses that tell the truth: real `resnetlab train` processes, real signals.

* a SIGKILL during the final test leaves the run ``interrupted``, not ``completed``
  without test metrics (the run used to be finished before its test ran);
* a SIGTERM is recorded ``interrupted`` by the process itself before it exits (the row
  used to stay ``running`` until another process opened the store);
* bad numbers are ConfigErrors before anything runs or any file is made; a loss that
  becomes non-finite ends the run ``failed`` with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnetlab.store import RunStore

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]


def _train(tmp_path: Path, data: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "resnetlab", "train", "--model", "resnetv2-micro"]
    cmd += ["--data-dir", str(data), "--device", "cpu", "--live", "none", "--no-progress"]
    return cmd + ["--runs-db", str(tmp_path / "runs.db"), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _raw_run(db: Path) -> dict | None:
    """The run row as the file holds it, read-only (no process detects anything here)."""
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            row = con.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            return dict(row) if row else None
        finally:
            con.close()
    except sqlite3.Error:
        return None


def _wait(proc: subprocess.Popen, what, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        run = _raw_run_of(proc)
        if run is not None and what(run):
            return run
        time.sleep(0.02)
    raise AssertionError("the training process never got there")


def _raw_run_of(proc: subprocess.Popen) -> dict | None:
    return _raw_run(Path(proc.args[proc.args.index("--runs-db") + 1]))


def test_a_kill_during_the_final_test_leaves_the_run_interrupted(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    # One short epoch, then a test on all 10 000 test images: seconds to hit it in.
    cmd = _train(tmp_path, fashion_mnist_dir, "--epochs", "1", "--train-limit", "128")
    cmd += ["--val-size", "0", "--batch-size", "64"]
    proc = subprocess.Popen(
        cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        # The last (only) epoch's checkpoint is recorded: the fit is over, the test runs.
        run = _wait(proc, lambda r: r["checkpoint_last"] is not None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run["status"] == "running"  # the run was not "completed" before its test
    with RunStore(tmp_path / "runs.db") as store:  # opening it detects the dead owner
        after = store.get_run(run["id"])
    assert "test_accuracy" not in after.final_metrics
    assert after.status == "interrupted", after


def test_sigterm_is_recorded_interrupted_before_the_process_exits(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    cmd = _train(tmp_path, fashion_mnist_dir, "--epochs", "1000", "--train-limit", "128")
    cmd += ["--val-size", "0", "--batch-size", "64", "--test-limit", "64"]
    proc = subprocess.Popen(
        cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait(proc, lambda r: r["checkpoint_last"] is not None)  # training is under way
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, out[-2000:]
    run = _raw_run(tmp_path / "runs.db")  # as the process left it: nobody else looked
    assert run is not None and run["status"] == "interrupted", (run, out[-2000:])
    assert "SystemExit" in (run["error"] or "")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "inf"], "TrainConfig.lr=inf: must be a positive number"),
        (["--weight-decay", "nan"], "TrainConfig.weight_decay=nan: must be a finite number"),
        (["--weight-decay", "-1"], "TrainConfig.weight_decay=-1.0: must be a finite number"),
        (["-O", "image_size=8"], "model option image_size=8: set by the dataset"),
        (["-O", "in_channels=3"], "model option in_channels=3: set by the dataset"),
        (["-O", "num_classes=5"], "model option num_classes=5: set by the dataset"),
        (["--device", "bogus"], "device='bogus' is not a device name"),
    ],
)
def test_bad_settings_are_one_line_errors_that_create_no_file(
    tmp_path: Path, fashion_mnist_dir: Path, flags: list[str], message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    cmd = _train(work, fashion_mnist_dir, "--epochs", "1", "--train-limit", "64", "--val-size", "0")
    cmd += flags
    proc = subprocess.run(cmd, env=_env(), cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {proc.stderr.strip()[7:]}"]
    assert message in proc.stderr, proc.stderr
    assert list(work.iterdir()) == []  # no runs.db, no run folder


def test_a_loss_that_becomes_non_finite_fails_the_run_with_the_reason(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    cmd = _train(tmp_path, fashion_mnist_dir, "--epochs", "2", "--train-limit", "128")
    cmd += ["--val-size", "0", "--batch-size", "64", "--lr", "1e12", "--log-every", "1"]
    proc = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "training diverged: loss is" in proc.stderr, proc.stderr
    run = _raw_run(tmp_path / "runs.db")
    assert run is not None and run["status"] == "failed", run
    assert "training diverged" in run["error"]
    assert "test_accuracy" not in json.loads(run["final_metrics"])


def test_resuming_a_completed_run_keeps_its_wall_time(tmp_path: Path, fashion_mnist_dir: Path):
    cmd = _train(tmp_path, fashion_mnist_dir, "--epochs", "1", "--train-limit", "128")
    cmd += ["--val-size", "0", "--batch-size", "64", "--test-limit", "64"]
    first = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    before = json.loads(_raw_run(tmp_path / "runs.db")["final_metrics"])
    again = subprocess.run(
        [*cmd, "--resume", "1"], env=_env(), cwd=tmp_path, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stdout + again.stderr
    run = _raw_run(tmp_path / "runs.db")
    after = json.loads(run["final_metrics"])
    assert run["status"] == "completed" and after["wall_time"] == before["wall_time"]
    assert after["test_accuracy"] == before["test_accuracy"]
