"""The desktop backends (qt, tk, gtk): a window here, or a window in a viewer process.

The registry (``drivers.DRIVERS``) names one factory per toolkit. It checks the desktop
options once and builds, by ``mode``:

* ``"window"`` (default outside Jupyter): :mod:`~resnetlab.live.drivers.window`, windows
  of this process refreshed by a main-thread timer;
* ``"viewer"`` (default inside a Jupyter kernel, where a blocked cell would freeze an
  in-process window): :mod:`~resnetlab.live.drivers.viewer`, the window in a child process.

Toolkit detection lives in :mod:`~resnetlab.live.drivers.toolkits`.
"""

from __future__ import annotations

from typing import Any

from resnetlab.live.drivers.base import DriverHost, check_option_names
from resnetlab.live.drivers.desktop_options import DESKTOP_OPTIONS, DesktopMode, DesktopOptions
from resnetlab.live.drivers.toolkits import in_notebook_kernel
from resnetlab.live.drivers.viewer import ViewerDriver
from resnetlab.live.drivers.window import WINDOW_DRIVERS, WindowDriver


def desktop_driver(
    toolkit: str, dashboard: DriverHost, **options: Any
) -> WindowDriver | ViewerDriver:
    """The window or viewer driver of ``toolkit`` for ``dashboard``, by ``options["mode"]``."""
    check_option_names(toolkit, options, DESKTOP_OPTIONS)
    mode = DesktopOptions.parse(options).mode
    if mode is DesktopMode.AUTO:
        mode = DesktopMode.VIEWER if in_notebook_kernel() else DesktopMode.WINDOW
    options = {**options, "mode": mode.value}
    if mode is DesktopMode.VIEWER:
        return ViewerDriver(dashboard, toolkit, **options)
    return WINDOW_DRIVERS[toolkit](dashboard, **options)


def qt(dashboard: DriverHost, **options: Any) -> WindowDriver | ViewerDriver:
    """The ``qt`` backend: QtAgg windows (PySide6, PyQt6 or PyQt5)."""
    return desktop_driver("qt", dashboard, **options)


def tk(dashboard: DriverHost, **options: Any) -> WindowDriver | ViewerDriver:
    """The ``tk`` backend: TkAgg windows."""
    return desktop_driver("tk", dashboard, **options)


def gtk(dashboard: DriverHost, **options: Any) -> WindowDriver | ViewerDriver:
    """The ``gtk`` backend: GTK3Agg windows."""
    return desktop_driver("gtk", dashboard, **options)
