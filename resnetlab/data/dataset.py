"""The in-memory form of a dataset split, and the two things done to whole splits.

An :class:`ImageDataset` is one ``uint8`` tensor ``(N, C, H, W)`` plus ``int64`` labels:
no per-sample objects, so carving a validation split or moving it to a device is one
tensor operation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from resnetlab.errors import ConfigError, DataError


@dataclass
class ImageDataset:
    """One split of an image classification dataset, held as tensors on the CPU."""

    # (N, C, H, W) uint8, contiguous: pixels exactly as stored in the files.
    images: torch.Tensor
    # (N,) int64 class indices into ``classes``.
    labels: torch.Tensor
    # Class names in label order; ``len(classes) == num_classes``.
    classes: list[str]
    # Public dataset name ("fashion-mnist", ...).
    name: str
    # Folder (or file) where the data was found.
    source: Path
    # "train", "test", "val" (carved from train) or "valid" (CelebA's official split).
    split: str = "train"
    # Per-sample extras a format provides, e.g. CelebA's full attribute matrix.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise DataError(
                f"{self.name}: images must be a uint8 tensor (N, C, H, W), got "
                f"{self.images.dtype} with shape {tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"{self.name}: {self.images.shape[0]} images but labels of shape "
                f"{tuple(self.labels.shape)}; each image needs exactly one label"
            )
        self.images = self.images.contiguous()
        self.labels = self.labels.to(torch.int64)
        self.source = Path(self.source)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def class_counts(self) -> list[int]:
        """Number of samples of each class, in class order."""
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, indices: torch.Tensor, split: str | None = None) -> ImageDataset:
        """A new dataset holding the samples at ``indices`` (copied, contiguous)."""
        extra = {
            k: v[indices] if isinstance(v, torch.Tensor) and len(v) == len(self) else v
            for k, v in self.extra.items()
        }
        return replace(
            self,
            images=self.images[indices].contiguous(),
            labels=self.labels[indices].clone(),
            split=split or self.split,
            extra=extra,
        )

    def __repr__(self) -> str:
        c, h, w = self.shape
        return (
            f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"shape=({c}, {h}, {w}), num_classes={self.num_classes}, source='{self.source}')"
        )


def split_validation(
    ds: ImageDataset, size: int | float = 5000, seed: int = 0
) -> tuple[ImageDataset, ImageDataset]:
    """Carve a deterministic validation split off ``ds``: returns ``(train, val)``.

    ``size`` is a count, or a fraction in (0, 1). The same ``(size, seed)`` always picks
    the same samples; both parts keep their original relative order.
    """
    n = len(ds)
    if isinstance(size, float) and not size.is_integer():
        if not 0 < size < 1:
            raise ConfigError(
                f"split_validation: size={size} is neither a count nor a "
                "fraction in (0, 1); use e.g. 5000 or 0.1"
            )
        count = round(n * size)
    else:
        count = int(size)
    if not 0 < count < n:
        raise ConfigError(
            f"split_validation: cannot take {count} validation samples from "
            f"{n} in {ds.name}/{ds.split}; choose a size between 1 and {n - 1}"
        )
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    val_idx, _ = perm[:count].sort()
    train_idx, _ = perm[count:].sort()
    return ds.subset(train_idx, "train"), ds.subset(val_idx, "val")


def channel_stats(
    ds: ImageDataset | torch.Tensor, chunk: int = 8192
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of the pixels, in [0, 1] units.

    Accumulates in float64 over chunks, so it never holds a float copy of the split.
    """
    images = ds.images if isinstance(ds, ImageDataset) else ds
    if images.ndim != 4 or images.shape[0] == 0:
        raise DataError(
            f"channel_stats needs a non-empty (N, C, H, W) tensor, got shape {tuple(images.shape)}"
        )
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].to(torch.float64).transpose(0, 1).reshape(c, -1)
        total += block.sum(1)
        total_sq += (block * block).sum(1)
    count = images.numel() // c
    mean = total / count
    var = (total_sq / count - mean * mean).clamp_min(0)
    scale = 255.0 if images.dtype == torch.uint8 else 1.0
    return (tuple((mean / scale).tolist()), tuple((var.sqrt() / scale).tolist()))
