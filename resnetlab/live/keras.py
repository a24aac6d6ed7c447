"""A Keras 3 callback that feeds a MetricStream, so ``model.fit`` drives the same dashboards.

    from resnetlab.live.keras import LiveCallback
    dash = Dashboard(["loss", "accuracy"], backend="qt")      # or ipympl, webagg, ...
    model.fit(x, y, validation_split=0.1, callbacks=[LiveCallback(dash.stream)])

Keras is imported only when ``LiveCallback`` is first used (``import resnetlab.live.keras``
alone does not need it). Works with any Keras 3 backend (torch, JAX, TensorFlow).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from resnetlab.errors import BackendError, ConfigError
from resnetlab.metrics.stream import default_stream

__all__ = ["KerasMissingError", "LiveCallback"]  # noqa: F822 (LiveCallback is built on first use)


class KerasMissingError(BackendError, ImportError):
    """Keras 3 is not installed (or cannot start its backend)."""


def _to_float(value: Any) -> float | None:
    """A plain float from a Keras log value (Python/NumPy/tensor scalar); None if not scalar."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _clean_logs(
    logs: dict | None, prefix: str, keep: Callable[[str], bool] | None = None
) -> dict[str, float]:
    """The scalar entries of Keras ``logs`` (those ``keep`` accepts) as floats, keys prefixed."""
    out = {}
    for key, value in (logs or {}).items():
        if keep is not None and not keep(key):
            continue
        number = _to_float(value)
        if number is not None:
            out[prefix + key] = number
    return out


def _learning_rate(keras: Any, model: Any) -> float | None:
    """The optimizer's current learning rate as a finite float, or None."""
    optimizer = getattr(model, "optimizer", None)  # a model that is not compiled has none
    value = getattr(optimizer, "learning_rate", None)
    if value is None:
        return None
    try:
        number = float(keras.ops.convert_to_numpy(value))
    except Exception:
        return None
    return number if math.isfinite(number) else None


def _import_keras() -> Any:
    """The keras module, or a KerasMissingError that says how to get Keras 3."""
    try:
        import keras
    except ImportError as exc:
        raise KerasMissingError(
            f"resnetlab.live.keras.LiveCallback needs Keras 3 ({exc}): pip install keras, "
            "plus one backend (torch, jax or tensorflow) chosen with KERAS_BACKEND"
        ) from exc
    major = int(str(getattr(keras, "__version__", "0")).split(".")[0] or 0)
    if major < 3:
        raise KerasMissingError(
            f"resnetlab.live.keras.LiveCallback needs Keras 3, found {keras.__version__}; "
            "pip install -U keras"
        )
    return keras


def _build() -> type:
    keras = _import_keras()

    class LiveCallback(keras.callbacks.Callback):
        """Appends Keras logs to a MetricStream at batch and epoch ends.

        Step = global training batch count, as in the resnetlab trainer. Batch ends add
        the training metrics Keras reports (running epoch averages); epoch ends add the
        ``val_`` metrics and anything not seen per batch (learning rate), at the same step
        as the epoch's last batch. ``every``: append only every n-th batch (long epochs).
        """

        def __init__(self, stream: Any = None, *, every: int = 1, prefix: str = "") -> None:
            super().__init__()
            if every < 1:
                raise ConfigError(f"LiveCallback(every={every}): must be >= 1")
            self.stream = stream if stream is not None else default_stream()
            self.every = int(every)  # 1 = every batch; 10 = every tenth batch
            # e.g. "keras/" to tell two models apart; preset panels then need the same
            # prefix: Dashboard([PRESETS["loss"].with_prefix("keras/"), ...]).
            self.prefix = prefix
            self.step = 0
            self.epoch = 0
            self._batch_keys: set[str] = set()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch = int(epoch)

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.step += 1
            metrics = _clean_logs(logs, self.prefix)
            self._batch_keys.update(k.removeprefix(self.prefix) for k in metrics)
            if metrics and (self.step % self.every == 0 or batch == 0):
                self.stream.append(self.step, metrics, epoch=self.epoch)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            metrics = _clean_logs(
                logs, self.prefix, keep=lambda k: k.startswith("val_") or k not in self._batch_keys
            )
            lr = _learning_rate(keras, getattr(self, "model", None))
            if lr is not None and not any(k.endswith(("lr", "learning_rate")) for k in metrics):
                metrics[self.prefix + "lr"] = lr
            if metrics:
                self.stream.append(self.step, metrics, epoch=int(epoch))

    LiveCallback.__module__ = __name__
    return LiveCallback


_cache: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    if name == "LiveCallback":
        if name not in _cache:
            _cache[name] = _build()
        return _cache[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
