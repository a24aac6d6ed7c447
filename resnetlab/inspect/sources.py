"""Where inspected models and images come from: checkpoints, presets and dataset samples.

A model to inspect is a checkpoint file (or run folder) whose ``spec`` rebuilds the
architecture, or a preset name (fresh weights: what the network looks like before any
training). An input image is one sample of a dataset split, normalised the way the
trainer normalised it (per-channel mean/std of the training split, unless the
checkpoint recorded its own).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetlab.data import ImageDataset, channel_stats, load
from resnetlab.errors import ConfigError
from resnetlab.models import create_model
from resnetlab.training.checkpoint import load_checkpoint, model_from_checkpoint


@dataclass(frozen=True)
class Sample:
    """One normalised input image and what it is."""

    image: torch.Tensor  # (C, H, W) float, normalised
    label: int
    class_name: str
    index: int
    dataset: str


def load_model(
    source: str | os.PathLike[str],
    *,
    in_channels: int = 1,
    image_size: int = 28,
    num_classes: int = 10,
) -> tuple[nn.Module, dict[str, Any]]:
    """A model in eval mode from a checkpoint path/run folder, or a fresh preset by name.

    Returns ``(model, checkpoint data)``; the data is empty for a preset.
    """
    path = Path(source)
    if path.exists():
        data = load_checkpoint(path)
        return model_from_checkpoint(data, source=path), data
    try:
        model = create_model(
            str(source), in_channels=in_channels, num_classes=num_classes, image_size=image_size
        )
    except ConfigError as exc:
        raise ConfigError(
            f"{source!r} is neither a checkpoint file/run folder nor a model preset ({exc})"
        ) from None
    return model.eval(), {}


def input_shape_of(model: nn.Module, default: Sequence[int] = (1, 28, 28)) -> tuple[int, int, int]:
    """(C, H, W) the model was built for (from its config), else ``default``."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "in_channels") and hasattr(config, "image_size"):
        return (int(config.in_channels), int(config.image_size), int(config.image_size))
    c, h, w = default
    return int(c), int(h), int(w)


def _normalisation(
    checkpoint: Mapping[str, Any], dataset: ImageDataset
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    extra = (checkpoint.get("config") or {}).get("extra") or {}
    if extra.get("mean") is not None and extra.get("std") is not None:
        return tuple(extra["mean"]), tuple(extra["std"])
    train = (
        dataset
        if dataset.split == "train"
        else load(dataset.name, "train", root=dataset.source, progress=False)
    )
    return channel_stats(train)


def dataset_sample(
    dataset: str = "fashion-mnist",
    index: int = 0,
    *,
    split: str = "test",
    root: str | os.PathLike[str] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Sample:
    """Sample ``index`` of a dataset split as the model sees it (float, normalised)."""
    ds = load(dataset, split, root=root, progress=False)
    if not 0 <= index < len(ds):
        raise ConfigError(f"--index {index} is outside {ds.name}/{ds.split} (0..{len(ds) - 1})")
    mean, std = _normalisation(checkpoint or {}, ds)
    image = ds.images[index].float() / 255.0
    image = (image - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    label = int(ds.labels[index])
    return Sample(image, label, ds.classes[label], index, ds.name)
