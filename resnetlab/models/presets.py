"""Named presets and the one function most code calls: ``create_model(name, ...)``.

A preset is a config with a name: the published CIFAR and ImageNet ResNet V2 layouts, their
ResNet V1 and plain twins, the CPU default for 28x28 images, and the baseline CNN.
``model.spec`` (stored in checkpoints) is enough for ``rebuild_model`` to rebuild the same
architecture without knowing the preset.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.models.config import SPEC_FORMAT, ResNetV2Config, check_fields, replace_config
from resnetlab.models.resnet import build_model
from resnetlab.models.simple_cnn import SimpleCNN, SimpleCNNConfig

# The CPU default for 28x28 grayscale images (Fashion-MNIST); see docs/models.md for why.
DEFAULT_MODEL = "resnetv2-mini-w48"
# The cheaper network of ``resnetlab train --quick`` (the default before width 48 paid).
QUICK_MODEL = "resnetv2-mini"
# The network of ``resnetlab train --best`` (the best-accuracy recipe, ~46 minutes there).
BEST_MODEL = "resnetv2-mini-w96"

CIFAR_DEPTHS = (20, 29, 56, 110, 164, 1001)  # 9n + 2 with n = 2, 3, 6, 12, 18, 111
BASELINE_DEPTHS = (20, 29, 56, 110, 164)  # plain-N and resnetv1-N twins


@dataclass(frozen=True)
class PresetInfo:
    """What ``resnetlab models`` shows about a preset."""

    name: str
    family: str  # "resnet_v2", "resnet_v1", "plain" or "simple_cnn"
    depth: int  # weighted layers on the main path, counted as He et al.
    description: str
    config: ResNetV2Config | SimpleCNNConfig  # at the preset's usual input (below)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """The usual input (C, H, W) the preset was published for."""
        c = self.config
        return (c.in_channels, c.image_size, c.image_size)

    @property
    def num_classes(self) -> int:
        return self.config.num_classes


def _cifar(depth: int, **fields: Any) -> ResNetV2Config:
    n, rest = divmod(depth - 2, 9)
    assert rest == 0, depth
    return ResNetV2Config(
        stack_units=(n, n, n), stack_channels=(64, 128, 256), stem_channels=16, **fields
    )


def _imagenet(units: tuple[int, ...], unit: str) -> ResNetV2Config:
    widths = (256, 512, 1024, 2048) if unit == "bottleneck" else (64, 128, 256, 512)
    return ResNetV2Config(
        in_channels=3,
        num_classes=1000,
        image_size=224,
        stem_channels=64,
        stem_kernel=7,
        stem_stride=2,
        stem_pool="max",
        stack_units=units,
        stack_channels=widths,
        unit=unit,
    )


def _build_presets() -> dict[str, PresetInfo]:
    presets: list[PresetInfo] = []

    def add(
        name: str, family: str, description: str, config: ResNetV2Config | SimpleCNNConfig
    ) -> None:
        presets.append(PresetInfo(name, family, config.depth, description, config))

    add(
        "resnetv2-micro",
        "resnet_v2",
        "tiny (two stacks of one basic unit, 8/16 maps) for fast tests",
        ResNetV2Config(
            in_channels=1,
            image_size=28,
            stem_channels=8,
            stack_units=(1, 1),
            stack_channels=(8, 16),
            unit="basic",
        ),
    )
    add(
        "resnetv2-mini",
        "resnet_v2",
        "CPU default for 28x28 grayscale: stride-2 stem, 3 stacks x 1 basic unit, "
        "32/64/128 maps, 14-7-4",
        # The stride-2 stem (28x28 -> 14x14 before the stacks) costs a few tenths of a
        # percent of accuracy and makes every epoch ~4x cheaper: what lets a 2-core CPU reach
        # 93% on Fashion-MNIST in minutes (docs/training.md, docs/bench/training.md).
        ResNetV2Config(
            in_channels=1,
            image_size=28,
            stem_channels=32,
            stem_stride=2,
            stack_units=(1, 1, 1),
            stack_channels=(32, 64, 128),
            unit="basic",
        ),
    )
    add(
        "resnetv2-mini-w48",
        "resnet_v2",
        "CPU default for 28x28 grayscale: resnetv2-mini at 48/96/192 maps, 14-7-4",
        # 1.5x the maps of resnetv2-mini (2.25x its FLOPs): at 32 maps that network is at
        # capacity (train accuracy ~ test accuracy ~ 0.93); at 48 it reaches 94% on
        # Fashion-MNIST in ~7 minutes on a 2-core CPU (docs/bench/training.md, ablation).
        ResNetV2Config(
            in_channels=1,
            image_size=28,
            stem_channels=48,
            stem_stride=2,
            stack_units=(1, 1, 1),
            stack_channels=(48, 96, 192),
            unit="basic",
        ),
    )
    add(
        "resnetv2-mini-w96",
        "resnet_v2",
        "best-accuracy recipe for 28x28 grayscale: resnetv2-mini at 96/192/384 maps, 14-7-4",
        # 2x the maps of the default (about 4x its FLOPs, 2.65x its step time on a 2-core
        # CPU): what ``resnetlab train --best`` trains for 40 epochs (docs/bench/training.md).
        ResNetV2Config(
            in_channels=1,
            image_size=28,
            stem_channels=96,
            stem_stride=2,
            stack_units=(1, 1, 1),
            stack_channels=(96, 192, 384),
            unit="basic",
        ),
    )
    for depth in CIFAR_DEPTHS:
        n = (depth - 2) // 9
        add(
            f"resnetv2-{depth}",
            "resnet_v2",
            f"He et al. CIFAR layout, 3 stacks x {n} bottleneck units, ratio 1/4",
            _cifar(depth),
        )
        add(
            f"resnetv2-{depth}-half",
            "resnet_v2",
            f"resnetv2-{depth} with bottleneck ratio 1/2 (Atienza)",
            _cifar(depth, bottleneck_ratio=0.5),
        )
    for depth in BASELINE_DEPTHS:
        add(
            f"resnetv1-{depth}",
            "resnet_v1",
            f"resnetv2-{depth} with post-activation units (ResNet V1, He et al. 2015)",
            _cifar(depth, activation_order="post"),
        )
        add(
            f"plain-{depth}",
            "plain",
            f"resnetv2-{depth} without any shortcut (the plain net of the same depth)",
            _cifar(depth, residual=False),
        )
    add(
        "resnetv2-18",
        "resnet_v2",
        "ImageNet layout, basic units 2-2-2-2, 64..512 maps",
        _imagenet((2, 2, 2, 2), "basic"),
    )
    add(
        "resnetv2-34",
        "resnet_v2",
        "ImageNet layout, basic units 3-4-6-3, 64..512 maps",
        _imagenet((3, 4, 6, 3), "basic"),
    )
    add(
        "resnetv2-50",
        "resnet_v2",
        "ImageNet layout, bottleneck 3-4-6-3, 256..2048 maps",
        _imagenet((3, 4, 6, 3), "bottleneck"),
    )
    add(
        "resnetv2-101",
        "resnet_v2",
        "ImageNet layout, bottleneck 3-4-23-3, 256..2048 maps",
        _imagenet((3, 4, 23, 3), "bottleneck"),
    )
    add(
        "resnetv2-152",
        "resnet_v2",
        "ImageNet layout, bottleneck 3-8-36-3, 256..2048 maps",
        _imagenet((3, 8, 36, 3), "bottleneck"),
    )
    add(
        "simple-cnn",
        "simple_cnn",
        "baseline: 2 x (3x3 conv, ReLU, 2x2 max-pool), Linear 128, dropout, Linear",
        SimpleCNNConfig(),
    )
    return {p.name: p for p in presets}


PRESETS: dict[str, PresetInfo] = _build_presets()


def list_presets() -> list[PresetInfo]:
    """Every preset, in the order ``resnetlab models`` shows them."""
    return list(PRESETS.values())


def get_preset(name: str) -> PresetInfo:
    """The preset called ``name``; unknown names raise ``ConfigError`` with close matches."""
    try:
        return PRESETS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(PRESETS), n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(
            f"unknown model {name!r}; {hint}`resnetlab models` lists every preset"
        ) from None


def preset_config(name: str, **overrides: Any) -> ResNetV2Config | SimpleCNNConfig:
    """The preset's config with ``overrides`` (config fields) applied."""
    preset = get_preset(name)
    try:
        return replace_config(preset.config, **overrides)
    except ConfigError as exc:
        raise ConfigError(f"model {name!r}: {exc}") from None


