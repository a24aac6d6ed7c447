"""``resnetlab models`` (the preset table) and ``resnetlab summary MODEL`` (a layer table).

Both build their networks on PyTorch's ``meta`` device: shapes and parameter counts are
exact, but no memory is allocated and nothing is computed, so even ResNet-1001 is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any

import torch

from resnetlab.errors import ConfigError
from resnetlab.models.presets import _instantiate, get_preset, list_presets, resnet_v2
from resnetlab.models.summary import count_parameters, model_summary
from resnetlab.utils.cli_args import add_override_option


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``models`` and ``summary`` subcommands."""
    p = subparsers.add_parser(
        "models",
        help="list the model presets",
        description="Table of every preset: name, family, depth, "
        "parameters and the input it was published for.",
    )
    p.add_argument("--family", help="only this family (resnet_v2, resnet_v1, plain, simple_cnn)")
    p.set_defaults(func=cmd_models)

    s = subparsers.add_parser(
        "summary",
        help="layer table of a model (Keras-like)",
        description="Print every layer of MODEL with its module path, "
        "output shape and parameters, then the totals.",
    )
    s.add_argument("model", metavar="MODEL", help="preset name (see `resnetlab models`)")
    s.add_argument("--in-channels", type=int, help="input channels (default: the preset's)")
    s.add_argument("--num-classes", type=int, help="classes (default: the preset's)")
    s.add_argument("--image-size", type=int, help="input side in pixels (default: the preset's)")
    s.add_argument(
        "--depth",
        type=int,
        default=None,
        help="fold rows deeper than this many path parts (2: one row per stack, 4: "
        "per unit, 6: per residual layer); default: every layer",
    )
    add_override_option(
        s,
        "override a config field, e.g. --set bottleneck_ratio=0.5 "
        "--set stack_shortcut=true (repeatable)",
    )
    s.set_defaults(func=cmd_summary)


# Words a yes/no field accepts on the command line (case-insensitive).
BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def parse_override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` with VALUE read as JSON where it can be (numbers, [1, 2], null), else text.

    true/false, yes/no and on/off (any case) are booleans; 1/0 stay numbers, which a yes/no
    field accepts too (see ``coerce_overrides``).
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r} must look like FIELD=VALUE, e.g. --set dropout=0.1")
    raw = raw.strip()
    if raw.lower() in BOOL_WORDS:
        return key.strip(), BOOL_WORDS[raw.lower()]
    try:
        value = json.loads("null" if raw.lower() == "null" else raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def parse_overrides(items: list[str], preset: str) -> dict[str, Any]:
    """Every ``--set FIELD=VALUE`` for model ``preset``, with 1/0 as yes/no where a field is."""
    return coerce_overrides(get_preset(preset).config, dict(parse_override(t) for t in items))


def coerce_overrides(config: object, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with 1/0 turned into True/False for the yes/no fields of ``config``.

    Anything else is left for the config to check, so ``residual=2`` or ``residual="maybe"``
    still fails there, naming the field.
    """
    hints = typing.get_type_hints(type(config))
    bools = {f.name for f in dataclasses.fields(config) if hints.get(f.name) is bool}
    return {
        k: (bool(v) if k in bools and type(v) is int and v in (0, 1) else v)
        for k, v in overrides.items()
    }


def cmd_models(args: argparse.Namespace) -> int:
    presets = [p for p in list_presets() if args.family in (None, p.family)]
    if not presets:
        raise ConfigError(
            f"--family {args.family!r} matches no preset; families are "
            f"{', '.join(sorted({p.family for p in list_presets()}))}"
        )
    rows = []
    for p in presets:
        with torch.device("meta"):
            params = count_parameters(_instantiate(p.config, p.name))
        c, h, w = p.input_size
        rows.append(
            (
                p.name,
                p.family,
                str(p.depth),
                f"{params:,}",
                f"{c}x{h}x{w}",
                str(p.num_classes),
                p.description,
            )
        )
    headers = ("name", "family", "depth", "params", "input", "classes", "description")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = {2, 3, 5}
    for r in [headers, *rows]:
        print(
            "  ".join(
                f"{v:>{w}}" if i in right else f"{v:<{w}}"
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    preset = get_preset(args.model)
    overrides = parse_overrides(args.overrides, preset.name)
    for field, value in (
        ("in_channels", args.in_channels),
        ("num_classes", args.num_classes),
        ("image_size", args.image_size),
    ):
        if value is not None:
            overrides[field] = value
    with torch.device("meta"):
        model = resnet_v2(preset.name, **overrides)
    print(model_summary(model, depth=args.depth))
    return 0
