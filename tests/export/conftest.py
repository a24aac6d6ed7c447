"""Shared by the export tests: 64 real Fashion-MNIST test images and one tiny trained run."""

from __future__ import annotations

import pytest
import torch

import resnetlab
from resnetlab.data import load
from resnetlab.export import TensorBoardCallback


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
        callbacks=[TensorBoardCallback(tmp / "tb-live")],
        live=None,
    )
    return result, tmp / "runs.db", tmp / "tb-live"
