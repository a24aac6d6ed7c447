"""Training as a background job: pause, resume and stop at batch boundaries, or kill.

    job = resnetlab.train("simple-cnn", data="fashion-mnist", epochs=3, background=True)
    job.progress            # epoch 1/3, step 120/1410 (8.5 %), loss 0.61
    job.pause(); job.resume()
    job.stop(save=True)     # checkpoint, then end within one batch
    job.wait()

:func:`start_recipe` runs the training recipe (``resnetlab.training.recipe.run``) on a
:class:`~resnetlab.training.args.RecipeArgs`, the typed arguments ``resnetlab.train``
forwards; :func:`start_training` runs any ``train_fn(*args, **kwargs)`` that follows the
same callback protocol. A :class:`TrainingControl` callback rides along with the user's
callbacks: at every ``on_batch_end`` it reports progress and obeys the control flags
(pause, stop, no-save) that the :class:`TrainingJob` sets from any thread. With
``kind="process"`` the trainer runs in a spawned worker (``kill()`` works; the last epoch
checkpoint stays loadable because checkpoints are written atomically) and its metrics are
forwarded into ``job.stream`` in this process, the stream the live plots read.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resnetlab.errors import JobError
from resnetlab.jobs.context import current
from resnetlab.jobs.job import Job, ThreadJob
from resnetlab.jobs.registry import JobRegistry, default_registry
from resnetlab.jobs.worker import ProcessJob
from resnetlab.metrics.stream import MetricStream, make_record
from resnetlab.metrics.transport import RecordAppender
from resnetlab.states import RunStatus
from resnetlab.training.args import RecipeArgs

log = logging.getLogger(__name__)

FLAGS = ("stop", "pause", "nosave")
# Progress reports are sent at most this often (seconds), and at every epoch end.
REPORT_INTERVAL = 0.1


@dataclass(frozen=True)
class TrainingProgress:
    """Where a background training run is: epoch, step, and its latest metrics."""

    epoch: int = 0  # epochs completed
    epochs: int = 0
    step: int = 0  # optimiser steps done
    total_steps: int = 0
    paused: bool = False
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    def __str__(self) -> str:
        if not self.total_steps:
            return str(RunStatus.STARTING)
        shown = ", ".join(
            f"{k} {v:.4g}"
            for k, v in self.metrics.items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy")
        )
        text = (
            f"epoch {min(self.epoch + 1, max(self.epochs, 1))}/{self.epochs}, step "
            f"{self.step}/{self.total_steps} ({100 * self.fraction:.1f} %)"
        )
        return text + (f", {shown}" if shown else "") + (" [paused]" if self.paused else "")

    __repr__ = __str__


class TrainingControl:
    """The callback that makes a trainer controllable from outside its thread/process.

    ``ctx`` is what ``jobs.current()`` returned where training runs: it has
    ``flag(name)`` (Events set by the TrainingJob) and ``report(kind, payload)``.
    """

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._stop = ctx.flag("stop")
        self._pause = ctx.flag("pause")
        self._nosave = ctx.flag("nosave")
        self._last_report = 0.0
        self._epochs = 0
        self._total = 0

    def _report(
        self, trainer: Any, logs: dict[str, Any], *, paused: bool = False, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < REPORT_INTERVAL:
            return
        self._last_report = now
        metrics = {
            k: float(v)
            for k, v in logs.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and k not in ("epoch", "step", "batch", "epochs_done")
        }
        self.ctx.report(
            "progress",
            TrainingProgress(
                epoch=int(getattr(trainer, "epoch", 0)),
                epochs=self._epochs,
                step=int(getattr(trainer, "step", 0)),
                total_steps=self._total,
                paused=paused,
                metrics=metrics,
            ),
        )

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._epochs = int(logs.get("epochs", getattr(trainer, "epochs", 0)) or 0)
        self._total = int(logs.get("total_steps", getattr(trainer, "total_steps", 0)) or 0)
        self._report(trainer, {}, force=True)

    def on_batch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self._pause.is_set() and not self._stop.is_set():
            self._report(trainer, logs, paused=True, force=True)
            while self._pause.is_set() and not self._stop.is_set():
                time.sleep(0.02)
            self._report(trainer, logs, force=True)
        if self._stop.is_set():
            if self._nosave.is_set() and getattr(trainer, "checkpoints", None) is not None:
                trainer.checkpoints = None  # the trainer skips its stop checkpoint
            trainer.stop_training = True
        self._report(trainer, logs)

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._report(trainer, logs, force=True)

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        history = getattr(trainer, "history", None)
        self._report(trainer, dict(history[-1]) if history else {}, force=True)


class ForwardingStream(MetricStream):
    """A worker's MetricStream that also sends every record to the parent's ``job.stream``.

    The record is checked once, here (a bad value raises ``MetricStream.append``'s
    ConfigError before anything is kept or sent), and the same record — same time — is
    kept locally and forwarded through ``ctx`` (a transport producer).
    """

    def __init__(self, ctx: RecordAppender, name: str = "run") -> None:
        super().__init__(name=name)
        self._ctx = ctx

    def append(
        self,
        step: int,
        metrics: Mapping[str, float],
        *,
        time: float | None = None,
        epoch: int | None = None,
    ) -> None:
        rec = make_record(step, metrics, time=time, epoch=epoch)
        super().append(rec.step, rec.metrics, time=rec.time, epoch=rec.epoch)
        self._ctx.append(rec.step, rec.metrics, time=rec.time, epoch=rec.epoch)


def _job_context() -> Any:
    ctx = current()
    if ctx is None:
        # (The body of either kind of training job.)
        raise JobError("run_training() runs inside a job; start it with start_training()")
    return ctx


def _job_stream(ctx: Any) -> MetricStream:
    if isinstance(ctx, Job):
        return ctx.stream  # this process: metrics go straight to job.stream
    return ForwardingStream(ctx, name=ctx.name)


def _returned(ctx: Any, result: Any) -> Any:
    # From a worker process only what pickles comes back.
    return result if isinstance(ctx, Job) else _portable(result)


def run_training(train_fn: Callable[..., Any], args: tuple, train_kwargs: dict[str, Any]) -> Any:
    """The body of a ``train_fn`` training job (in its thread or worker process)."""
    ctx = _job_context()
    kwargs = dict(train_kwargs)
    callbacks = list(kwargs.pop("callbacks", None) or ())
    kwargs["callbacks"] = [*callbacks, TrainingControl(ctx)]
    kwargs["stream"] = _job_stream(ctx)
    return _returned(ctx, train_fn(*args, **kwargs))


def run_recipe(args: RecipeArgs) -> Any:
    """The body of a recipe training job: ``recipe.run(args)``, controllable and streamed."""
    from resnetlab.training import recipe  # torch: imported where the job runs

    ctx = _job_context()
    args = dataclasses.replace(
        args, callbacks=(*args.callbacks, TrainingControl(ctx)), stream=_job_stream(ctx)
    )
    return _returned(ctx, recipe.run(args))


def _portable(result: Any) -> Any:
    """The result itself if it can cross processes, else a dict of its plain fields."""
    try:
        pickle.dumps(result)
        return result
    except Exception:
        fields = {}
        for key, value in vars(result).items() if hasattr(result, "__dict__") else ():
            try:
                pickle.dumps(value)
            except Exception:
                continue
            fields[key] = value
        log.info(
            "training result of type %s does not pickle; returning its fields %s",
            type(result).__name__,
            sorted(fields),
        )
        return fields


class _TrainingThreadJob(ThreadJob):
    pass


class _TrainingProcessJob(ProcessJob):
    flag_names = FLAGS


class TrainingJob:
    """A training run in the background (a thread, or a killable worker process)."""

    def __init__(self, job: Job, dashboard: Any = None) -> None:
        self.job = job
        # The live dashboard started in the calling thread on job.stream (None if not asked).
        self.dashboard = dashboard

    # -- what it shows ---------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.job.id

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def stream(self) -> MetricStream:
        """The metrics of the run, in this process (dashboards read it)."""
        return self.job.stream

    @property
    def progress(self) -> TrainingProgress:
        return self.job.reports.get("progress") or TrainingProgress()

    @property
    def status(self) -> RunStatus:
        """running, paused, completed, stopped, failed or killed."""
        if self.job.running and self.job.flag("pause").is_set() and self.progress.paused:
            return RunStatus.PAUSED
        return RunStatus(self.job.state)

    @property
    def running(self) -> bool:
        """Whether the job has not ended yet (running or paused), as ``Job.running``."""
        return self.job.running

    def tail(self, n: int = 20) -> str:
        return self.job.tail(n)

    def show_output(self, lines: int = 200) -> None:
        self.job.show_output(lines)

    # -- control -----------------------------------------------------------------------
    def pause(self, wait: float | None = 10.0) -> None:
        """Pause at the next batch boundary (returns once paused, or after ``wait`` s)."""
        self._check_running("pause")
        self.job.flag("pause").set()
        deadline = time.monotonic() + (wait or 0)
        while (
            wait and self.job.running and not self.progress.paused and time.monotonic() < deadline
        ):
            time.sleep(0.01)

    def resume(self) -> None:
        """Continue after :meth:`pause`."""
        self.job.flag("pause").clear()

    def stop(self, save: bool = True, timeout: float | None = 120.0) -> str:
        """Stop at the next batch boundary, writing a checkpoint first unless ``save=False``.

        Waits up to ``timeout`` s for the run to end (never kills it); returns the status.
        """
        if not self.job.running:
            return self.job.state
        if not save:
            self.job.flag("nosave").set()
        self.job.stop_reason = self.job.stop_reason or "event"
        self.job.flag("stop").set()
        if self.job.wait(timeout) == "running":
            raise JobError(
                f"training job {self.id} did not stop within {timeout} s (a long "
                "validation pass?); wait longer with job.wait(), or job.kill() a "
                "kind='process' run"
            )
        return self.job.state

    def kill(self, grace: float = 3.0) -> str:
        """End a ``kind="process"`` run now (SIGTERM, then SIGKILL after ``grace`` s)."""
        return self.job.kill(grace)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run ends; returns what ``train`` returned (errors are raised)."""
        if self.job.wait(timeout) == "running":
            raise JobError(f"training job {self.id} is still running after {timeout} s")
        if self.job.state in (RunStatus.COMPLETED, RunStatus.STOPPED):
            return self.job.result()
        return self._raise()

    def result(self) -> Any:
        return self.job.result()

    def _raise(self) -> Any:
        return self.job.result()  # raises a JobError that says why there is no result

    def _check_running(self, what: str) -> None:
        if not self.job.running:
            raise JobError(f"cannot {what} training job {self.id}: it is {self.job.state}")

    def __repr__(self) -> str:
        return f"<TrainingJob {self.id} {self.kind} {self.status}: {self.progress}>"


