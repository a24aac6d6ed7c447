"""Background work you can control from any notebook cell.

>>> from resnetlab import jobs
>>> job = jobs.new(sprint, 0.1, name="sprinter")   # a coroutine function: kind="loop"
>>> jobs.status()                                   # a table (HTML in Jupyter)
>>> job.tail(5)                                     # its output, never in your cells
>>> jobs.stop(job.id, how="event")                  # or "loop" (hard) or "cancel"
>>> jobs.remove(job.id)

Each loop job owns a new asyncio loop in its own thread (``BackgroundLoop``); a thread
job runs a plain function; a process job runs in a spawned worker that ``job.kill()``
can end. Every job's prints go to its own log file and tail. ``jobs.stop_all()`` also runs
at interpreter exit.
"""

from __future__ import annotations

import atexit
import multiprocessing.util  # noqa: F401 - see the atexit note at the bottom
from typing import Any

from resnetlab.jobs.context import current
from resnetlab.jobs.job import Job, LoopJob, ThreadJob
from resnetlab.jobs.registry import JobRegistry, StatusTable, default_registry
from resnetlab.runtime.capture import OutputSink, Text
from resnetlab.runtime.loop import BackgroundLoop, TaskFuture
from resnetlab.states import RunStatus, StopMode

__all__ = [
    "BackgroundLoop",
    "TaskFuture",
    "Job",
    "LoopJob",
    "ThreadJob",
    "JobRegistry",
    "StatusTable",
    "OutputSink",
    "Text",
    "current",
    "registry",
    "new",
    "get",
    "status",
    "result",
    "traceback",
    "stop",
    "remove",
    "stop_all",
    "start_training",
]

# The default registry (this name shadows the submodule resnetlab.jobs.registry, whose
# default_registry() returns the same object for modules that must not import the package).
registry = default_registry()


def new(
    fn_or_coro: Any, *args: Any, name: str | None = None, kind: str | None = None, **kwargs: Any
) -> Job:
    """Start background work; see :meth:`JobRegistry.new`."""
    return registry.new(fn_or_coro, *args, name=name, kind=kind, **kwargs)


def get(job_id: int) -> Job:
    """The job with this id."""
    return registry.get(job_id)


def status() -> StatusTable:
    """A table of every job (HTML in Jupyter)."""
    return registry.status()


def result(job_id: int) -> Any:
    """What the job returned."""
    return registry.result(job_id)


def traceback(job_id: int) -> Text | None:
    """The failed job's traceback text."""
    return registry.traceback(job_id)


def stop(
    job_id: int, how: str | StopMode = StopMode.EVENT, *, timeout: float | None = None
) -> RunStatus:
    """Stop a job: how="event" | "loop" | "cancel" (| "kill" for process jobs); its state.

    An unknown ``how`` is a ConfigError naming the modes; one this kind of job cannot do is
    a JobError that says what it can do.
    """
    return registry.stop(job_id, how, timeout=timeout)


def remove(job_id: int) -> None:
    """Forget a finished job."""
    registry.remove(job_id)


def stop_all(timeout: float | None = None) -> None:
    """Stop every running job."""
    registry.stop_all(timeout)


def __getattr__(name: str) -> Any:
    if name in ("start_training", "TrainingJob"):
        from resnetlab.jobs import training

        return getattr(training, name)
    raise AttributeError(f"module 'resnetlab.jobs' has no attribute {name!r}")


# atexit runs handlers last-registered-first. multiprocessing's own handler (registered when
# multiprocessing.util is imported, done above) joins non-daemon worker processes; ours
# must run before it and kill them, or a stubborn worker would hang interpreter exit.
# A thread job cannot be killed, and one still running torch code when the interpreter
# finalises aborts the process (SIGABRT, no checkpoint): give it time to stop at its next
# step and save. Process jobs that ignore their stop event are killed after 1 s.
EXIT_THREAD_WAIT_S = 60.0
atexit.register(lambda: registry.stop_all(timeout=1.0, unkillable_timeout=EXIT_THREAD_WAIT_S))
