"""Training: the Trainer, its config, callbacks, checkpoints and the ``train()`` function."""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

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


__getattr__ = lazy_exports(__name__, _LAZY)
