"""``resnetlab.train(...)``: one call from a preset name to a trained, evaluated, recorded model.

    import resnetlab
    result = resnetlab.train()                       # the default recipe on Fashion-MNIST
    result = resnetlab.train("resnetv2-micro", epochs=2, live="auto")
    print(result.test_accuracy, result.run_id, result.checkpoint)
    job = resnetlab.train(epochs=10, background=True)   # a TrainingJob, at once

In the foreground it runs the training recipe (:func:`resnetlab.training.recipe.run`:
data, validation split, model, Trainer with the run recorded in the RunStore, test
evaluation) with the live dashboard beside it; in the background it starts the same
recipe as a job (:func:`resnetlab.jobs.training.start_recipe`) and the dashboard here,
reading the job's stream.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from resnetlab import jobs
from resnetlab.jobs.training import TrainingJob, start_recipe
from resnetlab.training import recipe
from resnetlab.training.args import DEFAULT_DATA, DEFAULT_STORE, RecipeArgs
from resnetlab.training.callbacks import panels_fed_by
from resnetlab.training.config import TrainConfig
from resnetlab.training.result import TrainResult
from resnetlab.training.trainer import Trainer

log = logging.getLogger(__name__)

# ``live=`` values that mean "no dashboard".
NO_LIVE = (None, False, "none", "off", "no", "")


# -- the live dashboard -----------------------------------------------------------------
def start_live(
    stream: Any, live: Any, run_dir: Path | None, *, callbacks: Iterable[Any] = ()
) -> Any:
    """Start ``resnetlab.live.live_dashboard`` if asked and available; None otherwise.

    The default panels, plus those that the run's ``callbacks`` say they feed
    (:class:`~resnetlab.training.callbacks.FeedsPanels`: the gradient-norm heat map for a
    ``GradientNormCallback``).
    """
    if live in NO_LIVE:
        return None
    backend = "auto" if live is True else str(live)
    try:
        from resnetlab.live import live_dashboard
        from resnetlab.live.drivers import resolve_backend_name
        from resnetlab.live.panels import default_panel_names
    except (ImportError, AttributeError) as exc:
        log.warning("live dashboard unavailable (%s); training without it", exc)
        return None
    resolve_backend_name(backend)  # a misspelt name is an error (BackendError), not a warning
    fed = panels_fed_by(callbacks)
    panels = None
    if fed:
        panels = default_panel_names()
        panels += [name for name in fed if name not in panels]
    try:
        return live_dashboard(
            stream, backend=backend, run_dir=run_dir, system_monitor=True, panels=panels
        )
    except Exception as exc:  # a missing display must not cost the training run
        log.warning("live dashboard %r could not start (%s); training without it", backend, exc)
        return None


class LiveSession:
    """The live dashboard of a run in this process: the recipe's ``Watcher``."""

    def __init__(self, live: Any) -> None:
        self.live = live
        self.dashboard: Any = None

    def start(self, trainer: Trainer) -> Any:
        # A desktop window in this process pumps its own events from the stream's appends
        # (a MetricStream listener): nothing is added to the trainer.
        self.dashboard = start_live(
            trainer.stream, self.live, trainer.run_dir, callbacks=trainer.callbacks.callbacks
        )
        return self.dashboard

    def close(self) -> None:
        if self.dashboard is None:
            return
        try:
            self.dashboard.close()
        except Exception:
            log.exception("closing the live dashboard failed")


# -- foreground or background -----------------------------------------------------------
def train_here(args: RecipeArgs, live: Any = None) -> TrainResult:
    """Run the recipe in this thread, with the live dashboard ``live`` beside it."""
    return recipe.run(args, watcher=None if live in NO_LIVE else LiveSession(live))


def train_in_background(args: RecipeArgs, kind: str = "thread", live: Any = None) -> TrainingJob:
    """Start the recipe as a job (``kind`` "thread" or "process"), and the live dashboard
    here, on the job's stream (a worker process has no display)."""
    job = start_recipe(args, kind=kind, registry=jobs.registry)  # the registry of now
    if live not in (None, False):
        run_dir = args.config_fields.get("run_dir")
        job.dashboard = start_live(
            job.stream, live, Path(run_dir) if run_dir else None, callbacks=args.callbacks
        )
    return job


def train(
    model_or_preset: Any = None,
    data: str = DEFAULT_DATA,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    schedule: str | None = None,
    lr: float | None = None,
    device: str = "auto",
    precision: str | None = None,
    compile: bool = False,
    seed: int | None = None,
    run_name: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    callbacks: Iterable[Any] = (),
    stream: Any = None,
    store: Any = DEFAULT_STORE,
    live: Any = None,
    background: bool | str = False,
    progress: bool = False,
    resume: str | os.PathLike[str] | None = None,
    config: TrainConfig | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    evaluate_test: bool = True,
    **config_fields: Any,
) -> TrainResult | TrainingJob:
    """Train a model on a dataset with the tuned defaults; returns a :class:`TrainResult`.

    ``model_or_preset``: a preset name (default ``resnetlab.models.DEFAULT_MODEL``) or an
    ``nn.Module``. Other :class:`TrainConfig` fields (``label_smoothing=0.05``,
    ``ema_decay=0.999``, ...) may be passed as keywords or as ``config``. ``store``: the
    default run store, a path, a RunStore, or None. ``live``: a dashboard backend name
    ("auto", "webagg", "ipympl", ...) or None. ``background=True`` (or "thread" /
    "process") starts the run as a job and returns its ``TrainingJob`` at once.
    ``resume``: a checkpoint, run folder, or run id/name to continue exactly.
    ``train_limit`` / ``test_limit``: use only the first N training / test images (quick
    experiments and tests). On resume, settings that differ from the checkpoint's
    (``epochs``, ``lr``, ...) are a ConfigError: a resumed run continues as saved.
    """
    args = RecipeArgs(
        model_or_preset,
        data,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        schedule=schedule,
        lr=lr,
        device=device,
        precision=precision,
        compile=compile,
        seed=seed,
        run_name=run_name,
        data_dir=data_dir,
        callbacks=callbacks,
        stream=stream,
        store=store,
        progress=progress,
        resume=resume,
        config=config,
        model_overrides=model_overrides,
        train_limit=train_limit,
        test_limit=test_limit,
        evaluate_test=evaluate_test,
        config_fields=config_fields,
    )
    if background:
        kind = background if isinstance(background, str) else "thread"
        return train_in_background(args, kind, live)
    return train_here(args, live)
