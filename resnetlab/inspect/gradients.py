"""Gradient norms per layer: how a user sees vanishing gradients in a deep plain network.

``gradient_norms(model)`` reads the ``.grad`` that the last backward pass left on every
conv layer's weight and returns one L2 norm per layer (or per residual unit / stack,
the root of the summed squares of their layers). ``measure_gradient_norms`` does one
forward/backward on a batch first, so it works on a fresh model without any trainer.
``GradientNormCallback`` records them during training, as stream keys
``grad_norm/<layer path>`` that the live dashboard's heat map and the run store read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.inspect.layers import GROUPINGS, conv_layers, group_of, unwrap
from resnetlab.metrics.stream import MetricStream

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

KEY_PREFIX = "grad_norm/"


def gradient_norms(model: nn.Module, by: str = "layer") -> dict[str, float]:
    """L2 norm of the weight gradient of every conv layer (or unit/stack), in model order.

    Layers without a gradient (frozen, or not used in the last backward) are left out.
    One device sync for the whole model, not one per layer.
    """
    if by not in GROUPINGS:
        raise ConfigError(f"gradient norms by {by!r}: choose one of {', '.join(GROUPINGS)}")
    groups: dict[str, list[torch.Tensor]] = {}
    for path, conv in conv_layers(model):
        grad = conv.weight.grad
        if grad is None:
            continue
        # Squares in float64 (where the device has it): a vanished gradient of 1e-25 squares
        # to 1e-50, which float32 rounds to 0 and would report as "no gradient at all".
        wide = torch.float32 if grad.device.type == "mps" else torch.float64
        groups.setdefault(group_of(path, by), []).append(grad.detach().to(wide).pow(2).sum())
    if not groups:
        return {}
    sums = torch.stack([torch.stack(parts).sum() for parts in groups.values()])
    norms = sums.sqrt().tolist()  # the one sync
    return dict(zip(groups, norms, strict=True))


def measure_gradient_norms(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    by: str = "layer",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    train_mode: bool = True,
) -> dict[str, float]:
    """One forward/backward of ``model`` on a batch, then :func:`gradient_norms`.

    ``train_mode`` runs the model as training would (batch-norm uses batch statistics).
    The model's existing ``.grad`` values are put back afterwards, so calling this in the
    middle of someone's training loop does not disturb it.
    """
    base = unwrap(model)
    params = [p for p in base.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    was_training = base.training
    base.train(train_mode)
    try:
        for p in params:
            p.grad = None
        device = params[0].device if params else torch.device("cpu")
        loss = loss_fn(base(images.to(device)), labels.to(device))
        loss.backward()
        return gradient_norms(base, by)
    finally:
        for p, g in zip(params, saved, strict=True):
            p.grad = g
        base.train(was_training)


def plot_gradient_norms(norms: Mapping[str, float], *, title: str = "") -> Figure:
    """Bar chart (log scale) of gradient norms in model order, input on the left."""
    from matplotlib.figure import Figure

    names = list(norms)
    fig = Figure(figsize=(max(6.0, 0.14 * len(names) + 2.5), 4.2), layout="constrained")
    ax = fig.add_subplot(label="gradient-norms")
    ax.bar(range(len(names)), [norms[n] for n in names], color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("conv layer, input (left) to output (right)")
    ax.set_ylabel("‖grad‖ of the weights")
    step = max(1, len(names) // 24)
    ax.set_xticks(range(0, len(names), step), names[::step], rotation=90, fontsize=6)
    ax.grid(alpha=0.3, axis="y", which="both")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def main_path_ends(norms: Mapping[str, float]) -> tuple[str, str]:
    """The first and last entry of ``norms`` on the main path, input to output.

    Shortcut convs (a unit's or a stack's 1x1 projection, ``...shortcut.conv``) are left
    out: they sit beside the main path, and the last one can come after the last main-path
    layer in model order without being the network's last layer.
    """
    main = [k for k in norms if "shortcut" not in k.split(".")]
    if len(main) < 2:
        raise ConfigError(
            "need gradient norms of at least two layers on the main path "
            f"(not shortcuts) for a ratio; got {', '.join(norms) or 'none'}"
        )
    return main[0], main[-1]


def norm_ratio(norms: Mapping[str, float]) -> float:
    """First layer's gradient norm over the last layer's (tiny: the gradient vanished).

    First and last are the ends of the main path (see :func:`main_path_ends`): the stem's
    conv and the last residual layer's conv, never a projection shortcut.
    """
    first, last = main_path_ends(norms)
    return norms[first] / norms[last] if norms[last] else float("inf")


class TrainerView(Protocol):
    """What :class:`GradientNormCallback` reads of the trainer (and ``epoch`` if it has one)."""

    model: nn.Module
    step: int  # optimizer steps done
    stream: MetricStream


@dataclass
class GradientNormCallback:
    """Record conv-layer gradient norms every ``every`` optimizer steps during training.

    Reads ``.grad`` in ``on_after_backward`` (after backward and clipping, before the
    optimizer step) and appends ``grad_norm/<path>`` keys to ``trainer.stream``. The
    record's step is the number of optimizer steps done before this gradient, so step 0
    is the gradient at initialisation. The trainer's store recorder copies the stream
    into the run store, so the norms are kept with the run like any other metric; the
    live dashboard's gradient-norm heat map reads the same keys.
    """

    # The live dashboard panel its records feed (training.callbacks.FeedsPanels).
    dashboard_panels: ClassVar[tuple[str, ...]] = ("grad_norms",)
    # Steps between two records: each record costs one device sync and a few kernels.
    every: int = 10
    # "layer" (every conv), "unit" (one value per residual unit) or "stack".
    by: str = "layer"

    def __post_init__(self) -> None:
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"GradientNormCallback.every={self.every!r} must be an integer >= 1")
        if self.by not in GROUPINGS:
            raise ConfigError(
                f"GradientNormCallback.by={self.by!r}: choose one of {', '.join(GROUPINGS)}"
            )
        self.records = 0  # how many times norms were appended (for tests and progress)

    def on_after_backward(
        self, trainer: TrainerView, logs: Mapping[str, Any] | None = None
    ) -> None:
        step = int(trainer.step)
        if step % self.every:
            return
        norms = gradient_norms(trainer.model, self.by)
        if not norms:
            log.debug("step %d: no conv layer has a gradient; nothing recorded", step)
            return
        trainer.stream.append(
            step,
            {KEY_PREFIX + path: value for path, value in norms.items()},
            epoch=getattr(trainer, "epoch", None),
        )
        self.records += 1


def norms_from_stream(stream: MetricStream) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(layer paths, steps (T,), norms (L, T)) of the ``grad_norm/`` keys in a stream.

    Layers are in the order they were first recorded (the model's order); a layer missing
    at some step is NaN there.
    """
    seen: list[str] = stream.keys()
    keys = [k for k in seen if k.startswith(KEY_PREFIX)]
    series = [stream.series(k) for k in keys]
    steps = np.unique(np.concatenate([s for s, _ in series])) if series else np.empty(0)
    grid = np.full((len(keys), steps.size), np.nan)
    for row, (s, v) in enumerate(series):
        grid[row, np.searchsorted(steps, s)] = v
    return [k[len(KEY_PREFIX) :] for k in keys], steps, grid
