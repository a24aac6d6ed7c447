"""``resnetlab experiment NAME --parallel N --live agg``: the arms as process jobs from the
command line, a live comparison written as PNG snapshots, the report at the end."""

from __future__ import annotations

import sqlite3

import pytest

from resnetlab.cli import main

pytestmark = pytest.mark.slow


def test_the_command_runs_arms_as_jobs_with_a_live_comparison(fashion_mnist_dir, tmp_path, capsys):
    store, out = tmp_path / "runs.db", tmp_path / "reports"
    argv = [
        "experiment",
        "bottleneck-ratio",
        "--budget",
        "1ep",
        "--subset",
        "128",
        "--test-subset",
        "64",
        "--val-size",
        "64",
        "--depths",
        "11",
        "--width",
        "2",
        "--seeds",
        "2",
        "--batch-size",
        "32",
        "--stem-stride",
        "2",
        "--parallel",
        "2",
        "--live",
        "agg",
        "--data-dir",
        str(fashion_mnist_dir),
        "--store",
        str(store),
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = out / "bottleneck-ratio.md"
    assert f"report -> {report}" in printed
    assert f"snapshots in {out / 'bottleneck-ratio-live'}" in printed
    assert (out / "bottleneck-ratio-live" / "dashboard.png").stat().st_size > 0
    text = report.read_text()
    assert "6 runs as process jobs, 2 at a time, 1 torch thread each" in text
    assert "--val-size 64 --stem-stride 2 --parallel 2 --seeds 2" in text
    for arm in ("ratio 1/4", "ratio 1/2, same widths", "ratio 1/2, equal params"):
        assert f"| {arm} |" in text
    assert "Welch t=" in text and "**Incomplete**" not in text
    with sqlite3.connect(store) as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM runs")]
    assert statuses == ["completed"] * 6
    # again with --resume: every run is found completed in the store; nothing trains
    assert main([*argv, "--resume"]) == 0
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 6
