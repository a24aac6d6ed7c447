"""A dashboard rendered in its own process, fed from this process's stream.

Drawing a full dashboard costs a few hundred milliseconds of Python and Agg work that
holds the GIL; done in the training process at 2 Hz it steals a large share of a CPU
training loop's time. For the headless backends (Agg snapshots, the WebAgg page) nothing
needs to be drawn *here*, so a child process owns the figures, the driver and the web
server, and this process only forwards new records: a
:class:`~resnetlab.metrics.transport.StreamMirror` wakes a few times a second and writes
each batch, encoded by the transport's codec, to the child's stdin. The system monitor
stays here (cheap; its keys reach the run store like every other metric).

The child is a fresh interpreter, ``python -m resnetlab.live.render_process``, not a
``multiprocessing`` spawn: spawn re-imports the user's ``__main__``, so a script that calls
``resnetlab.train(live="auto")`` without an ``if __name__ == "__main__":`` guard trained
twice and died with multiprocessing's "bootstrapping" error.

Messages are JSON lines. Parent to child (stdin): the configuration first, then
``{"t": "records", "r": [rows]}`` (the transport's rows), ``{"t": "full", "figure": i,
"pixel_ratio": r}`` (backend ``"frames"``: figure i's next frame whole, rendered at r
device pixels per CSS pixel as the page shows it, e.g. 2 on a HiDPI screen) and ``{"t": "finish", "message": s}``;
end of file (the parent closed it, or died) ends the child. Child to parent (its
stdout): ``{"t": "ready", "url": s|null}`` or ``{"t": "error", "message": s}`` once, then
(backend ``"frames"``) ``{"t": "frame", "figure": i, "mode": "full"|"diff", "png": base64,
...}`` per frame, and ``{"t": "finished"}`` once the final PNG is written. After ``finish``
a WebAgg child keeps serving the final dashboard (with the page's "finished" notice) until
the end of file: ``close()``, or the training process's exit.

    proc = RenderProcess(stream, backend="webagg", panels="all").start()
    proc.url      # the page, served by the child on 127.0.0.1
    proc.finish() # final PNG, notice on the page; the page stays
    proc.close()  # the child exits
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from resnetlab.errors import BackendError, ConfigError
from resnetlab.live.panels import decode_panels, encode_panels
from resnetlab.live.png_frames import FrameDiffer
from resnetlab.metrics.stream import MetricStream, Record
from resnetlab.metrics.transport import StreamMirror, append_rows, encode_batch

logger = logging.getLogger(__name__)

# Backends whose figures never need to be on this process's screen or kernel.
PROCESS_BACKENDS = ("agg", "webagg")
# The child renders with Agg and sends every frame back as a PNG (``{"t": "frame"}``):
# for a kernel that shows them in its ipympl widget without rendering them itself.
FRAMES = "frames"
# Share of the child's wall time its drawing may take: it holds no GIL of the training
# process, so it only competes for a core; 2 Hz of the default panels fits in a quarter.
CHILD_DRAW_BUDGET = 0.25
# At most this many rows per message, so one huge backlog does not stall the child.
CHUNK = 2000


def child_env() -> dict[str, str]:
    """The environment of a child interpreter that imports this very resnetlab (also
    from a source checkout that is not installed)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