def _instantiate(config: ResNetV2Config | SimpleCNNConfig, name: str | None) -> nn.Module:
    model = build_model(config) if isinstance(config, ResNetV2Config) else SimpleCNN(config)
    model.spec["preset"] = name
    return model


def create_model(
    name: str,
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int = 32,
    **overrides: Any,
) -> nn.Module:
    """Build preset ``name`` for the given data; ``overrides`` are config fields.

    >>> model = create_model("resnetv2-56-half", in_channels=1, image_size=28, dropout=0.1)
    """
    config = preset_config(
        name, in_channels=in_channels, num_classes=num_classes, image_size=image_size, **overrides
    )
    return _instantiate(config, name)


def resnet_v2(preset: str = DEFAULT_MODEL, **overrides: Any) -> nn.Module:
    """Preset ``preset`` at its published input (e.g. 1000 classes, 224x224 for resnetv2-50)."""
    return _instantiate(preset_config(preset, **overrides), preset)


_FAMILIES: dict[str, type] = {"resnet": ResNetV2Config, "simple_cnn": SimpleCNNConfig}


def rebuild_model(spec: dict[str, Any]) -> nn.Module:
    """The architecture ``model.spec`` describes (fresh weights; load a state dict after)."""
    if not isinstance(spec, dict) or "family" not in spec or "config" not in spec:
        raise ConfigError(
            "model spec must be a dict with 'family' and 'config' (as stored in "
            f"model.spec); got {type(spec).__name__} with keys "
            f"{sorted(spec) if isinstance(spec, dict) else '-'}"
        )
    if spec.get("format", SPEC_FORMAT) != SPEC_FORMAT:
        raise ConfigError(
            f"model spec format {spec.get('format')!r} is not {SPEC_FORMAT}, the "
            "one this resnetlab reads; upgrade resnetlab to load it"
        )
    family = spec["family"]
    if family not in _FAMILIES:
        raise ConfigError(
            f"model spec family {family!r} is unknown; known: "
            f"{', '.join(_FAMILIES)} (was it written by a newer resnetlab?)"
        )
    config_cls = _FAMILIES[family]
    data = copy.deepcopy(spec["config"])
    check_fields(config_cls, data, where="model spec: ")
    config = config_cls(**data)
    return _instantiate(config, spec.get("preset"))


def config_of(model: nn.Module) -> ResNetV2Config | SimpleCNNConfig:
    """The config a model built here carries."""
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config):
        raise ConfigError(
            f"{type(model).__name__} was not built by resnetlab.models "
            "(no .config); build it with create_model or build_model"
        )
    return config
