"""Training images/s: our Trainer + TensorLoader vs a straightforward PyTorch loop.

    .venv/bin/python bench/bench_train_throughput.py                 # default model, batch 256
    .venv/bin/python bench/bench_train_throughput.py --images 16384 --rounds 3

Both sides train the same architecture (the default preset with the default recipe's
overrides) at the same batch size, with the same augmentation (random crop with 2 pixels
of padding, horizontal flip) on real Fashion-MNIST:

* ours: ``Trainer`` with the default ``TrainConfig`` (channels_last, logging every 20
  steps) fed by ``TensorLoader`` (whole split as one tensor, batched augmentation);
* peer: the textbook loop: a ``Dataset`` whose ``__getitem__`` transforms one sample
  (pad, crop, flip, normalise: what torchvision's transforms do, written out because
  torchvision is not installed here), a ``DataLoader`` (shuffle, ``--workers``), and
  ``loss.item()`` every step.

The sides alternate for ``--rounds`` rounds and the best round of each is kept, which
filters out most of the noise of a shared machine. The ratio is the number to read.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from resnetlab.data import Augment, TensorLoader, channel_stats, load
from resnetlab.models import DEFAULT_MODEL, create_model
from resnetlab.training.config import TrainConfig
from resnetlab.training.recipe import use_all_cores
from resnetlab.training.trainer import Trainer


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(DEFAULT_MODEL, in_channels=1, num_classes=10, image_size=28)


class PerSampleFMNIST(Dataset):
    """The usual per-sample pipeline: ToTensor, RandomCrop(28, padding=2), flip, Normalize."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float):
        self.images, self.labels, self.mean, self.std = images, labels, mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i].float().div(255)  # ToTensor: (1, 28, 28)
        x = F.pad(x, (2, 2, 2, 2))  # RandomCrop padding=2
        top, left = torch.randint(0, 5, (2,)).tolist()
        x = x[:, top : top + 28, left : left + 28]
        if torch.rand(()) < 0.5:  # RandomHorizontalFlip
            x = x.flip(-1)
        x = (x - self.mean) / self.std  # Normalize
        return x, self.labels[i]


def ours(images, labels, mean, std, batch_size: int, precision: str) -> float:
    """Images/s of the second epoch of a two-epoch fit (the first warms up)."""
    cfg = TrainConfig(
        epochs=2, batch_size=batch_size, val_size=0, device="cpu", precision=precision
    )
    loader = TensorLoader(
        images,
        labels,
        batch_size,
        shuffle=True,
        augment=Augment(crop_padding=2, flip=True),
        mean=mean,
        std=std,
        channels_last=cfg.channels_last,
        drop_last=True,
    )
    trainer = Trainer(make_model(), loader, config=cfg)
    trainer.fit()
    n = len(loader) * batch_size
    return n / trainer.history[1]["epoch_time"]


def peer(images, labels, mean, std, batch_size: int, workers: int) -> float:
    ds = PerSampleFMNIST(images, labels, mean[0], std[0])
    loader = DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    model = make_model()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    rate = 0.0
    for _epoch in range(2):
        model.train()
        t0 = time.perf_counter()
        n = 0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()  # the usual per-step logging
            n += x.shape[0]
        rate = n / (time.perf_counter() - t0)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader workers of the peer (default 0: this is a 2-core box)",
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    cores = use_all_cores()
    ds = load("fashion-mnist", "train", root=args.data_dir)
    images, labels = ds.images[: args.images], ds.labels[: args.images]
    mean, std = channel_stats(images)
    print(
        f"{DEFAULT_MODEL}, batch "
        f"{args.batch_size}, {len(images)} images/epoch, torch {torch.__version__}, "
        f"{cores} threads, load average {os.getloadavg()[0]:.1f}"
    )
    best = {"ours (default: precision auto)": 0.0, "ours (fp32)": 0.0, "peer (fp32)": 0.0}
    for r in range(args.rounds):
        rates = {
            "ours (default: precision auto)": ours(
                images, labels, mean, std, args.batch_size, "auto"
            ),
            "ours (fp32)": ours(images, labels, mean, std, args.batch_size, "fp32"),
            "peer (fp32)": peer(images, labels, mean, std, args.batch_size, args.workers),
        }
        for k, v in rates.items():
            best[k] = max(best[k], v)
        print(
            f"round {r + 1}: " + "   ".join(f"{k} {v:.0f} img/s" for k, v in rates.items()),
            flush=True,
        )
    peer_rate = best["peer (fp32)"]
    print(f"\npeer: DataLoader + per-sample transforms, {args.workers} workers, fp32, NCHW")
    for k, v in best.items():
        print(f"best {k:<32} {v:7.0f} img/s   ratio to peer {v / peer_rate:.2f}")
    print(f"(load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
