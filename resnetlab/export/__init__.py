"""Trained models and runs in the forms other tools read.

* :func:`export_model`: a checkpoint, run or loaded model as ONNX, TorchScript or
  safetensors (+ JSON spec); :func:`load_safetensors` rebuilds one.
* :func:`write_tensorboard`: a stored run as TensorBoard event files;
  :class:`TensorBoardCallback` writes them live while training.

Each format's package is an optional extra (``pip install 'resnetlab[onnx]'``,
``[safetensors]``, ``[tensorboard]``). See docs/export.md.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

# Lazy: ``resnetlab export-model --help`` must not import torch.
_LAZY = {
    "FORMATS": "resnetlab.export.model:FORMATS",
    "export_model": "resnetlab.export.model:export_model",
    "load_safetensors": "resnetlab.export.model:load_safetensors",
    "read_metadata": "resnetlab.export.model:read_metadata",
    "write_tensorboard": "resnetlab.export.tensorboard:write_tensorboard",
    "TensorBoardCallback": "resnetlab.export.tensorboard:TensorBoardCallback",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
