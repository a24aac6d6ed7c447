"""Jobs: one piece of background work with its own output, metrics, state and stop switch.

``LoopJob`` runs a coroutine on its own :class:`BackgroundLoop`; ``ThreadJob`` runs a
plain function in its own thread. Both route the prints of their thread to their own
:class:`OutputSink` and append metrics to their own ``MetricStream``. Inside the work,
``jobs.current()`` gives the running job: ``.stopping``, ``.sleep(s)`` (returns True when
a stop was asked for), ``await .stop_requested()``, ``.log(step, **metrics)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import traceback as _traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnetlab.errors import JobError
from resnetlab.jobs.context import MISSING, StopAware, bind_thread, bound, current, unbind_thread
from resnetlab.metrics.stream import MetricStream
from resnetlab.runtime.capture import OutputSink, Text, route_thread
from resnetlab.runtime.loop import BackgroundLoop
from resnetlab.states import RunStatus, StopMode

log = logging.getLogger(__name__)

# The states a job is in: running, then one of the four ends.
STATES = (
    RunStatus.RUNNING,
    RunStatus.COMPLETED,
    RunStatus.STOPPED,
    RunStatus.FAILED,
    RunStatus.KILLED,
)


class Job(StopAware):
    """Base class: identity, state, result/traceback, output and metrics of one job."""

    kind = "?"

    def __init__(
        self,
        job_id: int,
        name: str,
        fn: Any,
        args: tuple,
        kwargs: dict,
        *,
        log_path: Path,
        stream: MetricStream | None,
        tail_lines: int,
    ) -> None:
        self.id = job_id
        self.name = name
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.state = RunStatus.RUNNING
        # Why the job ended early: "event", "loop", "cancel" or "kill" (None if it just ended).
        self.stop_reason: StopMode | None = None
        self.started_at = time.time()
        self.ended_at: float | None = None
        self._t0 = time.monotonic()
        self._t1: float | None = None
        self.output = OutputSink(log_path, tail_lines=tail_lines)
        self.stream = stream if stream is not None else MetricStream(name=f"job-{job_id}-{name}")
        self._result: Any = MISSING
        self._exception: BaseException | None = None
        self._traceback: str | None = None
        self._done = threading.Event()
        self._stop_event = threading.Event()
        self._flags: dict[str, threading.Event] = {"stop": self._stop_event}
        self._listeners: list[Callable[[str, Any], None]] = []
        # The latest report of each kind ("progress", ...), as sent by the work.
        self.reports: dict[str, Any] = {}
        self._finish_lock = threading.Lock()

    # -- what the work calls ---------------------------------------------------------
    def log(self, step: int, **metrics: float) -> None:
        """Append metrics to this job's stream (``job.stream``)."""
        self.stream.append(step, metrics)

    def flag(self, name: str) -> Any:
        """A named control flag (an Event) shared by the caller and the work, e.g. "pause"."""
        with self._finish_lock:
            return self._flags.setdefault(name, threading.Event())

    def report(self, kind: str, payload: Any) -> None:
        """Tell the listeners (e.g. a TrainingJob) something: progress, a state change."""
        self.reports[kind] = payload
        for listener in list(self._listeners):
            try:
                listener(kind, payload)
            except Exception:
                log.exception("job %s: report listener failed", self.id)

    def add_listener(self, listener: Callable[[str, Any], None]) -> None:
        """Call ``listener(kind, payload)`` for each report of the work (also from a worker process)."""
        self._listeners.append(listener)

    # -- what the user calls ---------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state == RunStatus.RUNNING

    @property
    def log_path(self) -> Path | None:
        return self.output.path

    @property
    def duration(self) -> float:
        """Seconds since start (until the end once finished)."""
        return (self._t1 if self._t1 is not None else time.monotonic()) - self._t0

    def tail(self, n: int = 20) -> Text:
        """The last ``n`` lines this job printed."""
        return Text("\n".join(self.output.tail(n)))

    def show_output(self, lines: int = 200) -> None:
        """Display an ``ipywidgets.Output`` here that follows this job's output live."""
        try:
            import ipywidgets
            from IPython.display import display
        except ImportError as exc:
            raise JobError(
                "job.show_output() needs ipywidgets (pip install 'resnetlab[jupyter]'); "
                f"the output is also in job.tail() and {self.log_path}"
            ) from exc
        widget = self.output.widget
        if widget is None:
            widget = ipywidgets.Output(
                layout={"max_height": "16em", "overflow": "auto", "border": "1px solid #ccc"}
            )
            self.output.attach_widget(widget, lines)
        display(widget)

    def wait(self, timeout: float | None = None) -> RunStatus:
        """Block until the job ends (or ``timeout``); returns its state."""
        if current() is self:
            raise JobError(
                f"job {self.id} {self.name!r} called wait() on itself; that never returns"
            )
        self._done.wait(timeout)
        return self.state

    def result(self) -> Any:
        """The value the work returned; a clear error if it failed, was stopped or still runs."""
        if self.state == RunStatus.RUNNING:
            raise JobError(
                f"job {self.id} {self.name!r} is still running; wait for it with "
                f"jobs.get({self.id}).wait() or look at jobs.status()"
            )
        if self._exception is not None:
            raise JobError(
                f"job {self.id} {self.name!r} {self.state}: "
                f"{type(self._exception).__name__}: {self._exception} "
                f"(full traceback: jobs.traceback({self.id}))"
            ) from self._exception
        if self._result is MISSING:
            raise JobError(
                f"job {self.id} {self.name!r} was {self.state} "
                f"({self.stop_reason or 'ended'}) before it returned a result"
            )
        return self._result

    @property
    def exception(self) -> BaseException | None:
        """The exception the work raised, if any."""
        return self._exception

    @property
    def traceback(self) -> Text | None:
        """The formatted traceback of the failure, or None."""
        return None if self._traceback is None else Text(self._traceback)

    # The stop modes this kind of job supports (jobs.stop(id, how=...)).
    stop_modes: tuple[StopMode, ...] = ()

    def stop(
        self, how: str | StopMode = StopMode.EVENT, *, timeout: float | None = None
    ) -> RunStatus:
        """Stop the job (see subclasses for the ways they support); returns its state."""
        raise NotImplementedError

    def _stop_mode(self, how: str | StopMode) -> StopMode:
        """``how`` as a StopMode this kind supports.

        An unknown mode gets the one ConfigError every stop mode check gives; a mode that
        only another kind of job supports gets this kind's JobError, which says why.
        """
        mode = StopMode.parse(how)
        if mode not in self.stop_modes:
            raise JobError(self._unsupported_stop(mode))
        return mode

    def _unsupported_stop(self, mode: StopMode) -> str:
        modes = ", ".join(repr(m.value) for m in self.stop_modes)
        return f"jobs.stop(how={mode.value!r}) for {self.kind} job {self.id}: use how={modes}"

    def kill(self, grace: float = 3.0) -> RunStatus:
        raise JobError(
            f"job {self.id} {self.name!r} is a {self.kind} job; only kind='process' "
            "jobs can be killed (a thread cannot be killed): use stop() instead"
        )

    # -- bookkeeping -------------------------------------------------------------------
    def _finish(
        self,
        state: RunStatus,
        *,
        result: Any = MISSING,
        exception: BaseException | None = None,
        tb: str | None = None,
    ) -> None:
        with self._finish_lock:
            if self._done.is_set():
                return
            if exception is not None:
                self._exception = exception
                self._traceback = tb or "".join(
                    _traceback.format_exception(type(exception), exception, exception.__traceback__)
                )
                log.info(
                    "job %s %r failed: %s: %s",
                    self.id,
                    self.name,
                    type(exception).__name__,
                    exception,
                )
            self._result = result
            self.state = state
            self.ended_at = time.time()
            self._t1 = time.monotonic()
            self.output.close()
            self._done.set()

    def _repr_state(self) -> str:
        return f"{self.state}" + (
            f" ({self.stop_reason})" if self.stop_reason and self.state != RunStatus.RUNNING else ""
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.id} {self.name!r} {self._repr_state()}, "
            f"{self.duration:.1f} s>"
        )


