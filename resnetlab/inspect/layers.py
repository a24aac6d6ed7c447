"""Finding layers by the paths that ``resnetlab summary`` prints.

A path such as ``stacks.2.units.0.layers.1.conv`` is the dotted name PyTorch gives the
sub-module (``model.get_submodule(path)``). Wrappers added by ``torch.compile``
(``_orig_mod.``) and ``DistributedDataParallel`` (``module.``) are looked through, so a
path is the same whether or not the model was wrapped.
"""

from __future__ import annotations

import difflib
import re

from torch import nn

from resnetlab.errors import ConfigError

# Prefixes that wrappers put in front of every parameter name.
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")

_UNIT_RE = re.compile(r"^(.*?units\.\d+)(?:\.|$)")
_STACK_RE = re.compile(r"^(.*?stacks\.\d+)(?:\.|$)")

GROUPINGS = ("layer", "unit", "stack")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside ``torch.compile`` / DDP wrappers (the model itself if unwrapped)."""
    while True:
        inner = getattr(model, "_orig_mod", None) or (
            model.module if isinstance(model, nn.parallel.DistributedDataParallel) else None
        )
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def clean_path(path: str) -> str:
    """``path`` without the prefixes of compile/DDP wrappers."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if path.startswith(prefix):
                path = path[len(prefix) :]
                changed = True
    return path


def find_layer(model: nn.Module, path: str) -> nn.Module:
    """The sub-module at ``path``; a ConfigError names close matches when it is not there."""
    model = unwrap(model)
    path = clean_path(path.strip())
    if path in ("", "."):
        return model
    try:
        return model.get_submodule(path)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"layer {path!r} not found in {type(model).__name__}{hint} "
            "(run `resnetlab summary MODEL` or `resnetlab inspect graph` to list the layer paths)"
        ) from None


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every 2-D convolution with its path, in the order the model defines them."""
    model = unwrap(model)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def group_of(path: str, by: str = "layer") -> str:
    """The group a layer path belongs to: itself, its residual unit or its residual stack.

    Layers outside any unit/stack (the stem, the head) form a group of their top-level
    module (``stem``, ``head``), so every conv layer is counted somewhere.
    """
    if by not in GROUPINGS:
        raise ConfigError(f"grouping {by!r} is not one of {', '.join(GROUPINGS)}")
    if by == "layer":
        return path
    match = (_UNIT_RE if by == "unit" else _STACK_RE).match(path)
    if match is None and by == "unit":
        match = _STACK_RE.match(path)
    if match is not None:
        return match.group(1)
    return path.split(".", 1)[0]
