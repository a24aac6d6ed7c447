"""Which job runs this code: ``jobs.current()``, and the stop checks every kind of job offers.

A job binds itself where its work runs (its thread, its loop, or a worker process);
``current()`` looks the binding up. Both the jobs of this process (``job.py``) and the
context of a worker process (``worker.py``) build on :class:`StopAware`, so work calls
the same ``.stopping`` / ``.sleep(s)`` / ``await .stop_requested()`` wherever it runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

# "No result": None is a result a job may well return.
MISSING: Any = object()


class Flag(Protocol):
    """A control flag: ``threading.Event`` in this process, ``SharedFlag`` across processes."""

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class StopAware:
    """The stop checks that work calls on its job, in a thread or in a worker process.

    Subclasses set ``_stop_event`` (a ``threading.Event``, or a ``SharedFlag`` in a worker).
    """

    _stop_event: Flag

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for; long-running work should check it and return."""
        return self._stop_event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep, waking early when a stop is asked for; returns True if it was."""
        return self._stop_event.wait(seconds)

    async def stop_requested(self) -> None:
        """Await until a stop is asked for (works on any asyncio loop)."""
        while not self._stop_event.is_set():
            await asyncio.sleep(0.05)


class CurrentJob(Protocol):
    """What ``jobs.current()`` gives the work: a ``Job``, or a worker's ``WorkerContext``."""

    id: int
    name: str
    kind: str

    @property
    def stopping(self) -> bool: ...

    def sleep(self, seconds: float) -> bool: ...

    async def stop_requested(self) -> None: ...

    def log(self, step: int, **metrics: float) -> None: ...

    def flag(self, name: str) -> Any: ...

    def report(self, kind: str, payload: Any) -> None: ...


# A job's own thread (thread jobs, a loop job's loop thread) finds it here; threads that
# inherit a context from it (asyncio.to_thread, the loop's callbacks) through the variable.
_thread_jobs: dict[int, CurrentJob] = {}
_context_job: contextvars.ContextVar[CurrentJob | None] = contextvars.ContextVar(
    "resnetlab_current_job", default=None
)
# In a spawned worker process: its one context (None in every other process).
_worker: CurrentJob | None = None


def current() -> Any:
    """The job running this code (a ``Job``, or in a worker process its ``WorkerContext``), else None."""
    # Typed Any, not CurrentJob | None: work calls what its own kind of job adds (.submit
    # of a loop job, .stream of a thread job) without a cast in every notebook cell.
    job = _thread_jobs.get(threading.get_ident())
    if job is not None:
        return job
    job = _context_job.get()
    return job if job is not None else _worker


def worker_context() -> CurrentJob | None:
    """The context of this worker process, or None in any other process."""
    return _worker


def set_worker_context(ctx: CurrentJob | None) -> None:
    """Make ``current()`` return ``ctx`` in this (worker) process, wherever it is called."""
    global _worker
    _worker = ctx


def bind_thread(job: CurrentJob) -> None:
    """Make ``current()`` return ``job`` on this thread, and in contexts copied from here on.

    For a thread that lives as long as the job (a loop job's loop thread); undone by
    :func:`unbind_thread`.
    """
    _thread_jobs[threading.get_ident()] = job
    _context_job.set(job)


def unbind_thread() -> None:
    _thread_jobs.pop(threading.get_ident(), None)


@contextmanager
def bound(job: CurrentJob) -> Iterator[None]:
    """Make ``current()`` return ``job`` in this thread and context for the ``with`` body."""
    ident = threading.get_ident()
    _thread_jobs[ident] = job
    token = _context_job.set(job)
    try:
        yield
    finally:
        _context_job.reset(token)
        _thread_jobs.pop(ident, None)