class LoopJob(Job):
    """A coroutine (plus any tasks it submits) on its own BackgroundLoop.

    Stops: ``"event"`` (the loop's stop event, tasks may finish cleanly), ``"loop"``
    (``loop.stop()`` now, tasks cancelled), ``"cancel"`` (cancel every task).
    """

    kind = "loop"
    stop_modes = (StopMode.EVENT, StopMode.LOOP, StopMode.CANCEL)

    def start(self, stop_timeout: float) -> None:
        self.loop = BackgroundLoop(
            f"job-{self.id}-{self.name}",
            until_tasks_done=True,
            stop_timeout=stop_timeout,
            output=self.output,
            setup=self._bind,
            on_exit=self._loop_ended,
        )
        self.loop.start()
        self.main = self.loop.submit(self._main(), name=self.name)

    def _bind(self) -> None:
        # Runs on the loop thread before the loop starts: jobs.current() -> self there.
        bind_thread(self)

    async def _main(self) -> Any:
        fn, args, kwargs = self.fn, self.args, self.kwargs
        work = fn if inspect.isawaitable(fn) else fn(*args, **kwargs)
        if inspect.isawaitable(work):
            work = await work
        return work

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set() or self.loop.stopping

    async def stop_requested(self) -> None:
        if self.loop.on_loop_thread():
            await self.loop.stop_requested()
        else:
            await super().stop_requested()

    def submit(self, coro: Any, *, name: str | None = None) -> Any:
        """Run another coroutine on this job's loop; the job ends when all its tasks end."""
        return self.loop.submit(coro, name=name)

    def _unsupported_stop(self, mode: StopMode) -> str:
        return (
            f"jobs.stop(how={mode.value!r}) for loop job {self.id} {self.name!r}: use "
            "how='event' (clean, via the stop event), 'loop' (loop.stop now) or 'cancel' "
            "(cancel its tasks); only kind='process' jobs can be killed"
        )

    def _loop_ended(self, loop: BackgroundLoop) -> None:
        unbind_thread()
        main = self.main if hasattr(self, "main") else None
        errors = [e for e in loop.errors]
        if main is not None and main.done() and not main.cancelled() and main.exception() is None:
            result = main.result()
        else:
            result = MISSING
        if errors:
            self._finish(RunStatus.FAILED, result=result, exception=errors[0])
        elif result is not MISSING:
            self._finish(ended_state(self.stop_reason), result=result)
        else:
            self.stop_reason = self.stop_reason or StopMode.CANCEL
            self._finish(RunStatus.STOPPED)

    def stop(
        self, how: str | StopMode = StopMode.EVENT, *, timeout: float | None = None
    ) -> RunStatus:
        mode = self._stop_mode(how)
        if not self.running:
            return self.state
        self.stop_reason = self.stop_reason or mode
        self._stop_event.set()
        if mode is StopMode.CANCEL:
            self.loop.cancel_all(wait=True, timeout=timeout)
            self.loop.wait(self.loop.cancel_timeout + 5.0)
        self.loop.stop(hard=mode is StopMode.LOOP, timeout=timeout, raise_errors=False)
        self._done.wait(5.0)
        return self.state


