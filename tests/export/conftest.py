"""Shared by the export tests: 64 real Fashion-MNIST test images and one tiny trained run."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import resnetlab
from resnetlab.data import load
from resnetlab.export import TensorBoardCallback
from resnetlab.store import RunStore


@pytest.fixture(scope="package")
def test_images(fashion_mnist_dir) -> torch.Tensor:
    """The first 64 test images as uint8 ``(64, 1, 28, 28)``."""
    return load("fashion-mnist", "test", root=fashion_mnist_dir).images[:64]


@pytest.fixture(scope="package")
def trained_run(tmp_path_factory, fashion_mnist_dir):
    """One real (tiny) run, recorded in a store and live to TensorBoard: (result, db, tb)."""
    tmp = tmp_path_factory.mktemp("export_run")
    torch.set_num_threads(1)
    result = resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        epochs=2,
        batch_size=64,
        val_size=128,
        train_limit=640,
        test_limit=64,
        log_every=2,
        store=tmp / "runs.db",
        run_dir=str(tmp / "run"),
        # without the tensorboard extra the live test skips; the others still run
        callbacks=[TensorBoardCallback(tmp / "tb-live")]
        if importlib.util.find_spec("tensorboard")
        else [],
        live=None,
    )
    return result, tmp / "runs.db", tmp / "tb-live"


@pytest.fixture(scope="package")
def store_runs(trained_run):
    """The trained run plus a hand-made one with awkward values: (db, [run ids])."""
    result, db, _ = trained_run
    with RunStore(db) as store:
        run = store.create_run(
            "hand made",
            config={"lr": 0.05, "milestones": [1, 2], "extra": {"tag": "x", "deep": {"a": 1}}},
            model="plain-20",
            dataset="mnist",
        )
        store.log_metrics(run, 0, {"loss": 1.0}, time_s=1000.0)
        store.log_metrics(run, 1, {"loss": float("nan"), "acc": 0.5}, epoch=0, time_s=1001.25)
        store.log_metrics(run, 1, {"loss": 0.75}, time_s=1001.5)  # same step: last one wins
        store.log_metrics(run, 3, {"acc": 0.25}, epoch=1, time_s=1003.0)
        store.finish_run(run, "stopped", final_metrics={"acc": 0.25, "bad": float("inf")})
    return db, [result.run_id, run]
