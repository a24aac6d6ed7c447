"""Small real Fashion-MNIST subsets and the tiny model for the training tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch


@dataclass
class SmallData:
    train_x: torch.Tensor  # uint8 (N, 1, 28, 28)
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    root: str


@pytest.fixture(scope="session")
def small_fmnist(fashion_mnist_dir) -> SmallData:
    """The first 1024 training and 512 test images of the real Fashion-MNIST."""
    from resnetlab.data import channel_stats, load

    train = load("fashion-mnist", "train", root=fashion_mnist_dir)
    test = load("fashion-mnist", "test", root=fashion_mnist_dir)
    tx, ty = train.images[:1024].clone(), train.labels[:1024].clone()
    mean, std = channel_stats(tx)
    return SmallData(
        tx,
        ty,
        test.images[:512].clone(),
        test.labels[:512].clone(),
        mean,
        std,
        str(fashion_mnist_dir),
    )


@pytest.fixture
def make_loader(small_fmnist) -> Callable[..., object]:
    """TensorLoader over the first ``n`` small training images (real data, seeded order)."""
    from resnetlab.data import Augment, TensorLoader

    def make(
        n: int = 256,
        batch_size: int = 32,
        *,
        augment: bool = True,
        seed: int = 0,
        train: bool = True,
    ):
        x = small_fmnist.train_x[:n] if train else small_fmnist.test_x[:n]
        y = small_fmnist.train_y[:n] if train else small_fmnist.test_y[:n]
        return TensorLoader(
            x,
            y,
            batch_size,
            shuffle=train,
            augment=Augment(crop_padding=2, flip=True) if augment else None,
            mean=small_fmnist.mean,
            std=small_fmnist.std,
            drop_last=train,
            seed=seed,
        )

    return make


@pytest.fixture
def micro_model() -> Callable[..., torch.nn.Module]:
    """``resnetv2-micro`` for 28x28 grayscale, seeded."""
    from resnetlab.models import create_model

    def make(seed: int = 0, **overrides) -> torch.nn.Module:
        torch.manual_seed(seed)
        return create_model(
            "resnetv2-micro", in_channels=1, num_classes=10, image_size=28, **overrides
        )

    return make


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """One intra-op thread: these tiny models gain nothing from two, and on a shared
    2-core machine two OpenMP threads per process wait for each other at every op (10x
    slower under load). ``resnetlab.train`` honours OMP_NUM_THREADS."""
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
