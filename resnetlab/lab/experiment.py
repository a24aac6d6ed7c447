"""An experiment in the background: its arms as process jobs, N at a time, one live
comparison dashboard, and the report written when the last arm ends.

    exp = resnetlab.experiment("stack-shortcut", budget="1ep", seeds=3)   # returns at once
    exp.status()                      # every arm: pending, running, paused, completed, ...
    exp.stop("resnetv2-56 seed1")     # that arm: checkpoint, then end; the others go on
    exp.kill("resnetv2-56+stack seed0")
    exp.wait()                        # -> the report's path, once every arm has ended
    exp.resume()                      # re-run what did not complete; completed arms stay

Each arm is a ``kind="process"`` training job (``resnetlab.jobs.start_training``) in the
job registry, so ``jobs.status()`` lists it and ``jobs.stop(id, how="kill")`` works on it
from any cell. A scheduler, itself a thread job, launches arms while fewer than
``parallel`` run, each with ``cores // parallel`` torch threads. What has finished is read
from the run store: an arm counts as done only when its stored run *completed* with the
same model, data and epochs, and the report is built from the stored numbers.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError, JobError
from resnetlab.inspect.experiments import EXPERIMENTS
from resnetlab.inspect.experiments.budget import Budget
from resnetlab.inspect.experiments.runner import (
    ExperimentOptions,
    hardware,
    load_data,
    open_store,
    outcome_from_store,
    seconds_per_epoch,
    spec_depth_params,
)
from resnetlab.jobs.context import current
from resnetlab.jobs.registry import JobRegistry, default_registry
from resnetlab.jobs.training import start_training
from resnetlab.lab.arm import Arm, run_arm, stored_state
from resnetlab.runtime.capture import Text
from resnetlab.states import RunStatus

log = logging.getLogger(__name__)

# How often the scheduler looks at its arms (seconds): ends are noticed this late at most.
POLL_S = 0.1


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class ExperimentJob:
    """The arms of experiment ``name`` running as background process jobs."""

    def __init__(
        self,
        name: str,
        options: ExperimentOptions,
        out: str | Path,
        *,
        parallel: int | None = None,
        live: Any = "auto",
        live_options: dict[str, Any] | None = None,
        registry: JobRegistry | None = None,
    ) -> None:
        if name not in EXPERIMENTS:
            raise ConfigError(
                f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}"
            )
        if not options.store:
            raise ConfigError(
                "an experiment in the background needs a run store (store=...): it is "
                "how the arms' results reach the report and how resume knows what finished"
            )
        cores = usable_cores()
        self.parallel = parallel or cores
        if self.parallel < 1:
            raise ConfigError(f"experiment(parallel={parallel!r}): run at least 1 arm at a time")
        self.name = name
        self.module = importlib.import_module(EXPERIMENTS[name][0])
        # Each arm gets its share of the cores unless the caller fixed the threads.
        self.threads = options.threads or max(1, cores // self.parallel)
        self.options = dataclasses.replace(options, threads=self.threads)
        self.out = Path(out)
        self.registry = registry if registry is not None else default_registry()
        self.arms = [Arm(spec, epochs=0) for spec in self.module.specs(self.options)]
        self.report: Path | None = None
        self.seconds = 0.0  # wall time of every scheduling pass so far
        self.scheduler: Any = None  # the scheduler's thread job (the latest pass)
        self.hardware_line = ""
        # The input the arms' models are built for when estimating their cost (the shape
        # of every dataset an experiment uses but CIFAR's; only the ordering depends on it).
        self._input_shape = (3, 32, 32) if options.dataset.startswith("cifar") else (1, 28, 28)
        self._depths: dict[str, int] = {}  # arm label -> its model's depth
        self._lock = threading.Lock()
        self.dashboard = self._make_dashboard(live, live_options or {})

    # -- what it shows -------------------------------------------------------------------
    def arm(self, key: int | str) -> Arm:
        """An arm by index, label (``"plain-20 seed0"``), run name or variant (if one seed)."""
        if isinstance(key, int):
            return self.arms[key]
        for arm in self.arms:
            if key in (arm.label, arm.run_name(self.name)):
                return arm
        same = [a for a in self.arms if a.spec.label == key]
        if len(same) == 1:
            return same[0]
        labels = ", ".join(a.label for a in self.arms)
        raise JobError(f"experiment {self.name!r} has no arm {key!r}; its arms: {labels}")

    def __getitem__(self, key: int | str) -> Any:
        """The arm's TrainingJob (``pause``/``resume``/``stop``/``kill``/``progress``)."""
        arm = self.arm(key)
        if arm.job is None:
            raise JobError(f"arm {arm.label!r} has not started yet ({arm.status})")
        return arm.job

    def state(self, arm: Arm) -> RunStatus:
        """Where ``arm`` stands: its job's live status while it runs."""
        if arm.job is not None and arm.job.job.running:
            return arm.job.status
        return arm.status

    @property
    def running(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    def status(self) -> Text:
        """One line per arm: label, status, job id, progress or error."""
        lines = [
            f"experiment {self.name} ({self.parallel} at a time, {self.threads} thread(s) each)"
        ]
        for arm in self.arms:
            state = self.state(arm)
            job = f"job {arm.job.id}" if arm.job is not None else "-"
            what = arm.error or (str(arm.job.progress) if arm.job is not None else "")
            lines.append(f"  {arm.label:<32} {state:<10} {job:<8} {what}")
        if self.report is not None:
            lines.append(f"report: {self.report}")
        return Text("\n".join(lines))

    def failed(self) -> list[Arm]:
        """Arms whose last attempt failed or was killed (``resume()`` re-runs them)."""
        return [a for a in self.arms if a.status in (RunStatus.FAILED, RunStatus.KILLED)]

    # -- control -------------------------------------------------------------------------
    def pause(self, key: int | str) -> None:
        self[key].pause()

    def unpause(self, key: int | str) -> None:
        self[key].resume()

    def stop(self, key: int | str | None = None, *, save: bool = True) -> None:
        """Stop one arm (``key``) or, without one, the whole experiment: running arms write
        a checkpoint (unless ``save=False``) and end; pending ones do not start."""
        if key is not None:
            arm = self.arm(key)
            with self._lock:  # against the scheduler launching it right now
                if arm.job is None:
                    if arm.status == RunStatus.PENDING:
                        arm.status = RunStatus.STOPPED  # not started: it will not start
                    return
            arm.job.stop(save=save)
            return
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.flag("stop").set()
        for arm in self.arms:
            if arm.job is not None and arm.job.job.running:
                arm.job.stop(save=save)
        self.wait()

    def kill(self, key: int | str) -> None:
        """End an arm's process now; it is reported and re-run by ``resume()``."""
        self[key].kill()

    def wait(self, timeout: float | None = None) -> Path | None:
        """Block until every arm has ended and the report is written; returns its path."""
        if self.scheduler is None:
            return self.report
        if self.scheduler.wait(timeout) == RunStatus.RUNNING:
            raise JobError(f"experiment {self.name!r} still runs after {timeout} s")
        if self.scheduler.state == RunStatus.FAILED:
            self.scheduler.result()  # raises the scheduler's error, with its traceback
        return self.report

    # -- running -------------------------------------------------------------------------
    def start(self, *, resume: bool = False) -> ExperimentJob:
        """Start scheduling (returns at once). ``resume``: arms the store already holds as
        completed (same model, data, epochs) are not run again; stopped ones continue
        from their checkpoint."""
        if self.running:
            raise JobError(f"experiment {self.name!r} is already running")
        self._resume = resume
        if self.dashboard is not None:
            self.dashboard.start()
        self.scheduler = self.registry.new(
            self._schedule, name=f"experiment {self.name}", kind="thread"
        )
        return self

    def resume(self) -> ExperimentJob:
        """Run again every arm that did not complete (killed, failed, stopped); completed
        arms are taken from the store as they are."""
        if self.running:
            raise JobError(f"experiment {self.name!r} is still running; wait() or stop() it first")
        self.report = None
        return self.start(resume=True)

    def _schedule(self) -> Path:
        """The scheduler's body: plan, launch arms as slots free up, then write the report."""
        ctx = current()
        t0 = time.perf_counter()
        self.hardware_line = hardware(self.threads)  # the load as the arms start
        self._plan()
        while not ctx.stopping:
            self._reap()
            pending = sorted(
                (a for a in self.arms if a.status == RunStatus.PENDING),
                key=self._cost,
                reverse=True,
            )
            running = [a for a in self.arms if a.status == RunStatus.RUNNING]
            if not pending and not running:
                break
            with self._lock:
                for arm in pending[: max(0, self.parallel - len(running))]:
                    if arm.status == RunStatus.PENDING:  # not stopped meanwhile
                        self._launch(arm)
            ctx.sleep(POLL_S)
        for arm in self.arms:  # stopped from outside: the running arms end with them
            if arm.job is not None and arm.job.job.running:
                arm.job.stop(save=True)
        self._reap()
        self.seconds += time.perf_counter() - t0
        self.report = self._write_report()
        if self.dashboard is not None:
            self.dashboard.finish(f"experiment {self.name}: report {self.report}")
        return self.report

    def _plan(self) -> None:
        """Epochs of every arm, and which arms are done already (from the store)."""
        budget = self.options.budget
        epochs: dict[str, int] = {}
        if budget.epochs is None:
            epochs = self._probe(budget)
        store = open_store(self.options)
        try:
            for arm in self.arms:
                arm.epochs = budget.epochs or epochs[arm.spec.label]
                if self._resume:
                    self._plan_resumed(store, arm)
                else:
                    arm.status, arm.resume_from = RunStatus.PENDING, None
        finally:
            store.close()

    def _cost(self, arm: Arm) -> int:
        """How long an arm is expected to train, for ordering: epochs x depth (computed
        once per arm). Longest first (the LPT rule): the last arms to end are then short
        ones, so the cores are not left to one long run at the end of the experiment;
        arms of one cost keep their order."""
        if arm.label not in self._depths:
            self._depths[arm.label] = spec_depth_params(arm.spec, self._input_shape, 10)[0]
        return arm.epochs * self._depths[arm.label]

    def _plan_resumed(self, store: Any, arm: Arm) -> None:
        info = stored_state(store, self.name, arm, self.options)
        arm.resume_from = None
        if info is not None and info.status == RunStatus.COMPLETED:
            arm.status = RunStatus.COMPLETED
            return
        arm.status = RunStatus.PENDING
        if info is not None and info.checkpoint_last and Path(info.checkpoint_last).is_file():
            arm.resume_from = (info.checkpoint_last, info.id)

    def _probe(self, budget: Budget) -> dict[str, int]:
        """Epochs per variant for a time budget: a few timed steps of each model here,
        with the arms' thread count; every seed of a variant gets the same epochs."""
        import torch

        from resnetlab.training import resolve_device

        torch.set_num_threads(self.threads)
        data = load_data(self.options)
        device = resolve_device(self.options.device)
        # Arms run ``parallel`` at a time: each gets that many shares of the time.
        rounds = -(-len(self.arms) // self.parallel)
        out: dict[str, int] = {}
        for arm in self.arms:
            if arm.spec.label not in out:
                per_epoch = seconds_per_epoch(arm.spec, data, self.options, device)
                out[arm.spec.label] = budget.epochs_for(per_epoch, rounds)
        return out

    def _launch(self, arm: Arm) -> None:
        arm.attempts += 1
        arm.error = None
        arm.job = start_training(
            self.name,
            arm.spec,
            self.options,
            arm.epochs,
            arm.resume_from,
            train_fn=run_arm,
            kind="process",
            name=f"{self.name}/{arm.label}",
            registry=self.registry,
        )
        arm.status = RunStatus.RUNNING
        if self.dashboard is not None:
            self.dashboard.add(arm.label, arm.job.stream)
        log.info("%s: started %s as job %d", self.name, arm.label, arm.job.id)

    def _reap(self) -> None:
        """Record the end of every arm whose job has ended."""
        for arm in self.arms:
            if arm.status != RunStatus.RUNNING or arm.job is None or arm.job.job.running:
                continue
            job = arm.job.job
            arm.status = RunStatus(job.state)
            if arm.status == RunStatus.FAILED:
                exc = job.exception
                arm.error = f"{type(exc).__name__}: {exc}" if exc is not None else "failed"
            elif arm.status == RunStatus.KILLED:
                arm.error = "killed"
            if arm.error:
                log.warning("%s: arm %s %s (%s)", self.name, arm.label, arm.status, arm.error)

    def _write_report(self) -> Path:
        """The report from the store's completed runs; the other arms are listed as missing."""
        store = open_store(self.options)
        outcomes, missing = [], []
        try:
            for arm in self.arms:
                info = stored_state(store, self.name, arm, self.options)
                outcome = None
                if info is not None and info.status == RunStatus.COMPLETED:
                    outcome = outcome_from_store(store, self.name, arm.spec)
                if outcome is None:
                    missing.append(f"{arm.label} ({arm.status})")
                else:
                    outcomes.append(outcome)
        finally:
            store.close()
        how = (
            f"{len(self.arms)} runs as process jobs, {self.parallel} at a time, "
            f"{self.threads} torch thread{'s' if self.threads != 1 else ''} each"
        )
        return self.module.write(
            outcomes,
            self.options,
            self.out,
            seconds=self.seconds,
            missing=missing,
            how=how,
            hardware_line=self.hardware_line,
        )

    def _make_dashboard(self, live: Any, options: dict[str, Any]) -> Any:
        if live in (None, False):
            return None
        from resnetlab.live.comparison import comparison_dashboard

        backend = "auto" if live is True else str(live)
        return comparison_dashboard(backend=backend, title=f"experiment {self.name}", **options)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if self.dashboard is not None:
            display(self.dashboard)
        display(self.status())

    def __repr__(self) -> str:
        return str(self.status())


def start_experiment(
    name: str,
    *,
    budget: str | int | Budget = "1ep",
    out: str | Path = "experiments",
    parallel: int | None = None,
    live: Any = "auto",
    live_options: dict[str, Any] | None = None,
    resume: bool = False,
    registry: JobRegistry | None = None,
    **options: Any,
) -> ExperimentJob:
    """Start experiment ``name`` in the background; returns its :class:`ExperimentJob` at once.

    ``parallel``: arms at a time (default: the usable cores); ``live``: the comparison
    dashboard's backend (``"auto"``, ``"agg"``, ``"webagg"``, ``"ipympl"``; False: none),
    ``live_options`` its options (``directory=``, ``port=``); ``resume``: skip arms the
    store holds as completed. ``options``: :class:`ExperimentOptions` fields (``seeds``,
    ``subset``, ``width``, ``store``, ...).
    """
    from resnetlab.inspect.experiments import experiment_options

    opts = experiment_options(budget, options)
    job = ExperimentJob(
        name,
        opts,
        out,
        parallel=parallel,
        live=live,
        live_options=live_options,
        registry=registry,
    )
    return job.start(resume=resume)