def _check_kind(kind: str) -> None:
    if kind not in ("thread", "process"):
        raise JobError(f"start_training(kind={kind!r}): use 'thread' or 'process'")


def _label(model: Any, name: str | None) -> str:
    if name:
        return name
    if model is None:
        return "train"
    return f"train {model if isinstance(model, str) else type(model).__name__}"


def _start(
    body: Callable[..., Any],
    body_args: tuple,
    *,
    label: str,
    kind: str,
    stream: MetricStream | None,
    registry: JobRegistry | None,
) -> TrainingJob:
    registry = registry if registry is not None else default_registry()
    job_class = _TrainingProcessJob if kind == "process" else _TrainingThreadJob
    job = registry.new(body, *body_args, name=label, kind=kind, job_class=job_class, stream=stream)
    return TrainingJob(job)


def start_recipe(
    args: RecipeArgs,
    *,
    kind: str = "thread",
    name: str | None = None,
    registry: JobRegistry | None = None,
) -> TrainingJob:
    """Start the training recipe on ``args`` as a background job; returns a TrainingJob.

    ``kind="thread"`` shares this process (and its GPU context); ``kind="process"`` runs in
    a spawned worker that can be killed (``args`` must pickle: pass a preset name rather
    than a live model). ``args.stream``, if given, is the job's stream (the worker process
    gets a forwarding stream instead). ``registry``: the job registry (default
    ``resnetlab.jobs.registry``).
    """
    _check_kind(kind)
    # A stream the caller passed is the job's stream (their dashboard reads it); the job's
    # body gets job.stream, or in a worker process a stream that forwards to it.
    stream = args.stream
    return _start(
        run_recipe,
        (dataclasses.replace(args, stream=None),),
        label=_label(args.model_or_preset, name),
        kind=kind,
        stream=stream,
        registry=registry,
    )


