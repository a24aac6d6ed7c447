"""The arms of an experiment: one training run each, what the run store knows of it, and
the body that trains it inside a worker process.

An arm is one :class:`~resnetlab.inspect.experiments.runner.RunSpec` (a variant and a
seed) with its epochs; its run is ``<experiment>/<label>/seed<k>`` in the run store. A
stored run *matches* the arm when it trained the same model on the same data for the same
epochs: only then does a completed run count as done, or a stopped one get resumed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any

from resnetlab.inspect.experiments.runner import (
    ExperimentOptions,
    RunSpec,
    data_request,
    load_data,
    open_store,
    run_name,
    train_run,
)
from resnetlab.states import RunStatus

log = logging.getLogger(__name__)


@dataclass
class Arm:
    """One run of an experiment and where it stands."""

    spec: RunSpec
    epochs: int
    status: RunStatus = RunStatus.PENDING
    job: Any = None  # its TrainingJob once launched (the latest attempt)
    error: str | None = None  # why the last attempt failed or was killed
    attempts: int = 0
    # (checkpoint, stored run id) to continue from, for an arm stopped with a checkpoint.
    resume_from: tuple[str, int] | None = None

    @property
    def label(self) -> str:
        """How the dashboard and ``arms`` name it: ``plain-20 seed0``."""
        return f"{self.spec.label} seed{self.spec.seed}"

    def run_name(self, experiment: str) -> str:
        return run_name(experiment, self.spec)


def _plain(value: Any) -> Any:
    """``value`` as JSON would store it (tuples become lists), to compare with the store."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def matches(info: Any, arm: Arm, options: ExperimentOptions) -> bool:
    """Whether stored run ``info`` is a run of ``arm`` with these options."""
    config = info.config or {}
    extra = config.get("extra") or {}
    return (
        int(config.get("epochs") or 0) == arm.epochs
        and config.get("batch_size") == options.batch_size
        and config.get("lr") == options.lr
        and config.get("flip", False) == options.flip
        and _plain(extra.get("model_overrides")) == _plain(dict(arm.spec.overrides))
        and extra.get("model") == arm.spec.preset
        and _plain(extra.get("data_request")) == _plain(data_request(options))
    )


def stored_state(store: Any, experiment: str, arm: Arm, options: ExperimentOptions) -> Any:
    """The newest stored run of ``arm`` if it matches it, else None."""
    from resnetlab.errors import StoreError

    try:
        info = store.get_run(arm.run_name(experiment))
    except StoreError:
        return None
    return info if matches(info, arm, options) else None


def run_arm(
    experiment: str,
    spec: RunSpec,
    options: ExperimentOptions,
    epochs: int,
    resume_from: tuple[str, int] | None = None,
    *,
    callbacks: Any = (),
    stream: Any = None,
) -> dict[str, Any]:
    """Train one arm (the body of its process job); returns its run id and final errors.

    ``callbacks``/``stream`` are the job's control callback and forwarding stream
    (``resnetlab.jobs.start_training`` passes them).
    """
    import torch

    if options.threads:
        torch.set_num_threads(options.threads)
    data = load_data(options)
    store = open_store(options)
    resume, run_id = resume_from if resume_from else (None, None)
    try:
        outcome = train_run(
            spec,
            data,
            options,
            experiment=experiment,
            epochs=epochs,
            store=store,
            callbacks=list(callbacks),
            stream=stream,
            resume=resume,
            run_id=run_id,
        )
    finally:
        if store is not None:
            store.close()
    return {
        "run_id": outcome.run_id,
        "train_error": outcome.final_train_error,
        "test_error": outcome.final_test_error,
        "seconds": outcome.seconds,
    }


def with_threads(options: ExperimentOptions, threads: int) -> ExperimentOptions:
    return dataclasses.replace(options, threads=threads)
