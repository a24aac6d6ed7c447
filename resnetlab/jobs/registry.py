"""The job registry: every loop, thread and process a user started, listed and controlled.

Like IPython's ``BackgroundJobManager``, but for our three kinds of jobs. Ids are unique
and never reused within a registry; starting the same function twice gives two
independent jobs.
"""

from __future__ import annotations

import datetime as _dt
import html
import itertools
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnetlab.errors import JobError
from resnetlab.jobs.job import Job, LoopJob, ThreadJob, is_async, make_callable_name
from resnetlab.jobs.worker import ProcessJob
from resnetlab.metrics.stream import MetricStream
from resnetlab.runtime.capture import Text
from resnetlab.states import RunStatus, StopMode

log = logging.getLogger(__name__)

KINDS = ("loop", "thread", "process")
_JOB_CLASSES: dict[str, type[Job]] = {"loop": LoopJob, "thread": ThreadJob, "process": ProcessJob}


def default_log_dir() -> Path:
    """Where job logs go: ``$RESNETLAB_JOBS_DIR``, else a per-process temp folder."""
    env = os.environ.get("RESNETLAB_JOBS_DIR")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"resnetlab-jobs-{os.getpid()}"


@dataclass(frozen=True)
class StatusRow:
    id: int
    name: str
    kind: str
    state: RunStatus
    started: str
    duration: float
    last_line: str


class StatusTable:
    """A snapshot of the registry: a text table in a terminal, an HTML table in Jupyter."""

    columns = ("id", "name", "kind", "state", "started", "duration", "last output")

    def __init__(self, rows: list[StatusRow]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[StatusRow]:
        return iter(self.rows)

    def __getitem__(self, job_id: int) -> StatusRow:
        for row in self.rows:
            if row.id == job_id:
                return row
        raise KeyError(job_id)

    def _cells(self, row: StatusRow, width: int = 60) -> list[str]:
        line = row.last_line if len(row.last_line) <= width else row.last_line[: width - 1] + "…"
        return [
            str(row.id),
            row.name,
            row.kind,
            row.state,
            row.started,
            _format_duration(row.duration),
            line,
        ]

    def __repr__(self) -> str:
        if not self.rows:
            return "no jobs"
        table = [list(self.columns)] + [self._cells(r) for r in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(self.columns))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return "<p><i>no jobs</i></p>"
        colors = {
            RunStatus.RUNNING: "#1565c0",
            RunStatus.COMPLETED: "#2e7d32",
            RunStatus.STOPPED: "#6d4c41",
            RunStatus.FAILED: "#c62828",
            RunStatus.KILLED: "#ad1457",
        }
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in self.columns)
        body = []
        for row in self.rows:
            cells = [html.escape(c) for c in self._cells(row, width=100)]
            cells[3] = f"<b style='color:{colors.get(row.state, '#000')}'>{cells[3]}</b>"
            cells[6] = f"<code>{cells[6]}</code>"
            body.append(
                "<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells) + "</tr>"
            )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}" if hours else f"{minutes}:{sec:02d}"


