"""Trainer events and the callbacks that listen to them.

Events, in order::

    on_fit_start
      on_epoch_start
        on_after_backward   (gradients ready: after backward, unscale and clipping,
                             before optimizer.step; read param.grad here)
        on_batch_end        (every batch; loss/accuracy/images_per_s only at logging steps)
      on_validation_end     (val_loss, val_accuracy)
      on_epoch_end          (epoch averages, val_*, checkpoint path)
    on_fit_end              (training finished or was stopped; not after an error)
    on_end                  (always, also after an error: logs["status"], logs["error"])

A callback is any object with some of these methods, each called as
``method(trainer, logs)`` with a flat ``logs`` dict. :class:`Callback` is a base class
with no-op methods for those who like one. Set ``trainer.stop_training = True`` from any
event to stop at the next batch boundary.

A callback that records metrics a live-dashboard panel shows says so with a
``dashboard_panels`` attribute (:class:`FeedsPanels`): ``resnetlab.train`` adds those
panels to the dashboard it starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from resnetlab.errors import ResnetlabError
from resnetlab.metrics.system import SystemSampler
from resnetlab.utils.atomic import disk_full

log = logging.getLogger(__name__)

EVENTS = (
    "on_fit_start",
    "on_epoch_start",
    "on_after_backward",
    "on_batch_end",
    "on_validation_end",
    "on_epoch_end",
    "on_fit_end",
    "on_end",
)


class Callback:
    """No-op base class; override the events you need."""

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_epoch_start(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_after_backward(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_batch_end(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_validation_end(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Any, logs: dict[str, Any]) -> None: ...
    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None: ...


@runtime_checkable
class FeedsPanels(Protocol):
    """A callback whose records feed dashboard panels beyond the default ones.

    ``dashboard_panels`` names them as ``resnetlab.live.panels`` does (e.g.
    ``("grad_norms",)`` for ``resnetlab.inspect.GradientNormCallback``).
    """

    dashboard_panels: tuple[str, ...]


def panels_fed_by(callbacks: Iterable[Any]) -> list[str]:
    """The dashboard panels that ``callbacks`` feed (see :class:`FeedsPanels`), once each."""
    names: list[str] = []
    for cb in callbacks:
        if isinstance(cb, FeedsPanels):
            names += [n for n in cb.dashboard_panels if n not in names]
    return names


class CallbackList:
    """Dispatches an event to every callback that has a method for it.

    The bound methods are looked up once, so an event nobody listens to costs nothing.
    """

    def __init__(self, callbacks: Iterable[Any] = ()) -> None:
        self.callbacks = list(callbacks)
        self._refresh()

    def _refresh(self) -> None:
        self._handlers: dict[str, list[Callable[[Any, dict[str, Any]], Any]]] = {
            event: [
                getattr(cb, event) for cb in self.callbacks if callable(getattr(cb, event, None))
            ]
            for event in EVENTS
        }

    def append(self, callback: Any) -> None:
        self.callbacks.append(callback)
        self._refresh()

    def has(self, event: str) -> bool:
        return bool(self._handlers[event])

    def __call__(self, event: str, trainer: Any, logs: dict[str, Any]) -> None:
        for handler in self._handlers[event]:
            handler(trainer, logs)

    def call_all(self, event: str, trainer: Any, logs: dict[str, Any]) -> list[BaseException]:
        """Call every handler even if some raise (for ``on_end``); returns the errors."""
        errors = []
        for handler in self._handlers[event]:
            try:
                handler(trainer, logs)
            except Exception as exc:
                if isinstance(exc, ResnetlabError) or disk_full(exc):
                    # Says what happened already (a full disk while the store records the
                    # end): one line, not a traceback on top of the run's own error.
                    name = getattr(handler, "__qualname__", handler)
                    log.error("callback %s failed in %s: %s", name, event, exc)
                else:
                    log.exception("callback %s failed in %s", handler, event)
                errors.append(exc)
        return errors


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda t, logs: ...)``."""

    def __init__(self, **handlers: Callable[[Any, dict[str, Any]], Any]) -> None:
        unknown = set(handlers) - set(EVENTS)
        if unknown:
            raise TypeError(f"unknown events {sorted(unknown)}; events are {EVENTS}")
        for event, fn in handlers.items():
            setattr(self, event, fn)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(
        self, monitor: str = "val_accuracy", patience: int = 3, min_delta: float = 0.0
    ) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode_max = not monitor.endswith("loss")
        self.best: float | None = None
        self.wait = 0

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        better = self.best is None or (
            value > self.best + self.min_delta
            if self.mode_max
            else value < self.best - self.min_delta
        )
        if better:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            log.info("early stopping: %s did not improve for %d epochs", self.monitor, self.wait)
            trainer.stop_training = True