class ThreadJob(Job):
    """A plain function in its own named daemon thread. Stops only by the stop event."""

    kind = "thread"
    stop_modes = (StopMode.EVENT,)

    def start(self, stop_timeout: float) -> None:
        self.stop_timeout = stop_timeout
        self.thread = threading.Thread(
            target=self._main, name=f"job-{self.id}-{self.name}", daemon=True
        )
        self.thread.start()

    def _main(self) -> None:
        with route_thread(self.output), bound(self):
            try:
                result = self.fn(*self.args, **self.kwargs)
                if inspect.isawaitable(result):
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                    raise JobError(
                        f"job {self.id} {self.name!r}: the function returned an "
                        "awaitable; start async work with kind='loop'"
                    )
            except BaseException as exc:
                self._finish(RunStatus.FAILED, exception=exc)
            else:
                self._finish(ended_state(self.stop_reason), result=result)

    def _unsupported_stop(self, mode: StopMode) -> str:
        return (
            f"job {self.id} {self.name!r} is a thread job: it stops only by its stop event "
            "(how='event'; the function must check jobs.current().stopping or use "
            "jobs.current().sleep()). Use kind='loop' to cancel, kind='process' to kill"
        )

    def stop(
        self, how: str | StopMode = StopMode.EVENT, *, timeout: float | None = None
    ) -> RunStatus:
        mode = self._stop_mode(how)
        if not self.running:
            return self.state
        self.stop_reason = self.stop_reason or mode
        self._stop_event.set()
        wait_s = self.stop_timeout if timeout is None else timeout
        self.thread.join(wait_s)
        if self.thread.is_alive():
            raise JobError(
                f"thread job {self.id} {self.name!r} did not end within {wait_s} s of the stop "
                "event: its function has not reached a check of jobs.current().stopping (it "
                "never checks, or it is inside one long step; a training job checks after "
                "every batch). A thread cannot be killed: it keeps running and ends at its "
                "next check; wait with a longer timeout=, or next time use kind='process'"
            )
        return self.state


def make_callable_name(fn: Any) -> str:
    """A readable default job name for a function, coroutine function or coroutine."""
    for attr in ("__qualname__", "__name__"):
        value = getattr(fn, attr, None)
        if isinstance(value, str):
            return value.rsplit(".", 1)[-1]
    if asyncio.iscoroutine(fn):
        return fn.cr_code.co_name
    return type(fn).__name__


def is_async(fn: Callable[..., Any] | Any) -> bool:
    return asyncio.iscoroutine(fn) or inspect.iscoroutinefunction(fn) or inspect.isawaitable(fn)


def ended_state(stop_reason: StopMode | None) -> RunStatus:
    """The state of a job whose work returned: stopped if a stop was asked for, else completed."""
    return RunStatus.STOPPED if stop_reason else RunStatus.COMPLETED
