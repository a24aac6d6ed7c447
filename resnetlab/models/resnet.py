"""The assembled network: stem → residual stacks → head, built from a ``ResNetV2Config``.

Module paths are part of the public interface (the inspection tools and ``resnetlab
summary`` use them): ``stem.conv``, ``stacks.2.units.0.layers.1.conv``,
``stacks.0.units.0.shortcut.conv``, ``head.fc``.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetlab.models.config import SPEC_FORMAT, ResNetV2Config
from resnetlab.models.layers import (
    PostActLayer,
    PreActLayer,
    Projection,
    conv2d,
    make_activation,
    make_norm,
)
from resnetlab.models.units import UNITS, ResidualUnit


def _stem_reduction(config: ResNetV2Config) -> nn.Module | None:
    # Built here, not in Stem.__init__: TorchScript reads the annotations there.
    c = config.stem_channels
    if config.stem_pool == "max":
        return nn.MaxPool2d(3, stride=2, padding=1)
    if config.stem_pool == "conv":
        return nn.Sequential(
            conv2d(c, c, 3, 2), make_norm(config.norm, c), make_activation(config.activation)
        )
    return None


class Stem(nn.Module):
    """Conv → BN → activation, then an optional stride-2 reduction (max-pool or conv)."""

    def __init__(self, config: ResNetV2Config) -> None:
        super().__init__()
        c = config.stem_channels
        self.conv = conv2d(config.in_channels, c, config.stem_kernel, config.stem_stride)
        self.bn = make_norm(config.norm, c)
        self.act = make_activation(config.activation)
        self.pool = _stem_reduction(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, stem, H/s, W/s)
        x = self.act(self.bn(self.conv(x)))
        return self.pool(x) if self.pool is not None else x


def _stack_bridge(
    in_channels: int, out_channels: int, stride: int, config: ResNetV2Config
) -> nn.Module | None:
    # Built here, not in ResidualStack.__init__: TorchScript reads the annotations there.
    if not config.stack_shortcut:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return Projection(
        in_channels,
        out_channels,
        stride,
        norm=config.norm if config.activation_order == "post" else None,
    )


class ResidualStack(nn.Module):
    """``units`` residual units sharing nF maps and one resolution (the first one strides).

    ``shortcut`` is ``None`` unless ``config.stack_shortcut``: then the whole stack is
    bridged by an identity or a projection.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        units: int,
        stride: int,
        config: ResNetV2Config,
        *,
        after_stem: bool = False,
    ) -> None:
        super().__init__()
        unit_cls = UNITS[config.unit]
        self.units = nn.ModuleList(
            unit_cls(
                in_channels if i == 0 else out_channels,
                out_channels,
                stride=stride if i == 0 else 1,
                config=config,
                # the stem has just applied BN→ReLU: the net's first unit skips them
                preactivated=not (after_stem and i == 0),
            )
            for i in range(units)
        )
        self.shortcut = _stack_bridge(in_channels, out_channels, stride, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for unit in self.units:
            out = unit(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return out


class Head(nn.Module):
    """Final BN → activation (V2 only) → global average pool → dropout → Linear.

    ``fc`` maps to ``num_classes`` logits, or to ``latent_dim`` for an encoder head.
    """

    def __init__(self, in_channels: int, out_features: int, config: ResNetV2Config) -> None:
        super().__init__()
        # V2's last unit ends with a bare sum; V1's already ends with a ReLU.
        pre = config.activation_order == "pre"
        self.bn = make_norm(config.norm, in_channels) if pre else None
        self.act = make_activation(config.activation) if pre else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(config.dropout) if config.dropout else None
        self.fc = nn.Linear(in_channels, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, h, w) -> (B, out)
        if self.bn is not None:
            x = self.act(self.bn(x))
        x = self.flatten(self.pool(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(x)


class ResNet(nn.Module):
    """A ResNet V2 (or V1 / plain) network; ``model.config`` is its ``ResNetV2Config``."""

    def __init__(self, config: ResNetV2Config) -> None:
        super().__init__()
        self.config = config
        self.stem = Stem(config)
        stacks = []
        channels = config.stem_channels
        for i, (units, out, stride) in enumerate(
            zip(config.stack_units, config.stack_channels, config.strides, strict=True)
        ):
            stacks.append(
                ResidualStack(
                    channels,
                    out,
                    units,
                    stride,
                    config,
                    after_stem=i == 0 and config.activation_order == "pre",
                )
            )
            channels = out
        self.stacks = nn.ModuleList(stacks)
        self.num_features = channels
        self.head = Head(channels, config.latent_dim or config.num_classes, config)
        # Not annotated here: torch.jit.script warns about annotations in __init__.
        self.spec = {
            "format": SPEC_FORMAT,
            "preset": None,
            "family": "resnet",
            "config": config.to_dict(),
        }
        init_weights(self, config)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The body: stem and stacks, before the head's norm and pooling. (B, nF_last, h, w)."""
        x = self.stem(x)
        for stack in self.stacks:
            x = stack(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (or latent vectors) from ``forward_features``'s output."""
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def units(self) -> list[ResidualUnit]:
        """Every residual unit, in forward order."""
        return [unit for stack in self.stacks for unit in stack.units]


def init_weights(model: ResNet, config: ResNetV2Config) -> None:
    """He (Kaiming) normal for convs, unit scale for norms, optional zero-init of branches."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if config.zero_init_last:
        for unit in model.units():
            last = unit.layers[-1]
            if isinstance(last, PreActLayer):
                nn.init.zeros_(last.conv.weight)
            elif isinstance(last, PostActLayer) and isinstance(
                last.bn, nn.BatchNorm2d | nn.GroupNorm
            ):
                nn.init.zeros_(last.bn.weight)


def build_model(config: ResNetV2Config) -> ResNet:
    """The network described by ``config``."""
    return ResNet(config)