class JobRegistry:
    """Creates jobs and keeps them until removed."""

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        *,
        stop_timeout: float = 5.0,
        tail_lines: int = 1000,
    ) -> None:
        self._log_dir = Path(log_dir) if log_dir is not None else None
        # How long stop(how="event") waits for the work to notice before escalating.
        self.stop_timeout = stop_timeout
        # Lines kept in memory per job for tail() and the status table.
        self.tail_lines = tail_lines
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def log_dir(self) -> Path:
        return self._log_dir if self._log_dir is not None else default_log_dir()

    def new(
        self,
        fn_or_coro: Any,
        *args: Any,
        name: str | None = None,
        kind: str | None = None,
        stream: MetricStream | None = None,
        job_class: type[Job] | None = None,
        **kwargs: Any,
    ) -> Job:
        """Start ``fn_or_coro(*args, **kwargs)`` as a background job and return it.

        ``kind``: ``"loop"`` (a coroutine on its own event loop; the default for async
        work), ``"thread"`` (a plain function in a thread; the default otherwise) or
        ``"process"`` (a module-level function in a spawned, killable worker process).
        """
        if kind is None:
            kind = "loop" if is_async(fn_or_coro) else "thread"
        if kind not in KINDS:
            raise JobError(f"jobs.new(kind={kind!r}): kind must be one of {', '.join(KINDS)}")
        if not callable(fn_or_coro) and not is_async(fn_or_coro):
            raise JobError(
                f"jobs.new() needs a function or a coroutine, got {type(fn_or_coro).__name__}"
            )
        if is_async(fn_or_coro) and not callable(fn_or_coro) and (args or kwargs):
            raise JobError(
                "jobs.new(coroutine, ...): a coroutine object is already called; "
                "pass the async function and its arguments instead"
            )
        if kind == "thread" and is_async(fn_or_coro):
            raise JobError(
                f"jobs.new({make_callable_name(fn_or_coro)}, kind='thread'): async "
                "work needs an event loop; use kind='loop'"
            )
        if job_class is None:
            job_class = _JOB_CLASSES[kind]
        name = name or make_callable_name(fn_or_coro)
        with self._lock:
            job_id = next(self._ids)
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40]
        log_path = self.log_dir / f"job-{job_id}-{slug}.log"
        job = job_class(
            job_id,
            name,
            fn_or_coro,
            args,
            kwargs,
            log_path=log_path,
            stream=stream,
            tail_lines=self.tail_lines,
        )
        with self._lock:
            self._jobs[job_id] = job
        try:
            job.start(self.stop_timeout)
        except BaseException:
            with self._lock:
                self._jobs.pop(job_id, None)
            job.output.close()
            raise
        log.info("started %s job %s %r (log: %s)", kind, job_id, name, log_path)
        return job

    def get(self, job_id: int | Job) -> Job:
        """The job with this id (a clear error if there is none)."""
        if isinstance(job_id, Job):
            return job_id
        with self._lock:
            job = self._jobs.get(job_id)
            known = sorted(self._jobs)
        if job is None:
            raise JobError(
                f"no job with id {job_id!r}; known ids: {known or 'none'} (see jobs.status())"
            )
        return job

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def status(self) -> StatusTable:
        """A table of every job: id, name, kind, state, start time, duration, last output line."""
        rows = []
        for job in self.all():
            started = _dt.datetime.fromtimestamp(job.started_at).strftime("%H:%M:%S")
            rows.append(
                StatusRow(
                    job.id,
                    job.name,
                    job.kind,
                    job.state,
                    started,
                    job.duration,
                    job.output.last_line,
                )
            )
        return StatusTable(rows)

    def result(self, job_id: int | Job) -> Any:
        """The job's return value (a clear error if it is running, failed or was stopped early)."""
        return self.get(job_id).result()

    def traceback(self, job_id: int | Job) -> Text | None:
        """The failed job's traceback text, or None if it did not fail."""
        return self.get(job_id).traceback

    def stop(
        self,
        job_id: int | Job,
        how: str | StopMode = StopMode.EVENT,
        *,
        timeout: float | None = None,
    ) -> RunStatus:
        """Stop a job: ``how="event"`` (clean), ``"loop"`` (loop.stop now), ``"cancel"``
        (cancel its tasks), ``"kill"`` (process jobs). Returns the job's state.

        An unknown ``how`` is a ConfigError (checked before the job is looked up); one
        that this kind of job cannot do is a JobError that says what it can do.
        """
        mode = StopMode.parse(how)
        return self.get(job_id).stop(mode, timeout=timeout)

    def remove(self, job_id: int | Job) -> None:
        """Forget a finished job (its log file stays on disk)."""
        job = self.get(job_id)
        if job.running:
            raise JobError(
                f"job {job.id} {job.name!r} is still running; stop it first with "
                f"jobs.stop({job.id}) and then remove it"
            )
        with self._lock:
            self._jobs.pop(job.id, None)

    def stop_all(
        self, timeout: float | None = None, *, unkillable_timeout: float | None = None
    ) -> None:
        """Stop every running job: by event first, then hard (loops) or kill (processes).

        The jobs stop side by side, so jobs that ignore their stop event cost one
        ``timeout`` in all, not one each. ``unkillable_timeout``: how long a job that
        cannot be killed (a thread) gets to honour its stop event (default ``timeout``):
        at interpreter exit a thread still inside torch aborts the process.
        """
        wait_s = min(self.stop_timeout, 2.0) if timeout is None else timeout
        thread_wait_s = wait_s if unkillable_timeout is None else max(wait_s, unkillable_timeout)
        running = [job for job in self.all() if job.running]
        if not running:
            return
        # Plain threads, not a ThreadPoolExecutor: this also runs from atexit, where an
        # executor refuses new work ("cannot schedule new futures after shutdown").
        stoppers = [
            threading.Thread(
                target=self._stop_one,
                args=(job, wait_s if StopMode.KILL in job.stop_modes else thread_wait_s),
                daemon=True,
                name=f"resnetlab-stop-all-{job.id}",
            )
            for job in running
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()

    @staticmethod
    def _stop_one(job: Job, wait_s: float) -> None:
        try:
            try:
                job.stop(StopMode.EVENT, timeout=wait_s)
            except JobError as exc:
                log.warning("%s", exc)
            if job.running and StopMode.KILL in job.stop_modes:
                job.kill(grace=wait_s)
            elif job.running and StopMode.LOOP in job.stop_modes:
                try:
                    job.stop(StopMode.LOOP, timeout=wait_s)
                except JobError as exc:
                    log.warning("%s", exc)
        except Exception:  # one job's failure must not keep the others running
            log.exception("stopping job %s %r failed", job.id, job.name)

    def __repr__(self) -> str:
        return repr(self.status())

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()


_DEFAULT = JobRegistry()


def default_registry() -> JobRegistry:
    """The registry behind ``resnetlab.jobs.new/status/stop`` (``resnetlab.jobs.registry``)."""
    return _DEFAULT
