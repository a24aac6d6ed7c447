"""Helpers for the model tests: small inputs per preset, hook-based tracing of a forward pass."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from resnetlab.models import PresetInfo, list_presets

PRESET_NAMES = [p.name for p in list_presets()]
RESNET_PRESETS = [p.name for p in list_presets() if p.family != "simple_cnn"]


def small_image_size(preset: PresetInfo) -> int:
    """A side that keeps every stride-2 stage valid but makes CPU passes cheap."""
    if preset.family == "simple_cnn":
        return preset.config.image_size
    return 32 if preset.config.stem_pool != "none" else 8


@dataclass
class Call:
    path: str
    module: nn.Module
    inputs: tuple
    output: object


@contextmanager
def trace(model: nn.Module, max_parts: int | None = None) -> Iterator[list[Call]]:
    """Record module calls of a forward pass, in execution order (hooks fire on exit).

    ``max_parts`` limits the hooks to paths of at most that many dotted parts (4 = units).
    """
    calls: list[Call] = []
    handles = []
    for path, module in model.named_modules():
        if max_parts is not None and path.count(".") >= max_parts:
            continue

        def hook(mod, args, out, path=path):
            calls.append(Call(path, mod, args, out))

        handles.append(module.register_forward_hook(hook))
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


def on_meta(fn, *args, **kwargs):
    """Build a model on the meta device: exact shapes and counts, no memory, no compute."""
    with torch.device("meta"):
        return fn(*args, **kwargs)


def _parameters_on_meta(preset: PresetInfo) -> int:
    from resnetlab.models import count_parameters, resnet_v2

    return count_parameters(on_meta(resnet_v2, preset.name))


# Nets too big to init and backprop at full width on 2 shared CPU cores in a fast suite; their
# runtime tests use the same depth and layout at 1/8 of the width, and their parameter counts
# are checked at full size on the meta device (test_models_architecture.py).
HEAVY = {p.name for p in list_presets() if _parameters_on_meta(p) > 3_000_000}


def runtime_overrides(preset: PresetInfo) -> dict:
    """Config overrides that keep a heavy preset's depth and layout but shrink its widths."""
    if preset.name not in HEAVY:
        return {}
    c = preset.config
    return {
        "stem_channels": max(4, c.stem_channels // 8),
        "stack_channels": tuple(max(4, w // 8) for w in c.stack_channels),
    }


@functools.cache
def traced_on_meta(name: str) -> tuple[nn.Module, dict, dict]:
    """A preset at its published input on the meta device, with the input and output of every
    stack and unit from one forward pass (cached: the deep nets cost seconds to trace)."""
    from resnetlab.models import get_preset, resnet_v2

    preset = get_preset(name)
    model = on_meta(resnet_v2, name)
    with trace(model, max_parts=4) as calls, torch.no_grad():
        model(torch.zeros(1, *preset.input_size, device="meta"))
    return model, {c.path: c.inputs[0] for c in calls}, {c.path: c.output for c in calls}
