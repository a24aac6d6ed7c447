"""``resnetlab runs | show | plot | compare | export`` on a store filled by real training runs."""

from __future__ import annotations

import csv
import io
import json

import pytest
import torch

import resnetlab
from resnetlab.cli import main


@pytest.fixture(scope="module")
def db(fashion_mnist_dir, tmp_path_factory):
    """Two short real runs (tiny model, 512 Fashion-MNIST images) that differ in lr."""
    path = tmp_path_factory.mktemp("store") / "runs.db"
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")  # tiny model: a second thread only adds contention
    try:
        for name, lr in (("slow", 0.05), ("fast", 0.2)):
            resnetlab.train(
                "resnetv2-micro",
                data_dir=fashion_mnist_dir,
                store=path,
                run_name=name,
                lr=lr,
                epochs=2,
                batch_size=64,
                train_limit=512,
                val_size=128,
                test_limit=256,
                log_every=2,
            )
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    return str(path)


def run(capsys, *argv):
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_runs_lists_every_run_newest_first(db, capsys):
    rc, out, _ = run(capsys, "runs", "--runs-db", db)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "STATUS", "MODEL", "DATA"]
    assert "TEST_ACC" in lines[0]
    assert lines[2].split()[:6] == [
        "2",
        "fast",
        "completed",
        "resnetv2-micro",
        "fashion-mnist",
        "2/2",
    ]
    assert lines[3].split()[1] == "slow"
    assert "2 run(s)" in out
    rc, out, _ = run(capsys, "runs", "--runs-db", db, "--status", "failed")
    assert rc == 0 and "no runs" in out


def test_show_prints_config_metrics_and_checkpoints(db, capsys):
    rc, out, _ = run(capsys, "show", "fast", "--runs-db", db)
    assert rc == 0
    assert "run 2  fast  [completed]" in out
    assert "best checkpoint" in out and "best.pt" in out
    assert "test_accuracy" in out and "val_accuracy" in out
    assert "  lr               0.2" in out


def test_plot_writes_a_png_of_the_curves(db, capsys, tmp_path):
    out_png = tmp_path / "curves.png"
    rc, out, _ = run(capsys, "plot", "1", "--runs-db", db, "--out", str(out_png))
    assert rc == 0 and "loss" in out and "val_accuracy" in out
    from PIL import Image

    with Image.open(out_png) as img:
        img.load()
        assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 600
        # Not a blank canvas: the curves put plenty of distinct colours on it.
        assert len(img.convert("RGB").getcolors(maxcolors=100000)) > 20


def test_compare_shows_results_and_config_differences(db, capsys, tmp_path):
    png = tmp_path / "cmp.png"
    rc, out, _ = run(capsys, "compare", "slow", "fast", "--runs-db", db, "--out", str(png))
    assert rc == 0
    assert "config differences" in out
    lr_line = next(line for line in out.splitlines() if line.startswith("lr "))
    assert lr_line.split()[1:] == ["0.05", "0.2"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_export_csv_has_one_row_per_logged_step(db, capsys, tmp_path):
    rc, out, _ = run(capsys, "export", "fast", "--csv", "--runs-db", db)
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"step", "epoch", "loss", "accuracy", "lr", "val_accuracy"} <= set(rows[0])
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 12  # 2 epochs x 6 steps
    losses = [float(r["loss"]) for r in rows if r["loss"]]
    assert len(losses) == 6 and all(0 < v < 5 for v in losses)
    target = tmp_path / "fast.json"
    rc, out, _ = run(capsys, "export", "fast", "--json", "--out", str(target), "--runs-db", db)
    data = json.loads(target.read_text())
    assert data["name"] == "fast" and data["config"]["lr"] == 0.2
    assert any(m["key"] == "test_accuracy" for m in data["metrics"])


def test_unknown_runs_and_missing_stores_are_clear_errors(db, capsys, tmp_path):
    rc, _, err = run(capsys, "show", "nope", "--runs-db", db)
    assert rc == 2 and "error: no run 'nope'" in err
    rc, _, err = run(capsys, "runs", "--runs-db", str(tmp_path / "none.db"))
    assert rc == 2 and "no run store at" in err
