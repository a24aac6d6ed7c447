"""Use a trained model: load it from a checkpoint or run in one call, and predict.

model = resnetlab.load_model("runs/run-1/best.pt")     # or a run id/name in the store
model.predict(["boot.png", "shirt.jpg"], top_k=3)
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

_LAZY = {
    "load_model": "resnetlab.inference.model:load_model",
    "TrainedModel": "resnetlab.inference.model:TrainedModel",
    "Prediction": "resnetlab.inference.model:Prediction",
    "to_batch": "resnetlab.inference.inputs:to_batch",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
