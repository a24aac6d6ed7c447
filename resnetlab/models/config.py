"""``ResNetV2Config``: one small, explicit description of a residual network.

The same dataclass describes ResNet V2 (the default), ResNet V1 (``activation_order="post"``)
and the plain networks of the same depth (``residual=False``), so that a comparison changes
one field and nothing else. Every field says why it exists. Invalid values raise
``ConfigError`` on construction, naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from resnetlab.errors import ConfigError
from resnetlab.models.layers import check_activation, check_norm

UNIT_TYPES = ("bottleneck", "basic")
STEM_POOLS = ("none", "max", "conv")
STRIDE_LAYERS = ("first", "3x3")
ACTIVATION_ORDERS = ("pre", "post")
# Version of the ``model.spec`` dict that checkpoints store.
SPEC_FORMAT = 1

# A config dataclass (ResNetV2Config, SimpleCNNConfig): replace_config returns its own type.
ConfigT = TypeVar("ConfigT")


def _choice(field_name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=2, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"ResNetV2Config.{field_name}={value!r} is not allowed; {hint}"
            f"choose one of {', '.join(map(repr, choices))}"
        )


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"ResNetV2Config.{name}={value!r} must be a positive integer")


def _kind(hint: Any) -> str:
    """What a value of type ``hint`` is called in an error message."""
    if hint is bool:
        return "True or False (on the command line: true/false, yes/no, on/off or 1/0)"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "a name (text)"
    return "a sequence of integers"


def _checked(hint: Any, value: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits ``hint``, the value normalised: lists to tuples, numpy scalars
    to Python numbers)."""
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return ok, int(value) if ok else value
    if hint is float:
        ok = (
            isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        )
        return ok, (value if isinstance(value, int | float) else float(value)) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            return False, value
        items = [_checked(int, v) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    return True, value


def check_field_types(config: object) -> None:
    """Raise ``ConfigError`` naming the field for any value of the wrong type.

    Runs before the range checks, so that ``residual="no"`` (a truthy string) is not
    taken as True, and ``dropout="abc"`` fails with the field's name, not a TypeError
    from a comparison. Lists become tuples and numpy scalars Python numbers.
    """
    cls = type(config)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint, value = hints[f.name], getattr(config, f.name)
        if isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint):
            if value is None:
                continue
            hint = next(h for h in typing.get_args(hint) if h is not type(None))
        ok, normalised = _checked(hint, value)
        if not ok:
            default = f.default if f.default is not dataclasses.MISSING else None
            example = (
                f", e.g. {f.name}={default!r}" if default is not None and hint is not bool else ""
            )
            raise ConfigError(f"{cls.__name__}.{f.name}={value!r} must be {_kind(hint)}{example}")
        if normalised is not value:
            object.__setattr__(config, f.name, normalised)


