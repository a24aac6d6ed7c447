"""Feature maps: what each channel of one layer shows for one input image.

``feature_maps(model, "stacks.2.units.0.layers.1.conv", image)`` runs the model on the
image with a forward hook on that layer and returns its activations ``(C, H, W)``;
``plot_feature_maps`` draws all C maps as a grid (one tile per channel) above a bar chart
of the mean activation per map.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.inspect.layers import find_layer, unwrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class _StopForward(Exception):
    """Raised by a hook to skip the rest of the forward pass once the wanted layer ran."""


def _first_tensor(output: object) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ConfigError(f"layer output is a {type(output).__name__}, not a tensor")


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: Sequence[str], *, stop_after: bool = False, detach: bool = True
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forward passes inside the ``with`` block.

    With ``stop_after`` the forward pass ends (via an exception the block swallows) as soon
    as every requested layer has run: the rest of a deep network is not computed.
    """
    model = unwrap(model)
    outputs: dict[str, torch.Tensor] = {}
    wanted = set(layers)
    handles = []

    def make_hook(path: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            tensor = _first_tensor(output)
            outputs[path] = tensor.detach() if detach else tensor
            if stop_after and wanted.issubset(outputs):
                raise _StopForward

        return hook

    for path in layers:
        handles.append(find_layer(model, path).register_forward_hook(make_hook(path)))
    try:
        yield outputs
    except _StopForward:
        pass
    finally:
        for handle in handles:
            handle.remove()


def run_to(model: nn.Module, layer: str, x: torch.Tensor, *, detach: bool = True) -> torch.Tensor:
    """The output of ``layer`` for input ``x``; the layers after it are not computed."""
    with capture(model, [layer], stop_after=True, detach=detach) as out:
        model(x)
    if layer not in out:
        children = [f"{layer}.{name}" for name, _ in find_layer(model, layer).named_children()]
        hint = (
            f"its parent calls its parts one by one; use one of {', '.join(children)}"
            if children
            else "is it used by forward()?"
        )
        raise ConfigError(
            f"layer {layer!r} is not called as a whole in the forward pass of "
            f"{type(unwrap(model)).__name__} ({hint})"
        )
    return out[layer]


@dataclass(frozen=True)
class FeatureMaps:
    """The activations of one layer for one input image."""

    layer: str
    maps: torch.Tensor  # (C, H, W) float, on the CPU
    image: torch.Tensor  # (C_in, H, W) the input as the model saw it

    def __len__(self) -> int:
        return int(self.maps.shape[0])

    @property
    def means(self) -> np.ndarray:
        """Mean activation of every map, shape (C,)."""
        return self.maps.flatten(1).mean(1).numpy()


def feature_maps(model: nn.Module, layer: str, image: torch.Tensor) -> FeatureMaps:
    """Activations of ``layer`` for ``image`` ``(C, H, W)`` or ``(1, C, H, W)``, in eval mode.

    ``image`` must already be normalised the way the model was trained:
    :func:`resnetlab.inspect.sources.dataset_sample` gives a dataset image that way.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0)
    if image.dim() != 4 or image.shape[0] != 1:
        raise ConfigError(f"feature_maps takes one image (C, H, W), got shape {tuple(image.shape)}")
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        with torch.no_grad():
            out = run_to(model, layer, image.to(device))
    finally:
        model.train(was_training)
    if out.dim() != 4:
        raise ConfigError(
            f"layer {layer!r} gives shape {tuple(out.shape)}, not feature maps "
            "(B, C, H, W); choose a conv, norm, activation, unit or stack"
        )
    return FeatureMaps(layer, out[0].float().cpu(), image[0].float().cpu())


# -- drawing ---------------------------------------------------------------------------


def grid_shape(n: int, max_cols: int = 16) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for ``n`` tiles, at most ``max_cols`` wide."""
    cols = max(1, min(max_cols, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def tile_grid(
    tiles: np.ndarray, *, max_cols: int = 16, pad: int = 1, normalize: bool = True
) -> np.ndarray:
    """Arrange ``tiles`` ``(N, H, W)`` in one mosaic; gaps and unused cells are NaN.

    Each tile is scaled to [0, 1] on its own (``normalize``) so a weak map still shows its
    pattern; its strength is what the bar chart beside the grid shows.
    """
    n, h, w = tiles.shape
    rows, cols = grid_shape(n, max_cols)
    mosaic = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan, dtype=np.float32)
    for i in range(n):
        tile = tiles[i].astype(np.float32)
        if normalize:
            lo, hi = float(tile.min()), float(tile.max())
            tile = (tile - lo) / (hi - lo) if hi > lo else np.zeros_like(tile)
        r, c = divmod(i, cols)
        mosaic[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = tile
    return mosaic


def tile_at(
    mosaic: np.ndarray,
    index: int,
    tile_shape: tuple[int, int],
    *,
    max_cols: int,
    n: int,
    pad: int = 1,
) -> np.ndarray:
    """Cut tile ``index`` back out of a mosaic made by :func:`tile_grid`."""
    h, w = tile_shape
    _, cols = grid_shape(n, max_cols)
    r, c = divmod(index, cols)
    return mosaic[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w]


def image_for_display(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor → (H, W) or (H, W, 3) array scaled to [0, 1] for ``imshow``."""
    arr = image.detach().float().cpu().numpy()
    lo, hi = float(arr.min()), float(arr.max())
    arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return arr[0] if arr.shape[0] == 1 else np.transpose(arr[:3], (1, 2, 0))


def plot_feature_maps(
    fm: FeatureMaps, *, max_cols: int = 16, cmap: str = "viridis", title: str | None = None
) -> Figure:
    """The maps of ``fm`` as a grid (one tile per channel) and their means as a bar chart.

    The grid's mosaic is the image of the axes labelled ``"feature-maps"``; tile ``i``
    (row-major) is channel ``i``.
    """
    from matplotlib.figure import Figure

    n, h, w = fm.maps.shape
    rows, cols = grid_shape(n, max_cols)
    mosaic = tile_grid(fm.maps.numpy(), max_cols=max_cols)
    width = 11.0
    grid_h = width * 0.8 * (rows * (h + 1)) / (cols * (w + 1))
    fig = Figure(figsize=(width, grid_h + 3.2), layout="constrained")
    gs = fig.add_gridspec(2, 2, height_ratios=[max(grid_h, 1.5), 2.2], width_ratios=[1, 4])
    ax_in = fig.add_subplot(gs[0, 0])
    ax_in.imshow(image_for_display(fm.image), cmap="gray")
    ax_in.set_title("input")
    ax_in.axis("off")
    ax_grid = fig.add_subplot(gs[0, 1], label="feature-maps")
    cm = _cmap_with_background(cmap)
    ax_grid.imshow(mosaic, cmap=cm, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax_grid.set_title(f"{fm.layer}: {n} maps of {h}x{w} (each scaled to its own range)")
    ax_grid.axis("off")
    ax_bar = fig.add_subplot(gs[1, :], label="mean-activation")
    ax_bar.bar(np.arange(n), fm.means, width=0.85, color="tab:blue")
    ax_bar.axhline(0.0, color="black", linewidth=0.6)
    ax_bar.set_xlim(-0.6, n - 0.4)
    ax_bar.set_xlabel("map (channel)")
    ax_bar.set_ylabel("mean activation")
    if title:
        fig.suptitle(title)
    return fig


def _cmap_with_background(name: str):
    import matplotlib

    return matplotlib.colormaps[name].with_extremes(bad="white")
