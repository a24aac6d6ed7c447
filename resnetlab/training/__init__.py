"""Training: the Trainer, its config, callbacks, checkpoints and the training recipe.

``resnetlab.train()`` (in :mod:`resnetlab.api`) runs the recipe (:mod:`.recipe`) with a
live dashboard beside it, or as a background job.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

# Imported lazily: ``import resnetlab.training`` must not pull torch in by itself.
_LAZY = {
    "TrainConfig": "resnetlab.training.config",
    "Trainer": "resnetlab.training.trainer",
    "resolve_device": "resnetlab.utils.device",
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
    "FeedsPanels": "resnetlab.training.callbacks",
    "RecipeArgs": "resnetlab.training.args",
    "TrainResult": "resnetlab.training.result",
    "default_config": "resnetlab.training.recipe",
    "use_all_cores": "resnetlab.training.recipe",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
