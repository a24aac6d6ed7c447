"""Killable workers: a job in a spawned subprocess that streams its messages back.

A thread cannot be killed; a process can. ``ProcessJob`` starts the function in a fresh
interpreter (multiprocessing *spawn*: no forked copy of the kernel's threads and sockets),
and a pump thread in the parent reads what the worker sends through a one-way pipe:
printed lines (into the job's log/tail/widget), metrics (into the job's ``MetricStream``
in *this* process), then the result or the formatted error. ``kill()`` sends SIGTERM,
waits a grace period, then SIGKILL; the parent is unaffected.

In the worker, ``jobs.current()`` returns a :class:`WorkerContext` with the same
``stopping`` / ``sleep`` / ``stop_requested`` / ``log`` as a thread job.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from typing import Any

from resnetlab.errors import ConfigError, JobError
from resnetlab.jobs.context import MISSING, StopAware, set_worker_context
from resnetlab.jobs.job import Job, ended_state
from resnetlab.jobs.shared_flag import SharedFlag
from resnetlab.metrics.transport import Producer, Row, append_rows
from resnetlab.states import RunStatus, StopMode

log = logging.getLogger(__name__)


# -- worker side (runs in the spawned process) -------------------------------------------


class WorkerContext(StopAware, Producer):
    """What ``jobs.current()`` returns inside a worker process.

    Its ``log``/``append`` (``MetricStream.append``'s signature, so a worker can pass it
    as a trainer's stream) check each record here, as the stream would, and send it to
    the parent's ``job.stream`` with the transport's codec.
    """

    def __init__(self, job_id: int, name: str, conn: Any, flags: dict[str, Any]) -> None:
        self.id = job_id
        self.name = name
        self.kind = "process"
        self._conn = conn
        self._flags = flags
        self._stop_event = flags["stop"]
        self._send_lock = threading.Lock()

    def flag(self, name: str) -> Any:
        """A control flag (a SharedFlag) the parent can set: "stop", and any the job class declares."""
        try:
            return self._flags[name]
        except KeyError:
            raise JobError(
                f"worker of job {self.id} has no flag {name!r}; it has {sorted(self._flags)}"
            ) from None

    def report(self, kind: str, payload: Any) -> None:
        """Send a report (progress, state) to the parent job's listeners."""
        self.send("report", kind, payload)

    def send_rows(self, rows: list[Row]) -> None:
        self.send("metric", rows)

    def send(self, kind: str, *payload: Any) -> None:
        """Send one message to the parent (kinds: out, metric, event, result, error)."""
        # Plain pickle, not multiprocessing's: tensors are copied into the message instead
        # of being shared through file descriptors that die with this process.
        blob = pickle.dumps((kind, *payload), protocol=pickle.HIGHEST_PROTOCOL)
        with self._send_lock:
            self._conn.send_bytes(blob)


class _PipeWriter:
    """``sys.stdout``/``sys.stderr`` of the worker: complete lines go to the parent."""

    def __init__(self, ctx: WorkerContext, name: str) -> None:
        self._ctx = ctx
        self.name = name
        self._buf = ""
        self.encoding = "utf-8"
        self.errors = "replace"

    def write(self, text: str) -> int:
        self._buf += text
        if "\n" in text or "\r" in text or len(self._buf) > 8192:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buf:
            text, self._buf = self._buf, ""
            try:
                self._ctx.send("out", self.name, text)
            except (BrokenPipeError, OSError):
                pass  # the parent is gone; nothing to print to

    def isatty(self) -> bool:
        return False


def _on_sigterm(signum: int, frame: Any) -> None:
    # SIGTERM -> SystemExit, so ``finally`` blocks (a trainer's cleanup) still run.
    raise SystemExit(128 + signum)


def _watch_parent() -> None:
    """End this worker when the process that started it dies (a crashed or restarted kernel)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # waits on the parent's sentinel: returns when the parent is gone
        os._exit(1)

    threading.Thread(target=watch, name="resnetlab-parent-watch", daemon=True).start()


def _worker_main(
    fn: Any,
    args: tuple,
    kwargs: dict,
    conn: Any,
    flags: dict[str, Any],
    log_path: str,
    job_id: int,
    name: str,
) -> None:
    """Entry point of the spawned process."""
    # Descriptor-level output (C libraries, a crash dump) goes to the log file, never to
    # the terminal or kernel that spawned us.
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGTERM, _on_sigterm)
    _watch_parent()
    ctx = WorkerContext(job_id, name, conn, flags)
    set_worker_context(ctx)  # jobs.current() -> ctx, from any thread of this process
    sys.stdout = _PipeWriter(ctx, "stdout")
    sys.stderr = _PipeWriter(ctx, "stderr")
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            ctx.send("result", result)
        except Exception as exc:  # the result does not pickle
            ctx.send("error", f"the job's result cannot be sent back: {exc!r}", None)
    except BaseException as exc:
        sys.stdout.flush()
        sys.stderr.flush()
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            blob = pickle.dumps(exc)
            pickle.loads(blob)
        except Exception:
            blob = None
        try:
            ctx.send("error", text, blob)
        except Exception:
            pass
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            raise  # keep the exit status (143 after SIGTERM)
    finally:
        conn.close()


async def _await(awaitable: Any) -> Any:
    return await awaitable


# -- parent side ---------------------------------------------------------------------------


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (Linux 5.3+): signals through it can never reach a reused PID."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class _Child:
    """The one owner of a worker's PID: reaps it once, signals it only while it lives.

    Two threads used to reap the same child (the pump's ``join`` and ``kill``'s
    ``join``/``is_alive``); the loser read "no such child" as "still running" and sent
    SIGKILL to a PID that was already reaped, one the OS may have handed to an unrelated
    process. Here only :meth:`reap` (the pump) collects the exit status, and it does so
    under the lock that :meth:`send` holds while it checks the child and signals it: an
    unreaped PID cannot be reused, so a signal sent under the lock reaches our worker or
    a zombie of it. Waiting for the exit (``waitid`` with ``WNOWAIT``) never reaps.
    """

    def __init__(self, process: Any) -> None:
        self.process = process
        self.pid: int = process.pid
        self._lock = threading.Lock()
        self._pidfd = _open_pidfd(self.pid)
        self.exitcode: int | None = None
        self.reaped = threading.Event()
        # Set under the lock when a signal went out; final once the child is reaped.
        self.signalled = False

    def _exited(self) -> bool:
        """Whether the worker has exited (a zombie or reaped), without reaping it."""
        if self.exitcode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            # Reaped by multiprocessing's own cleanup, which polls every unjoined child
            # whenever another process starts: gone all the same.
            return True

    def alive(self) -> bool:
        """Whether the worker still runs (never reaps it)."""
        return not self._exited()

    def send(self, sig: int) -> bool:
        """Send ``sig`` if the worker still runs; whether it was sent."""
        with self._lock:
            if self._exited():
                return False
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, sig)
                else:
                    os.kill(self.pid, sig)
            except ProcessLookupError:
                return False
            self.signalled = True
            return True

    def wait_exit(self) -> None:
        """Block until the worker has exited, leaving it for :meth:`reap`."""
        try:
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass  # already reaped by multiprocessing's cleanup; reap() reads its status
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for safety
            self.wait_exit()

    def reap(self) -> int | None:
        """Collect the exit status (once, from the pump thread) and close the pidfd."""
        self.wait_exit()
        with self._lock:
            self.process.join()
            # multiprocessing's cleanup may be between its waitpid and storing the status:
            # a join then reports None once; the status follows within microseconds.
            deadline = time.monotonic() + 5.0
            while self.process.exitcode is None and time.monotonic() < deadline:
                self.process.join(0.01)
            self.exitcode = self.process.exitcode
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        self.reaped.set()
        return self.exitcode


class ProcessJob(Job):
    """A function in a spawned worker process: stop by event, or ``kill()``."""

    kind = "process"
    stop_modes = (StopMode.EVENT, StopMode.KILL)
    # Control flags (SharedFlag: lock-free, unlike multiprocessing.Event) shared with the
    # worker; "stop" always exists.
    flag_names: tuple[str, ...] = ("stop",)

    def start(self, stop_timeout: float) -> None:
        self.stop_timeout = stop_timeout
        self._check_picklable()
        mp = multiprocessing.get_context("spawn")
        self._mp_flags = {name: SharedFlag(mp) for name in {"stop", *self.flag_names}}
        self._mp_stop = self._mp_flags["stop"]
        reader, writer = mp.Pipe(duplex=False)
        self._got_result = False
        assert self.log_path is not None
        self.output.flush()
        self.process = mp.Process(
            target=_worker_main,
            name=f"job-{self.id}-{self.name}",
            args=(
                self.fn,
                self.args,
                self.kwargs,
                writer,
                self._mp_flags,
                str(self.log_path),
                self.id,
                self.name,
            ),
        )
        self.process.start()
        self._child = _Child(self.process)
        writer.close()  # only the worker writes; its exit now means end-of-file for us
        self._reader = reader
        self.pump = threading.Thread(
            target=self._pump_main, name=f"job-{self.id}-{self.name}-pump", daemon=True
        )
        self.pump.start()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def stopping(self) -> bool:
        return self._mp_stop.is_set()

    def flag(self, name: str) -> Any:
        try:
            return self._mp_flags[name]
        except KeyError:
            raise JobError(
                f"process job {self.id} has no flag {name!r}; declare it in "
                f"flag_names (has {sorted(self._mp_flags)})"
            ) from None

    def _check_picklable(self) -> None:
        fn = self.fn
        main = sys.modules.get("__main__")
        if getattr(fn, "__module__", None) == "__main__" and not getattr(main, "__file__", None):
            raise JobError(
                f"process job {self.name!r}: {getattr(fn, '__qualname__', fn)!r} is defined in "
                "the notebook/REPL (__main__), which a fresh worker process cannot import. "
                "Put it in a .py module (e.g. my_jobs.py beside the notebook) and import it, "
                "or use kind='thread'/'loop'"
            )
        if asyncio.iscoroutine(fn):
            raise JobError(
                f"process job {self.name!r}: pass the async function and its "
                "arguments, not a coroutine object (it cannot cross processes)"
            )
        try:
            pickle.dumps((fn, self.args, self.kwargs))
        except Exception as exc:
            raise JobError(
                f"process job {self.name!r}: the function or its arguments cannot be sent to "
                f"a worker process ({type(exc).__name__}: {exc}); use a module-level function "
                "and plain arguments (no lambdas, open files, locks)"
            ) from exc

    def _pump_main(self) -> None:
        result: Any = MISSING
        error: tuple[str, bytes | None] | None = None
        unreadable: str | None = None
        reader = self._reader
        while True:
            try:
                if not reader.poll(0.2):
                    if not self._child.alive() and not reader.poll(0):
                        break
                    continue
                blob = reader.recv_bytes()
            except (EOFError, OSError):
                break
            try:
                msg = pickle.loads(blob)
            except Exception as exc:  # e.g. a class the parent cannot import
                unreadable = f"{type(exc).__name__}: {exc}"
                log.error("job %s: unreadable message from its worker: %s", self.id, unreadable)
                continue
            kind = msg[0]
            if kind == "out":
                self.output.write(msg[2])
            elif kind == "metric":
                self._append_metrics(msg[1])
            elif kind == "result":
                result = msg[1]
                self._got_result = True
            elif kind == "error":
                error = (msg[1], msg[2])
            elif kind == "report":
                self.report(msg[1], msg[2])
            else:
                self.on_message(msg)
        reader.close()
        code = self.exitcode = self._child.reap()
        if self._child.signalled:
            self.stop_reason = StopMode.KILL
            self._finish(RunStatus.KILLED, result=result)
        elif error is not None:
            text, blob = error
            exc: BaseException
            try:
                exc = (
                    pickle.loads(blob)
                    if blob is not None
                    else JobError(text.strip().splitlines()[-1])
                )
            except Exception:
                exc = JobError(text.strip().splitlines()[-1])
            self._finish(RunStatus.FAILED, exception=exc, tb=text)
        elif result is not MISSING:
            self._finish(ended_state(self.stop_reason), result=result)
        else:
            why = (
                f"its result could not be read here ({unreadable})"
                if unreadable
                else "killed by the system (out of memory?)"
                if code
                else "no result was sent"
            )
            exc = JobError(
                f"worker process of job {self.id} {self.name!r} exited with code "
                f"{code}: {why}; see {self.log_path}"
            )
            self._finish(RunStatus.FAILED, exception=exc, tb=str(exc))

    def _append_metrics(self, rows: list[Row]) -> None:
        try:
            append_rows(self.stream, rows)
        except ConfigError as exc:  # checked in the worker already: a foreign message
            log.error("job %s: dropped malformed metrics from its worker: %s", self.id, exc)

    def on_message(self, msg: tuple) -> None:
        """Handle a message kind this class does not know (subclasses extend it)."""
        log.debug("job %s: ignoring message %r", self.id, msg[0])

    def _unsupported_stop(self, mode: StopMode) -> str:
        return (
            f"process job {self.id} {self.name!r} stops by how='event' "
            "(the worker checks jobs.current().stopping) or is killed with "
            "how='kill' / job.kill()"
        )

    def stop(
        self, how: str | StopMode = StopMode.EVENT, *, timeout: float | None = None
    ) -> RunStatus:
        mode = self._stop_mode(how)
        if mode is StopMode.KILL:
            return self.kill()
        if not self.running:
            return self.state
        self.stop_reason = self.stop_reason or mode
        self._mp_stop.set()
        wait_s = self.stop_timeout if timeout is None else timeout
        if not self._done.wait(wait_s):
            log.warning(
                "job %s %r ignored the stop event for %.1f s; killing it",
                self.id,
                self.name,
                wait_s,
            )
            return self.kill(grace=min(3.0, max(wait_s, 0.5)))
        return self.state

    def kill(self, grace: float = 3.0) -> RunStatus:
        """SIGTERM the worker; SIGKILL it if still alive after ``grace`` seconds.

        A worker that already ended on its own is not signalled and keeps its own status.
        """
        if not self.running:
            return self.state
        child = self._child
        if child.send(signal.SIGTERM):
            self.stop_reason = StopMode.KILL
            if not child.reaped.wait(grace) and child.send(signal.SIGKILL):
                log.warning(
                    "job %s %r survived SIGTERM for %.1f s; sent SIGKILL",
                    self.id,
                    self.name,
                    grace,
                )
        # The pump reaps the worker, sets exitcode, then finishes the job.
        child.reaped.wait(30.0)
        self._done.wait(30.0)
        return self.state
