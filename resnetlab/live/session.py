"""``live_dashboard``: one call that wires a stream to a dashboard, a driver and a monitor.

This is the trainer's entry point (``resnetlab train --live NAME``) and works for any
producer: it returns a :class:`LiveSession` whose ``url`` is the WebAgg address (None
for other backends). When the run ends its ``finish()`` stops the monitor, writes
``dashboard-final.png`` and says on the dashboard that the run has finished; a WebAgg page
stays served with the final picture until ``close()`` or the process's exit. ``close()``
finishes first if that has not happened, then stops everything.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnetlab.live.dashboard import Dashboard, Frame
from resnetlab.live.drivers import resolve_backend_name
from resnetlab.live.drivers.ipympl import IpymplDriver
from resnetlab.live.monitor import SystemMonitor
from resnetlab.live.render_process import FRAMES, PROCESS_BACKENDS, RenderProcess
from resnetlab.metrics.stream import MetricStream

logger = logging.getLogger(__name__)


class LiveSession:
    """A running dashboard (+ optional system monitor) fed by one stream.

    ``dashboard`` is the in-process :class:`Dashboard` (ipympl, desktop, or
    ``in_process=True``); ``render_process`` the child that draws Agg/WebAgg otherwise.
    """

    def __init__(
        self,
        dashboard: Dashboard | None,
        monitor: SystemMonitor | None,
        run_dir: Path | None,
        render_process: RenderProcess | None = None,
    ) -> None:
        self.dashboard = dashboard
        self.render_process = render_process
        self.monitor = monitor
        self.run_dir = run_dir
        self.finished = False
        self.closed = False

    @property
    def url(self) -> str | None:
        if self.render_process is not None and self.render_process.url:
            return self.render_process.url
        return self.dashboard.url if self.dashboard is not None else None

    @property
    def backend(self) -> str:
        if self.dashboard is not None:  # also when a render process makes its frames
            return self.dashboard.backend
        return self.render_process.backend if self.render_process is not None else "none"

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Keep a desktop window of this process responsive until the user closes it (True)
        or ``timeout`` s pass; True at once when the dashboard has no such window."""
        driver = self.dashboard.driver if self.dashboard is not None else None
        if driver is None or not driver.in_process_windows:
            return True
        return bool(driver.wait(timeout))

    def finish(self, message: str | None = None) -> None:
        """The run has ended: stop the monitor and the refreshing, write
        ``dashboard-final.png`` into run_dir, and show ``message`` (default: the time it
        finished) on the dashboard. A driver that can keep the final picture (the WebAgg
        page) keeps it until :meth:`close`; the others are stopped now. Idempotent."""
        if self.finished:
            return
        self.finished = True
        if message is None:
            message = (
                f"The run finished at {time.strftime('%H:%M:%S')}: this is its final dashboard."
            )
        if self.monitor is not None:
            self.monitor.stop()
        if self.render_process is not None:
            self.render_process.finish(message)  # the child writes the final PNG, if asked
            if not self.render_process.keeps_final:
                self.render_process.close()
            if self.dashboard is None:
                return
            # The frames came from the child: the widget now gets this process's own
            # figure, interactive (pan, zoom) from here on.
            try:
                self.dashboard.refresh()
                self.dashboard.draw()
            except Exception:
                logger.exception("drawing the final dashboard failed")
        self.dashboard.finish(message)
        if self.run_dir is not None:
            try:
                self.dashboard.save(self.run_dir / "dashboard-final.png")
            except Exception:
                logger.exception("writing the final dashboard PNG failed")
        driver = self.dashboard.driver
        if driver is not None and not driver.keeps_final:
            driver.stop()

    def close(self) -> None:
        """Finish (if not done yet) and stop everything: the WebAgg server too."""
        if self.closed:
            return
        self.finish()
        self.closed = True
        if self.render_process is not None:
            self.render_process.close()
        if self.dashboard is not None:
            self.dashboard.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def live_dashboard(
    stream: MetricStream,
    backend: str = "auto",
    run_dir: str | Path | None = None,
    system_monitor: bool = True,
    *,
    panels: Any = None,
    rate_hz: float = 2.0,
    monitor_interval: float = 1.0,
    in_process: bool = False,
    title: str | None = None,
    **driver_options: Any,
) -> LiveSession:
    """Start a live dashboard on ``stream`` and return the running :class:`LiveSession`.

    ``backend="auto"`` picks ipympl in Jupyter, a desktop toolkit with a display, else Agg
    snapshots into ``run_dir``. Agg snapshots go to ``run_dir/dashboard.png`` every 5 s.
    Agg and WebAgg draw in a separate process (so drawing never slows training) unless
    ``in_process=True``. So does ipympl while training: the child renders the frames and
    the kernel only forwards them to its widget; at ``finish()`` the widget gets the
    kernel's own figure, which pans and zooms.
    """
    name = resolve_backend_name(backend)
    run_path = Path(run_dir) if run_dir is not None else None
    if name == "agg" and run_path is not None:
        driver_options.setdefault("directory", run_path)
    monitor = SystemMonitor(stream, interval=monitor_interval) if system_monitor else None
    if name in PROCESS_BACKENDS and not in_process:
        final = run_path / "dashboard-final.png" if run_path is not None else None
        proc = RenderProcess(
            stream, name, panels, rate_hz=rate_hz, title=title, final_png=final, **driver_options
        )
        try:
            if monitor is not None:
                monitor.start()
            proc.start()
        except BaseException:
            if monitor is not None:
                monitor.stop()
            raise
        if proc.url:
            logger.info("live dashboard at %s", proc.url)
        return LiveSession(None, monitor, run_path, render_process=proc)
    if name == "ipympl" and not in_process:
        return _forwarded(stream, panels, rate_hz, title, monitor, run_path, driver_options)
    dash = Dashboard(panels, stream=stream, backend=name, title=title, **driver_options)
    try:
        if monitor is not None:
            monitor.start()
        dash.start(rate_hz=rate_hz)
    except BaseException:
        if monitor is not None:
            monitor.stop()
        dash.close()
        raise
    if dash.url:
        logger.info("live dashboard at %s", dash.url)
    return LiveSession(dash, monitor, run_path)