def conv_out(size: int, stride: int) -> int:
    """Spatial size after any of our padded convs/pools with this stride: ceil(size / stride)."""
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class ResNetV2Config:
    """Architecture of a ResNet V2 (or V1 / plain) network; see docs/models.md."""

    # Input and output: the data decides these (1 channel for Fashion-MNIST, 3 for CIFAR).
    in_channels: int = 3
    num_classes: int = 10
    # The net itself is size-agnostic (global pooling); this is only used to check that no
    # stride-2 stage runs out of pixels and as the summary's default input.
    image_size: int = 32

    # Stem: 3x3/stride 1 keeps all pixels of small images (CIFAR); 7x7/stride 2 + max-pool
    # is the ImageNet reduction that makes 224x224 affordable.
    stem_channels: int = 16
    stem_kernel: int = 3
    stem_stride: int = 1
    # "none", "max" (3x3 stride-2 max-pool) or "conv" (a second 3x3 stride-2 conv-BN-ReLU).
    stem_pool: str = "none"

    # Residual stacks: units per stack and their output maps nF. He et al.'s CIFAR layout
    # is three stacks of n bottleneck units with nF = 64, 128, 256 (depth 9n + 2).
    stack_units: tuple[int, ...] = (18, 18, 18)
    stack_channels: tuple[int, ...] = (64, 128, 256)
    # Stride of each stack's first unit; None = 1 for the first stack, 2 for the others
    # (each later stack halves the resolution and, with doubled nF, keeps the cost per stack).
    stack_strides: tuple[int, ...] | None = None

    # "bottleneck" (1x1 → 3x3 → 1x1, cheap in deep nets) or "basic" (3x3 → 3x3, ResNet-18/34).
    unit: str = "bottleneck"
    # Bottleneck width = nF * ratio: 1/4 as He et al.; 1/2 as Atienza (wider, more params).
    bottleneck_ratio: float = 0.25
    # Where the first unit's stride goes: "first" layer (the paper; a strided 1x1 skips 3/4
    # of the pixels) or the "3x3" conv (timm/torchvision, sees every pixel).
    stride_layer: str = "first"

    # "pre" = ResNet V2 (BN → ReLU → Conv, clean identity path); "post" = ResNet V1
    # (Conv → BN → ReLU, ReLU after the addition) for V1-vs-V2 comparisons.
    activation_order: str = "pre"
    # False gives the plain network of the same depth and widths (no shortcuts at all),
    # the comparison that shows why residual learning matters.
    residual: bool = True
    # Research option: also bridge each whole stack with a shortcut (projection if needed).
    stack_shortcut: bool = False

    # Layers by name (see layers.ACTIVATIONS / layers.NORMS), so a CLI flag maps onto them.
    activation: str = "relu"
    norm: str = "batchnorm"

    # Head: dropout before the last Linear (regularises small data sets).
    dropout: float = 0.0
    # Set to get an encoder head (Linear to latent_dim) instead of the classifier.
    latent_dim: int | None = None
    # Start every residual branch at zero so each unit begins as the identity (Goyal et
    # al.). V2 zeroes the branch's last conv (zeroing its last BN would leave ReLU(0) with no
    # gradient, a branch dead for ever); V1 zeroes the branch's last BN.
    zero_init_last: bool = False

    # Derived, not set by users.
    strides: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("stack_units", "stack_channels", "stack_strides"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                if isinstance(value, int | float | str):
                    raise ConfigError(
                        f"ResNetV2Config.{name}={value!r} must be a sequence "
                        f"(one entry per stack), e.g. {name}=(2, 2, 2)"
                    )
                object.__setattr__(self, name, tuple(value))
        check_field_types(self)
        n = len(self.stack_units)
        strides = self.stack_strides or tuple(1 if i == 0 else 2 for i in range(n))
        object.__setattr__(self, "strides", tuple(strides))
        self._validate()

    # -- validation -------------------------------------------------------------------

    def _validate(self) -> None:
        """Range and consistency checks; the first rule a config breaks is the one reported."""
        self._check_sizes()
        self._check_layer_names()
        self._check_stacks()
        if self.unit == "bottleneck":
            self._check_bottleneck_ratio()
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"ResNetV2Config.dropout={self.dropout!r} must be in [0, 1)")
        if self.zero_init_last and not self.residual:
            raise ConfigError(
                "ResNetV2Config.zero_init_last=True needs residual=True: in a "
                "plain network it would zero the signal itself; set one of them "
                "to False"
            )
        self._check_image_size()

    def _check_sizes(self) -> None:
        """Input, output and stem sizes: positive integers, and an odd stem kernel."""
        _positive("in_channels", self.in_channels)
        _positive("num_classes", self.num_classes)
        _positive("image_size", self.image_size)
        _positive("stem_channels", self.stem_channels)
        _positive("stem_stride", self.stem_stride)
        if self.latent_dim is not None:
            _positive("latent_dim", self.latent_dim)
        _positive("stem_kernel", self.stem_kernel)
        if self.stem_kernel % 2 == 0:
            raise ConfigError(
                f"ResNetV2Config.stem_kernel={self.stem_kernel} must be odd "
                "(3 or 7) so that 'same' padding keeps the map centred"
            )

    def _check_layer_names(self) -> None:
        """Every field that names a choice or a layer names a known one."""
        _choice("stem_pool", self.stem_pool, STEM_POOLS)
        _choice("unit", self.unit, UNIT_TYPES)
        _choice("stride_layer", self.stride_layer, STRIDE_LAYERS)
        _choice("activation_order", self.activation_order, ACTIVATION_ORDERS)
        check_activation(self.activation, "ResNetV2Config.activation")
        check_norm(self.norm, "ResNetV2Config.norm")

    def _check_stacks(self) -> None:
        """At least one stack; one entry per stack in every stack list, each positive."""
        n = len(self.stack_units)
        if n == 0:
            raise ConfigError(
                "ResNetV2Config.stack_units is empty; give at least one stack, "
                "e.g. stack_units=(2, 2, 2)"
            )
        for name in ("stack_channels", "stack_strides"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ConfigError(
                    f"ResNetV2Config.{name} has {len(value)} entries but "
                    f"stack_units has {n}; give one entry per stack"
                )
        for i, units in enumerate(self.stack_units):
            if isinstance(units, bool) or not isinstance(units, int) or units < 1:
                raise ConfigError(
                    f"ResNetV2Config.stack_units[{i}]={units!r}: every stack needs "
                    "at least 1 unit; use a positive number or remove the stack "
                    "from stack_units and stack_channels"
                )
        for i, channels in enumerate(self.stack_channels):
            _positive(f"stack_channels[{i}]", channels)
        for i, stride in enumerate(self.strides):
            _positive(f"stack_strides[{i}]", stride)

    def _check_bottleneck_ratio(self) -> None:
        """The ratio is positive and leaves every stack's bottleneck at least one channel."""
        if not self.bottleneck_ratio > 0:
            raise ConfigError(
                f"ResNetV2Config.bottleneck_ratio={self.bottleneck_ratio!r} "
                "must be > 0 (1/4 as He et al., 1/2 as Atienza)"
            )
        for i, channels in enumerate(self.stack_channels):
            if int(channels * self.bottleneck_ratio) < 1:
                raise ConfigError(
                    f"ResNetV2Config.bottleneck_ratio={self.bottleneck_ratio!r} gives "
                    f"int({channels} * {self.bottleneck_ratio}) = 0 bottleneck channels in "
                    f"stack {i} (stack_channels[{i}]={channels}); use bottleneck_ratio >= "
                    f"{1 / channels:.4g} or wider stacks"
                )

    def _check_image_size(self) -> None:
        """No strided stage (stem, pool, stacks) gets a map smaller than its stride."""
        stages: list[tuple[str, int]] = [("stem", self.stem_stride)]
        if self.stem_pool != "none":
            stages.append((f"stem {self.stem_pool}-pool", 2))
        stages += [(f"stack {i}", s) for i, s in enumerate(self.strides)]
        size = self.image_size
        for name, stride in stages:
            if stride > 1 and size < stride:
                raise ConfigError(
                    f"ResNetV2Config.image_size={self.image_size} is too small: {name} "
                    f"(stride {stride}) gets a {size}x{size} map and would shrink it to 0x0 "
                    f"(padding would only repeat {size}x{size}); use image_size >= "
                    f"{min_image_size(stages)} ({math.prod(s for _, s in stages)} halves exactly), "
                    "or fewer stride-2 stacks (stack_strides)"
                )
            size = conv_out(size, stride)

    # -- derived facts ----------------------------------------------------------------

    def stage_sizes(self) -> list[tuple[str, int]]:
        """(stage, output side) for the stem, its pool, and each stack, at ``image_size``."""
        size = conv_out(self.image_size, self.stem_stride)
        stages = [("stem", size)]
        if self.stem_pool != "none":
            size = conv_out(size, 2)
            stages.append((f"stem {self.stem_pool}-pool", size))
        for i, stride in enumerate(self.strides):
            size = conv_out(size, stride)
            stages.append((f"stack {i}", size))
        return stages

    @property
    def layers_per_unit(self) -> int:
        """Weighted layers on a unit's main path (3 bottleneck, 2 basic)."""
        return 3 if self.unit == "bottleneck" else 2

    @property
    def depth(self) -> int:
        """Weighted layers on the main path, counted as He et al.: stem + units + classifier."""
        stem = 2 if self.stem_pool == "conv" else 1
        return stem + sum(self.stack_units) * self.layers_per_unit + 1

    def bottleneck_channels(self, out_channels: int) -> int:
        """Width of a bottleneck's 3x3 conv for a stack with ``out_channels`` maps."""
        return int(out_channels * self.bottleneck_ratio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the fields a user sets (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResNetV2Config:
        """Inverse of ``to_dict``; unknown keys raise ``ConfigError`` with close matches."""
        check_fields(cls, data)
        return cls(**data)


def config_fields(cls: type) -> list[str]:
    """Names a user may set on a config dataclass."""
    return [f.name for f in dataclasses.fields(cls) if f.init]


def check_fields(cls: type, data: dict[str, Any], where: str = "") -> None:
    """Raise ``ConfigError`` for keys of ``data`` that ``cls`` does not have."""
    known = config_fields(cls)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
            raise ConfigError(
                f"{where}{cls.__name__} has no field {key!r}; {hint}fields are: {', '.join(known)}"
            )


def min_image_size(stages: list[tuple[str, int]]) -> int:
    """Smallest input side for which every strided stage still gets at least stride pixels."""
    size = 1
    while True:
        s, ok = size, True
        for _, stride in stages:
            if stride > 1 and s < stride:
                ok = False
                break
            s = conv_out(s, stride)
        if ok:
            return size
        size += 1


def replace_config(config: ConfigT, **overrides: Any) -> ConfigT:
    """``dataclasses.replace`` with a ``ConfigError`` (close matches) for unknown fields."""
    check_fields(type(config), overrides)
    return dataclasses.replace(config, **overrides)
