"""A dashboard rendered in its own process, fed from this process's stream.

Drawing a full dashboard costs a few hundred milliseconds of Python and Agg work that
holds the GIL; done in the training process at 2 Hz it steals a large share of a CPU
training loop's time. For the headless backends (Agg snapshots, the WebAgg page) nothing
needs to be drawn *here*, so a spawned child process owns the figures, the driver and the
web server, and this process only forwards new records through a queue: a
:class:`~resnetlab.metrics.transport.StreamMirror` that wakes a few times a second and puts
each batch, encoded by the transport's codec, on the queue; the child's pump decodes and
appends it. The system monitor stays here (cheap; its keys reach
the run store like every other metric).

    proc = RenderProcess(stream, backend="webagg", panels="all").start()
    proc.url      # the page, served by the child on 127.0.0.1
    proc.close()  # final snapshot / PNG, child exits
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as _queue
from pathlib import Path
from typing import Any

from resnetlab.errors import BackendError, ConfigError
from resnetlab.metrics.stream import MetricStream, Record
from resnetlab.metrics.transport import StreamMirror, encode_batch, pump

logger = logging.getLogger(__name__)

# Backends whose figures never need to be on this process's screen or kernel.
PROCESS_BACKENDS = ("agg", "webagg")


def _child_main(feed: Any, ready: Any, config: dict[str, Any]) -> None:
    """Entry point of the render process: build the dashboard, append what arrives."""
    parent = config["parent_pid"]
    try:
        from resnetlab.live.dashboard import Dashboard

        stream = MetricStream(name=config["name"])
        dash = Dashboard(
            config["panels"],
            stream=stream,
            backend=config["backend"],
            title=config["title"],
            **config["driver_options"],
        )
        dash.start(rate_hz=config["rate_hz"])
        ready.put(("ok", dash.url))
    except BaseException as exc:  # report start-up errors to the caller, never swallow
        ready.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    try:
        # Until the parent's None; also ends when the training process died (no lingering).
        pump(stream, feed, should_stop=lambda: os.getppid() != parent, poll=1.0)
    finally:
        dash.stop()
        if config["final_png"]:
            with contextlib.suppress(Exception):
                dash.save(config["final_png"])
        dash.close()


class RenderProcess:
    """Runs a :class:`Dashboard` with an ``agg`` or ``webagg`` driver in a spawned child."""

    def __init__(
        self,
        stream: MetricStream,
        backend: str = "agg",
        panels: Any = None,
        *,
        rate_hz: float = 2.0,
        title: str | None = None,
        final_png: str | Path | None = None,
        forward_every: float = 0.25,
        start_timeout: float = 120.0,
        **driver_options: Any,
    ) -> None:
        if backend not in PROCESS_BACKENDS:
            raise ConfigError(
                f"a render process serves {', '.join(PROCESS_BACKENDS)}, not {backend!r}; "
                f"ipympl and desktop windows must draw in the process that shows them"
            )
        self.stream = stream
        self.backend = backend
        self.forward_every = forward_every
        self.start_timeout = start_timeout
        self.url: str | None = None
        self.config = {
            "name": stream.name,
            "panels": panels,
            "backend": backend,
            "title": title,
            "rate_hz": rate_hz,
            "driver_options": dict(driver_options),
            "final_png": str(final_png) if final_png else None,
            "parent_pid": os.getpid(),
        }
        self._proc: Any = None
        self._feed: Any = None
        self._mirror: StreamMirror | None = None

    def start(self) -> RenderProcess:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # never fork a process holding torch threads
        self._feed, ready = ctx.Queue(), ctx.Queue()
        self._proc = ctx.Process(
            target=_child_main,
            args=(self._feed, ready, self.config),
            name=f"resnetlab-render-{self.backend}",
            daemon=True,
        )
        self._proc.start()
        try:
            status, detail = ready.get(timeout=self.start_timeout)
        except _queue.Empty:
            self._proc.kill()
            raise BackendError(
                f"the {self.backend} dashboard process did not start within "
                f"{self.start_timeout:.0f} s"
            ) from None
        if status != "ok":
            self._proc.join(10)
            raise BackendError(f"the {self.backend} dashboard process failed to start: {detail}")
        self.url = detail
        self._mirror = StreamMirror(
            self.stream, self._forward, self.forward_every, name="resnetlab-render-feed"
        ).start()
        return self

    def _forward(self, records: list[Record]) -> None:
        self._feed.put(encode_batch(records))

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    def close(self, timeout: float = 60.0) -> None:
        """Send what is left, let the child write its final images, and wait for it."""
        if self._proc is None:
            return
        if self._mirror is not None:
            with contextlib.suppress(Exception):  # the child may be gone already
                self._mirror.stop(timeout)
            self._mirror = None
        with contextlib.suppress(Exception):
            self._feed.put(None)
        self._proc.join(timeout)
        if self._proc.is_alive():
            logger.warning("dashboard process did not exit in %.0f s; killing it", timeout)
            self._proc.kill()
            self._proc.join(5)
        self._feed.close()
        self._feed.join_thread()
        self._proc = None
