"""The one contract between a Dashboard and the drivers that draw it, and their defaults.

A driver decides how and on which thread a dashboard's figures get drawn. It is built as
``factory(dashboard, **options)`` (a class, or for the desktop toolkits a chooser of the
window or viewer driver) and has everything :class:`Driver` lists; :class:`BaseDriver`
gives the defaults, so a driver states only what differs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from resnetlab.errors import ConfigError
from resnetlab.live.blit import locked_canvas_class
from resnetlab.metrics.stream import MetricStream


class DriverHost(Protocol):
    """What a driver reads from its dashboard."""

    lock: threading.RLock  # held while artists move and while a figure renders
    figures: list[Any]  # the matplotlib figures, created once
    layout: list[list[Any]]  # the panels, one list per figure
    stream: MetricStream
    title: str | None
    rate_hz: float  # wanted refreshes per second
    max_points: int

    def refresh(self) -> bool:
        """Move artists to the stream's newest data; True if anything changed."""


@runtime_checkable
class Driver(Protocol):
    """How a dashboard's figures are drawn: every attribute the dashboard and session use."""

    name: str
    # True: Dashboard.start() may call draw() from its background loop thread. False (the
    # desktop drivers): the driver refreshes on a thread of its own choosing.
    draws_from_background: bool
    # True: its windows live in this process and only the main thread may touch them;
    # LiveSession.wait_closed() keeps them responsive until the user closes them.
    in_process_windows: bool
    # A draw was postponed (Agg between snapshots): the background loop asks again.
    pending: bool
    # Seconds spent rendering on another thread, counted against the dashboard's budget.
    render_seconds: float
    # The page address (WebAgg), else None.
    url: str | None
    # True: after finish() it keeps showing the final picture until stop() (the WebAgg
    # page stays served); False: the session stops it when the run ends.
    keeps_final: bool

    def start(self) -> None:
        """Attach canvases and display / serve / open windows (idempotent)."""

    def draw(self) -> None:
        """Draw the figures now (or hand the draw to the thread that may draw)."""

    def stop_timer(self) -> None:
        """Stop refreshing by itself; what is shown stays (a no-op for most drivers)."""

    def finish(self, message: str) -> None:
        """The run has ended: say ``message`` where the dashboard is shown (a no-op for
        drivers with no place to say it)."""

    def stop(self) -> None:
        """Stop drawing and close what start() opened (idempotent)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Until the user closes the dashboard's windows (True) or ``timeout`` s (False)."""

    def grab(self, path: str | os.PathLike[str], index: int = 0) -> Path:
        """Save what figure ``index`` shows to the PNG file ``path``."""


# A class or function that builds a driver: ``factory(dashboard, **options)``.
DriverFactory = Callable[..., Driver]


def check_option_names(name: str, given: dict[str, Any], known: dict[str, Any]) -> None:
    """A ConfigError naming the options of backend ``name`` that ``given`` has too many."""
    unknown = set(given) - set(known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            f"the {name!r} live backend does not take {', '.join(sorted(unknown))}; "
            f"its options: {allowed}"
        )


class BaseDriver:
    """Defaults of every :class:`Driver` attribute; subclasses set ``name`` and ``options``."""

    name: ClassVar[str] = "base"
    draws_from_background: ClassVar[bool] = True
    in_process_windows: ClassVar[bool] = False
    keeps_final: ClassVar[bool] = False
    # Options a subclass accepts, with defaults (unknown options are a ConfigError).
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, dashboard: DriverHost, **options: Any) -> None:
        check_option_names(self.name, options, self.options)
        self.dashboard = dashboard
        self.config = {**self.options, **options}
        self.started = False
        self.url: str | None = None
        self.pending = False
        self.render_seconds = 0.0

    def start(self) -> None:
        self.started = True

    def draw(self) -> None:
        with self.dashboard.lock:
            for fig in self.dashboard.figures:
                fig.canvas.draw()

    def stop_timer(self) -> None:
        pass

    def finish(self, message: str) -> None:
        pass

    def stop(self) -> None:
        self.started = False

    def wait(self, timeout: float | None = None) -> bool:
        return True  # nothing of ours for a user to close

    def grab(self, path: str | os.PathLike[str], index: int = 0) -> Path:
        path = Path(path)
        with self.dashboard.lock:
            self.dashboard.figures[index].savefig(path, format="png")
        return path

    def attach(self, canvas_cls: type) -> list[Any]:
        """Give every dashboard figure a locked canvas of ``canvas_cls``; returns them."""
        cls = locked_canvas_class(canvas_cls)
        return [cls(fig) for fig in self.dashboard.figures]
