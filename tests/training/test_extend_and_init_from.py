"""Extending a finished run (``--resume RUN --epochs MORE``) and fine-tuning a new run from a
run's weights (``--init-from``), on real Fashion-MNIST at a tiny budget."""

from __future__ import annotations

import pytest
import torch

import resnetlab
from resnetlab.cli import main
from resnetlab.errors import ConfigError
from resnetlab.store import RunStore
from resnetlab.training.callbacks import LambdaCallback
from resnetlab.training.checkpoint import load_checkpoint
from resnetlab.training.schedules import one_cycle

TINY = dict(
    batch_size=64,
    train_limit=320,  # 5 steps per epoch
    val_size=64,
    test_limit=128,
    log_every=1,
    live=None,
    progress=False,
    verbose=False,
)


def _lrs(store: RunStore, run_id: int) -> dict[int, float]:
    return {r.step: r.value for r in store.metrics(run_id, keys=["lr"])}


def test_a_finished_run_is_extended_with_a_new_schedule_over_the_added_epochs(
    fashion_mnist_dir, tmp_path, capsys
):
    db = tmp_path / "r.db"
    first = resnetlab.train(
        "resnetv2-micro", data_dir=fashion_mnist_dir, store=db, run_name="x", epochs=2, **TINY
    )
    assert first.status == "completed"
    # `resnetlab train --resume RUN --epochs 3`: was refused ("epochs=3 (checkpoint: 2)").
    rc = main(
        [
            "train",
            "--resume",
            "x",
            "--epochs",
            "3",
            "--runs-db",
            str(db),
            "--data-dir",
            str(fashion_mnist_dir),
            "--live",
            "none",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "resumed at epoch 2, step 10" in out and "5 steps/epoch x 3 epochs" in out
    with RunStore(db) as store:
        run = store.get_run("x")
        assert run.status == "completed" and run.id == first.run_id
        assert run.config["epochs"] == 3 and run.config["extra"]["schedule_restarts"] == [2]
        lrs = _lrs(store, run.id)
    assert sorted(lrs) == list(range(1, 16))  # one record: 10 steps, then 5 more
    # The first 10 steps keep their one-cycle over 10 steps; the added 5 get one of their
    # own (a warm restart: rising again from 4% of the peak).
    base = first.config.lr
    old, new = one_cycle(10), one_cycle(5)
    for step in range(1, 11):
        assert lrs[step] == pytest.approx(base * old(step - 1), rel=1e-6)
    for step in range(11, 16):
        assert lrs[step] == pytest.approx(base * new(step - 11), rel=1e-6)
    assert lrs[11] < lrs[12] and lrs[10] < lrs[12]
    # Extended again from Python, the restarts accumulate; fewer epochs are refused.
    again = resnetlab.train(data_dir=fashion_mnist_dir, store=db, resume="x", epochs=4, **TINY)
    assert len(again.history) == 4 and again.config.extra["schedule_restarts"] == [2, 3]
    with pytest.raises(ConfigError, match=r"epochs=2 \(checkpoint: 4; a run can be extended"):
        resnetlab.train(data_dir=fashion_mnist_dir, store=db, resume="x", epochs=2, **TINY)


def test_init_from_starts_a_new_run_from_the_weights_with_a_fresh_optimiser(
    fashion_mnist_dir, tmp_path, capsys
):
    db = tmp_path / "r.db"
    source = resnetlab.train(
        "resnetv2-micro", data_dir=fashion_mnist_dir, store=db, run_name="pre", epochs=2, **TINY
    )
    saved = load_checkpoint(source.checkpoint)
    seen: dict[str, object] = {}

    def at_start(trainer, logs):
        seen["step"] = trainer.step
        seen["weights"] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        seen["optimizer_state"] = len(trainer.optimizer.state)

    tuned = resnetlab.train(
        data_dir=fashion_mnist_dir,
        store=db,
        init_from="pre",
        run_name="tuned",
        epochs=1,
        lr=0.05,  # a new run: its own settings
        callbacks=[LambdaCallback(on_fit_start=at_start)],
        **TINY,
    )
    assert tuned.run_id != source.run_id and tuned.status == "completed"
    assert seen["step"] == 0 and seen["optimizer_state"] == 0  # fresh optimiser, schedule
    for key, value in saved["model"].items():
        assert torch.equal(seen["weights"][key], value), key
    assert tuned.config.extra["init_from"] == str(source.checkpoint)
    assert tuned.config.extra["model"] == "resnetv2-micro"
    with RunStore(db) as store:
        run = store.get_run("tuned")
        assert run.model == "resnetv2-micro" and run.config["lr"] == 0.05
        assert len(store.metrics(run.id, keys=["loss"])) == 5
    # From the CLI, by run folder; asking for another architecture is refused.
    base = ["train", "--runs-db", str(db), "--data-dir", str(fashion_mnist_dir)]
    base += ["--live", "none", "--no-progress", "--train-limit", "320", "--val-size", "64"]
    rc = main([*base, "--init-from", str(source.run_dir), "--epochs", "1", "--test-limit", "64"])
    assert rc == 0 and "test accuracy" in capsys.readouterr().out
    rc = main([*base, "simple-cnn", "--init-from", "pre"])
    assert rc == 2 and "architecture comes from the checkpoint" in capsys.readouterr().err
    rc = main([*base, "--init-from", "pre", "--resume", "pre"])
    assert rc == 2 and "give one of --resume and --init-from" in capsys.readouterr().err
    rc = main([*base, "--init-from", "no-such-run"])
    assert rc == 2 and "--init-from no-such-run: neither" in capsys.readouterr().err
