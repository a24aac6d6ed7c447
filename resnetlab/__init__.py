"""resnetlab: build, train, watch and inspect residual networks on modest hardware.

The names below are imported lazily so that ``import resnetlab`` stays fast and does not
pull in torch or matplotlib until they are used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    "create_model": "resnetlab.models:create_model",
    "build_model": "resnetlab.models:build_model",
    "resnet_v2": "resnetlab.models:resnet_v2",
    "ResNetV2Config": "resnetlab.models:ResNetV2Config",
    "train": "resnetlab.training.api:train",
    "Trainer": "resnetlab.training.trainer:Trainer",
    "MetricStream": "resnetlab.live.stream:MetricStream",
    "Dashboard": "resnetlab.live.dashboard:Dashboard",
    "log": "resnetlab.live.stream:log",
    "SystemMonitor": "resnetlab.live.monitor:SystemMonitor",
    "live_dashboard": "resnetlab.live.session:live_dashboard",
    "jobs": "resnetlab.jobs:",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        target = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'resnetlab' has no attribute {name!r}") from None
    module, attr = target.split(":")
    value = importlib.import_module(module)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value