class ProgressBar(Callback):
    """A tqdm bar over the whole fit: loss, accuracy, images/s, ETA; one line per epoch."""

    def __init__(self, file: Any = None, leave: bool = True, mininterval: float = 0.5) -> None:
        self.file, self.leave, self.mininterval = file, leave, mininterval
        self.bar: Any = None
        self._offset = 0

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        from tqdm.auto import tqdm

        self.epochs = logs["epochs"]
        # The bar counts this run's steps; a run resumed with other steps per epoch (another
        # world size) has a step counter in the old run's units, so it starts at its position.
        self._offset = logs["step"] - logs.get("position", logs["step"])
        self.bar = tqdm(
            total=logs["total_steps"],
            initial=logs["step"] - self._offset,
            unit="step",
            file=self.file,
            leave=self.leave,
            mininterval=self.mininterval,
            dynamic_ncols=True,
        )
        # A resumed run that has already finished trains nothing: it shows "epoch N/N".
        self.bar.set_description(f"epoch {min(logs['epoch'] + 1, self.epochs)}/{self.epochs}")

    def on_epoch_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.set_description(f"epoch {logs['epoch'] + 1}/{self.epochs}")

    def on_batch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.bar is None:
            return
        self.bar.update(logs["step"] - self._offset - self.bar.n)
        if "loss" in logs:  # a logging step: fresh numbers
            self.bar.set_postfix(
                loss=f"{logs['loss']:.3f}",
                acc=f"{logs['accuracy']:.3f}",
                img_s=f"{logs['images_per_s']:.0f}",
                refresh=False,
            )

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.bar is None:
            return
        parts = [
            f"epoch {logs['epoch'] + 1}/{self.epochs}",
            f"loss {logs['loss']:.4f}",
            f"acc {logs['accuracy']:.4f}",
        ]
        if "val_accuracy" in logs:
            parts += [f"val_loss {logs['val_loss']:.4f}", f"val_acc {logs['val_accuracy']:.4f}"]
        parts.append(f"{logs['epoch_time']:.0f}s")
        self.bar.write("  ".join(parts), file=self.file)

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Announce(Callback):
    """Reports (on rank 0 only) the batch plan, where the run lives and the dashboard
    address as training starts, and one system line per rank after each epoch of a
    torchrun job, each line through ``emit``.

    ``resnetlab train`` emits with ``print``; ``resnetlab.train(verbose=True)`` with the
    ``resnetlab.report`` logger (see ``resnetlab.api``).
    """

    def __init__(self, emit: Callable[[str], Any]) -> None:
        self.emit = emit

    def start_lines(self, trainer: Any) -> list[str]:
        """The lines reported at the start of the fit."""
        lines = []
        plan = trainer.config.extra.get("batch_plan")
        if plan:
            lines.append(plan)
        if trainer.dist.is_distributed:
            lines.append(
                f"distributed: {trainer.dist.world_size} ranks, backend "
                f"{trainer.dist.backend}, timeout {trainer.dist.timeout_s:g} s"
            )
        if trainer.step:
            lines.append(f"resumed at epoch {trainer.epoch}, step {trainer.step}")
        parts = []
        if trainer.run_id is not None:
            parts.append(f"run {trainer.run_id}")
        parts.append(f"{trainer.steps_per_epoch} steps/epoch x {trainer.config.epochs} epochs")
        parts.append(f"device {trainer.device}")
        if trainer.run_dir is not None:
            parts.append(f"checkpoints in {trainer.run_dir}")
        lines.append(", ".join(parts))
        live = trainer.live
        if live is not None:
            where = live.url or (f"snapshots in {trainer.run_dir}" if trainer.run_dir else "")
            lines.append(f"live dashboard ({live.backend}): {where}")
        return lines

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        if trainer.dist.is_main:
            for line in self.start_lines(trainer):
                self.emit(line)

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        samples = getattr(trainer, "system_by_rank", None)
        if trainer.dist.is_main and samples:
            from resnetlab.distributed import format_rank_lines

            for line in format_rank_lines(samples):
                self.emit(f"  {line}")


