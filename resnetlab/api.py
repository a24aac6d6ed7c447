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

import dataclasses
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from resnetlab import jobs
from resnetlab.jobs.training import TrainingJob, start_recipe
from resnetlab.training import recipe
from resnetlab.training.args import DEFAULT_DATA, DEFAULT_STORE, RecipeArgs
from resnetlab.training.callbacks import Announce, panels_fed_by
from resnetlab.training.config import TrainConfig
from resnetlab.training.result import TrainResult
from resnetlab.training.trainer import Trainer

log = logging.getLogger(__name__)

# ``live=`` values that mean "no dashboard".
NO_LIVE = (None, False, "none", "off", "no", "")
# ``live=`` left out: a dashboard in a notebook, none in a script (see resolve_live).
DEFAULT_LIVE = "default"

# The lines a run reports to its user (where it lives, then its closing summary) go
# through this logger, as Lightning's progress lines go through "lightning.pytorch": an
# application that configures logging sends them where it wants (or silences them with
# logging.getLogger("resnetlab.report").setLevel(logging.WARNING)); one that configures
# nothing still sees them on stdout (see show_reports). Not print(): library code must
# not write to stdout behind a logging configuration's back.
REPORT_LOGGER = "resnetlab.report"
report_log = logging.getLogger(REPORT_LOGGER)


def show_reports() -> None:
    """Make ``resnetlab.report`` lines visible when the application configured no logging.

    Done the way Lightning does it: with no handler on the root logger, this logger gets
    its own stdout handler (message only) and INFO level, and stops propagating (so a
    later ``logging.basicConfig`` does not print every line twice).
    """
    if report_log.level == logging.NOTSET:
        report_log.setLevel(logging.INFO)
    if not logging.getLogger().hasHandlers() and not report_log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        report_log.addHandler(handler)
        report_log.propagate = False


def resolve_live(live: Any) -> Any:
    """The dashboard a run gets: ``live`` as given, or for :data:`DEFAULT_LIVE` "auto" in a
    Jupyter kernel (the ipympl widget, or Agg snapshots without ipympl) and None elsewhere.

    Not "auto" everywhere, as the CLI has it: a script or a CI job on a desktop would open
    a window (and start a render process) it never asked for. ``live="auto"`` gives a
    script the CLI's behaviour.
    """
    if not (isinstance(live, str) and live == DEFAULT_LIVE):
        return live
    from resnetlab.live.backends import in_jupyter_kernel  # light: looks at sys.modules

    return "auto" if in_jupyter_kernel() else None


def closing_summary(result: TrainResult) -> str:
    """What a run reports at its end: test accuracy, wall time and status, run id,
    checkpoint (:meth:`TrainResult.summary`), and where its dashboard is."""
    lines = [result.summary()]
    dash = result.dashboard
    url = getattr(dash, "url", None) if dash is not None else None
    if url:
        lines.append(f"live dashboard {url}")
    final = result.run_dir / "dashboard-final.png" if result.run_dir is not None else None
    if dash is not None and final is not None and final.exists():
        lines.append(f"dashboard snapshot {final}")
    return "\n".join(lines)


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
        # No monitor of its own: the recipe samples the machine into the run's stream
        # (training.callbacks.SystemSamples), so the store and `watch` get the same sys/*.
        return live_dashboard(
            stream, backend=backend, run_dir=run_dir, system_monitor=False, panels=panels
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
            # finish(), not close(): the run's end is told on the dashboard, and a WebAgg
            # page stays served (result.dashboard.close() stops it).
            self.dashboard.finish()
        except Exception:
            log.exception("closing the live dashboard failed")


# -- foreground or background -----------------------------------------------------------
def train_here(args: RecipeArgs, live: Any = None, *, verbose: bool = False) -> TrainResult:
    """Run the recipe in this thread, with the live dashboard ``live`` beside it;
    ``verbose``: report where the run lives and its closing summary (``resnetlab.report``)."""
    if verbose:
        show_reports()
        args = dataclasses.replace(
            args, callbacks=(Announce(emit=report_log.info), *args.callbacks)
        )
    result = recipe.run(args, watcher=None if live in NO_LIVE else LiveSession(live))
    if verbose and result.config.rank == 0:  # under torchrun the other ranks stay quiet
        report_log.info("%s", closing_summary(result))
    return result


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
    live: Any = DEFAULT_LIVE,
    background: bool | str = False,
    progress: bool | None = None,
    verbose: bool | None = None,
    resume: str | os.PathLike[str] | None = None,
    init_from: str | os.PathLike[str] | None = None,
    config: TrainConfig | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    evaluate_test: bool = True,
    quick: bool = False,
    best: bool = False,
    **config_fields: Any,
) -> TrainResult | TrainingJob:
    """Train a model on a dataset with the tuned defaults; returns a :class:`TrainResult`.

    ``model_or_preset``: a preset name (default ``resnetlab.models.DEFAULT_MODEL``) or an
    ``nn.Module``. Other :class:`TrainConfig` fields (``label_smoothing=0.05``,
    ``ema_decay=0.999``, ...) may be passed as keywords or as ``config``. ``store``: the
    default run store, a path, a RunStore, or None. ``live``: a dashboard backend name
    ("auto", "webagg", "ipympl", "agg", ...) or None; left out, "auto" in a Jupyter
    notebook and none in a script (:func:`resolve_live`). ``background=True`` (or
    "thread" / "process") starts the run as a job and returns its ``TrainingJob`` at once.
    ``progress`` (a tqdm.auto bar: a widget in Jupyter, text in a terminal) and
    ``verbose`` (run id, checkpoint folder and dashboard at the start, the closing summary
    at the end, through the ``resnetlab.report`` logger) default to on in the foreground
    and off for a background job; ``progress=False, verbose=False`` for silence.
    ``resume``: a checkpoint, run folder, or run id/name to continue exactly; ``epochs``
    larger than the saved ones extend it (a new schedule over the added epochs).
    ``init_from``: a checkpoint, run folder or run id/name whose weights start a new run
    (fine-tuning: the architecture from the checkpoint, a fresh optimiser and schedule).
    ``train_limit``: train on N images, after the validation images were held out;
    ``test_limit``: the first N test images (quick experiments and tests). ``quick``:
    the ~3-minute recipe (``resnetv2-mini`` for 20 epochs, ~93% on Fashion-MNIST) unless
    a model or ``epochs`` is given; ``best``: the best-accuracy recipe
    (``resnetv2-mini-w96`` for 40 epochs, 94.7% in ~46 minutes on 2 CPU cores). On resume,
    other settings that differ from the checkpoint's (``lr``, ``batch_size``, ...) are a
    ConfigError: a resumed run continues as saved.
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
        progress=not background if progress is None else bool(progress),
        resume=resume,
        init_from=init_from,
        config=config,
        model_overrides=model_overrides,
        train_limit=train_limit,
        test_limit=test_limit,
        evaluate_test=evaluate_test,
        quick=quick,
        best=best,
        config_fields=config_fields,
    )
    live = resolve_live(live)
    if background:
        kind = background if isinstance(background, str) else "thread"
        return train_in_background(args, kind, live)
    return train_here(args, live, verbose=True if verbose is None else bool(verbose))
