"""Batched augmentation on tensors: one call transforms a whole batch, no Python loop.

Random crop with padding is one padded tensor and two ``gather`` calls with per-sample
offsets; horizontal flip is ``torch.where`` over a batch mask; cutout multiplies by a
batch of square masks. Random numbers come from a CPU ``torch.Generator`` (so a seed
gives the same augmentation on every device) and are moved to the batch's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from resnetlab.errors import ConfigError


@dataclass(frozen=True)
class Augment:
    """Which augmentations a :class:`~resnetlab.data.TensorLoader` applies to each batch."""

    # Zero pixels added on each side before a random crop back to the original size
    # (4 is the classic CIFAR setting, 2 suits 28x28 images); 0 turns cropping off.
    crop_padding: int = 0
    # Mirror half of the images left-right; right for objects and faces, wrong for digits.
    flip: bool = False
    # Side of a square set to the mean (0 after normalisation) at a random place; 0 = off.
    cutout: int = 0

    def __post_init__(self) -> None:
        for name in ("crop_padding", "cutout"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"Augment.{name} must be an integer >= 0, got {value!r}")

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.cutout)


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Pad each image by ``padding`` zeros and crop it back at a random offset."""
    b, c, h, w = x.shape
    p = padding
    padded = x.new_zeros(b, c, h + 2 * p, w + 2 * p)
    padded[:, :, p : p + h, p : p + w] = x
    offsets = torch.randint(0, 2 * p + 1, (2, b), generator=gen).to(x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (B, W)
    x = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * p))  # (B, C, H, W+2p)
    return x.gather(3, cols[:, None, None, :].expand(b, c, h, w))  # (B, C, H, W)


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror a random half (in expectation) of the batch left-right."""
    mask = (torch.rand(x.shape[0], generator=gen) < 0.5).to(x.device)
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square (clipped at the border) at a random centre."""
    b, _, h, w = x.shape
    centres = torch.stack(
        [torch.randint(0, h, (b,), generator=gen), torch.randint(0, w, (b,), generator=gen)]
    ).to(x.device)
    top = centres[0] - size // 2
    left = centres[1] - size // 2
    rows = torch.arange(h, device=x.device)[None, :] - top[:, None]  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] - left[:, None]  # (B, W)
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
    return x * ~inside[:, None, :, :]


def augment_batch(
    x: torch.Tensor, aug: Augment, gen: torch.Generator, shift: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Raw batch -> augmented float32 batch ``(x - shift) / scale`` (see :func:`to_float`)."""
    if aug.crop_padding:
        x = random_crop(x, aug.crop_padding, gen)  # on uint8: 4x less memory traffic
    if aug.flip:
        x = random_flip(x, gen)
    x = to_float(x, shift, scale)
    if aug.cutout:
        x = cutout(x, aug.cutout, gen)
    return x


def to_float(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``(x - shift) / scale`` in float32.

    For uint8 pixels with per-channel ``mean``/``std`` in [0, 1] units, ``shift = 255 *
    mean`` and ``scale = 255 * std`` give ``(x / 255 - mean) / std`` in one pass.
    """
    return (x.to(torch.float32) - shift) / scale
