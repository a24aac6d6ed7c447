"""Build residual networks: ResNet V2 from a config or a preset, and the baselines.

>>> from resnetlab.models import create_model, model_summary
>>> model = create_model("resnetv2-164", in_channels=3, num_classes=10)
>>> print(model_summary(model, (3, 32, 32)))

See docs/models.md for the presets, the config fields and the module paths.
"""

from __future__ import annotations

from resnetlab.models.config import ResNetV2Config
from resnetlab.models.layers import ACTIVATIONS, NORMS, PostActLayer, PreActLayer, Projection
from resnetlab.models.presets import (
    BEST_MODEL,
    DEFAULT_MODEL,
    QUICK_MODEL,
    PresetInfo,
    config_of,
    create_model,
    get_preset,
    list_presets,
    preset_config,
    rebuild_model,
    resnet_v2,
)
from resnetlab.models.resnet import Head, ResidualStack, ResNet, Stem, build_model
from resnetlab.models.simple_cnn import SimpleCNN, SimpleCNNConfig
from resnetlab.models.summary import Summary, SummaryRow, count_parameters, model_summary
from resnetlab.models.units import BasicUnit, BottleneckUnit, ResidualUnit

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_MODEL",
    "QUICK_MODEL",
    "BEST_MODEL",
    "NORMS",
    "BasicUnit",
    "BottleneckUnit",
    "Head",
    "PostActLayer",
    "PreActLayer",
    "PresetInfo",
    "Projection",
    "ResNet",
    "ResNetV2Config",
    "ResidualStack",
    "ResidualUnit",
    "SimpleCNN",
    "SimpleCNNConfig",
    "Stem",
    "Summary",
    "SummaryRow",
    "build_model",
    "config_of",
    "count_parameters",
    "create_model",
    "get_preset",
    "list_presets",
    "model_summary",
    "preset_config",
    "rebuild_model",
    "resnet_v2",
]
