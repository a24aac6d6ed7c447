"""The model graph view: stem → stacks → units → layers, with shapes, shortcuts and params.

``model_graph(model, (1, 28, 28))`` runs one sample through the model (eval mode, hooks on
every module) and returns a tree of :class:`GraphNode`. ``format_graph`` renders it as
indented text; ``plot_graph`` draws it as a block diagram in which every shortcut is an
arc beside the units it bridges (solid: identity, dashed: projection, wide arc on the
left: a stack shortcut). Models that are not ResNets (the simple CNN, your own module)
get a plain tree of their child modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.inspect.layers import unwrap

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Shape = tuple[int, ...]


@dataclass
class GraphNode:
    """One box of the graph: a stem, stack, unit, layer, shortcut, head or other module."""

    path: str  # module path, "" for the model itself
    kind: str  # "model", "stem", "stack", "unit", "layer", "shortcut", "head", "module"
    label: str  # what the box says, e.g. "unit 0 (bottleneck)"
    type: str  # class name
    params: int
    in_shape: Shape | None = None  # per sample, no batch dimension
    out_shape: Shape | None = None
    shortcut: str | None = None  # units and stacks: "identity", "projection 1x1/2", "none"
    detail: str = ""  # layers: "BN-ReLU-Conv 3x3/1 16->16"
    children: list[GraphNode] = field(default_factory=list)

    def walk(self):
        """This node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, kind: str) -> list[GraphNode]:
        """Every node of ``kind`` below (and including) this one, in order."""
        return [n for n in self.walk() if n.kind == kind]


# -- facts about modules ---------------------------------------------------------------


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _conv_text(conv: nn.Conv2d) -> str:
    k = conv.kernel_size[0]
    return f"{k}x{k}/{conv.stride[0]} {conv.in_channels}->{conv.out_channels}"


def shortcut_kind(shortcut: nn.Module | None) -> str:
    """ "none" (plain), "identity", or "projection KxK/S" for a conv shortcut."""
    if shortcut is None:
        return "none"
    if isinstance(shortcut, nn.Identity):
        return "identity"
    conv = getattr(shortcut, "conv", None)
    if isinstance(conv, nn.Conv2d):
        k = conv.kernel_size[0]
        return f"projection {k}x{k}/{conv.stride[0]}"
    return type(shortcut).__name__


def _layer_text(layer: nn.Module) -> str:
    """ "BN-ReLU-Conv 3x3/1 16->16" for a pre-activation layer, "Conv-BN-ReLU ..." for V1."""
    conv = getattr(layer, "conv", None)
    if not isinstance(conv, nn.Conv2d):
        return type(layer).__name__
    names = [n for n, _ in layer.named_children()]
    parts = []
    for n in names:
        child = getattr(layer, n)
        if isinstance(child, nn.Identity):
            continue
        if n == "conv":
            parts.append("Conv")
        elif n == "bn":
            parts.append(
                type(child)
                .__name__.replace("2d", "")
                .replace("BatchNorm", "BN")
                .replace("GroupNorm", "GN")
            )
        elif n == "act":
            parts.append(type(child).__name__)
    order = "-".join(parts) if parts else "Conv"
    return f"{order} {_conv_text(conv)}"


def _is_resnet(model: nn.Module) -> bool:
    stacks = getattr(model, "stacks", None)
    return isinstance(stacks, nn.ModuleList) and all(hasattr(s, "units") for s in stacks)


# -- building the tree -----------------------------------------------------------------


