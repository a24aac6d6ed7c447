"""``resnetlab.train()`` in Python tells its user what the CLI tells: a progress bar, the
run id, checkpoint folder and dashboard at the start, the closing summary at the end."""

from __future__ import annotations

import logging
import os
import subprocess
import textwrap

import resnetlab
from resnetlab.api import DEFAULT_LIVE, REPORT_LOGGER, resolve_live

TINY = dict(epochs=1, batch_size=64, train_limit=128, val_size=64, test_limit=64)


def test_train_reports_progress_run_and_summary_by_default(
    fashion_mnist_dir, tmp_path, capsys, caplog
):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    result = resnetlab.train(
        "resnetv2-micro", data_dir=fashion_mnist_dir, store=tmp_path / "r.db", **TINY
    )
    captured = capsys.readouterr()
    # The tqdm bar (text outside Jupyter) and its epoch line: was progress=False.
    assert "step/s" in captured.err and "epoch 1/1  loss" in captured.out
    lines = [r.getMessage() for r in caplog.records if r.name == REPORT_LOGGER]
    text = "\n".join(lines)
    assert f"run {result.run_id}, 2 steps/epoch x 1 epochs" in text
    assert f"checkpoints in {result.run_dir}" in text
    assert f"run id {result.run_id}" in text and f"checkpoint {result.checkpoint}" in text
    assert "test accuracy" in text
    # A script gets no dashboard unless it asks (no window, no render process).
    assert result.dashboard is None


def test_progress_false_and_verbose_false_are_silent(fashion_mnist_dir, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger=REPORT_LOGGER)
    resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        store=tmp_path / "r.db",
        progress=False,
        verbose=False,
        **TINY,
    )
    captured = capsys.readouterr()
    assert "step/s" not in captured.err and "run id" not in captured.out
    assert not [r for r in caplog.records if r.name == REPORT_LOGGER]


def test_the_summary_reaches_a_script_that_configured_no_logging(
    fashion_mnist_dir, tmp_path, python_exe
):
    script = tmp_path / "first.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import resnetlab
            r = resnetlab.train("resnetv2-micro", data_dir={str(fashion_mnist_dir)!r},
                                store="r.db", live="agg", epochs=1, batch_size=64,
                                train_limit=128, val_size=64, test_limit=64)
            """
        )
    )
    proc = subprocess.run(
        [python_exe, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "run-1"
    assert f"checkpoints in {run_dir}" in proc.stdout
    assert "live dashboard (agg): snapshots in" in proc.stdout
    assert "run id 1" in proc.stdout and f"checkpoint {run_dir / 'last.pt'}" in proc.stdout
    assert f"dashboard snapshot {run_dir / 'dashboard-final.png'}" in proc.stdout
    assert "test accuracy" in proc.stdout and "step/s" in proc.stderr


def test_the_default_dashboard_is_the_notebooks(monkeypatch):
    import resnetlab.live.backends as backends

    monkeypatch.setattr(backends, "in_jupyter_kernel", lambda: False)
    assert resolve_live(DEFAULT_LIVE) is None
    monkeypatch.setattr(backends, "in_jupyter_kernel", lambda: True)
    assert resolve_live(DEFAULT_LIVE) == "auto"
    assert resolve_live("webagg") == "webagg" and resolve_live(None) is None
