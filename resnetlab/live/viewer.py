"""The viewer process: a dashboard window that lives in its own process.

A desktop window in a notebook kernel freezes whenever a cell blocks the kernel's main
thread, because only that thread may run the toolkit's event loop. The viewer moves the
window into a child process (``python -m resnetlab.live.viewer``) whose main thread does
nothing but run the GUI, fed with the parent's metric stream over a pipe:

    parent (kernel)                               viewer process
    MetricStream ── feeder thread ── stdin ──>    reader thread ──> MetricStream
                 <── listener thread ── fd 1 ──   main thread: Dashboard + a window driver

* The feeder is a daemon thread, so the window stays live while a cell sleeps or trains.
* Closing the window ends only the viewer: the parent notices (``handle.alive``) and stops
  feeding; nothing is raised in the kernel.
* The viewer exits by itself when the parent dies: its stdin reaches end-of-file, and as a
  second guard (a forked child of the parent may keep the pipe open) it polls its parent pid.

Messages are JSON lines. Parent to viewer: ``{"t": "records", "r": [[step, time, {key:
value}, epoch], ...]}`` (the transport's rows), ``{"t": "grab", "id": n, "path": p}``,
``{"t": "close"}``. Viewer to parent: ``{"t": "ready", "pid": n}`` or ``{"t": "error",
"message": s}`` once at start-up, then ``{"t": "grabbed", "id": n, "path": p, "error":
s|null, "draws": n}`` answers (the window as it is, not redrawn for the grab; ``draws``
counts its redraws so far).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from resnetlab.errors import BackendError, ConfigError
from resnetlab.live.dashboard import Dashboard
from resnetlab.live.drivers.toolkits import TOOLKITS
from resnetlab.live.drivers.window import WINDOW_DRIVERS, WindowDriver
from resnetlab.live.panels import decode_panels, encode_panels
from resnetlab.metrics.stream import MetricStream, Record, default_stream
from resnetlab.metrics.transport import StreamMirror, append_rows, encode_batch

log = logging.getLogger(__name__)

# How long the parent waits for the viewer's window to be up (imports of Qt/GTK are slow
# on a loaded machine) before reporting a start-up failure.
START_TIMEOUT_S = 60.0
# Records are sent at most this often: batches many appends of a fast loop into one write.
FEED_PERIOD_S = 0.05
# At most this many records per message, so one huge backlog does not stall the viewer.
CHUNK = 2000


# -- parent side -------------------------------------------------------------------------
class ViewerHandle:
    """The parent's handle on a viewer process: ``alive``, ``pid``, ``grab()``, ``close()``."""

    def __init__(self, proc: subprocess.Popen, stream: MetricStream, backend: str) -> None:
        self.proc = proc
        self.stream = stream
        self.backend = backend
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._replies: dict[int, queue.SimpleQueue] = {}
        self._ids = itertools.count(1)
        self._startup: queue.SimpleQueue = queue.SimpleQueue()
        # The viewer window's redraw count as of the last grab's answer (None before one).
        self.window_draws: int | None = None
        self._listener = threading.Thread(
            target=self._listen, name="resnetlab-viewer-listen", daemon=True
        )
        # Wakes at each append (a daemon thread: the window stays live while a cell
        # blocks), waits FEED_PERIOD_S so a fast loop's appends share one message.
        self._feeder = StreamMirror(
            stream, self._feed, 0.25, wake=True, gather=FEED_PERIOD_S, name="resnetlab-viewer-feed"
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        """True while the viewer process runs (False once its window was closed)."""
        return self.proc.poll() is None

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"exited {self.proc.returncode}"
        return f"<ViewerHandle {self.backend} pid={self.pid} {state}>"

    # -- start-up handshake
    def _start(self, timeout: float) -> None:
        self._listener.start()
        try:
            msg = self._startup.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise BackendError(
                f"the {self.backend} viewer process did not open its window within {timeout:.0f} s "
                "(see its messages on stderr)"
            ) from None
        if msg.get("t") != "ready":
            self._kill()
            raise BackendError(
                msg.get("message")
                or f"the {self.backend} viewer exited at start-up "
                f"(status {self.proc.poll()}); see its messages on stderr"
            )
        self._feeder.start()

    def _listen(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                log.debug("viewer said: %r", raw)
                continue
            if msg.get("t") in ("ready", "error"):
                self._startup.put(msg)
            elif msg.get("t") == "grabbed":
                box = self._replies.pop(int(msg.get("id", 0)), None)
                if box is not None:
                    box.put(msg)
        self._startup.put({"t": "error"})  # end of file: the viewer is gone
        for box in list(self._replies.values()):
            box.put({"t": "grabbed", "error": "the viewer process exited"})

    def _send(self, msg: dict[str, Any]) -> bool:
        """Write one message; False (never an exception) if the viewer is gone."""
        data = (json.dumps(msg) + "\n").encode()
        with self._send_lock:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def _feed(self, records: list[Record]) -> None:
        """The feeder's sink: records as JSON lines of at most CHUNK rows."""
        for start in range(0, len(records), CHUNK):
            if self._stop.is_set():
                return  # closing: nobody reads them any more
            if not self._send({"t": "records", "r": encode_batch(records[start : start + CHUNK])}):
                log.info("viewer %s is gone; no longer feeding it", self.pid)
                self._feeder.cancel()
                return

    # -- public API
    def grab(self, path: str | os.PathLike[str], timeout: float = 20.0) -> Path:
        """Ask the viewer to save a screenshot of its window (toolkit grab) to ``path``."""
        path = Path(path).resolve()
        ident = next(self._ids)
        box: queue.SimpleQueue = queue.SimpleQueue()
        self._replies[ident] = box
        if not self._send({"t": "grab", "id": ident, "path": str(path)}):
            self._replies.pop(ident, None)
            raise BackendError(f"the viewer process {self.pid} is not running; nothing to grab")
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            self._replies.pop(ident, None)
            raise BackendError(f"the viewer did not answer a grab within {timeout} s") from None
        if reply.get("draws") is not None:
            self.window_draws = int(reply["draws"])
        if reply.get("error"):
            raise BackendError(f"the viewer could not grab its window: {reply['error']}")
        return path

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the viewer exits (True) or ``timeout`` seconds pass (False)."""
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close(self, timeout: float = 5.0) -> None:
        """Close the viewer window and end its process. Safe to call twice."""
        self._stop.set()
        if self.alive:
            self._send({"t": "close"})
            if not self.wait(timeout):
                self._kill()
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin:
                self.proc.stdin.close()
        self.proc.wait()
        self._feeder.stop(1.0)

    def _kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> ViewerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_viewer(
    stream: MetricStream | None = None,
    backend: str = "qt",
    panels: Any = None,
    *,
    title: str | None = None,
    interval: float = 0.25,
    start_timeout: float = START_TIMEOUT_S,
    **dashboard_options: Any,
) -> ViewerHandle:
    """Open the dashboard in a separate viewer process fed by ``stream``.

    Returns once the window is up; start-up problems (no display, toolkit missing) raise a
    BackendError here. ``dashboard_options`` must be JSON-able (they go to ``Dashboard``).
    """
    if backend not in TOOLKITS:
        raise ConfigError(f"viewer backend must be one of {', '.join(TOOLKITS)}, got {backend!r}")
    if stream is None:
        stream = default_stream()
    try:
        options_json = json.dumps(dashboard_options)
    except TypeError as exc:
        raise ConfigError(f"viewer dashboard options must be JSON-able: {exc}") from exc
    cmd = [
        sys.executable,
        "-m",
        "resnetlab.live.viewer",
        "--backend",
        backend,
        "--panels",
        json.dumps(encode_panels(panels)),
        "--interval",
        str(interval),
        "--parent-pid",
        str(os.getpid()),
        "--options",
        options_json,
    ]
    if title:
        cmd += ["--title", title]
    # A new session: Ctrl-C in the parent's terminal (or interrupting a kernel) does not
    # reach the viewer; it leaves when the parent's pipe closes.
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, start_new_session=True
    )
    handle = ViewerHandle(proc, stream, backend)
    handle._start(start_timeout)
    return handle


# -- viewer side -------------------------------------------------------------------------
class _Viewer:
    """Runs in the viewer process: the window on the main thread, the pipe on a thread."""

    def __init__(self, args: argparse.Namespace, proto: IO[str]) -> None:
        self.args = args
        self.proto = proto
        self.stream = MetricStream(name="viewer")
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.parent_pid = args.parent_pid
        self.driver: WindowDriver | None = None

    def say(self, **msg: Any) -> None:
        self.proto.write(json.dumps(msg) + "\n")
        self.proto.flush()

    def read_pipe(self) -> None:
        """Reader thread: records go straight into the local stream; commands to the inbox."""
        for line in sys.stdin:
            try:
                msg = json.loads(line)
            except ValueError:
                log.warning("viewer: ignoring a malformed message %r", line[:80])
                continue
            if msg.get("t") == "records":
                try:
                    append_rows(self.stream, msg["r"])
                except ConfigError as exc:
                    log.warning("viewer: dropped a malformed batch of records: %s", exc)
            else:
                self.inbox.put(msg)
        self.inbox.put({"t": "eof"})

    def parent_gone(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def service(self) -> None:
        """Main-thread timer: answer grabs, honour close, leave when the parent is gone."""
        if self.parent_gone():
            log.info("viewer: parent %s is gone; closing", self.parent_pid)
            self.driver.stop()
            return
        while True:
            try:
                msg = self.inbox.get_nowait()
            except queue.Empty:
                return
            kind = msg.get("t")
            if kind in ("close", "eof"):
                self.driver.stop()
                return
            if kind == "grab":
                # The window as it is: no redraw for the grab, so a picture that moves
                # between grabs was moved by the refresh timer.
                try:
                    self.driver.grab(msg["path"])
                    self.say(
                        t="grabbed",
                        id=msg["id"],
                        path=msg["path"],
                        error=None,
                        draws=self.driver.draws,
                    )
                except Exception as exc:
                    self.say(
                        t="grabbed",
                        id=msg["id"],
                        path=msg["path"],
                        error=str(exc),
                        draws=self.driver.draws,
                    )

    def run(self) -> int:
        try:
            options = json.loads(self.args.options or "{}")
            dash = Dashboard(
                decode_panels(json.loads(self.args.panels)),
                stream=self.stream,
                backend="agg",
                **options,
            )
            self.driver = WINDOW_DRIVERS[self.args.backend](
                dash, mode="window", interval=self.args.interval, title=self.args.title
            )
            self.driver.start()
        except Exception as exc:
            log.debug("viewer start-up failed", exc_info=True)
            self.say(t="error", message=f"viewer: {type(exc).__name__}: {exc}")
            return 2
        threading.Thread(target=self.read_pipe, name="viewer-pipe", daemon=True).start()
        timer = self.driver.managers[0].canvas.new_timer(interval=100)
        timer.add_callback(self.service)
        timer.start()
        self.say(t="ready", pid=os.getpid())
        self.driver.wait()
        self.driver.stop()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m resnetlab.live.viewer``: started by :func:`open_viewer`, not by hand."""
    parser = argparse.ArgumentParser(
        prog="python -m resnetlab.live.viewer",
        description="Dashboard window fed over stdin (JSON lines).",
    )
    parser.add_argument("--backend", default="qt", choices=("qt", "tk", "gtk"))
    parser.add_argument("--panels", default="null", help="JSON: panel names / Panel fields")
    parser.add_argument("--options", default="{}", help="JSON: more Dashboard options")
    parser.add_argument("--title", default=None)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="exit when this process is no longer our parent",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="viewer %(levelname)s %(name)s: %(message)s")
    # Our stdout is the reply channel: keep a private copy of it and send anything a
    # library prints (GUI toolkits do) to stderr instead.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return _Viewer(args, proto).run()


if __name__ == "__main__":
    sys.exit(main())
