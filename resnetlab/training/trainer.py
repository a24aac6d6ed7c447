"""Trainer: the training loop, its events, checkpoints and the run record.

    trainer = Trainer(model, train_loader, val_loader, config=TrainConfig(epochs=5),
                      callbacks=[ProgressBar()], store=RunStore())
    trainer.fit()

The loop is plain PyTorch: forward under autocast, backward (scaled for fp16), unscale
and clip, ``on_after_backward``, optimiser step, EMA, LR from a pure schedule function of
the position in training (epoch and batch, so a run resumed with another number of steps
per epoch, e.g. on another world size, continues at the same point of its schedule).
Running sums of loss and accuracy stay on the device; they are read back
(``.tolist()``, the only device sync) every ``config.log_every`` steps and at epoch ends.
Everything logged goes to ``trainer.stream`` (a MetricStream); the run store, progress
bar and dashboards read it from there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterable, Mapping, Sized
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetlab.errors import CheckpointError, ConfigError
from resnetlab.metrics.stream import MetricStream
from resnetlab.states import RunStatus
from resnetlab.store.recorder import StoreRecorder
from resnetlab.training.callbacks import CallbackList
from resnetlab.training.checkpoint import (
    CheckpointManager,
    check_state_dict,
    load_checkpoint,
    rng_state,
    set_rng_state,
)
from resnetlab.training.config import TrainConfig
from resnetlab.training.distributed import DistContext
from resnetlab.training.ema import ModelEMA
from resnetlab.training.evaluate import EvalResult, evaluate
from resnetlab.training.optim import build_optimizer
from resnetlab.training.precision import autocast_factory, make_scaler, resolve_precision
from resnetlab.training.schedules import build_schedule
from resnetlab.training.seed import seed_everything
from resnetlab.training.tta import FlipAverage, mirrors_batches
from resnetlab.utils.device import resolve_device

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _unused_run_dir(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... if a folder of that name already holds files.

    Two run stores in one folder (``a.db``, ``b.db``) both number their runs from 1: the
    second store's run 1 must not overwrite the first one's checkpoints.
    """
    candidate, n = path, 1
    while candidate.is_dir() and any(candidate.iterdir()):
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    if candidate != path:
        log.warning("%s already holds another run's files; this run writes to %s", path, candidate)
    return candidate


