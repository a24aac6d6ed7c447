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
    """Two short real runs (tiny model, a few hundred Fashion-MNIST images) that differ in
    lr and in their number of training images (so in their normalisation too)."""
    path = tmp_path_factory.mktemp("store") / "runs.db"
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")  # tiny model: a second thread only adds contention
    try:
        for name, lr, images in (("slow", 0.05, 256), ("fast", 0.2, 384)):
            resnetlab.train(
                "resnetv2-micro",
                data_dir=fashion_mnist_dir,
                store=path,
                run_name=name,
                lr=lr,
                epochs=2,
                batch_size=64,
                train_limit=images,  # 4 and 6 steps per epoch
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
    # Each field that differs is a column of its own, in full: was an `extra` JSON column
    # cut at 40 characters, which hid the train limit and mean/std.
    header, _, slow, fast, *rest = out.splitlines()
    columns = header.split()
    assert columns[:9] == ["ID", "NAME", "STATUS", "MODEL", "EPOCHS", "LOSS", "VAL_ACC"] + [
        "TEST_ACC",
        "TIME",
    ]
    assert columns[9:] == ["lr", "mean", "std", "train_limit"]  # the config's order
    assert "extra" not in columns and "run_dir" not in columns
    cells = {}
    for line in (slow, fast):
        name = line.split()[1]
        for field in ("lr", "train_limit", "mean", "std"):
            start = header.index(field)
            cells[name, field] = line[start:].split("  ")[0].strip()
    assert (cells["slow", "lr"], cells["fast", "lr"]) == ("0.05", "0.2")
    assert (cells["slow", "train_limit"], cells["fast", "train_limit"]) == ("256", "384")
    assert cells["slow", "mean"].startswith("[0.") and cells["slow", "mean"].endswith("]")
    assert cells["slow", "mean"] != cells["fast", "mean"]
    assert "differ: lr, mean, std, train_limit" in rest
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_compare_plots_against_steps_epochs_or_wall_time(db, tmp_path):
    from resnetlab.store import RunStore
    from resnetlab.store.plot import steps_per_epoch, x_values

    with RunStore(db) as store:
        slow, fast = store.get_run("slow"), store.get_run("fast")
        loss = {r.name: store.metrics(r.id, keys=["loss"]) for r in (slow, fast)}
        val = {r.name: store.metrics(r.id, keys=["val_accuracy"]) for r in (slow, fast)}
    assert steps_per_epoch(loss["slow"]) == 4 and steps_per_epoch(loss["fast"]) == 6
    # By step the runs end at 8 and 12; by epoch both at 2, their epoch ends aligned.
    assert x_values(val["slow"], "step", 4, 0.0) == [4.0, 8.0]
    assert x_values(val["fast"], "step", 6, 0.0) == [6.0, 12.0]
    for name, spe in (("slow", 4), ("fast", 6)):
        assert x_values(val[name], "epoch", spe, 0.0) == [1.0, 2.0]
        t0 = loss[name][0].time
        times = x_values(loss[name], "time", spe, t0)
        assert times[0] == 0.0 and times == sorted(times)
    for x in ("epoch", "time"):
        png = tmp_path / f"cmp-{x}.png"
        assert main(["compare", "slow", "fast", "--runs-db", db, "--out", str(png), "--x", x]) == 0
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
