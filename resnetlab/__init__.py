"""resnetlab: build, train, watch and inspect residual networks on modest hardware.

The names below are imported lazily so that ``import resnetlab`` stays fast and does not
pull in torch or matplotlib until they are used.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY = {
    "create_model": "resnetlab.models:create_model",
    "build_model": "resnetlab.models:build_model",
    "resnet_v2": "resnetlab.models:resnet_v2",
    "ResNetV2Config": "resnetlab.models:ResNetV2Config",
    "train": "resnetlab.api:train",
    "experiment": "resnetlab.lab.experiment:start_experiment",
    "Trainer": "resnetlab.training.trainer:Trainer",
    "MetricStream": "resnetlab.metrics.stream:MetricStream",
    "Dashboard": "resnetlab.live.dashboard:Dashboard",
    "log": "resnetlab.metrics.stream:log",
    "SystemMonitor": "resnetlab.live.monitor:SystemMonitor",
    "live_dashboard": "resnetlab.live.session:live_dashboard",
    "jobs": "resnetlab.jobs:",
    "load_model": "resnetlab.inference.model:load_model",
    "inference": "resnetlab.inference:",
    "runs": "resnetlab.store.runstore:runs",
    "data": "resnetlab.data:",
    "export": "resnetlab.export:",
    "models": "resnetlab.models:",
}

__all__ = ["__version__", *_LAZY]


__getattr__ = lazy_exports(__name__, _LAZY)
