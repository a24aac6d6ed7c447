"""``load_model``: a checkpoint or a stored run, as a ready-to-use classifier.

The checkpoint carries everything needed: the architecture (``spec``), the weights (the
EMA ones when the run kept them), the normalisation the training data had (``mean``/
``std``), the dataset and its class names. :class:`TrainedModel` is an ``nn.Module`` in
eval mode: ``model(x)`` takes normalised float batches like the trained network, and
``model.predict(images)`` takes files, PIL images, arrays or uint8 tensors of any size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetlab.data.api import get_spec
from resnetlab.errors import ConfigError, ResnetlabError, StoreError
from resnetlab.inference.inputs import ImageLike, to_batch
from resnetlab.store import RunStore, default_store_path
from resnetlab.training.checkpoint import (
    load_checkpoint,
    model_from_checkpoint,
    resolve_checkpoint_path,
)
from resnetlab.training.tta import FlipAverage, uses_flips


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image: the best class and the ``top_k`` best with p."""

    label: str
    index: int
    probability: float
    top: tuple[tuple[str, float], ...]

    def __str__(self) -> str:
        return ", ".join(f"{name} {p:.3f}" for name, p in self.top)


class TrainedModel(nn.Module):
    """A trained network with what using it needs: classes, input size, normalisation."""

    def __init__(
        self,
        net: nn.Module,
        *,
        classes: list[str],
        input_size: tuple[int, int, int],
        mean: list[float],
        std: list[float],
        source: str = "",
        flips: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.classes = list(classes)
        self.input_size = tuple(input_size)  # (C, H, W) the network was trained on
        self.source = source
        # Predictions average each image with its mirror, as the run was evaluated
        # (TrainConfig.tta_flip); ``forward`` (and every export) is the plain network.
        self.flips = flips
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes)`` of a normalised float batch ``(N, C, H, W)``."""
        return self.net(x)

    def normalise(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` -> the float input the network was trained on."""
        return (batch.to(self.mean.device, torch.float32) / 255.0 - self.mean) / self.std

    @torch.no_grad()
    def probabilities(self, images: ImageLike | Iterable[ImageLike]) -> torch.Tensor:
        """Softmax probabilities ``(N, classes)`` for one or many images."""
        c, h, w = self.input_size
        batch = self.normalise(to_batch(images, c, (h, w)))
        net = FlipAverage(self.net) if self.flips else self.net
        return torch.softmax(net(batch).float(), dim=1).cpu()

    def predict(
        self, images: ImageLike | Iterable[ImageLike], *, top_k: int = 1
    ) -> list[Prediction]:
        """The predicted class of each image, with its ``top_k`` most likely classes."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k={top_k!r}: must be a positive number of classes")
        probs = self.probabilities(images)
        k = min(top_k, probs.shape[1])
        values, indices = probs.topk(k, dim=1)
        out = []
        for vals, idxs in zip(values.tolist(), indices.tolist(), strict=True):
            top = tuple((self.class_name(i), float(v)) for v, i in zip(vals, idxs, strict=True))
            out.append(Prediction(top[0][0], idxs[0], float(vals[0]), top))
        return out

    def class_name(self, index: int) -> str:
        return self.classes[index] if index < len(self.classes) else str(index)


def resolve_model_source(
    checkpoint_or_run: str | os.PathLike[str] | int, runs_db: str | os.PathLike[str] | None = None
) -> Path:
    """A checkpoint file from a file, a run folder, or a run id/name in the run store."""
    p = Path(str(checkpoint_or_run))
    if p.exists():
        return resolve_checkpoint_path(p)
    db = Path(runs_db) if runs_db else default_store_path()
    if not db.exists():
        raise ConfigError(
            f"{checkpoint_or_run}: no such checkpoint file or run folder (and no run store at "
            f"{db} to look it up as a run id/name)"
        )
    try:
        with RunStore(db, read_only=True) as store:
            run = store.get_run(str(checkpoint_or_run))
    except StoreError as exc:
        raise ConfigError(
            f"{checkpoint_or_run}: no such checkpoint file or folder, and {exc}"
        ) from None
    path = run.checkpoint_best or run.checkpoint_last
    if not path:
        raise ConfigError(f"run {run.id} ({run.name}) has no checkpoint")
    return Path(path)


def _classes(extra: Mapping[str, Any], num_classes: int) -> list[str]:
    saved = extra.get("classes")
    if saved:
        return [str(c) for c in saved]
    dataset = extra.get("dataset")
    if dataset:
        try:
            known = list(get_spec(str(dataset)).classes)
        except ResnetlabError:
            known = []
        if len(known) == num_classes:
            return known
    return [str(i) for i in range(num_classes)]


def load_model(
    checkpoint_or_run: str | os.PathLike[str] | int,
    *,
    runs_db: str | os.PathLike[str] | None = None,
    use_ema: bool = True,
    device: str | torch.device = "cpu",
) -> TrainedModel:
    """The trained model of a checkpoint file, run folder, or run id/name, in eval mode.

    ``runs_db``: the run store to look run ids up in (default ``./runs/resnetlab.db`` or
    ``$RESNETLAB_RUNS``). ``use_ema``: the EMA weights when the run kept them.
    """
    path = resolve_model_source(checkpoint_or_run, runs_db)
    state = load_checkpoint(path)
    net = model_from_checkpoint(state, use_ema=use_ema, source=path)
    spec_cfg = (state.get("spec") or {}).get("config") or {}
    extra = (state.get("config") or {}).get("extra") or {}
    channels = int(spec_cfg.get("in_channels", 1))
    size = int(spec_cfg.get("image_size", 28))
    num_classes = int(spec_cfg.get("num_classes", 10))
    mean = [float(v) for v in extra.get("mean") or [0.0] * channels]
    std = [float(v) for v in extra.get("std") or [1.0] * channels]
    model = TrainedModel(
        net,
        classes=_classes(extra, num_classes),
        input_size=(channels, size, size),
        mean=mean,
        std=std,
        source=str(path),
        flips=uses_flips(state.get("config") or {}),
    )
    return model.to(device).eval()
