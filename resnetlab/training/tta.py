"""Test-time augmentation: average a classifier's logits over an image and its mirror."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class FlipAverage(nn.Module):
    """``(model(x) + model(flip(x))) / 2`` with ``flip`` the left-right mirror.

    A wrapper module, so :func:`~resnetlab.training.evaluate.evaluate` (and anything
    else that calls a model) uses it unchanged: ``evaluate(FlipAverage(model), loader)``.
    Right for data trained with horizontal flips (clothes, objects), wrong for digits.
    Both views go through the network as one batch of ``2B`` (eval mode: BatchNorm
    uses its running statistics, so the batch makeup does not change the result).
    Inputs that are not image batches ``(B, C, H, W)`` go through the model unchanged.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return self.model(x)
        both = self.model(torch.cat([x, x.flip(3)]))
        plain, mirrored = both.chunk(2)
        return 0.5 * (plain + mirrored)


def mirrors_batches(loader: object) -> bool:
    """Whether ``loader`` is known to mirror its batches: a
    :class:`~resnetlab.data.TensorLoader` built with ``Augment(flip=True)``, as ``train()``
    builds it. Any other loader says nothing about its augmentation: False."""
    from resnetlab.data import TensorLoader

    return isinstance(loader, TensorLoader) and bool(loader.augment and loader.augment.flip)


def uses_flips(config: Mapping[str, Any]) -> bool:
    """Whether a saved run's config (``TrainConfig.to_dict()``) evaluates with flips.

    Configs saved before ``tta_flip`` existed were evaluated without them."""
    return bool(config.get("tta_flip", False) and config.get("flip", True))
