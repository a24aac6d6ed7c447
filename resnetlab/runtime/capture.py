"""Output kept apart: each job's prints go to its own sink, never into the running cell.

``sys.stdout``/``sys.stderr`` are wrapped once by a :class:`RoutingStream`. A write looks up
the sink of the *writing thread* (a thread registered by a job), then a context variable
(so helper threads started with ``asyncio.to_thread`` inherit their task's sink); a write
with no sink passes through, unchanged, to the stream that was there before. Nothing is
swapped globally while a job runs, so the main thread's prints (the cell that is running)
are never stolen.

Why not rely on the kernel: in ipykernel 7 ``sys.stdout`` is an ``OutStream`` whose parent
header is a context variable with a process-wide fallback; a thread that did not inherit
a context writes under the fallback, which is the header of *whichever cell runs now*.
So a background thread's print lands in an unrelated cell. Routing by thread fixes that.

Limits: output written straight to file descriptor 1/2 by C code cannot be told apart by
thread (process jobs redirect their descriptors to the log file); code that replaced
``sys.stdout`` temporarily (``contextlib.redirect_stdout``) receives the writes of every
thread while it is active, ours included.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# How often a job's log file is flushed while it writes (seconds); it is always flushed
# when the job ends. Flushing every line costs a syscall per print (see bench_jobs.py).
FLUSH_INTERVAL = 0.5
# How often an attached ipywidgets.Output is refreshed; each refresh is a comm message.
WIDGET_INTERVAL = 0.25


class Text(str):
    """A string that shows as itself (not quoted, newlines kept) in a REPL or notebook."""

    def __repr__(self) -> str:
        return str(self)


class OutputSink:
    """Where one job's output goes: its log file, an in-memory tail, an optional widget."""

    def __init__(self, path: str | os.PathLike[str] | None, *, tail_lines: int = 1000) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._lines: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._partial = ""
        self._fh = None
        self._last_flush = time.monotonic()
        self._widget: Any = None
        self._widget_lines = 200
        self._widget_dirty = False
        self.closed = False
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", errors="replace", newline="")  # noqa: SIM115

    # -- writers ---------------------------------------------------------------------
    def write(self, text: str) -> int:
        """Append ``text``; complete lines enter the tail (``\r`` rewrites are resolved on read)."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if self.closed:
                return len(text)
            if self._fh is not None:
                self._fh.write(text)
            if "\n" not in text:
                self._partial += text
                return len(text)
            parts = (self._partial + text).split("\n")
            self._partial = parts.pop()
            self._lines.extend(parts)
            if self._widget is not None:
                self._widget_dirty = True
            if self._fh is not None:
                now = time.monotonic()
                if now - self._last_flush > FLUSH_INTERVAL:
                    self._fh.flush()
                    self._last_flush = now
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._fh is not None and not self.closed:
                self._fh.flush()

    def close(self) -> None:
        """Flush and close the log file; the tail and the widget stay readable."""
        with self._lock:
            if self.closed:
                return
            if self._partial:
                self._lines.append(self._partial)
                self._partial = ""
            if self._fh is not None:
                self._fh.close()
            self.closed = True
        if self._widget is not None:
            self.refresh_widget(force=True)
            _pump.remove(self)

    # -- readers ---------------------------------------------------------------------
    def tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines (a line still being written counts as the last)."""
        if n <= 0:
            return []
        with self._lock:
            count = len(self._lines)
            lines = [self._lines[i] for i in range(max(count - n, 0), count)]
            if self._partial:
                lines.append(self._partial)
        return [_last_segment(line) for line in lines[-n:]]

    @property
    def last_line(self) -> str:
        """The latest non-empty line, or ``""``."""
        for line in reversed(self.tail(5)):
            if line.strip():
                return line
        return ""

    # -- Jupyter ---------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The attached ``ipywidgets.Output``, or None."""
        return self._widget

    def attach_widget(self, widget: Any, lines: int = 200) -> None:
        """Mirror the last ``lines`` lines into an ``ipywidgets.Output``, refreshed a few times a second."""
        with self._lock:
            self._widget = widget
            self._widget_lines = lines
        self.refresh_widget(force=True)
        if not self.closed:
            _pump.add(self)

    def refresh_widget(self, force: bool = False) -> None:
        with self._lock:
            if self._widget is None or not (force or self._widget_dirty):
                return
            self._widget_dirty = False
        text = "\n".join(self.tail(self._widget_lines))
        self._widget.outputs = ({"output_type": "stream", "name": "stdout", "text": text + "\n"},)


