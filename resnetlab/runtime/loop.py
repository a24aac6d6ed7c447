"""BackgroundLoop: one new asyncio event loop in one named thread, safe to drive from any thread.

The only loop class of resnetlab: job loops, the system monitor, the dashboard's refresh
task and the WebAgg server each run on one.

In a Jupyter kernel an event loop already runs, so ``asyncio.run`` fails there and tasks
put on the kernel's loop stall between cells. A ``BackgroundLoop`` owns its *own* loop in
its own thread (no ``nest_asyncio``):

>>> with BackgroundLoop("ticker") as bg:           # start() returns once the loop runs
...     fut = bg.submit(asyncio.sleep(0.01, "done"))
...     fut.result()
'done'

Three ways to stop, from any thread:

1. ``bg.stop()``: sets the stop event (tasks watch ``await bg.stop_requested()`` or
   ``bg.stopping``) and waits for tasks to end, up to a timeout, then cancels the rest;
2. ``bg.stop(hard=True)``: ``loop.stop()`` now; pending tasks are cancelled and awaited
   before the loop closes;
3. ``bg.cancel(fut)`` / ``bg.cancel_all()``: cancel tasks; a loop made with
   ``until_tasks_done=True`` ends when its last task ends.

Plain functions run on the loop thread too: ``bg.call(fn, *args, timeout=...)`` waits for
the result, ``bg.call_soon(fn, *args)`` hands it over and returns at once (a no-op once
the loop no longer takes work), ``bg.on_loop_thread()`` tells whether the caller is there.

Exceptions are never swallowed: each task's future holds its exception, every one is
kept in ``bg.errors``, and ``stop()`` re-raises the first one nobody has retrieved.
A loop runs once: ``start()`` is idempotent while it runs, and a stopped loop is replaced
by a new ``BackgroundLoop``, never restarted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from resnetlab.errors import JobError
from resnetlab.runtime.capture import OutputSink, route_thread

log = logging.getLogger(__name__)

_local = threading.local()


class TaskFuture(concurrent.futures.Future):
    """The future of a coroutine submitted to a :class:`BackgroundLoop`.

    ``cancel()`` asks the task to cancel; the future becomes cancelled only once the task
    has run its cleanup (``finally`` blocks), so ``result()`` raises ``CancelledError``
    after cleanup, never before.
    """

    def __init__(self, owner: BackgroundLoop, name: str | None) -> None:
        super().__init__()
        self.owner = owner
        self.name = name
        self.task: asyncio.Task | None = None
        self.retrieved = False
        self._cancel_requested = False

    def cancel(self) -> bool:
        if self.done():
            return False
        self.owner.cancel(self, wait=False)
        return True

    def result(self, timeout: float | None = None) -> Any:
        self.owner._check_blocking("TaskFuture.result()", self, timeout)
        self.retrieved = True
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self.owner._check_blocking("TaskFuture.exception()", self, timeout)
        self.retrieved = True
        return super().exception(timeout)

    def _set_cancelled(self) -> None:
        # The base class cancel() marks it cancelled and wakes result() callers;
        # set_running_or_notify_cancel() then wakes concurrent.futures.wait() callers too.
        if concurrent.futures.Future.cancel(self):
            self.set_running_or_notify_cancel()

    def __repr__(self) -> str:
        return f"<TaskFuture {self.name or ''} on {self.owner.name!r} {self._state.lower()}>"


class BackgroundLoop:
    """A new asyncio event loop running in a named daemon thread."""

    def __init__(
        self,
        name: str = "resnetlab-loop",
        *,
        until_tasks_done: bool = False,
        stop_timeout: float = 5.0,
        cancel_timeout: float = 5.0,
        output: OutputSink | None = None,
        setup: Callable[[], None] | None = None,
        on_exit: Callable[[BackgroundLoop], None] | None = None,
    ) -> None:
        self.name = name
        # End the loop when its last task ends (a job's loop lives as long as its work).
        self.until_tasks_done = until_tasks_done
        # How long a clean stop() waits for tasks to react to the stop event before cancelling.
        self.stop_timeout = stop_timeout
        # How long cancelled tasks get to run their cleanup before the loop closes anyway.
        self.cancel_timeout = cancel_timeout
        # Extra seconds stop() waits for the thread before reporting a blocked loop.
        self.join_grace = 5.0
        # Where prints from the loop thread go (None: wherever sys.stdout points).
        self.output = output
        self._setup = setup
        self._on_exit = on_exit
        self.errors: list[BaseException] = []
        self._reported: set[int] = set()
        self._lock = threading.RLock()
        self._state = "new"  # new -> running -> closing -> closed
        self._accepting = False
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: contextvars.Context | None = None
        self._stop_event: asyncio.Event | None = None
        self._tasks: dict[asyncio.Task, TaskFuture] = {}
        self._pending: dict[TaskFuture, Coroutine[Any, Any, Any]] = {}
        self._had_task = False

    # -- introspection ---------------------------------------------------------------
    @classmethod
    def current(cls) -> BackgroundLoop | None:
        """The BackgroundLoop whose thread is running this code, or None."""
        return getattr(_local, "loop", None)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The asyncio loop (None before start)."""
        return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @property
    def running(self) -> bool:
        """True while the loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def stopping(self) -> bool:
        """True once a stop was asked for (any way); tasks can poll it."""
        return self._stopping.is_set()

    @property
    def tasks(self) -> list[TaskFuture]:
        """Futures of the tasks that have not finished yet."""
        with self._lock:
            return [*self._tasks.values(), *self._pending]

    async def stop_requested(self) -> None:
        """Await this inside a task: returns when a clean ``stop()`` was asked for."""
        if self._stop_event is None or not self.on_loop_thread():
            raise JobError(
                f"stop_requested() of loop {self.name!r} must be awaited by a task running on "
                "that loop; from another thread read the .stopping flag instead"
            )
        await self._stop_event.wait()

    def __repr__(self) -> str:
        return f"<BackgroundLoop {self.name!r} {self._state}, {len(self._tasks)} tasks>"

    # -- start -------------------------------------------------------------------------
    def start(self) -> BackgroundLoop:
        """Start the thread; returns once the loop runs. Start-up errors are raised here.

        Idempotent while the loop runs: services that share a loop may each start it.
        A loop that has stopped (or failed to start) cannot start again.
        """
        with self._lock:
            first = self._state == "new"
            if not first and (self._state != "running" or self._stopping.is_set()):
                raise JobError(
                    f"background loop {self.name!r} was already started and is "
                    f"{self._describe()}; a loop runs once: create a new BackgroundLoop"
                )
            if first:
                self._state = "running"
                # The thread runs in a copy of the starter's context. In Jupyter a line no
                # job sink takes (a warning, a traceback) then shows under the cell that
                # started the loop on ipykernel 6.29 and 7 alike: 7 keeps the cell in a
                # context variable, which a plain thread does not inherit (its lines would
                # go to whichever cell runs then). A loop started by a job writes to the
                # job's sink the same way (capture's context variable).
                starter = contextvars.copy_context()
                self._thread = threading.Thread(
                    target=starter.run, args=(self._main,), name=self.name, daemon=True
                )
                self._thread.start()
        if not self.on_loop_thread():  # (its own setup= may call start())
            self._started.wait()
        if self._startup_error is None:
            return self
        if not first:  # the start() that began it raises the error itself
            raise JobError(
                f"background loop {self.name!r} failed to start: "
                f"{type(self._startup_error).__name__}: {self._startup_error}"
            ) from self._startup_error
        assert self._thread is not None
        self._thread.join()
        with self._lock:
            self._state = "closed"
        raise self._startup_error

    def _main(self) -> None:
        _local.loop = self
        try:
            if self.output is not None:
                with route_thread(self.output):
                    self._run()
            else:
                self._run()
        finally:
            _local.loop = None
            if self._on_exit is not None:
                try:
                    self._on_exit(self)
                except Exception:
                    log.exception("on_exit hook of loop %r failed", self.name)

    def _run(self) -> None:
        loop = None
        try:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            if self._setup is not None:
                self._setup()
            self._stop_event = asyncio.Event()
            self._context = contextvars.copy_context()
        except BaseException as exc:
            self._startup_error = exc
            if loop is not None:
                asyncio.set_event_loop(None)
                loop.close()
            self._started.set()
            return
        self._loop = loop
        with self._lock:
            self._accepting = True
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        except BaseException as exc:  # KeyboardInterrupt/SystemExit raised inside a task
            self._record(exc)
        finally:
            self._close(loop)

    def _close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel what is left, await it, shut down generators and executor, close."""
        with self._lock:
            self._accepting = False
            self._state = "closing"
            pending = list(self._pending.items())
            self._pending.clear()
        for fut, coro in pending:  # submitted, but the loop stopped before it became a task
            coro.close()
            fut._set_cancelled()
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                _, stuck = loop.run_until_complete(asyncio.wait(tasks, timeout=self.cancel_timeout))
                if stuck:
                    names = ", ".join(t.get_name() for t in stuck)
                    self._record(
                        JobError(
                            f"loop {self.name!r}: task(s) {names} ignored cancellation for "
                            f"{self.cancel_timeout} s and were abandoned; do not swallow "
                            "CancelledError (re-raise it after cleanup)"
                        )
                    )
            loop.run_until_complete(asyncio.sleep(0))  # let done-callbacks settle futures
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except BaseException as exc:
            self._record(exc)
        finally:
            with self._lock:
                leftovers = list(self._tasks.items())
                self._tasks.clear()
            for task, fut in leftovers:
                if not fut.done():
                    fut.set_exception(
                        JobError(
                            f"task {task.get_name()} of loop {self.name!r} never finished; "
                            "the loop closed under it"
                        )
                    )
            asyncio.set_event_loop(None)
            loop.close()
            with self._lock:
                self._state = "closed"

    # -- tasks -------------------------------------------------------------------------
    def submit(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> TaskFuture:
        """Run ``coro`` as a task on the loop; returns a ``concurrent.futures.Future``."""
        if not asyncio.iscoroutine(coro):
            what = getattr(coro, "__name__", type(coro).__name__)
            raise JobError(
                f"submit() to loop {self.name!r} takes a coroutine object, got {what!r}; "
                "call the async function first: loop.submit(work(arg)), not loop.submit(work)"
            )
        fut = TaskFuture(self, name)
        with self._lock:
            if not self._accepting:
                coro.close()
                raise JobError(
                    f"background loop {self.name!r} is {self._describe()}; it takes no new "
                    "tasks: start() it first, or create a new BackgroundLoop"
                )
            self._pending[fut] = coro
            self._had_task = True
            assert self._loop is not None and self._context is not None
            self._loop.call_soon_threadsafe(self._create, fut, context=self._context.copy())
        return fut

    def _create(self, fut: TaskFuture) -> None:
        with self._lock:
            coro = self._pending.pop(fut, None)
            early_cancel = fut._cancel_requested
        if coro is None:  # swept by _close already
            return
        if early_cancel:
            coro.close()
            fut._set_cancelled()
            self._maybe_end()
            return
        assert self._loop is not None
        task = self._loop.create_task(coro, name=fut.name)
        with self._lock:
            # cancel() sets the flag and reads fut.task under this lock too: either it sees
            # the task (and cancels it) or we see its flag here. No cancel is lost.
            fut.task = task
            self._tasks[task] = fut
            late_cancel = fut._cancel_requested
        task.add_done_callback(self._task_done)
        if late_cancel:
            task.cancel()

    def _task_done(self, task: asyncio.Task) -> None:
        with self._lock:
            fut = self._tasks.pop(task, None)
        if fut is not None and not fut.done():
            if task.cancelled():
                fut._set_cancelled()
            elif task.exception() is not None:
                exc = task.exception()
                self._record(exc, fut)
                fut.set_exception(exc)
            else:
                fut.set_result(task.result())
        self._maybe_end()

    def _maybe_end(self) -> None:
        if not self.until_tasks_done:
            return
        with self._lock:
            if self._had_task and not self._tasks and not self._pending and self._accepting:
                self._accepting = False
                assert self._loop is not None
                self._loop.stop()

    def _record(self, exc: BaseException, fut: TaskFuture | None = None) -> None:
        with self._lock:
            self.errors.append(exc)
            if fut is not None:
                exc.__dict__.setdefault("_resnetlab_future", fut)
        if fut is None:
            log.error("loop %r: %s: %s", self.name, type(exc).__name__, exc)

    def call(
        self, fn: Callable[..., Any], *args: Any, wait: bool = True, timeout: float | None = None
    ) -> Any:
        """Run the plain function ``fn(*args)`` on the loop thread; its result (or a future).

        ``wait=True`` (from another thread) returns what ``fn`` returned or raises what it
        raised; after ``timeout`` seconds a ``TimeoutError`` says the loop is busy, and a
        call that had not begun by then is dropped. ``wait=False`` returns its future.
        """
        if wait:
            self._check_not_loop_thread("call(wait=True)")
        fut = self._hand_over(fn, args)
        if fut is None:
            raise JobError(
                f"background loop {self.name!r} is {self._describe()}; call() needs a running loop"
            )
        if not wait:
            return fut
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            # A call still queued would run later, unasked for: drop it. One that began runs on.
            dropped = fut.cancel()
            if not dropped and fut.done():
                return fut.result()  # it finished just now
            what = getattr(fn, "__qualname__", repr(fn))
            raise TimeoutError(
                f"call of {what} on loop {self.name!r} did not finish within {timeout} s "
                f"({'dropped before it began' if dropped else 'it still runs'}): a task or "
                "call blocks the loop thread with synchronous code"
            ) from None

    def call_soon(
        self, fn: Callable[..., Any], *args: Any
    ) -> concurrent.futures.Future[Any] | None:
        """Queue ``fn(*args)`` on the loop thread and return at once (from any thread).

        Returns the future of its result, or None when the loop takes no work (not started,
        stopping, stopped): a caller racing a stop, such as a redraw asked for while a
        dashboard closes, needs no error for that. An exception of ``fn`` is on the future
        and logged, since a fire-and-forget caller may never look.
        """
        fut = self._hand_over(fn, args)
        if fut is not None:
            fut.add_done_callback(self._log_call_error)
        return fut

    def on_loop_thread(self) -> bool:
        """Whether the caller runs on this loop's thread (where blocking on it would deadlock)."""
        return BackgroundLoop.current() is self

    def _hand_over(
        self, fn: Callable[..., Any], args: tuple[Any, ...]
    ) -> concurrent.futures.Future[Any] | None:
        """Queue ``fn(*args)`` on the loop, in the loop's context; None if it takes no work."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

        with self._lock:
            if not self._accepting:
                return None
            assert self._loop is not None and self._context is not None
            self._loop.call_soon_threadsafe(run, context=self._context.copy())
        return fut

    def _log_call_error(self, fut: concurrent.futures.Future[Any]) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:
            log.error(
                "loop %r: a call_soon() callback raised %s: %s",
                self.name,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )

    # -- the three ways to stop --------------------------------------------------------
    def cancel(
        self, task: TaskFuture | asyncio.Task, *, wait: bool = True, timeout: float | None = None
    ) -> bool:
        """Cancel one task; with ``wait`` return once it has finished its cleanup.

        Returns False if it had already finished.
        """
        fut = task if isinstance(task, TaskFuture) else self._future_of(task)
        if fut.done():
            return False
        with self._lock:
            # Flag and task are read and written under the lock, as in _create: a task
            # still being created sees the flag there and cancels itself.
            fut._cancel_requested = True
            created = fut.task
            if self.on_loop_thread():
                if created is not None:
                    created.cancel()
                return True
            if created is not None and self._loop is not None and not self._loop.is_closed():
                try:
                    self._loop.call_soon_threadsafe(created.cancel)
                except RuntimeError:  # closed meanwhile: _close cancelled it already
                    pass
        if wait:
            wait_s = self._wait_timeout(timeout)
            concurrent.futures.wait([fut], timeout=wait_s)
            if not fut.done():
                if fut.task is None:
                    raise JobError(
                        f"task {fut.name or '(unnamed)'} of loop {self.name!r} was cancelled "
                        f"before it started, but the loop has not got to it within {wait_s} s: "
                        "another task blocks the loop thread with synchronous code "
                        "(time.sleep, a long computation); it is cancelled as soon as the "
                        "loop runs again"
                    )
                raise JobError(
                    f"task {fut.name or fut.task.get_name()} of loop {self.name!r} did not end "
                    f"within {wait_s} s of being cancelled; it swallows CancelledError or "
                    "blocks the loop with synchronous code"
                )
        return True

    def cancel_all(self, *, wait: bool = True, timeout: float | None = None) -> int:
        """Cancel every task; returns how many were cancelled."""
        futures = self.tasks
        for fut in futures:
            self.cancel(fut, wait=False)
        if wait and futures and not self.on_loop_thread():
            concurrent.futures.wait(futures, timeout=self._wait_timeout(timeout))
            stuck = [f for f in futures if not f.done()]
            if stuck:
                raise JobError(
                    f"{len(stuck)} task(s) of loop {self.name!r} did not end within "
                    f"{self._wait_timeout(timeout)} s of being cancelled"
                )
        return len(futures)

    def stop(
        self, hard: bool = False, *, timeout: float | None = None, raise_errors: bool = True
    ) -> None:
        """Stop the loop and join its thread (idempotent).

        ``hard=False``: set the stop event, wait up to ``timeout`` (default
        ``stop_timeout``) for tasks to end, then cancel the rest. ``hard=True``:
        ``loop.stop()`` now; pending tasks are cancelled and awaited. Re-raises the first
        task exception that nobody retrieved (``raise_errors=False`` only records it).
        """
        self._check_not_loop_thread("stop()")
        with self._lock:
            if self._state == "new":
                self._state = "closed"
                return
        self._started.wait()
        self._stopping.set()
        wait_s = self.stop_timeout if timeout is None else timeout
        with self._lock:
            self._accepting = False
            loop = self._loop
            if loop is not None and not loop.is_closed() and self._state == "running":
                try:
                    if hard:
                        loop.call_soon_threadsafe(self._stop_now)
                    else:
                        loop.call_soon_threadsafe(self._begin_clean_stop, wait_s)
                except RuntimeError:  # closed between the check and the call
                    pass
        assert self._thread is not None
        limit = (0 if hard else wait_s) + self.cancel_timeout + self.join_grace
        self._thread.join(limit)
        if self._thread.is_alive():
            raise JobError(
                f"background loop {self.name!r} did not stop within {limit:.1f} s: a task "
                "blocks the loop thread with synchronous code (time.sleep, a long "
                "computation). Await instead (asyncio.sleep, loop.run_in_executor), or run "
                "the work as a kind='process' job so that it can be killed"
            )
        if raise_errors:
            self.raise_errors()

    def _stop_now(self) -> None:
        # Runs on the loop; a no-op once the loop is already closing (its own cleanup runs
        # the loop again and must not be interrupted).
        if self._state == "running" and self._loop is not None:
            self._loop.stop()

    def _begin_clean_stop(self, timeout: float) -> None:
        assert self._stop_event is not None and self._loop is not None
        self._stop_event.set()
        tasks = list(self._tasks)
        loop = self._loop
        if not tasks:
            self._stop_now()
            return

        async def wait_then_stop() -> None:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            if late:
                log.warning(
                    "loop %r: %d task(s) still running %.1f s after the stop event; "
                    "cancelling them",
                    self.name,
                    len(late),
                    timeout,
                )
            self._stop_now()

        loop.create_task(wait_then_stop(), name=f"{self.name}-clean-stop")

    def raise_errors(self) -> None:
        """Raise the first task exception that was neither retrieved nor raised before."""
        with self._lock:
            for exc in self.errors:
                fut = exc.__dict__.get("_resnetlab_future")
                if id(exc) in self._reported or (fut is not None and fut.retrieved):
                    continue
                self._reported.add(id(exc))
                raise exc

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the loop thread has ended (e.g. ``until_tasks_done``); False on timeout."""
        self._check_not_loop_thread("wait()")
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- context manager ---------------------------------------------------------------
    def __enter__(self) -> BackgroundLoop:
        if self._state == "new":
            self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # On an error in the with-body stop hard and keep that error; task errors stay recorded.
        self.stop(hard=exc_type is not None, raise_errors=exc_type is None)

    # -- helpers -------------------------------------------------------------------------
    def _future_of(self, task: asyncio.Task) -> TaskFuture:
        with self._lock:
            fut = self._tasks.get(task)
        if fut is None:
            raise JobError(f"{task!r} is not a task of loop {self.name!r} (or it already finished)")
        return fut

    def _wait_timeout(self, timeout: float | None) -> float:
        return self.cancel_timeout if timeout is None else timeout

    def _describe(self) -> str:
        if self._state == "new":
            return "not started"
        if self._stopping.is_set() or self._state != "running":
            return "stopping or stopped"
        return "ending (until_tasks_done: its last task ended)"

    def _check_not_loop_thread(self, what: str) -> None:
        if self.on_loop_thread():
            raise JobError(
                f"{what} of loop {self.name!r} was called from that loop's own thread, where "
                "it would wait for itself forever; call it from another thread, or inside a "
                "task use the non-blocking form (cancel(..., wait=False), await ...)"
            )

    def _check_blocking(self, what: str, fut: TaskFuture, timeout: float | None) -> None:
        if not fut.done() and timeout != 0 and self.on_loop_thread():
            raise JobError(
                f"{what} on a pending task of loop {self.name!r} was called from that loop's "
                "own thread, which would deadlock; inside a task use "
                "`await asyncio.wrap_future(fut)`"
            )