def _forwarder(dash: Dashboard, proc: RenderProcess) -> Callable[[dict[str, Any]], None]:
    """What the render process's listener calls with each frame: push it to the widget;
    for a diff the page cannot paint over, ask for the next frame whole; for a page at
    another pixel size (HiDPI), render this picture here and ask for the next ones at the
    page's device pixel ratio."""

    def forward(msg: dict[str, Any]) -> None:
        png = base64.b64decode(msg["png"])
        driver = dash.driver
        assert isinstance(driver, IpymplDriver)
        figure, size = msg["figure"], (msg["size"][0], msg["size"][1])
        outcome = driver.show_frame(figure, png, size, msg.get("mode", "full"))
        if outcome == "shown":
            dash.frames.append(Frame(figure, time.time(), msg["records"], msg["newest"]))
            return
        proc.request_full(figure, driver.pixel_ratio(figure))  # at the page's pixel size
        if outcome == "unfit":
            with dash.lock:
                dash.refresh()
                dash.draw()

    return forward


def _forwarded(
    stream: MetricStream,
    panels: Any,
    rate_hz: float,
    title: str | None,
    monitor: SystemMonitor | None,
    run_path: Path | None,
    driver_options: dict[str, Any],
) -> LiveSession:
    """ipympl widgets in this kernel showing frames a render process makes."""
    dash = Dashboard(panels, stream=stream, backend="ipympl", title=title, **driver_options)
    proc = RenderProcess(stream, FRAMES, panels, rate_hz=rate_hz, title=title)
    proc.on_frame = _forwarder(dash, proc)
    try:
        dash.show()  # the widgets, with a first picture rendered here
        if monitor is not None:
            monitor.start()
        proc.start()
    except BaseException:
        if monitor is not None:
            monitor.stop()
        proc.close()
        dash.close()
        raise
    return LiveSession(dash, monitor, run_path, render_process=proc)
