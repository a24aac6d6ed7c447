"""Residual units (RU): a few residual layers and a shortcut around them.

Every unit type shares one constructor signature ``(in_channels, out_channels, *, stride,
config, preactivated)`` so bottleneck and basic units are interchangeable. The first unit
of a stack gets the stride and, whenever the shape changes, a ``Projection`` shortcut;
later units use the identity. ``config.residual=False`` drops the shortcut (plain nets).
"""

from __future__ import annotations

import torch
from torch import nn

from resnetlab.models.config import ResNetV2Config
from resnetlab.models.layers import PostActLayer, PreActLayer, Projection, make_activation


class ResidualUnit(nn.Module):
    """A shortcut around ``layers``; ResNet V2 adds and stops (no activation after the sum).

    Attributes: ``layers`` (``PreActLayer`` or ``PostActLayer``), ``shortcut`` (``nn.Identity``,
    a ``Projection``, or ``None`` in a plain net), ``act`` (``None`` in V2; the ReLU after the
    addition in V1).
    """

    # A constant to TorchScript, so ``torch.jit.script`` compiles only the branch of
    # ``forward`` this unit takes (the other may call what its layers lack).
    __constants__ = ["shares_preactivation"]

    def __init__(
        self,
        layers: list[nn.Module],
        shortcut: nn.Module | None,
        *,
        preact: bool,
        post_activation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.shortcut = shortcut
        self.act = post_activation  # None: ResNet V2 adds nothing after the addition
        # A pre-activation unit with a projection feeds BN→ReLU(x) to both paths (He et al.'s
        # code, Keras, timm): the projection then sees a normalised input, not a raw sum.
        self.shares_preactivation = preact and isinstance(shortcut, Projection)

    @property
    def has_projection(self) -> bool:
        return isinstance(self.shortcut, Projection)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Cin, H, W) -> (B, Cout, H/s, W/s)
        out = x
        if self.shares_preactivation:
            first = self.layers[0]
            x = first.preactivate(x)
            out = first.conv(x)
        shortcut = self.shortcut(x) if self.shortcut is not None else None
        # One loop over the whole ModuleList (TorchScript compiles no slice of it); a unit
        # sharing its pre-activation has run its first layer above.
        for i, layer in enumerate(self.layers):
            if i > 0 or not self.shares_preactivation:
                out = layer(out)
        if shortcut is not None:
            out = out + shortcut
        return self.act(out) if self.act is not None else out


def _shortcut(
    in_channels: int, out_channels: int, stride: int, config: ResNetV2Config
) -> nn.Module | None:
    if not config.residual:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return Projection(
        in_channels,
        out_channels,
        stride,
        norm=config.norm if config.activation_order == "post" else None,
    )


def _layers(
    specs: list[tuple[int, int, int, int]], config: ResNetV2Config, preactivated: bool
) -> tuple[list[nn.Module], nn.Module | None]:
    """Residual layers from (in, out, kernel, stride) tuples, plus V1's post-sum activation."""
    if config.activation_order == "pre":
        layers = [
            PreActLayer(
                i,
                o,
                k,
                stride=s,
                norm=config.norm,
                activation=config.activation,
                preactivated=preactivated or n > 0,
            )
            for n, (i, o, k, s) in enumerate(specs)
        ]
        return layers, None
    last = len(specs) - 1
    layers = [
        PostActLayer(
            i, o, k, stride=s, norm=config.norm, activation=None if n == last else config.activation
        )
        for n, (i, o, k, s) in enumerate(specs)
    ]
    return layers, make_activation(config.activation)


class BottleneckUnit(ResidualUnit):
    """Three layers: 1x1 to nF*ratio maps, 3x3 at that width, 1x1 back to nF."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        config: ResNetV2Config,
        preactivated: bool = True,
    ) -> None:
        mid = config.bottleneck_channels(out_channels)
        s_first, s_mid = (stride, 1) if config.stride_layer == "first" else (1, stride)
        layers, post = _layers(
            [(in_channels, mid, 1, s_first), (mid, mid, 3, s_mid), (mid, out_channels, 1, 1)],
            config,
            preactivated,
        )
        super().__init__(
            layers,
            _shortcut(in_channels, out_channels, stride, config),
            preact=config.activation_order == "pre",
            post_activation=post,
        )


class BasicUnit(ResidualUnit):
    """Two 3x3 layers at nF maps (ResNet-18/34); the stride goes on the first."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        stride: int = 1,
        config: ResNetV2Config,
        preactivated: bool = True,
    ) -> None:
        layers, post = _layers(
            [(in_channels, out_channels, 3, stride), (out_channels, out_channels, 3, 1)],
            config,
            preactivated,
        )
        super().__init__(
            layers,
            _shortcut(in_channels, out_channels, stride, config),
            preact=config.activation_order == "pre",
            post_activation=post,
        )


UNITS: dict[str, type[ResidualUnit]] = {"bottleneck": BottleneckUnit, "basic": BasicUnit}
