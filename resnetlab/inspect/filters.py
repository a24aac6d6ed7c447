"""Filter patterns: the input each feature map reacts to most, found by gradient ascent.

Start from faint noise and repeatedly move the input along the gradient of the chosen
map's mean activation. Left alone this finds high-frequency noise that excites the map
but looks like nothing, so the usual regularisers keep the pattern readable:

* normalised gradients: each step has the same size whatever the gradient's scale,
  so deep layers (tiny gradients) and shallow ones (large) both move;
* jitter: the image is shifted by a few random pixels before each step, so the pattern
  must work at neighbouring positions and pixel-exact noise averages out (off by
  default: on 28x28 inputs one pixel is a big shift, and every stride-2 layer then
  samples other pixels, so a few dozen steps no longer raise the activation of an
  untrained or lightly trained net; turn it on for larger images or trained nets);
* blur: every few steps a small Gaussian blur removes the highest frequencies;
* decay: the image shrinks a little towards zero every step (an L2 prior).

The model is run in eval mode (batch-norm uses its running statistics), all N maps are
optimised together as one batch, and only the layers up to the chosen one are computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.inspect.activations import grid_shape, image_for_display, run_to
from resnetlab.inspect.layers import unwrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class FilterPatternConfig:
    """How the gradient ascent runs."""

    # Enough for a clear pattern in a small CNN; deep layers of big nets like 100-200.
    steps: int = 64
    # Size of one step in input units (inputs are normalised, so ~1 is the data's std).
    step_size: float = 0.1
    # Random shift in pixels before each step; 0 (default) turns jitter off, see above.
    jitter: int = 0
    # Blur every this many steps (0 turns blur off); sigma of the Gaussian in pixels.
    blur_every: int = 4
    blur_sigma: float = 0.5
    # Fraction the image shrinks towards 0 each step (0 turns decay off).
    decay: float = 0.01
    # Std of the starting noise: faint, so the pattern is what the ascent adds.
    noise_std: float = 0.1
    # Inputs stay inside [-clip, clip], a plausible range for normalised images.
    clip: float = 3.0
    # Seed of the starting noise and the jitter, so a result can be reproduced.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"FilterPatternConfig.steps must be >= 1, got {self.steps}")
        if self.step_size <= 0:
            raise ConfigError(f"FilterPatternConfig.step_size must be > 0, got {self.step_size}")
        if not 0 <= self.decay < 1:
            raise ConfigError(f"FilterPatternConfig.decay must be in [0, 1), got {self.decay}")
        if self.jitter < 0 or self.blur_every < 0:
            raise ConfigError("FilterPatternConfig.jitter and blur_every must be >= 0")


@dataclass(frozen=True)
class FilterPatterns:
    """The optimised inputs for ``channels`` of ``layer`` and how much they excite them."""

    layer: str
    channels: list[int]
    images: torch.Tensor  # (N, C_in, H, W) the patterns, normalised input space
    start_activation: np.ndarray  # (N,) mean activation of each map for the starting noise
    final_activation: np.ndarray  # (N,) the same for the final pattern


def _gaussian_kernel(sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    radius = max(1, int(round(2 * sigma)))
    xs = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k1 = torch.exp(-(xs**2) / (2 * sigma**2))
    k1 = k1 / k1.sum()
    k2 = torch.outer(k1, k1)
    return k2.expand(channels, 1, *k2.shape).contiguous()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    pad = kernel.shape[-1] // 2
    return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), kernel, groups=x.shape[1])


def map_means(
    model: nn.Module, layer: str, x: torch.Tensor, channels: Sequence[int], *, detach: bool = True
) -> torch.Tensor:
    """Mean activation of map ``channels[i]`` of ``layer`` for input ``x[i]``, shape (N,)."""
    out = run_to(model, layer, x, detach=detach)
    if out.dim() != 4:
        raise ConfigError(f"layer {layer!r} gives shape {tuple(out.shape)}, not feature maps")
    idx = torch.as_tensor(list(channels), device=out.device)
    picked = out[torch.arange(out.shape[0], device=out.device), idx]  # (N, H, W)
    return picked.flatten(1).mean(1)


def filter_patterns(
    model: nn.Module,
    layer: str,
    channels: Sequence[int] | int,
    input_shape: Sequence[int],
    config: FilterPatternConfig | None = None,
) -> FilterPatterns:
    """Gradient-ascent patterns for ``channels`` (or the first N maps if an int) of ``layer``.

    ``input_shape`` is one input's ``(C, H, W)``, e.g. ``(1, 28, 28)`` for Fashion-MNIST.
    """
    cfg = config or FilterPatternConfig()
    base = unwrap(model)
    param = next(base.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    if len(input_shape) != 3:
        raise ConfigError(f"input_shape is one image's (C, H, W), got {tuple(input_shape)}")

    was_training = base.training
    base.eval()
    requires = [p.requires_grad for p in base.parameters()]
    for p in base.parameters():  # only the input is optimised; skip weight gradients
        p.requires_grad_(False)
    try:
        gen = torch.Generator().manual_seed(cfg.seed)
        probe = torch.zeros(1, *input_shape, device=device)
        n_maps = run_to(base, layer, probe).shape[1]
        if isinstance(channels, int):
            channels = list(range(min(channels, n_maps)))
        channels = [int(c) for c in channels]
        bad = [c for c in channels if not 0 <= c < n_maps]
        if bad or not channels:
            raise ConfigError(
                f"layer {layer!r} has maps 0..{n_maps - 1}; cannot show {bad or 'none'}"
            )

        n = len(channels)
        x = (torch.randn(n, *input_shape, generator=gen) * cfg.noise_std).to(device)
        with torch.no_grad():
            start = map_means(base, layer, x, channels).cpu().numpy()
        kernel = (
            _gaussian_kernel(cfg.blur_sigma, input_shape[0], device) if cfg.blur_every else None
        )
        for step in range(cfg.steps):
            if cfg.jitter:
                dy, dx = (
                    int(v) for v in torch.randint(-cfg.jitter, cfg.jitter + 1, (2,), generator=gen)
                )
                x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            x.requires_grad_(True)
            objective = map_means(base, layer, x, channels, detach=False).sum()
            (grad,) = torch.autograd.grad(objective, x)
            with torch.no_grad():
                # Normalise per image: every pattern moves by the same amount each step.
                scale = grad.flatten(1).std(1).clamp_min(1e-12).view(-1, 1, 1, 1)
                x = x.detach() + cfg.step_size * grad / scale
                if cfg.jitter:
                    x = torch.roll(x, shifts=(-dy, -dx), dims=(2, 3))
                if cfg.decay:
                    x = x * (1.0 - cfg.decay)
                if kernel is not None and (step + 1) % cfg.blur_every == 0 and step + 1 < cfg.steps:
                    x = _blur(x, kernel)
                x = x.clamp(-cfg.clip, cfg.clip)
        with torch.no_grad():
            final = map_means(base, layer, x, channels).cpu().numpy()
    finally:
        for p, r in zip(base.parameters(), requires, strict=True):
            p.requires_grad_(r)
        base.train(was_training)
    return FilterPatterns(layer, channels, x.detach().cpu(), start, final)


def plot_filter_patterns(
    fp: FilterPatterns, *, max_cols: int = 8, title: str | None = None
) -> Figure:
    """The patterns as an image grid, each titled with its map and final mean activation."""
    from matplotlib.figure import Figure

    n = len(fp.channels)
    rows, cols = grid_shape(n, max_cols)
    fig = Figure(figsize=(1.6 * cols, 1.75 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.set_label(f"map {fp.channels[i]}")
        gray = fp.images.shape[1] == 1
        ax.imshow(image_for_display(fp.images[i]), cmap="gray" if gray else None)
        ax.set_title(f"map {fp.channels[i]}\nact {fp.final_activation[i]:.2g}", fontsize=8)
    fig.suptitle(title or f"filter patterns of {fp.layer} (gradient ascent from noise)")
    return fig
