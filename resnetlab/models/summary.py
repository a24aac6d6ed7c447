"""A Keras-like summary: one row per layer (path, type, output shape, parameters) and totals.

Output shapes come from one forward pass of a single sample in eval mode with hooks on
every module (the model's training mode is restored afterwards). Build the model under
``torch.device("meta")`` to get shapes and counts of huge nets without memory or compute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from resnetlab.errors import ConfigError


@dataclass(frozen=True)
class SummaryRow:
    path: str  # e.g. "stacks.2.units.0.layers.1.conv"
    type: str  # class name, e.g. "Conv2d"
    output_shape: tuple[int, ...] | None  # per sample (no batch dimension); None if not run
    params: int  # parameters of this module and its children


@dataclass
class Summary:
    """Rows plus totals; ``str(summary)`` is the table ``resnetlab summary`` prints."""

    title: str
    input_size: tuple[int, ...]
    rows: list[SummaryRow] = field(default_factory=list)
    trainable: int = 0
    non_trainable: int = 0
    buffers: int = 0  # BatchNorm running statistics (Keras counts these)
    # Conv and Linear parameters only: what the ResNet papers count (ResNet-1001's "10.2M").
    conv_fc_weights: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def row(self, path: str) -> SummaryRow:
        for r in self.rows:
            if r.path == path:
                return r
        raise KeyError(path)

    def __str__(self) -> str:
        def shape(s: tuple[int, ...] | None) -> str:
            return "-" if s is None else "(" + ", ".join(map(str, s)) + ")"

        headers = ("Layer (path)", "Type", "Output shape", "Param #")
        cells = [(r.path, r.type, shape(r.output_shape), f"{r.params:,}") for r in self.rows]
        widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]

        def line(c: Sequence[str]) -> str:
            return (
                f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}  "
                f"{c[3]:>{widths[3]}}"
            )

        rule = "=" * (sum(widths) + 6)
        out = [
            f"Model: {self.title}   input (C, H, W) = {shape(self.input_size)}",
            rule,
            line(headers),
            rule,
        ]
        out += [line(c) for c in cells]
        out += [
            rule,
            f"Total params: {self.total:,}",
            f"Trainable params: {self.trainable:,}",
            f"Non-trainable params: {self.non_trainable:,}",
            f"Conv + linear weights (the papers' count, no BatchNorm): {self.conv_fc_weights:,}",
            f"Buffers (BatchNorm running statistics, not parameters): {self.buffers:,}",
        ]
        return "\n".join(out)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _resolved_input_size(model: nn.Module, input_size: Sequence[int] | None) -> tuple[int, ...]:
    """``input_size`` as ints, from the model's config when not given; checked to be (C, H, W)."""
    if input_size is None:
        config = getattr(model, "config", None)
        if config is None:
            raise ConfigError(
                "model_summary needs input_size=(C, H, W) for a model without .config"
            )
        input_size = (config.in_channels, config.image_size, config.image_size)
    size = tuple(int(s) for s in input_size)
    if len(size) != 3 or min(size) < 1:
        raise ConfigError(f"input_size={size!r} must be (C, H, W) with positive sizes")
    return size


def _rows_to_show(model: nn.Module, depth: int | None) -> list[tuple[str, nn.Module]]:
    """(path, module) of every row: the leaves, or the modules at ``depth`` (and shallower
    leaves)."""
    chosen: list[tuple[str, nn.Module]] = []
    for path, module in model.named_modules():
        if not path:
            continue
        level = path.count(".") + 1
        leaf = next(module.children(), None) is None
        if (depth is None and leaf) or (
            depth is not None and (level == depth or (leaf and level < depth))
        ):
            chosen.append((path, module))
    return chosen


def _trace(
    model: nn.Module, input_size: tuple[int, ...]
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """One forward pass of one zero sample in eval mode, hooks on every module.

    Returns (path -> output shape per sample of the modules that returned a tensor,
    path -> index of its first call, for every module that ran).
    """
    shapes: dict[str, tuple[int, ...]] = {}
    order: dict[str, int] = {}

    def hook_for(path: str) -> Callable[[nn.Module, object, object], None]:
        def hook(module: nn.Module, args: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                shapes[path] = tuple(output.shape[1:])
            order.setdefault(path, len(order))

        return hook

    handles = [m.register_forward_hook(hook_for(p)) for p, m in model.named_modules() if p]
    try:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(torch.zeros((1, *input_size), device=device, dtype=dtype))
        except RuntimeError as exc:
            raise ConfigError(
                f"model does not accept an input of size {input_size} (C, H, W): {exc}"
            ) from exc
        finally:
            model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return shapes, order


def _output_shape(
    path: str, shapes: dict[str, tuple[int, ...]], order: dict[str, int]
) -> tuple[int, ...] | None:
    """The output shape of the module at ``path`` per sample; None if it never ran."""
    shape = shapes.get(path)
    if shape is None:
        # A container whose children a unit calls one by one (the first layer of a unit
        # with a projection): its output is its last child's output.
        ran = [p for p in shapes if p.startswith(path + ".")]
        if ran:
            shape = shapes[max(ran, key=order.__getitem__)]
    return shape


def _default_title(model: nn.Module) -> str:
    """The class name, with the preset's name and the config's depth where known."""
    spec = getattr(model, "spec", None) or {}
    config = getattr(model, "config", None)
    title = type(model).__name__
    if spec.get("preset"):
        title = f"{spec['preset']} ({title})"
    if config is not None and hasattr(config, "depth"):
        title = (
            f"{title[:-1]}, depth {config.depth})"
            if title.endswith(")")
            else f"{title} (depth {config.depth})"
        )
    return title


def _conv_fc_weights(model: nn.Module) -> int:
    """Parameters of the Conv2d and Linear layers: what the ResNet papers count."""
    return sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
        for p in m.parameters(recurse=False)
    )


def model_summary(
    model: nn.Module,
    input_size: Sequence[int] | None = None,
    *,
    depth: int | None = None,
    title: str | None = None,
) -> Summary:
    """Summarise ``model`` for one input of ``input_size`` = (C, H, W).

    ``depth`` limits rows to module paths with at most that many dots + 1 parts (e.g. 2
    shows ``stacks.0`` level rows with their children's parameters folded in); ``None``
    lists every leaf layer. ``input_size`` defaults to the model's config.
    """
    size = _resolved_input_size(model, input_size)
    if depth is not None and depth < 1:
        raise ConfigError(f"depth={depth!r} must be >= 1 (or None for every layer)")
    chosen = _rows_to_show(model, depth)
    shapes, order = _trace(model, size)
    rows = [
        SummaryRow(
            path,
            type(module).__name__,
            _output_shape(path, shapes, order),
            count_parameters(module),
        )
        for path, module in chosen
    ]
    trainable = count_parameters(model, trainable_only=True)
    return Summary(
        title=_default_title(model) if title is None else title,
        input_size=size,
        rows=rows,
        trainable=trainable,
        non_trainable=count_parameters(model) - trainable,
        buffers=sum(b.numel() for _, b in model.named_buffers() if b.is_floating_point()),
        conv_fc_weights=_conv_fc_weights(model),
    )
