"""``resnetlab.train(...)``, ``resnetlab train`` and ``resnetlab eval`` end to end on real data."""

from __future__ import annotations

import csv
import io

import resnetlab
from resnetlab.cli import main
from resnetlab.store import RunStore
from resnetlab.training.callbacks import LambdaCallback

FAST = dict(
    epochs=3,
    batch_size=64,
    train_limit=640,  # training images, after the 128 validation ones were held out
    val_size=128,
    test_limit=500,
    live=None,
    label_smoothing=0.0,
)


def test_train_stop_resume_from_the_cli_and_eval(fashion_mnist_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "project").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    # A run stopped after 3 steps, as by Ctrl-C or job.stop(), recorded in the default
    # (relative) store location of this directory...
    stopper = LambdaCallback(on_batch_end=lambda t, logs: setattr(t, "stop_training", t.step >= 3))
    stopped = resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        store="runs/resnetlab.db",
        run_name="cli",
        callbacks=[stopper],
        **FAST,
    )
    assert stopped.status == "stopped" and stopped.checkpoint.exists()
    assert stopped.run_dir == stopped.checkpoint.parent
    run_dir = tmp_path / "project" / "runs" / f"run-{stopped.run_id}"
    assert stopped.run_dir == run_dir

    # ...is continued from another directory, its store given by a relative path.
    monkeypatch.chdir(tmp_path / "elsewhere")
    db = "../project/runs/resnetlab.db"
    common = ["--data-dir", str(fashion_mnist_dir), "--runs-db", db]
    with RunStore(db) as store:
        assert store.get_run("cli").status == "stopped"
    # Settings that differ from the checkpoint's are refused, naming the saved values
    # (more --epochs would extend the run: test_extend_and_init_from.py)...
    rc = main(
        [
            "train",
            "--resume",
            "cli",
            "--epochs",
            "2",
            "--lr",
            "0.5",
            "--live",
            "none",
            "--no-progress",
            *common,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "epochs=2 (checkpoint: 3; a run can be extended" in err
    assert "lr=0.5 (checkpoint: 0.2)" in err
    assert "without --resume" in err
    # ...equal ones are fine: `resnetlab train --resume NAME` continues where it stopped.
    rc = main(
        [
            "train",
            "--resume",
            "cli",
            "--epochs",
            "3",
            "--batch-size",
            "64",
            "--grad-norms",
            "5",
            "--live",
            "none",
            "--no-progress",
            *common,
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"run {stopped.run_id}" in out and "test accuracy" in out and "wall time" in out
    assert f"checkpoint {run_dir / 'last.pt'}" in out
    assert not (tmp_path / "elsewhere" / "runs").exists()
    with RunStore(db) as store:
        run = store.get_run("cli")
        assert run.status == "completed" and run.model == "resnetv2-micro"
        steps = [r.step for r in store.metrics(run.id, keys=["loss"])]
        losses = [r.value for r in store.metrics(run.id, keys=["loss"])]
        keys = store.metric_keys(run.id)
        assert {"loss", "accuracy", "lr", "val_accuracy", "test_accuracy"} <= set(keys)
        # --grad-norms 5: every conv layer's gradient norm every 5 steps, kept with the run.
        grad_steps = store.series(run.id, "grad_norm/stem.conv")[0]
        test_acc = run.final_metrics["test_accuracy"]
    assert grad_steps == [5, 10, 15, 20, 25]
    # The rows of an uninterrupted run: no partial row at the stop (step 3); those 3 steps
    # count in the resumed run's first logging point (issue 14.7).
    assert steps == [10, 20, 30]
    assert losses[-1] < losses[0] - 0.3
    assert 0.15 < test_acc <= 1.0  # 30 steps of the tiny test model; chance is 0.10

    # The CSV export: the last step's row keeps its 0-based epoch (2 of 0..2).
    assert main(["export", "cli", "--csv", "--runs-db", db]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["step"] for r in table][-1] == "30"
    assert table[-1]["epoch"] == "2" and table[-1]["test_accuracy"]

    # `resnetlab eval` on the run: loss, accuracy, a text confusion matrix and a PNG.
    png = tmp_path / "cm.png"
    assert main(["eval", "cli", "--limit", "500", "--out", str(png), *common]) == 0
    out = capsys.readouterr().out
    assert "fashion-mnist test: 500 images" in out and "accuracy" in out
    assert "Ankle boot" in out and "recall" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_returns_history_test_metrics_and_the_model(fashion_mnist_dir, tmp_path):
    from resnetlab.inspect import GradientNormCallback

    result = resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        store=tmp_path / "r.db",
        callbacks=[GradientNormCallback(every=3)],
        **{**FAST, "epochs": 1, "val_size": 0, "live": "agg"},
    )
    assert result.status == "completed" and result.run_id == 1
    # The live dashboard (headless: PNG snapshots) ran beside training and wrote its last frame.
    assert (result.run_dir / "dashboard-final.png").stat().st_size > 1000
    # Recording gradient norms puts their heat map on the dashboard, fed by the stream.
    assert "grad_norms" in result.dashboard.render_process.config["panels"]
    assert "loss" in result.dashboard.render_process.config["panels"]
    assert result.stream.series("grad_norm/stem.conv")[0].tolist() == [0, 3, 6, 9]
    assert len(result.history) == 1 and "val_accuracy" not in result.history[0]
    assert set(result.test_metrics) == {"test_loss", "test_accuracy"}
    assert result.confusion.sum() == 500 and result.classes[0] == "T-shirt/top"
    assert result.model.spec["preset"] == "resnetv2-micro"
    assert "test accuracy" in result.summary()


def test_cli_reports_bad_settings_as_errors(fashion_mnist_dir, tmp_path, capsys):
    rc = main(
        [
            "train",
            "--live",
            "nosuchbackend",
            "--runs-db",
            str(tmp_path / "r.db"),
            "--data-dir",
            str(fashion_mnist_dir),
            "--train-limit",
            "256",
            "--val-size",
            "0",
        ]
    )
    assert rc == 2 and "unknown live backend 'nosuchbackend'" in capsys.readouterr().err
    rc = main(
        [
            "train",
            "--model",
            "resnetv2-micro",
            "--precision",
            "fp16",
            "--device",
            "cpu",
            "--data-dir",
            str(fashion_mnist_dir),
            "--runs-db",
            str(tmp_path / "r.db"),
            "--live",
            "none",
            "--train-limit",
            "256",
        ]
    )
    assert rc == 2
    assert "error: precision='fp16' needs a CUDA device" in capsys.readouterr().err
    rc = main(["eval", str(tmp_path / "nothing.pt"), "--runs-db", str(tmp_path / "r.db")])
    assert rc == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    base = [
        "train",
        "--runs-db",
        str(tmp_path / "r.db"),
        "--data-dir",
        str(fashion_mnist_dir),
        "--live",
        "none",
    ]
    rc = main([*base, "--train-limit", "-3"])
    assert rc == 2
    assert "train_limit=-3 (--train-limit): must be a positive number" in capsys.readouterr().err
    rc = main([*base, "--test-limit", "0"])  # was: silently the whole test set
    assert rc == 2 and "test_limit=0 (--test-limit)" in capsys.readouterr().err
    rc = main([*base, "--train-limit", "256", "--grad-norms", "0"])
    assert rc == 2 and "GradientNormCallback.every=0" in capsys.readouterr().err
    rc = main([*base, "--train-limit", "256", "--crop-padding", "-1"])
    assert rc == 2 and "crop_padding" in capsys.readouterr().err
