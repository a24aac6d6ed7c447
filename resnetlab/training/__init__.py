"""Training: the Trainer, its config, callbacks, checkpoints and the ``train()`` function."""

from __future__ import annotations

import importlib
from typing import Any

# Imported lazily: ``import resnetlab.training`` must not pull torch in by itself.
_LAZY = {
    "TrainConfig": "resnetlab.training.config",
    "Trainer": "resnetlab.training.trainer",
    "resolve_device": "resnetlab.training.trainer",
    "Callback": "resnetlab.training.callbacks",
    "CallbackList": "resnetlab.training.callbacks",
    "EarlyStopping": "resnetlab.training.callbacks",
    "LambdaCallback": "resnetlab.training.callbacks",
    "ProgressBar": "resnetlab.training.callbacks",
    "Timer": "resnetlab.training.callbacks",
    "DistContext": "resnetlab.training.distributed",
    "EvalResult": "resnetlab.training.evaluate",
    "evaluate": "resnetlab.training.evaluate",
    "load_checkpoint": "resnetlab.training.checkpoint",
    "save_checkpoint": "resnetlab.training.checkpoint",
    "model_from_checkpoint": "resnetlab.training.checkpoint",
    "train": "resnetlab.training.api",
    "TrainResult": "resnetlab.training.api",
    "default_config": "resnetlab.training.api",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'resnetlab.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
