"""The command line's spellings (``train MODEL``, ``--set``/``-O``, ``--version``), what
``--train-limit`` counts, and the full class names of ``eval``'s text matrix."""

from __future__ import annotations

import pytest

import resnetlab
from resnetlab.cli import main
from resnetlab.errors import ConfigError
from resnetlab.store import RunStore
from resnetlab.training.callbacks import LambdaCallback
from resnetlab.training.evaluate import format_confusion


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"resnetlab {resnetlab.__version__}"


def test_train_takes_the_model_positionally_and_set_as_summary_does(
    fashion_mnist_dir, tmp_path, capsys
):
    db = tmp_path / "r.db"
    common = ["--runs-db", str(db), "--data-dir", str(fashion_mnist_dir), "--live", "none"]
    common += ["--no-progress", "--epochs", "1", "--train-limit", "128", "--val-size", "0"]
    common += ["--test-limit", "64", "--batch-size", "64"]
    # As `resnetlab summary resnetv2-micro --set dropout=0.25`: was the top-level usage.
    assert main(["train", "resnetv2-micro", "--set", "dropout=0.25", *common]) == 0
    assert main(["train", "--model", "resnetv2-micro", "-O", "dropout=0.5", *common]) == 0
    capsys.readouterr()
    with RunStore(db) as store:
        runs = sorted(store.list_runs(), key=lambda r: r.id)
        assert [r.model for r in runs] == ["resnetv2-micro", "resnetv2-micro"]
        assert [r.config["extra"]["model_overrides"] for r in runs] == [
            {"dropout": 0.25},
            {"dropout": 0.5},
        ]
    rc = main(["train", "resnetv2-micro", "--model", "simple-cnn", *common])
    assert rc == 2 and "two models given" in capsys.readouterr().err
    # ...and summary takes train's -O.
    assert main(["summary", "resnetv2-micro", "-O", "dropout=0.1"]) == 0
    assert "resnetv2-micro" in capsys.readouterr().out


def _steps_and_val(fashion_mnist_dir, **kw) -> tuple[int, int]:
    seen = {}

    def at_start(trainer, logs):
        seen["steps"] = trainer.steps_per_epoch
        seen["val"] = sum(len(y) for _, y in trainer.val_loader) if trainer.val_loader else 0

    resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        store=None,
        epochs=1,
        batch_size=100,
        test_limit=64,
        live=None,
        progress=False,
        verbose=False,
        callbacks=[LambdaCallback(on_fit_start=at_start, on_batch_end=_stop)],
        **kw,
    )
    return seen["steps"], seen["val"]


def _stop(trainer, logs):
    trainer.stop_training = True  # what is measured is known at the fit's start


def test_train_limit_counts_training_images_after_the_validation_split(fashion_mnist_dir):
    # Was: 300 - 100 = 200 images (2 steps of 100).
    assert _steps_and_val(fashion_mnist_dir, train_limit=300, val_size=100) == (3, 100)
    # Was: "cannot take 5000 validation samples from 3000": the default 5 000 are held
    # out of the 60 000, and 3 000 of the others train.
    assert _steps_and_val(fashion_mnist_dir, train_limit=3000) == (30, 5000)
    with pytest.raises(ConfigError, match=r"only 55000 training images are left after holding"):
        _steps_and_val(fashion_mnist_dir, train_limit=56000)


def test_eval_text_matrix_names_every_class_in_full(fashion_mnist_dir):
    import torch

    from resnetlab.data import load

    classes = list(load("fashion-mnist", "test", root=fashion_mnist_dir).classes)
    text = format_confusion(torch.eye(10, dtype=torch.int64) * 7, classes)
    rows = text.splitlines()[2:12]
    # Was cut at 9 characters: "T-shirt/t", "Ankle boo".
    assert [row.split("  ")[0].strip() for row in rows][:1] == ["T-shirt/top"]
    assert rows[9].lstrip().startswith("Ankle boot ")
    assert all(name in text for name in classes)