def _last_segment(line: str) -> str:
    # A progress bar rewrites its line with "\r"; what a reader sees is the last rewrite.
    return line.rsplit("\r", 1)[-1] if "\r" in line else line


class _WidgetPump:
    """One daemon thread refreshing dirty widgets; it ends when no widget is attached."""

    def __init__(self) -> None:
        self._sinks: set[OutputSink] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, sink: OutputSink) -> None:
        with self._lock:
            self._sinks.add(sink)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._main, name="resnetlab-jobs-widgets", daemon=True
                )
                self._thread.start()

    def remove(self, sink: OutputSink) -> None:
        with self._lock:
            self._sinks.discard(sink)

    def _main(self) -> None:
        while True:
            time.sleep(WIDGET_INTERVAL)
            with self._lock:
                sinks = list(self._sinks)
                if not sinks:
                    self._thread = None
                    return
            for sink in sinks:
                try:
                    sink.refresh_widget()
                except Exception:  # a closed comm must not kill the pump for others
                    log.debug("widget refresh failed", exc_info=True)


_pump = _WidgetPump()

# -- routing -------------------------------------------------------------------------

_thread_sinks: dict[int, OutputSink] = {}
_context_sink: contextvars.ContextVar[OutputSink | None] = contextvars.ContextVar(
    "resnetlab_job_sink", default=None
)


_get_ident = threading.get_ident


def current_sink() -> OutputSink | None:
    """The sink that a write from this thread/context goes to, or None (pass through)."""
    sink = _thread_sinks.get(_get_ident())
    return sink if sink is not None else _context_sink.get()


class RoutingStream:
    """A ``sys.stdout``/``sys.stderr`` stand-in that sends job threads' writes to their sinks."""

    def __init__(self, name: str, fallback: Any) -> None:
        self._name = name
        self._fallback = fallback

    @property
    def fallback(self) -> Any:
        return self._fallback

    def write(self, text: str) -> int:
        # current_sink() inlined: this runs for every print of every thread.
        sink = _thread_sinks.get(_get_ident())
        if sink is None:
            sink = _context_sink.get()
            if sink is None:
                return self._fallback.write(text)
        return sink.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        sink = current_sink()
        if sink is None:
            self._fallback.flush()
        else:
            sink.flush()

    def isatty(self) -> bool:
        return False if current_sink() is not None else self._fallback.isatty()

    def __getattr__(self, attr: str) -> Any:
        # encoding, fileno, errors, buffer, ... come from the wrapped stream.
        return getattr(self._fallback, attr)

    def __repr__(self) -> str:
        return f"<RoutingStream {self._name} over {self._fallback!r}>"


_install_lock = threading.Lock()


def install() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` (again, if something replaced our wrapper)."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if current is None or isinstance(current, RoutingStream):
                continue
            setattr(sys, name, RoutingStream(name, current))


def uninstall() -> None:
    """Put the wrapped streams back (only where our wrapper is still the one installed)."""
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if isinstance(current, RoutingStream):
                setattr(sys, name, current.fallback)


class route_thread:  # noqa: N801 - used like a function: ``with route_thread(sink):``
    """Send this thread's (and this context's) prints to ``sink`` for the ``with`` body."""

    def __init__(self, sink: OutputSink) -> None:
        self.sink = sink

    def __enter__(self) -> OutputSink:
        install()
        self._ident = threading.get_ident()
        self._previous = _thread_sinks.get(self._ident)
        _thread_sinks[self._ident] = self.sink
        self._token = _context_sink.set(self.sink)
        return self.sink

    def __exit__(self, *exc: object) -> None:
        _context_sink.reset(self._token)
        if self._previous is None:
            _thread_sinks.pop(self._ident, None)
        else:
            _thread_sinks[self._ident] = self._previous