def start_training(
    *args: Any,
    kind: str = "thread",
    name: str | None = None,
    train_fn: Callable[..., Any] | None = None,
    registry: JobRegistry | None = None,
    **train_kwargs: Any,
) -> TrainingJob:
    """Start ``train_fn(*args, **train_kwargs)`` as a background job; returns a TrainingJob.

    ``train_fn`` defaults to the training recipe (``resnetlab.train``'s arguments, without
    ``live``: :func:`resnetlab.train` with ``live=`` and ``background=`` starts the
    dashboard too); see :func:`start_recipe` for ``kind``.
    """
    _check_kind(kind)
    train_kwargs.pop("background", None)
    if train_fn is None:
        if train_kwargs.pop("live", None) not in (None, False):
            raise JobError(
                "start_training(live=...): the live dashboard belongs to the caller; use "
                "resnetlab.train(..., live=..., background=True), or start one on job.stream"
            )
        recipe_args = RecipeArgs.from_keywords(*args, **train_kwargs)
        return start_recipe(recipe_args, kind=kind, name=name, registry=registry)
    model = args[0] if args else train_kwargs.get("model_or_preset", train_kwargs.get("model"))
    # A stream the caller passed is the job's stream; the body gets job.stream (or one
    # that forwards to it).
    stream = train_kwargs.pop("stream", None)
    return _start(
        run_training,
        (train_fn, args, train_kwargs),
        label=_label(model, name),
        kind=kind,
        stream=stream,
        registry=registry,
    )
