"""``TensorLoader``: a whole split on the training device, batches made by indexing.

Modelled on airbench: the uint8 split is moved to the device once; each batch is one
index into it, one conversion to float and one batched augmentation (see
:mod:`resnetlab.data.augment`). There are no worker processes, no per-sample
``__getitem__`` and no collation.

Ordering: the permutation of an epoch depends only on ``(seed, epoch)``, so every rank of
a distributed job computes the same one and takes its own disjoint shard
(``perm[rank::world_size]``). Without ``drop_last`` the permutation is padded by wrapping
around so that every rank gets the same number of samples (like
``DistributedSampler``); with ``drop_last`` it is truncated instead and the last partial
batch is dropped. Each ``iter(loader)`` uses the current epoch and then advances it, so
epochs differ even when nobody calls :meth:`TensorLoader.set_epoch`; a trainer that
calls ``set_epoch(e)`` before each epoch gets exactly epoch ``e``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from resnetlab.data.augment import Augment, augment_batch, to_float
from resnetlab.errors import ConfigError
from resnetlab.utils.device import resolve_device

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads (seed, epoch, rank) apart


def _mix(*parts: int) -> int:
    value = 0
    for part in parts:
        value = (value * _MIX + int(part) + 1) % (1 << 63)
    return value


class TensorLoader:
    """Yields ``(x, y)`` batches: x float32 ``(B, C, H, W)`` normalised, y int64 ``(B,)``."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = True,
        augment: Augment | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if images.ndim != 4:
            raise ConfigError(
                f"TensorLoader: images must be (N, C, H, W), got shape {tuple(images.shape)}"
            )
        if labels.shape != (images.shape[0],):
            raise ConfigError(
                f"TensorLoader: {images.shape[0]} images but labels of shape {tuple(labels.shape)}"
            )
        if batch_size < 1:
            raise ConfigError(f"TensorLoader: batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(
                f"TensorLoader: need 0 <= rank < world_size, got rank={rank}, "
                f"world_size={world_size}"
            )
        if images.shape[0] == 0:
            raise ConfigError("TensorLoader: the split is empty")
        self.device = resolve_device(device)
        self.images = images.to(self.device)  # stays uint8: 4x smaller than float32
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        channels = images.shape[1]
        pixel = 255.0 if images.dtype == torch.uint8 else 1.0
        self.mean = tuple(float(m) for m in mean) if mean is not None else None
        self.std = tuple(float(s) for s in std) if std is not None else None
        for label, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and len(values) != channels:
                raise ConfigError(
                    f"TensorLoader: {label} has {len(values)} values for {channels} channels"
                )
        if self.std is not None and min(self.std) <= 0:
            raise ConfigError(f"TensorLoader: std must be > 0, got {self.std}")
        shift = torch.tensor(self.mean or (0.0,) * channels) * pixel
        scale = torch.tensor(self.std or (1.0,) * channels) * pixel
        self._shift = shift.view(1, channels, 1, 1).to(self.device, torch.float32)
        self._scale = scale.view(1, channels, 1, 1).to(self.device, torch.float32)

    @property
    def dataset_size(self) -> int:
        """Number of samples in the whole split (all ranks)."""
        return int(self.images.shape[0])

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch (after padding or truncation)."""
        n = self.dataset_size
        if self.drop_last and self.world_size > 1:
            return n // self.world_size
        return math.ceil(n / self.world_size)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s permutation and augmentation for the next iteration."""
        self.epoch = int(epoch)

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This rank's sample indices for ``epoch``, in order (CPU int64)."""
        n = self.dataset_size
        if self.shuffle:
            gen = torch.Generator().manual_seed(_mix(self.seed, epoch))
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        total = self.num_samples * self.world_size
        if total > n:  # pad by wrapping around so every rank gets num_samples
            order = order.repeat(math.ceil(total / n))
        order = order[:total]
        shard = order[self.rank :: self.world_size]
        if self.drop_last:
            shard = shard[: len(self) * self.batch_size]
        return shard

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = self.epoch_indices(epoch).to(self.device)
        gen = torch.Generator().manual_seed(_mix(self.seed, epoch, self.rank, 1))
        for start in range(0, len(indices), self.batch_size):
            sel = indices[start : start + self.batch_size]
            x = self.images[sel]  # (B, C, H, W) uint8
            y = self.labels[sel]
            if self.augment is not None:
                x = augment_batch(x, self.augment, gen, self._shift, self._scale)
            else:
                x = to_float(x, self._shift, self._scale)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y

    def __repr__(self) -> str:
        return (
            f"TensorLoader(n={self.dataset_size}, batch_size={self.batch_size}, "
            f"batches={len(self)}, shuffle={self.shuffle}, augment={self.augment}, "
            f"device='{self.device}', rank={self.rank}/{self.world_size})"
        )
