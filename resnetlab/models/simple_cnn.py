"""The classic small CNN (Conv → ReLU → MaxPool blocks, then a small MLP): the baseline.

It is what a first MNIST tutorial builds; the ResNets have to beat it to earn their depth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.models.config import SPEC_FORMAT, check_field_types, check_fields
from resnetlab.models.layers import check_activation, make_activation


@dataclass(frozen=True)
class SimpleCNNConfig:
    """Architecture of the baseline CNN."""

    in_channels: int = 1
    num_classes: int = 10
    # Needed because the MLP head flattens the last map (no global pooling here).
    image_size: int = 28
    # Maps of each 3x3 conv block; each block halves the resolution with a 2x2 max-pool.
    channels: tuple[int, ...] = (32, 64)
    # Width of the hidden Linear layer of the head.
    hidden: int = 128
    # Dropout before the last Linear, as in the Keras MNIST example.
    dropout: float = 0.25
    activation: str = "relu"
    # Set to get an encoder head (Linear to latent_dim) instead of the classifier.
    latent_dim: int | None = None

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("in_channels", "num_classes", "image_size", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"SimpleCNNConfig.{name}={value!r} must be a positive integer")
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(
                f"SimpleCNNConfig.channels={self.channels!r} needs at least one "
                "block, each with a positive number of maps, e.g. (32, 64)"
            )
        if self.latent_dim is not None and self.latent_dim < 1:
            raise ConfigError(f"SimpleCNNConfig.latent_dim={self.latent_dim!r} must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"SimpleCNNConfig.dropout={self.dropout!r} must be in [0, 1)")
        check_activation(self.activation, "SimpleCNNConfig.activation")
        size = self.image_size
        for i in range(len(self.channels)):
            if size < 2:
                raise ConfigError(
                    f"SimpleCNNConfig.image_size={self.image_size} is too small: block {i}'s "
                    f"2x2 max-pool gets a {size}x{size} map and gives 0x0; use image_size >= "
                    f"{2 ** len(self.channels)} or fewer blocks (channels)"
                )
            size //= 2

    @property
    def final_size(self) -> int:
        return self.image_size // 2 ** len(self.channels)

    @property
    def depth(self) -> int:
        return len(self.channels) + 2

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimpleCNNConfig:
        check_fields(cls, data)
        return cls(**data)


class ConvBlock(nn.Module):
    """3x3 Conv → activation → 2x2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int, activation: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.act = make_activation(activation)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C', H/2, W/2)
        return self.pool(self.act(self.conv(x)))


class MLPHead(nn.Module):
    """Flatten → Linear → activation → dropout → Linear."""

    def __init__(self, in_features: int, config: SimpleCNNConfig) -> None:
        super().__init__()
        self.flatten = nn.Flatten(1)
        self.hidden = nn.Linear(in_features, config.hidden)
        self.act = make_activation(config.activation)
        self.dropout = nn.Dropout(config.dropout) if config.dropout else nn.Identity()
        self.fc = nn.Linear(config.hidden, config.latent_dim or config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.act(self.hidden(self.flatten(x)))))


class SimpleCNN(nn.Module):
    """``blocks`` of ``ConvBlock`` then an ``MLPHead`` named ``head``."""

    def __init__(self, config: SimpleCNNConfig) -> None:
        super().__init__()
        self.config = config
        widths = (config.in_channels, *config.channels)
        self.blocks = nn.ModuleList(
            ConvBlock(a, b, config.activation) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.num_features = config.channels[-1]
        self.head = MLPHead(config.channels[-1] * config.final_size**2, config)
        self.spec: dict[str, Any] = {
            "format": SPEC_FORMAT,
            "preset": None,
            "family": "simple_cnn",
            "config": config.to_dict(),
        }

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The conv blocks: (B, C, H, W) -> (B, channels[-1], H/2^k, W/2^k)."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
