"""Leaves of every network: named activations and norms, the residual layers, the projection.

A *residual layer* (RL) is one BatchNorm, one activation and one convolution. ResNet V2
orders them BN → ReLU → Conv (``PreActLayer``, full pre-activation); ResNet V1 orders them
Conv → BN → ReLU (``PostActLayer``). Activations and norms are chosen by name through two
small dicts, so a config field or a CLI flag maps straight onto a module.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable

import torch
from torch import nn

from resnetlab.errors import ConfigError

# name -> factory; every activation is out-of-place, because in a pre-activation unit with a
# projection the BN→ReLU output feeds both the branch and the shortcut.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    # Saturating: with no norm layer, a deep plain net of these shows vanishing gradients
    # (docs/inspect.md); here for that lesson more than for training.
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def _group_norm(channels: int) -> nn.Module:
    # 32 groups as Wu & He (2018) where the width allows it, else the largest divisor.
    return nn.GroupNorm(math.gcd(32, channels), channels)


# name -> factory(channels)
NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batchnorm": nn.BatchNorm2d,
    "groupnorm": _group_norm,
    "none": lambda channels: nn.Identity(),
}


def _unknown(kind: str, field: str, name: object, known: list[str]) -> ConfigError:
    if not isinstance(name, str):
        return ConfigError(
            f"{field}={name!r} must be a name (text); choose one of {', '.join(known)}"
        )
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
    return ConfigError(
        f"{field}={name!r} is not a known {kind}; {hint}choose one of {', '.join(known)}"
    )


def check_activation(name: str, field: str = "activation") -> None:
    """Raise ``ConfigError`` naming ``field`` if ``name`` is not in ``ACTIVATIONS``."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise _unknown("activation", field, name, sorted(ACTIVATIONS))


def check_norm(name: str, field: str = "norm") -> None:
    """Raise ``ConfigError`` naming ``field`` if ``name`` is not in ``NORMS``."""
    if not isinstance(name, str) or name not in NORMS:
        raise _unknown("norm layer", field, name, sorted(NORMS))


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name (see ``ACTIVATIONS``)."""
    check_activation(name)
    return ACTIVATIONS[name]()


def make_norm(name: str, channels: int) -> nn.Module:
    """A fresh norm layer over ``channels`` maps by name (see ``NORMS``)."""
    check_norm(name)
    return NORMS[name](channels)


def conv2d(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A bias-free convolution with "same" padding (a norm layer supplies the shift)."""
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
    )


class PreActLayer(nn.Module):
    """A full pre-activation residual layer: BN → activation → Conv (ResNet V2).

    ``preactivated=False`` (the first layer of the network's first unit) replaces BN and
    the activation by identities, because the stem has just applied them.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        norm: str = "batchnorm",
        activation: str = "relu",
        preactivated: bool = True,
    ) -> None:
        super().__init__()
        self.bn = make_norm(norm, in_channels) if preactivated else nn.Identity()
        self.act = make_activation(activation) if preactivated else nn.Identity()
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride)

    def preactivate(self, x: torch.Tensor) -> torch.Tensor:
        """BN → activation only; a unit with a projection shares this with its shortcut."""
        return self.act(self.bn(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.bn(x)))


class PostActLayer(nn.Module):
    """A post-activation residual layer: Conv → BN → activation (ResNet V1).

    The last layer of a V1 unit has ``activation=None``: its activation comes after the
    addition, in the unit.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        norm: str = "batchnorm",
        activation: str | None = "relu",
    ) -> None:
        super().__init__()
        self.conv = conv2d(in_channels, out_channels, kernel_size, stride)
        self.bn = make_norm(norm, out_channels)
        self.act = make_activation(activation) if activation else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class Projection(nn.Module):
    """The special shortcut of a unit whose shape changes: 1x1 conv with the unit's stride.

    V1 follows it with a norm layer (He et al. 2015, option B); V2 does not (the next
    unit's pre-activation normalises the sum).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, *, norm: str | None = None
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.bn = make_norm(norm, out_channels) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x