def _trace_shapes(model: nn.Module, input_size: Sequence[int]) -> dict[str, tuple[Shape, Shape]]:
    """(input shape, output shape) per module path, from one eval-mode forward pass."""
    shapes: dict[str, tuple[Shape, Shape]] = {}

    def hook_for(path: str):
        def hook(_m: nn.Module, args: tuple, output: object) -> None:
            x = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if isinstance(output, torch.Tensor) and path not in shapes:
                shapes[path] = (
                    tuple(x.shape[1:]) if x is not None else (),
                    tuple(output.shape[1:]),
                )

        return hook

    handles = [m.register_forward_hook(hook_for(p)) for p, m in model.named_modules()]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_size), device=device))
    except RuntimeError as exc:
        raise ConfigError(
            f"model does not accept an input of size {tuple(input_size)} (C, H, W): {exc}"
        ) from exc
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def model_graph(model: nn.Module, input_size: Sequence[int] | None = None) -> GraphNode:
    """The stack/unit/layer tree of ``model`` for one input of ``input_size`` (C, H, W)."""
    model = unwrap(model)
    config = getattr(model, "config", None)
    if input_size is None:
        if config is None or not hasattr(config, "image_size"):
            raise ConfigError("model_graph needs input_size=(C, H, W) for a model without .config")
        input_size = (config.in_channels, config.image_size, config.image_size)
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) != 3:
        raise ConfigError(f"input_size={input_size!r} must be one image's (C, H, W)")
    shapes = _trace_shapes(model, input_size)

    def node(path: str, module: nn.Module, kind: str, label: str, **extra) -> GraphNode:
        ins, outs = shapes.get(path, (None, None))
        if outs is None:  # a container whose children the parent calls one by one
            ran = [p for p in shapes if p.startswith(path + ".")]
            if ran:
                outs = shapes[ran[-1]][1]
        return GraphNode(
            path, kind, label, type(module).__name__, _params(module), ins, outs, **extra
        )

    spec = getattr(model, "spec", None) or {}
    title = spec.get("preset") or type(model).__name__
    root = node("", model, "model", title)
    root.in_shape = input_size
    if not _is_resnet(model):
        for name, child in model.named_children():
            root.children.append(_generic(name, child, node))
        return root

    root.children.append(node("stem", model.stem, "stem", "stem"))
    root.children[-1].children = [
        node(f"stem.{n}", c, "layer", n, detail=_conv_text(c) if isinstance(c, nn.Conv2d) else "")
        for n, c in model.stem.named_children()
        if not isinstance(c, nn.Identity)
    ]
    for i, stack in enumerate(model.stacks):
        s_path = f"stacks.{i}"
        bridge = getattr(stack, "shortcut", None)
        s_node = node(
            s_path,
            stack,
            "stack",
            f"stack {i}",
            shortcut=shortcut_kind(bridge) if bridge is not None else None,
        )
        for j, unit in enumerate(stack.units):
            u_path = f"{s_path}.units.{j}"
            unit_type = type(unit).__name__.replace("Unit", "").lower()
            u_node = node(
                u_path,
                unit,
                "unit",
                f"unit {j} ({unit_type})",
                shortcut=shortcut_kind(getattr(unit, "shortcut", None)),
            )
            for k, layer in enumerate(unit.layers):
                u_node.children.append(
                    node(
                        f"{u_path}.layers.{k}",
                        layer,
                        "layer",
                        f"layer {k}",
                        detail=_layer_text(layer),
                    )
                )
            if isinstance(unit.shortcut, nn.Module) and not isinstance(unit.shortcut, nn.Identity):
                u_node.children.append(
                    node(
                        f"{u_path}.shortcut",
                        unit.shortcut,
                        "shortcut",
                        "shortcut",
                        detail=u_node.shortcut,
                    )
                )
            s_node.children.append(u_node)
        if isinstance(stack.shortcut, nn.Module):
            s_node.children.append(
                node(
                    f"{s_path}.shortcut",
                    stack.shortcut,
                    "shortcut",
                    "stack shortcut",
                    detail=s_node.shortcut or "",
                )
            )
        root.children.append(s_node)
    root.children.append(
        node(
            "head",
            model.head,
            "head",
            "head",
            detail=f"pool -> Linear {model.head.fc.in_features}->{model.head.fc.out_features}",
        )
    )
    return root


def _generic(path: str, module: nn.Module, node) -> GraphNode:
    children = list(module.named_children())
    kind = "layer" if not children else "module"
    detail = _conv_text(module) if isinstance(module, nn.Conv2d) else ""
    if isinstance(module, nn.Linear):
        detail = f"{module.in_features}->{module.out_features}"
    n = node(path, module, kind, path.rsplit(".", 1)[-1], detail=detail)
    n.children = [_generic(f"{path}.{name}", c, node) for name, c in children]
    return n


# -- text ------------------------------------------------------------------------------


def _shape(s: Shape | None) -> str:
    return "-" if s is None else "(" + ", ".join(map(str, s)) + ")"


