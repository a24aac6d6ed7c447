"""Viewer driver: a desktop dashboard whose window lives in a viewer process.

In a notebook kernel a window of the kernel's own process freezes whenever a cell blocks
the main thread. This driver opens the window in a child process instead
(:func:`resnetlab.live.viewer.open_viewer`), fed with the dashboard's stream; the child
draws, so this driver draws nothing and runs no timer. ``mode="viewer"`` of a desktop
backend, and its default inside a Jupyter kernel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from resnetlab.live.drivers.base import BaseDriver, DriverHost
from resnetlab.live.drivers.desktop_options import DESKTOP_OPTIONS, DesktopOptions, dashboard_title
from resnetlab.live.viewer import ViewerHandle, open_viewer


def dashboard_options(dashboard: DriverHost) -> dict[str, Any]:
    """The Dashboard arguments that rebuild the same figures in a viewer process."""
    options: dict[str, Any] = {"max_points": int(dashboard.max_points)}
    figures = dashboard.figures
    if figures and figures[0].axes:
        fig = figures[0]
        rows, cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
        width, height = fig.get_size_inches()
        options.update(ncols=int(cols), panel_size=[width / cols, height / rows], dpi=fig.dpi)
    return options


class ViewerDriver(BaseDriver):
    """Shows a Dashboard in a viewer process of toolkit ``toolkit`` (qt, tk, gtk)."""

    draws_from_background = False  # the viewer process draws its own window
    in_process_windows = False
    options = DESKTOP_OPTIONS

    def __init__(self, dashboard: DriverHost, toolkit: str, **options: Any) -> None:
        self.name = self.toolkit = toolkit  # error messages name the backend the user chose
        super().__init__(dashboard, **options)
        self.settings = DesktopOptions.parse(self.config)
        self.title = self.settings.title
        self.viewer: ViewerHandle | None = None

    @property
    def interval(self) -> float:
        """Seconds between the viewer's timer refreshes."""
        return self.settings.refresh_interval(self.dashboard.rate_hz)

    def start(self) -> None:
        """Open the viewer process; returns once its window is up (BackendError if not)."""
        if self.started:
            return
        timeout = self.settings.start_timeout
        self.viewer = open_viewer(
            self.dashboard.stream,
            backend=self.toolkit,
            panels=self.dashboard.layout,
            title=self.title or dashboard_title(self.dashboard.figures),
            interval=self.interval,
            **({} if timeout is None else {"start_timeout": timeout}),
            **dashboard_options(self.dashboard),
        )
        super().start()

    def draw(self) -> None:
        pass  # the viewer process draws its own window

    def pump(self) -> None:
        pass  # the viewer's own main thread runs its GUI

    def stop(self) -> None:
        """Close the viewer window and end its process. Safe to call twice."""
        if self.viewer is not None:
            self.viewer.close()
        super().stop()

    close = stop

    @property
    def is_open(self) -> bool:
        """True while the viewer process runs."""
        return self.viewer is not None and self.viewer.alive

    @property
    def draws(self) -> int:
        """The viewer window's redraws as of the last grab (0 before one)."""
        return (self.viewer.window_draws or 0) if self.viewer is not None else 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the viewer exits (its window was closed: True) or ``timeout`` s."""
        return True if self.viewer is None else self.viewer.wait(timeout)

    def grab(self, path: str | os.PathLike[str], index: int = 0) -> Path:
        """A PNG of the viewer's window, taken by its toolkit."""
        if self.viewer is None:
            return super().grab(path, index)
        return self.viewer.grab(path)