# -- parent side -------------------------------------------------------------------------
class RenderProcess:
    """Runs a :class:`Dashboard` with an ``agg`` or ``webagg`` driver in a child process."""

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
        on_frame: Callable[[dict[str, Any]], None] | None = None,
        **driver_options: Any,
    ) -> None:
        if backend not in (*PROCESS_BACKENDS, FRAMES):
            raise ConfigError(
                f"a render process serves {', '.join(PROCESS_BACKENDS)} (or sends {FRAMES!r} "
                f"back), not {backend!r}; desktop windows must draw in the process that "
                f"shows them"
            )
        # Called on the listening thread with each {"t": "frame"} message (backend FRAMES).
        self.on_frame = on_frame
        self.stream = stream
        self.backend = backend
        self.forward_every = forward_every
        self.start_timeout = start_timeout
        self.url: str | None = None
        self.config = {
            "name": stream.name,
            "panels": encode_panels(panels),
            "backend": backend,
            "title": title,
            "rate_hz": rate_hz,
            # Paths (the snapshot directory) as strings: the options travel as JSON.
            "driver_options": {
                k: str(v) if isinstance(v, os.PathLike) else v for k, v in driver_options.items()
            },
            "final_png": str(final_png) if final_png else None,
        }
        try:
            json.dumps(self.config)
        except TypeError as exc:
            raise ConfigError(f"render process options must be JSON-able: {exc}") from exc
        self._proc: subprocess.Popen | None = None
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._send_lock = threading.Lock()
        self._mirror: StreamMirror | None = None
        self.finished = False

    def start(self) -> RenderProcess:
        # A new session: Ctrl-C in the training process's terminal does not reach the
        # child; it leaves when its stdin closes.
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "resnetlab.live.render_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
            env=child_env(),
        )
        threading.Thread(target=self._listen, name="resnetlab-render-listen", daemon=True).start()
        self._send(self.config)
        reply = self._reply(self.start_timeout, "start")
        if reply.get("t") != "ready":
            self._kill()
            raise BackendError(
                f"the {self.backend} dashboard process failed to start: "
                f"{reply.get('message') or 'it exited (see its messages on stderr)'}"
            )
        self.url = reply.get("url")
        self._mirror = StreamMirror(
            self.stream, self._forward, self.forward_every, name="resnetlab-render-feed"
        ).start()
        return self

    def _listen(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                logger.debug("render process said: %r", raw[:200])
                continue
            if msg.get("t") == "frame":
                if self.on_frame is not None:
                    try:
                        self.on_frame(msg)
                    except Exception:  # the picture may freeze; training must not
                        logger.exception("showing a frame of the render process failed")
                continue
            self._replies.put(msg)
        self._replies.put({"t": "eof"})

    def _reply(self, timeout: float, what: str) -> dict[str, Any]:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise BackendError(
                f"the {self.backend} dashboard process did not {what} within {timeout:.0f} s"
            ) from None

    def _send(self, msg: dict[str, Any]) -> bool:
        """Write one message; False (never an exception) if the child is gone."""
        data = (json.dumps(msg) + "\n").encode()
        with self._send_lock:
            try:
                assert self._proc is not None and self._proc.stdin is not None
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def request_full(self, figure: int, pixel_ratio: float = 1.0) -> None:
        """Ask for ``figure``'s next frame whole, not as a diff (backend FRAMES: the page
        does not show the frame the next diff would be painted over), and from then on at
        ``pixel_ratio`` times the figure's dpi (the page's device pixel ratio)."""
        self._send({"t": "full", "figure": figure, "pixel_ratio": float(pixel_ratio)})

    def _forward(self, records: list[Record]) -> None:
        for start in range(0, len(records), CHUNK):
            self._send({"t": "records", "r": encode_batch(records[start : start + CHUNK])})

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def keeps_final(self) -> bool:
        """True when the child keeps showing the final dashboard after :meth:`finish`
        (the WebAgg page), until :meth:`close`."""
        return self.backend == "webagg"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def finish(self, message: str = "The run has finished.", timeout: float = 60.0) -> None:
        """Send what is left, let the child write its final PNG and show ``message``, and
        wait for that; a WebAgg child keeps serving until :meth:`close`. Idempotent."""
        if self._proc is None or self.finished:
            return
        self.finished = True
        if self._mirror is not None:
            with contextlib.suppress(Exception):  # the child may be gone already
                self._mirror.stop(timeout)
            self._mirror = None
        if self._send({"t": "finish", "message": message}):
            with contextlib.suppress(BackendError):
                while self._reply(timeout, "write its final picture").get("t") not in (
                    "finished",
                    "eof",
                ):
                    pass

    def close(self, timeout: float = 60.0) -> None:
        """Finish (if not yet), end the child and wait for it."""
        if self._proc is None:
            return
        self.finish(timeout=timeout)
        with contextlib.suppress(OSError, ValueError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # end of file: the child exits
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("dashboard process did not exit in %.0f s; killing it", timeout)
            self._kill()
        self._proc = None

    def _kill(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.kill()
            self._proc.wait()


# -- child side --------------------------------------------------------------------------
class _Child:
    """The render process: the dashboard and its driver; stdin read on the main thread."""

    def __init__(self, config: dict[str, Any], proto: IO[str]) -> None:
        self.config = config
        self.proto = proto
        self.stream = MetricStream(name=config["name"])
        self.dash: Any = None
        self.finished = False
        self._say_lock = threading.Lock()  # frames come from the dashboard's loop thread
        self.frames = FrameDiffer()

    def say(self, **msg: Any) -> None:
        with self._say_lock:
            self.proto.write(json.dumps(msg) + "\n")
            self.proto.flush()

    def send_frame(self, frame: Any) -> None:
        """Send the figure just rendered as a PNG (mostly a diff over the last one), with
        what it shows (backend FRAMES)."""
        import base64

        pixels = np.asarray(self.dash.figures[frame.figure].canvas.buffer_rgba())
        mode, png = self.frames.encode(frame.figure, pixels)
        height, width = pixels.shape[:2]
        self.say(
            t="frame",
            figure=frame.figure,
            records=frame.records,
            newest=frame.newest,
            size=[width, height],
            mode=mode,
            png=base64.b64encode(png).decode(),
        )

    def full_frame(self, figure: int, pixel_ratio: float) -> None:
        """The next frame of ``figure`` whole, at ``pixel_ratio`` times the dashboard's dpi
        (what a HiDPI page shows: ipympl scales the kernel's figure the same way)."""
        if not 0 <= figure < len(self.dash.figures) or not 0.25 <= pixel_ratio <= 8:
            logger.warning(
                "render process: ignoring a full-frame request %r", (figure, pixel_ratio)
            )
            return
        with self.dash.lock:
            self.dash.set_pixel_ratio(figure, pixel_ratio)
            self.frames.reset(figure)

    def start(self) -> bool:
        from resnetlab.live.dashboard import Dashboard

        config = self.config
        frames = config["backend"] == FRAMES
        try:
            self.dash = Dashboard(
                decode_panels(config["panels"]),
                stream=self.stream,
                backend="agg" if frames else config["backend"],
                title=config["title"],
                **({"draw_budget": CHILD_DRAW_BUDGET} if frames else {}),
                **config["driver_options"],
            )
            if frames:  # Agg without a directory renders at every draw: each is a frame
                self.dash.frame_listeners.append(self.send_frame)
            self.dash.start(rate_hz=config["rate_hz"])
        except Exception as exc:  # report start-up errors to the parent, never swallow
            self.say(t="error", message=f"{type(exc).__name__}: {exc}")
            return False
        self.say(t="ready", url=self.dash.url)
        return True

    def finish(self, message: str | None) -> None:
        if self.finished:
            return
        self.finished = True
        self.dash.finish(message or "The run has finished.")
        if self.config["final_png"]:
            try:
                self.dash.save(self.config["final_png"])
            except Exception:
                logger.exception("writing the final dashboard PNG failed")

    def serve(self, lines: IO[str]) -> None:
        """Until end of file: append records, finish when told."""
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                logger.warning("render process: ignoring a malformed message %r", line[:80])
                continue
            if msg.get("t") == "records":
                try:
                    append_rows(self.stream, msg["r"])
                except (ConfigError, TypeError) as exc:
                    logger.warning("render process: dropped a malformed batch: %s", exc)
            elif msg.get("t") == "full":
                self.full_frame(int(msg.get("figure", 0)), float(msg.get("pixel_ratio", 1.0)))
            elif msg.get("t") == "finish":
                self.finish(msg.get("message"))
                self.say(t="finished")

    def run(self, lines: IO[str]) -> int:
        if not self.start():
            return 2
        try:
            self.serve(lines)
        finally:
            self.finish(None)  # the parent died or closed without finishing
            self.dash.close()
        return 0


def main() -> int:
    """``python -m resnetlab.live.render_process``: started by :class:`RenderProcess`."""
    logging.basicConfig(level=logging.WARNING, format="render %(levelname)s %(name)s: %(message)s")
    # Our stdout is the reply channel: keep a private copy of it and send anything a
    # library prints to stderr instead.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    config = json.loads(sys.stdin.readline() or "null")
    if not isinstance(config, dict):
        return 2  # the parent went away before sending anything
    return _Child(config, proto).run(sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