def format_graph(root: GraphNode, *, depth: int | None = None) -> str:
    """Indented tree: label, shortcut, output shape, parameters, module path.

    ``depth`` 1 shows stem/stacks/head, 2 adds units, None (default) every layer.
    """
    rows: list[tuple[str, str, str, str]] = []

    def add(n: GraphNode, prefix: str, last: bool, level: int) -> None:
        bits = [n.label]
        if n.shortcut is not None:
            bits.append(f"[{'stack ' if n.kind == 'stack' else ''}shortcut: {n.shortcut}]")
        if n.detail:
            bits.append(n.detail)
        rows.append(
            (
                prefix + ("└─ " if last else "├─ ") + "  ".join(bits),
                _shape(n.out_shape),
                f"{n.params:,}",
                n.path,
            )
        )
        if depth is not None and level >= depth:
            return
        for i, c in enumerate(n.children):
            add(c, prefix + ("   " if last else "│  "), i == len(n.children) - 1, level + 1)

    for i, c in enumerate(root.children):
        add(c, "", i == len(root.children) - 1, 1)
    headers = ("module", "output", "params", "path")
    widths = [
        max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(headers)
    ]
    lines = [
        f"{root.label}  input {_shape(root.in_shape)} -> output {_shape(root.out_shape)}  "
        f"params {root.params:,}",
        f"{headers[0]:<{widths[0]}}  {headers[1]:<{widths[1]}}  {headers[2]:>{widths[2]}}  "
        f"{headers[3]}",
    ]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in rows]
    return "\n".join(lines)


# -- picture ---------------------------------------------------------------------------

_STACK_COLOURS = ("#dbe9f6", "#fde4cf", "#dcefd9", "#eadcf2", "#f9dada", "#e9e9e9")


def _shown_units(units: list[GraphNode], max_units: int) -> list[GraphNode | int]:
    """Units to draw; a run of identical middle units becomes one "N more" marker."""
    if len(units) <= max_units:
        return list(units)
    head, tail = units[: max_units - 2], units[-1:]
    return [*head, len(units) - len(head) - len(tail), *tail]


# One row of the diagram: (kind, what it shows, stack index or -1). kind is "input",
# "stem", "unit", "head", "module" or "output"; a unit row's item is an int for the
# "N more units" marker.
_Row = tuple[str, GraphNode | int | None, int]

# Layout in data units: box height and the gap between boxes, left edge and box width.
_BOX_H, _GAP = 0.62, 0.38
_X0, _W = 1.0, 6.4


def _diagram_rows(root: GraphNode, max_units_per_stack: int) -> list[_Row]:
    """The boxes top to bottom: input, stem, each stack's (folded) units, head, output."""
    rows: list[_Row] = [("input", None, -1)]
    stacks = [c for c in root.children if c.kind == "stack"]
    if not stacks:  # not a ResNet: one box per top-level child
        for c in root.children:
            if c.type in ("ModuleList", "Sequential") and c.children:
                rows += [("module", g, -1) for g in c.children]
            else:
                rows.append(("module", c, -1))
    for c in root.children:
        if c.kind == "stem":
            rows.append(("stem", c, -1))
        elif c.kind == "stack":
            idx = stacks.index(c)
            rows += [("unit", u, idx) for u in _shown_units(c.find("unit"), max_units_per_stack)]
        elif c.kind == "head":
            rows.append(("head", c, -1))
    rows.append(("output", None, -1))
    return rows


def _box_text(root: GraphNode, row: _Row) -> tuple[str, str]:
    """(text, face colour) of one box."""
    kind, item, stack_idx = row
    if kind == "input":
        return f"input {_shape(root.in_shape)}", "white"
    if kind == "output":
        return f"output {_shape(root.out_shape)}", "white"
    if isinstance(item, int):
        return f"... {item} more units like these ...", "white"
    assert isinstance(item, GraphNode)
    colour = _STACK_COLOURS[stack_idx % len(_STACK_COLOURS)] if stack_idx >= 0 else "#f2f2f2"
    details = [
        c.detail.split(" ", 1)[-1] if kind == "unit" else c.detail
        for c in item.children
        if c.kind == "layer"
    ]
    layers = " | ".join(d for d in details if d)
    name = {"unit": f"stack {stack_idx} {item.label}", "module": item.path}.get(kind, item.label)
    text = f"{name}  {_shape(item.out_shape)}  {item.params:,} params"
    if layers:
        text += f"\n{layers}"
    return text, colour


