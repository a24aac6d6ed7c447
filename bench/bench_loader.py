"""Batches per second: TensorLoader vs torch DataLoader with per-sample augmentation.

    .venv/bin/python bench/bench_loader.py            # Fashion-MNIST if installed
    .venv/bin/python bench/bench_loader.py --threads 1 --workers 0 2
    .venv/bin/python bench/bench_loader.py --threads 1 --cifar-shape --workers 0 2

Both sides do the same work per epoch: random crop with zero padding, random horizontal
flip and per-channel normalisation, batch size 256. The peer is the usual recipe, a
``Dataset`` whose ``__getitem__`` augments one sample with tensor ops, wrapped in a
``torch.utils.data.DataLoader`` (``num_workers`` as given). TensorLoader does it per
batch on tensors. The ratio (TensorLoader / DataLoader) is what to compare across
machines; absolute numbers depend on the load of the machine.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from resnetlab.data import Augment, TensorLoader, channel_stats, load
from resnetlab.errors import DataError


class PerSampleAugmented(Dataset):
    """The usual way: crop + flip + normalise one image at a time in ``__getitem__``."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        padding: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        self.images, self.labels, self.padding = images, labels, padding
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.images[i].float() / 255  # (C, H, W)
        _, h, w = img.shape
        p = self.padding
        img = F.pad(img, (p, p, p, p))
        dy, dx = torch.randint(0, 2 * p + 1, (2,)).tolist()
        img = img[:, dy : dy + h, dx : dx + w]
        if torch.rand(()) < 0.5:
            img = img.flip(2)
        return (img - self.mean) / self.std, self.labels[i]


def rate(iterable, batches: int) -> float:
    """Batches per second over the first ``batches`` batches (after one warm-up batch)."""
    it = iter(iterable)
    next(it)
    start = time.perf_counter()
    done = 0
    for _ in range(batches):
        try:
            next(it)
        except StopIteration:
            it = iter(iterable)
            next(it)
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--cifar-shape",
        action="store_true",
        help="random 3x32x32 images (50,000) instead of Fashion-MNIST",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); on a loaded "
        "machine 1 avoids OpenMP threads waiting for busy cores",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.cifar_shape:
        images = torch.randint(0, 256, (50000, 3, 32, 32), dtype=torch.uint8)
        labels = torch.randint(0, 10, (50000,))
        name, padding = "random 3x32x32 (CIFAR shape)", 4
    else:
        try:
            ds = load("fashion-mnist", download=False)
        except DataError:
            raise SystemExit(
                "Fashion-MNIST not found; apt-get install dataset-fashion-mnist "
                "or pass --cifar-shape"
            ) from None
        images, labels, name, padding = ds.images, ds.labels, "Fashion-MNIST 1x28x28", 2
    mean, std = channel_stats(images)
    print(
        f"data: {name}, n={len(labels)}, batch {args.batch_size}, crop padding {padding} "
        f"+ flip + normalise, {args.batches} batches, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    ours = TensorLoader(
        images,
        labels,
        args.batch_size,
        augment=Augment(padding, flip=True),
        mean=mean,
        std=std,
        device=args.device,
    )
    ours_rate = rate(ours, args.batches)
    print(f"TensorLoader:                   {ours_rate:9.1f} batches/s")
    for workers in args.workers:
        peer = DataLoader(
            PerSampleAugmented(images, labels, padding, mean, std),
            batch_size=args.batch_size,
            shuffle=True,
            num_workers=workers,
            persistent_workers=workers > 0,
        )
        peer_rate = rate(peer, args.batches if workers else max(10, args.batches // 5))
        print(
            f"DataLoader (num_workers={workers}):   {peer_rate:9.1f} batches/s   "
            f"ratio TensorLoader/DataLoader = {ours_rate / peer_rate:.1f}x"
        )


if __name__ == "__main__":
    main()