class Timer(Callback):
    """Wall time of the fit (``seconds``) and of each epoch (``epochs``), for benchmarks."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.epochs: list[float] = []
        self._t0 = 0.0

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.epochs.append(time.perf_counter() - self._t0)

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.seconds = time.perf_counter() - self._t0


class SystemSamples(Callback):
    """This machine's CPU, RAM and GPU sampled into the run's stream while it trains.

    A daemon thread appends one :class:`~resnetlab.metrics.system.SystemSampler` sample
    every ``interval`` seconds as ``sys/<measure>`` at the current training step (the
    names the live monitor uses), so a stored run, ``resnetlab watch`` and a dashboard all
    show the same CPU/RAM panels, with or without a live dashboard. Added by the recipe to
    single-process runs (torchrun ranks have :class:`RankSystemMonitor`).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self, trainer: Any) -> None:
        with SystemSampler() as sampler:
            while True:
                sample = {f"sys/{key}": value for key, value in sampler.sample().items()}
                try:
                    trainer.stream.append(trainer.step, sample)
                except Exception:  # a sample must never cost the run
                    log.debug("system sample not recorded", exc_info=True)
                if self._stop.wait(self.interval):
                    return

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._stop.clear()
        self._thread = None

    def on_batch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        # Sampling starts after the first step, once every callback's on_fit_start has
        # run: a consumer that starts reading the stream there (TensorBoardCallback, a
        # dashboard) sees the first sample too, however short the run.
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._run, args=(trainer,), name="resnetlab-system-samples", daemon=True
            )
            self._thread.start()

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None


class RankSystemMonitor(Callback):
    """Each rank samples its own host (CPU, RAM, GPU memory) at every epoch end; rank 0
    keeps them all in ``trainer.system_by_rank`` and logs one line per rank.

    The measures are :data:`resnetlab.metrics.system.RANK_MEASURES`, named as the live
    system monitor names them. The gather is a collective, so it runs from the training
    loop on every rank at the same point (never from a thread). Added by
    :func:`resnetlab.train` under torchrun.
    """

    def __init__(self) -> None:
        # No NVML here: a rank's GPU numbers come from torch.cuda, which maps
        # CUDA_VISIBLE_DEVICES to the right device itself.
        self._sampler = SystemSampler(gpus=False)

    def sample(self, trainer: Any) -> dict[str, Any]:
        device = getattr(trainer, "device", None)
        cuda_index = None
        if device is not None and getattr(device, "type", "") == "cuda":
            import torch

            cuda_index = device.index if device.index is not None else torch.cuda.current_device()
        return dict(self._sampler.rank_sample(cuda_index))

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        from resnetlab.distributed import format_rank_lines, rank_system_logs

        samples = trainer.dist.gather_system_metrics(self.sample(trainer))
        if trainer.dist.is_main:
            trainer.system_by_rank = samples
            # rank{r}/cpu_percent, ...: stored with the run and plottable like any metric.
            trainer.stream.append(trainer.step, rank_system_logs(samples), epoch=trainer.epoch)
            for line in format_rank_lines(samples):
                log.info("system %s", line)