class Trainer:
    """Trains ``model`` on ``train_loader``; see the module docstring and docs/training.md.

    ``store`` (a RunStore) records the run as ``run_id`` (created if None); ``dist`` (a
    DistContext) is the hook for distributed training. Attributes for callbacks:
    ``model`` (the bare module), ``optimizer``, ``step``, ``epoch``, ``stream``,
    ``run_dir``, ``history`` (one logs dict per epoch), ``stop_training``, ``status`` (a
    RunStatus), ``live`` (the live dashboard watching the run, if any, for callbacks to
    show; ``resnetlab.train`` sets it).
    """

    def __init__(
        self,
        model: nn.Module,
        train_loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
        val_loader: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
        *,
        config: TrainConfig | None = None,
        callbacks: Iterable[Any] = (),
        stream: MetricStream | None = None,
        store: Any = None,
        run_id: int | None = None,
        run_name: str | None = None,
        dist: DistContext | None = None,
    ) -> None:
        # A copy: the trainer fills in run_dir, and one TrainConfig may serve several runs.
        self.config = config = dataclasses.replace(config) if config is not None else TrainConfig()
        config.validate()
        if config.tta_flip is None:
            # Test-time flips only for a network known to train on mirrored images.
            config.tta_flip = config.flip and mirrors_batches(train_loader)
        if config.run_dir:
            # Absolute, as recorded in the store and the checkpoints: a resume from another
            # directory must write into the same folder.
            config.run_dir = os.path.abspath(config.run_dir)
        if not isinstance(train_loader, Sized):
            raise ConfigError(
                "train_loader must have a length (batches per epoch) so the LR "
                "schedule knows the run's length; wrap it in a list or a DataLoader"
            )
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.device = resolve_device(dist.device if dist is not None else config.device)
        self.dist = (
            dist if dist is not None else DistContext(config.rank, config.world_size, self.device)
        )
        self.precision = resolve_precision(config.precision, self.device)
        self.autocast = autocast_factory(self.precision, self.device)
        self.scaler = make_scaler(self.precision, self.device)

        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # DDP under torchrun (rank 0's weights broadcast to all); the bare model otherwise.
        # Checkpoints hold self.model (unwrapped), so they resume on any world size.
        if config.sync_batchnorm:
            self.train_model = self.dist.wrap_model(self.model, sync_batchnorm=True)
        else:
            self.train_model = self.dist.wrap_model(self.model)
        self.forward_model = torch.compile(self.train_model) if config.compile else self.train_model
        self.optimizer = build_optimizer(self.model, config)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.ema = ModelEMA(self.model, config.ema_decay) if config.ema_decay else None
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

        self.steps_per_epoch = len(train_loader)
        if self.steps_per_epoch < 1:
            raise ConfigError(
                "train_loader yields no batches: the training set is empty or "
                "smaller than one batch with drop_last; lower batch_size"
            )
        self.total_steps = config.epochs * self.steps_per_epoch
        self.schedule = build_schedule(
            config.schedule,
            self.total_steps,
            warmup=config.warmup,
            milestones=config.step_milestones,
            gamma=config.step_gamma,
        )

        self.stream = stream if stream is not None else MetricStream(name=run_name or "run")
        self.callbacks = CallbackList(callbacks)
        self.step = 0  # optimiser steps done
        self.epoch = 0  # epochs completed (the current one while training)
        self.batch_in_epoch = 0  # batches done in the current epoch
        self.stop_training = False
        # Logging-window sums carried across a mid-epoch stop (see _run_epoch).
        self._log_carry: dict[str, list[float]] | None = None
        self.history: list[dict[str, Any]] = []
        self.best: float | None = None
        self.status = RunStatus.STARTING  # until fit() runs
        self.live: Any = None
        self.last_checkpoint: Path | None = None
        self.best_checkpoint: Path | None = None
        self.fit_seconds = 0.0
        self._pending_rng: dict[str, Any] | None = None
        self._resumed = False
        # Set by a caller that measures more after fit() (the recipe's test split): a fit
        # that completes then leaves the stored run "running" until finish_run() records
        # it, so a kill during that test is "interrupted", never "completed" without it.
        self.defer_completion = False

        # The run record and the checkpoint folder belong to the main process only.
        self.store = store if self.dist.is_main else None
        self.run_id = run_id
        self.run_name = run_name
        self._recorder: StoreRecorder | None = None
        if self.store is not None:
            spec = getattr(model, "spec", None) or {}
            new_run = self.run_id is None
            if new_run:
                self.run_id = self.store.create_run(
                    run_name,
                    config=config.to_dict(),
                    model=spec.get("name") or config.extra.get("model") or type(model).__name__,
                    dataset=config.extra.get("dataset"),
                )
            else:
                self.store.claim_run(self.run_id)
            self._recorder = StoreRecorder(self.store, self.run_id, self.stream)
            self.callbacks.append(self._recorder)
        self.run_id = self.dist.broadcast_object(self.run_id)
        if config.run_dir:
            self.run_dir: Path | None = Path(config.run_dir)
        elif self.store is not None:
            self.run_dir = self.store.path.parent / f"run-{self.run_id}"
            if new_run and self.dist.is_main:
                self.run_dir = _unused_run_dir(self.run_dir)
            # Remembered in the checkpoints, so a resume finds this folder again.
            config.run_dir = str(self.run_dir)
        else:
            self.run_dir = None
        self.checkpoints = (
            CheckpointManager(self.run_dir, config.keep_last)
            if self.run_dir is not None and self.dist.is_main
            else None
        )
        if self.store is not None:
            self.store.update_run(self.run_id, run_dir=str(self.run_dir) if self.run_dir else None)

    # -- learning rate ---------------------------------------------------------------
    @property
    def lr(self) -> float:
        """The LR of the first parameter group now."""
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def schedule_position(self) -> int:
        """Where training stands on this run's schedule, in this run's steps.

        The epoch and the batch in it, not the global step counter: after a resume with
        another number of steps per epoch (another world size or batch size) the counter
        holds the old run's steps, while the position is the same fraction of training.
        """
        return self.epoch * self.steps_per_epoch + self.batch_in_epoch

    def _set_lr(self) -> None:
        factor = self.schedule(min(self.schedule_position, self.total_steps - 1))
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    # -- one step --------------------------------------------------------------------
    def _train_step(self, x: torch.Tensor, y: torch.Tensor, sums: torch.Tensor) -> None:
        self._set_lr()
        with self.autocast():
            logits = self.forward_model(x)
            loss = self.loss_fn(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.callbacks.has("on_after_backward"):
            self.callbacks(
                "on_after_backward",
                self,
                {"step": self.step, "epoch": self.epoch, "batch": self.batch_in_epoch},
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        # Running sums stay on the device: no sync here.
        with torch.no_grad():
            sums[0] += loss.detach().float() * y.shape[0]
            sums[1] += (logits.detach().argmax(1) == y).sum()

    # -- epoch -----------------------------------------------------------------------
    def _batches(self, epoch: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
        if hasattr(self.train_loader, "set_epoch"):
            self.train_loader.set_epoch(epoch)
        it = iter(self.train_loader)
        if self.batch_in_epoch:
            # Resuming mid-epoch: replay the loader up to where the checkpoint was taken,
            # so the order and augmentation of the remaining batches are the same.
            for _ in range(self.batch_in_epoch):
                next(it)
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        return it

    def _read_sums(self, sums: torch.Tensor) -> tuple[float, float, float]:
        # A logging point: the one place where the loop waits for the device.
        loss_sum, correct, count = self.dist.all_reduce_sum(sums.clone()).tolist()
        return loss_sum, correct, count

    def _run_epoch(self) -> dict[str, Any]:
        epoch = self.epoch
        self.callbacks("on_epoch_start", self, {"epoch": epoch, "step": self.step})
        self.model.train()
        device = self.device
        window = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        if self._log_carry is not None:
            # Resumed mid-epoch: the batches since the last logging point (and since the
            # epoch began) count in the next row and the epoch's means, as if never
            # stopped. Global sums: kept on rank 0 alone, so the all-reduce adds them once.
            if self.dist.is_main:
                window += torch.tensor(
                    self._log_carry["window"], dtype=torch.float64, device=device
                )
                totals += torch.tensor(
                    self._log_carry["totals"], dtype=torch.float64, device=device
                )
            self._log_carry = None
        t_epoch = t_window = time.perf_counter()
        log_every = self.config.log_every
        for x, y in self._batches(epoch):
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if self.config.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            self._train_step(x, y, window)
            window[2] += y.shape[0]
            self.step += 1
            self.batch_in_epoch += 1
            logs: dict[str, Any] = {
                "epoch": epoch,
                "step": self.step,
                "batch": self.batch_in_epoch,
                "lr": self.lr,
            }
            if self.step % log_every == 0 or self.batch_in_epoch == self.steps_per_epoch:
                loss_sum, correct, count = self._read_sums(window)
                now = time.perf_counter()
                logs.update(
                    loss=loss_sum / count,
                    accuracy=correct / count,
                    images_per_s=count / max(now - t_window, 1e-9),
                )
                if not math.isfinite(logs["loss"]):
                    raise ConfigError(
                        f"training diverged: loss is {logs['loss']} at step {self.step} "
                        f"(epoch {epoch + 1}); lower the learning rate (lr={self.config.lr}), "
                        "set grad_clip, or use precision='fp32'"
                    )
                self.stream.append(
                    self.step,
                    {k: logs[k] for k in ("loss", "accuracy", "lr", "images_per_s")},
                    epoch=epoch,
                )
                totals += window
                window.zero_()
                t_window = now
            self.callbacks("on_batch_end", self, logs)
            if self.stop_training:
                if self.batch_in_epoch < self.steps_per_epoch:
                    # Stopped mid-epoch: no partial row (a resumed run would log these
                    # batches again); the sums go into the checkpoint instead, so the
                    # resumed run's next row and epoch means are the uninterrupted ones.
                    self._log_carry = {
                        "window": list(self._read_sums(window)),
                        "totals": list(self._read_sums(totals)),
                    }
                break
        totals += window
        loss_sum, correct, count = self._read_sums(totals) if totals[2] > 0 else (0.0, 0.0, 0.0)
        return {
            "epoch": epoch,
            "step": self.step,
            "lr": self.lr,
            "loss": loss_sum / count if count else float("nan"),
            "accuracy": correct / count if count else float("nan"),
            "epoch_time": time.perf_counter() - t_epoch,
        }

    def validate(
        self, loader: Iterable[Any] | None = None, num_classes: int | None = None
    ) -> EvalResult:
        """Loss and accuracy of the evaluation weights (the EMA if kept) on ``loader``,
        averaged with the mirrored images when ``config.eval_flips``."""
        model = self.eval_model
        if self.config.eval_flips:
            model = FlipAverage(model)
        return evaluate(
            model,
            loader if loader is not None else self.val_loader,
            device=self.device,
            autocast=self.autocast,
            num_classes=num_classes,
            all_reduce_sum=self.dist.all_reduce_sum,
            channels_last=self.config.channels_last,
        )

    @property
    def eval_model(self) -> nn.Module:
        """The weights used for evaluation: the EMA when kept, else the model itself."""
        return self.ema.module if self.ema is not None else self.model

    # -- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimiser, EMA, RNG, position."""
        return {
            "model": self.model.state_dict(),
            "spec": getattr(self.model, "spec", None),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "step": self.step,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "config": self.config.to_dict(),
            "rng": rng_state(),
            "metrics": {
                k: float(v)
                for k, v in (self.history[-1] if self.history else {}).items()
                if isinstance(v, (int, float))
            },
            "best": self.best,
            "run_id": self.run_id,
            # Sums of the batches since the last logging point / since the epoch began,
            # when stopped mid-epoch (None otherwise).
            "log_carry": self._log_carry if self.batch_in_epoch else None,
            # Epoch logs so far (plain numbers and strings), so a resumed run's history
            # is the whole run's.
            "history": [
                {k: v for k, v in h.items() if isinstance(v, (int, float, str))}
                for h in self.history
            ],
        }

    def save_checkpoint(self, *, is_best: bool = False) -> Path | None:
        """Write a checkpoint now (main process only); returns its path."""
        if self.checkpoints is None:
            return None
        path = self.checkpoints.save(self.state_dict(), self.step, is_best=is_best)
        self.last_checkpoint = self.checkpoints.last
        if is_best:
            self.best_checkpoint = self.checkpoints.best
        if self.store is not None:
            self.store.update_run(
                self.run_id,
                checkpoint_last=str(self.last_checkpoint),
                checkpoint_best=str(self.best_checkpoint) if self.best_checkpoint else None,
            )
        return path

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        """Restore a :meth:`state_dict` (the RNG is restored when training continues)."""
        if "optimizer" not in state or "step" not in state:
            raise CheckpointError(
                f"{source}: holds weights only, no training state to resume; "
                "load it with model_from_checkpoint() and start a new run"
            )
        check_state_dict(self.model, state["model"], source)
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{source}: optimiser state does not fit ({exc}); the "
                "checkpoint used another optimizer setting"
            ) from exc
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            if state.get("ema"):
                self.ema.load_state_dict(state["ema"])
            else:
                self.ema.module.load_state_dict(state["model"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        saved_epochs = (state.get("config") or {}).get("epochs") or self.config.epochs
        saved_spe = state.get("steps_per_epoch") or (
            int(state["total_steps"]) // int(saved_epochs) if state.get("total_steps") else None
        )
        if saved_spe and saved_spe != self.steps_per_epoch:
            # Another world size or batch size: the same fraction of the epoch in this run's
            # batches, so the schedule (and the loader replay) continue at the same point.
            done = self.batch_in_epoch
            self.batch_in_epoch = done * self.steps_per_epoch // saved_spe
            log.info(
                "%s: saved with %d steps per epoch, this run has %d; continuing epoch "
                "%d at batch %d (was %d)",
                source,
                saved_spe,
                self.steps_per_epoch,
                self.epoch + 1,
                self.batch_in_epoch,
                done,
            )
        if self.store is not None and self.run_id is not None:
            # Steps after the checkpoint are replayed: forget what the lost attempt logged.
            self.store.truncate_metrics(self.run_id, self.step, logged_after=state.get("saved_at"))
        self.best = state.get("best")
        self.history = [dict(h) for h in state.get("history") or []]
        self._pending_rng = state.get("rng")
        carry = state.get("log_carry")
        # Only a checkpoint of the same batches per epoch continues the same window.
        same_batches = not saved_spe or saved_spe == self.steps_per_epoch
        self._log_carry = dict(carry) if carry and self.batch_in_epoch and same_batches else None
        self._resumed = True

    def resume(self, path: str | os.PathLike[str]) -> None:
        """Load a checkpoint file (or a run folder's ``last.pt``) to continue from it."""
        state = load_checkpoint(path, map_location=self.device)
        self.load_state_dict(state, source=str(path))
        log.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step)

    def _is_better(self, logs: dict[str, Any]) -> bool:
        # Without a validation pass the monitored value falls back to the training loss.
        key = self.config.monitor if self.config.monitor in logs else "loss"
        value = logs.get(key)
        if value is None or not math.isfinite(value):
            return False
        higher = not key.endswith("loss")
        if self.best is None or (value > self.best if higher else value < self.best):
            self.best = float(value)
            return True
        return False

    # -- the whole fit ----------------------------------------------------------------
    @contextlib.contextmanager
    def _graceful_sigint(self):
        """First Ctrl-C: stop at the end of the batch (with a checkpoint); second: abort."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            if self.stop_training:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            log.warning(
                "interrupt: stopping after this batch and saving a checkpoint "
                "(interrupt again to abort)"
            )
            self.stop_training = True

        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:  # not allowed here (embedded interpreter)
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self) -> list[dict[str, Any]]:
        """Train for ``config.epochs`` epochs (or until stopped); returns the history."""
        cfg = self.config
        if not self._resumed:
            seed_everything(cfg.seed)
        self.stop_training = False
        self.status = RunStatus.RUNNING
        t0 = time.perf_counter()
        end_logs: dict[str, Any] = {"status": RunStatus.RUNNING, "error": None}
        error: BaseException | None = None
        try:
            # guard: a dead or hung peer becomes a RankLostError naming it (no hang), and
            # that clear message is what the run store records as the error.
            with self._graceful_sigint(), self.dist.guard("training"):
                self.callbacks(
                    "on_fit_start",
                    self,
                    {
                        "epochs": cfg.epochs,
                        "steps_per_epoch": self.steps_per_epoch,
                        "total_steps": self.total_steps,
                        "step": self.step,
                        "epoch": self.epoch,
                        "position": self.schedule_position,
                        "run_id": self.run_id,
                        "run_dir": str(self.run_dir) if self.run_dir else None,
                    },
                )
                while self.epoch < cfg.epochs and not self.stop_training:
                    logs = self._run_epoch()
                    if self.stop_training and self.batch_in_epoch < self.steps_per_epoch:
                        break  # stopped mid-epoch: no validation, checkpoint below
                    if self.val_loader is not None:
                        logs.update(self.validate().as_logs("val_"))
                        self.callbacks("on_validation_end", self, dict(logs))
                    self.stream.append(
                        self.step,
                        {
                            k: v
                            for k, v in logs.items()
                            if k.startswith("val_") or k == "epoch_time"
                        },
                        epoch=self.epoch,
                    )
                    self.epoch += 1
                    self.batch_in_epoch = 0
                    logs["epochs_done"] = self.epoch
                    self.history.append(logs)
                    is_best = self._is_better(logs)
                    path = self.save_checkpoint(is_best=is_best)
                    logs["checkpoint"] = str(path) if path else None
                    self.callbacks("on_epoch_end", self, logs)
                if self.stop_training and self.epoch < cfg.epochs:
                    self.status = RunStatus.STOPPED
                    if self.batch_in_epoch:
                        self.save_checkpoint()
                else:
                    self.status = RunStatus.COMPLETED
                self.fit_seconds = time.perf_counter() - t0
                self.callbacks(
                    "on_fit_end",
                    self,
                    {
                        "status": self.status,
                        "epoch": self.epoch,
                        "step": self.step,
                        "fit_seconds": self.fit_seconds,
                        **(self.history[-1] if self.history else {}),
                    },
                )
        except BaseException as exc:
            error = exc
            # Ctrl-C, and SIGTERM (job.kill(), a scheduler's kill) turned into SystemExit:
            # the run was interrupted from outside, not failed by its own doing.
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
            self.status = RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED
            end_logs["error"] = _one_line(exc)
            raise
        finally:
            self.fit_seconds = time.perf_counter() - t0
            end_logs.update(
                status=self.status, epoch=self.epoch, step=self.step, fit_seconds=self.fit_seconds
            )
            errors = self.callbacks.call_all("on_end", self, end_logs)
            self._finish_store(end_logs)
            if errors and error is None:
                raise errors[0]
        return self.history

    # -- after the fit ---------------------------------------------------------------
    @property
    def last_epoch(self) -> int:
        """The 0-based epoch of the last step, as the training records of that step have."""
        return self.epoch if self.batch_in_epoch else max(self.epoch - 1, 0)

    def log_after_fit(self, metrics: Mapping[str, float]) -> None:
        """Record metrics measured after the fit (the test split's) at the last step.

        They are appended to the stream once, like every record; the store recorder copies
        them into the run store, where they are also kept among the run's final metrics.
        """
        metrics = dict(metrics)
        self.stream.append(self.step, metrics, epoch=self.last_epoch)
        if self._recorder is not None:
            self._recorder.flush()
            self.store.add_final_metrics(self.run_id, metrics)

    def finish_run(self, error: BaseException | None = None) -> None:
        """Record the end of a run whose completion fit() deferred (``defer_completion``).

        Without ``error``, everything the run promised is recorded now: it becomes
        ``completed``. With one (raised after the fit, e.g. during the test), it becomes
        ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``, with that error.
        """
        if not self.defer_completion or self.status != RunStatus.COMPLETED:
            return
        self.defer_completion = False
        end_logs: dict[str, Any] = {"error": None}
        if error is not None:
            interrupted = isinstance(error, (KeyboardInterrupt, SystemExit))
            self.status = RunStatus.INTERRUPTED if interrupted else RunStatus.FAILED
            end_logs["error"] = _one_line(error)
        self._finish_store(end_logs)

    def _finish_store(self, end_logs: dict[str, Any]) -> None:
        if self.store is None:
            return
        if self.defer_completion and self.status == RunStatus.COMPLETED:
            return  # finish_run() records it once the caller's measurements are in
        final = {
            k: v
            for k, v in (self.history[-1] if self.history else {}).items()
            if isinstance(v, (int, float)) and k not in ("epoch",)
        }
        final["fit_seconds"] = self.fit_seconds
        try:
            self.store.finish_run(
                self.run_id, self.status, final_metrics=final, error=end_logs.get("error")
            )
        except Exception as exc:  # a full disk, say: the run stays "running" until detected
            log.error(
                "could not record the end of run %s in %s: %s", self.run_id, self.store.path, exc
            )