def _draw_box(ax: Axes, y: float, text: str, colour: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(
        FancyBboxPatch(
            (_X0, y),
            _W,
            _BOX_H,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour,
            edgecolor="0.3",
            linewidth=0.8,
        )
    )
    ax.text(
        _X0 + _W / 2,
        y + _BOX_H / 2,
        text,
        ha="center",
        va="center",
        fontsize=6.5,
        family="monospace",
    )


def _draw_unit_shortcut(ax: Axes, y: float, shortcut: str) -> None:
    """An arc on the right of the unit's box: solid green identity, dashed red projection."""
    from matplotlib.patches import FancyArrowPatch

    dashed = shortcut != "identity"
    ax.add_patch(
        FancyArrowPatch(
            (_X0 + _W, y - _GAP / 2),
            (_X0 + _W, y + _BOX_H + _GAP / 2),
            connectionstyle="arc3,rad=-0.55",
            arrowstyle="-|>",
            mutation_scale=8,
            linestyle="--" if dashed else "-",
            color="tab:red" if dashed else "tab:green",
            lw=1.1,
        )
    )
    ax.text(
        _X0 + _W + 0.55,
        y + _BOX_H / 2,
        shortcut.replace("projection", "proj"),
        fontsize=6,
        va="center",
        color="tab:red" if dashed else "tab:green",
    )


def _draw_stack(ax: Axes, idx: int, stack: GraphNode, ys: list[float]) -> None:
    """A frame around the stack's unit boxes at ``ys`` and, if any, the stack's shortcut."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    top, bottom = min(ys) - _GAP / 3, max(ys) + _BOX_H + _GAP / 3
    ax.add_patch(
        FancyBboxPatch(
            (_X0 - 0.25, top),
            _W + 0.5,
            bottom - top,
            boxstyle="round,pad=0.02,rounding_size=0.1",
            fill=False,
            edgecolor=_STACK_COLOURS[idx % len(_STACK_COLOURS)],
            lw=2.0,
        )
    )
    if stack.shortcut in (None, "none"):
        return
    ax.add_patch(
        FancyArrowPatch(
            (_X0 - 0.3, top - _GAP / 2),
            (_X0 - 0.3, bottom + _GAP / 2),
            connectionstyle="arc3,rad=0.35",
            arrowstyle="-|>",
            mutation_scale=10,
            linestyle="--" if stack.shortcut != "identity" else "-",
            color="tab:purple",
            lw=1.6,
        )
    )
    ax.text(
        -1.55,
        (top + bottom) / 2,
        f"stack\nshortcut\n{stack.shortcut}",
        fontsize=6,
        va="center",
        color="tab:purple",
    )


def plot_graph(
    root: GraphNode, *, max_units_per_stack: int = 6, title: str | None = None
) -> Figure:
    """A block diagram of the graph (top to bottom) with the shortcuts drawn as arcs."""
    from matplotlib.figure import Figure

    rows = _diagram_rows(root, max_units_per_stack)
    height = len(rows) * (_BOX_H + _GAP)
    fig = Figure(figsize=(8.5, max(3.0, 0.52 * height + 0.8)), layout="constrained")
    ax = fig.add_subplot(label="graph")
    ax.set_xlim(-1.6, 10.4)
    ax.set_ylim(height + 0.2, -0.6)
    ax.axis("off")
    y_of = [r * (_BOX_H + _GAP) for r in range(len(rows))]
    for r, row in enumerate(rows):
        y = y_of[r]
        _draw_box(ax, y, *_box_text(root, row))
        if r:  # the arrow from the box above
            ax.annotate(
                "",
                xy=(_X0 + _W / 2, y),
                xytext=(_X0 + _W / 2, y_of[r - 1] + _BOX_H),
                arrowprops={"arrowstyle": "-|>", "color": "0.35", "lw": 0.8},
            )
        kind, item, _ = row
        if kind == "unit" and isinstance(item, GraphNode) and item.shortcut not in (None, "none"):
            _draw_unit_shortcut(ax, y, item.shortcut)

    for idx, stack in enumerate(c for c in root.children if c.kind == "stack"):
        ys = [y_of[r] for r, (kind, _item, s) in enumerate(rows) if kind == "unit" and s == idx]
        if ys:
            _draw_stack(ax, idx, stack, ys)
    legend = "arcs: green = identity shortcut, red dashed = projection, purple = stack shortcut"
    if not any(n.shortcut not in (None, "none") for n in root.walk()):
        legend = "no shortcuts: a plain network"
    fig.suptitle(title or f"{root.label}: {root.params:,} parameters\n{legend}", fontsize=9)
    return fig
