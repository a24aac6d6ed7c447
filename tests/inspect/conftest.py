"""Fixtures of the inspection tests: real Fashion-MNIST batches and one tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One CPU thread: on a CPU shared with other jobs, two spinning threads run far slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fmnist_test(fashion_mnist_dir: Path):
    """The real Fashion-MNIST test split (uint8 tensors)."""
    from resnetlab.data import load

    return load("fashion-mnist", "test", root=fashion_mnist_dir, progress=False)


@pytest.fixture(scope="session")
def fmnist_batch(fmnist_test):
    """64 normalised real images and their labels."""
    from resnetlab.data import channel_stats

    mean, std = channel_stats(fmnist_test)
    x = fmnist_test.images[:64].float() / 255.0
    x = (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    return x, fmnist_test.labels[:64]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, fmnist_test):
    """resnetv2-micro trained 2 epochs on 256 real images with the gradient-norm callback,
    recorded in a real SQLite run store. Returns (trainer, callback, store path)."""
    from resnetlab.data import TensorLoader, channel_stats
    from resnetlab.inspect import GradientNormCallback
    from resnetlab.models import create_model
    from resnetlab.store import RunStore
    from resnetlab.training import TrainConfig, Trainer

    torch.set_num_threads(1)
    ds = fmnist_test
    mean, std = channel_stats(ds)
    train = TensorLoader(
        ds.images[:256], ds.labels[:256], 32, shuffle=True, mean=mean, std=std, drop_last=True
    )
    val = TensorLoader(
        ds.images[256:384], ds.labels[256:384], 128, shuffle=False, mean=mean, std=std
    )
    torch.manual_seed(0)
    model = create_model("resnetv2-micro", in_channels=1, image_size=28)
    folder = tmp_path_factory.mktemp("trained")
    store_path = folder / "runs.db"
    store = RunStore(store_path)
    callback = GradientNormCallback(every=3)
    config = TrainConfig(
        epochs=2,
        batch_size=32,
        lr=0.05,
        device="cpu",
        log_every=4,
        channels_last=False,
        val_size=0,
        extra={"mean": list(mean), "std": list(std)},
    )
    trainer = Trainer(
        model, train, val, config=config, callbacks=[callback], store=store, run_name="inspect-test"
    )
    trainer.fit()
    store.close()
    return trainer, callback, store_path
