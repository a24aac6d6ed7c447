"""Desktop toolkits: which ones exist, whether one works here, and their canvas classes.

Nothing here imports a toolkit at import time; :func:`toolkit_problem` and
:func:`canvas_class` do (GTK 3 pinned first), so call the former in a throwaway process
when the answer must not pin a toolkit in this one.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from resnetlab.errors import BackendError, ConfigError


@dataclass(frozen=True)
class Toolkit:
    """How one desktop toolkit is reached through matplotlib."""

    name: str  # our short name: "qt", "tk", "gtk"
    backend: str  # matplotlib backend name
    module: str  # the matplotlib backend module that defines the canvas class
    canvas: str  # canvas class name in that module
    gui: str  # name for IPython's GUI event-loop integration (%gui ...)
    install: str  # how a user gets the toolkit


TOOLKITS: dict[str, Toolkit] = {
    "qt": Toolkit(
        "qt",
        "QtAgg",
        "matplotlib.backends.backend_qtagg",
        "FigureCanvasQTAgg",
        "qt",
        "pip install PySide6-Essentials (or PyQt6)",
    ),
    "tk": Toolkit(
        "tk",
        "TkAgg",
        "matplotlib.backends.backend_tkagg",
        "FigureCanvasTkAgg",
        "tk",
        "install your system's python3-tk package (Tk comes with most Pythons)",
    ),
    "gtk": Toolkit(
        "gtk",
        "GTK3Agg",
        "matplotlib.backends.backend_gtk3agg",
        "FigureCanvasGTK3Agg",
        "gtk3",
        "apt-get install gir1.2-gtk-3.0 libgirepository1.0-dev libcairo2-dev "
        "pkg-config; pip install pycairo 'PyGObject<3.51'",
    ),
}


def _display_problem() -> str | None:
    """Why no window can be opened here (no X11/Wayland display on Linux), or None."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return (
            "no display: DISPLAY and WAYLAND_DISPLAY are unset (on a headless machine "
            "use the webagg or agg backend, or run under xvfb-run)"
        )
    import matplotlib as mpl

    if not mpl._c_internal_utils.display_is_valid():
        return (
            f"the display {os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')!r} "
            "cannot be opened (is the X server running? is DISPLAY right?)"
        )
    return None


def _prepare_gtk3() -> None:
    """Pin GTK 3 and check it initialises, before matplotlib's GTK3 backend is imported.

    The classic failure: something imports ``gi.repository.Gtk`` without pinning the
    version (or pins GTK 4), after which the GTK3 backend cannot load; and GTK windows
    created while matplotlib is not in interactive mode are never shown. The version is
    pinned here first, and the window driver's ``start`` creates managers with
    interactive mode on.
    """
    try:
        import gi
    except ImportError as exc:
        raise BackendError(f"GTK3 needs PyGObject ({exc}); {TOOLKITS['gtk'].install}") from exc
    try:
        gi.require_version("Gtk", "3.0")
        gi.require_version("Gdk", "3.0")
    except ValueError as exc:
        raise BackendError(
            f"GTK 3 cannot be loaded in this process: {exc}. Another library has already "
            "imported a different GTK version; open the dashboard in a viewer process "
            "(mode='viewer') or before importing that library"
        ) from exc
    from gi.repository import Gtk

    ok = Gtk.init_check(sys.argv[:1])
    if isinstance(ok, tuple):  # older PyGObject returns (ok, argv)
        ok = ok[0]
    if not ok:
        raise BackendError(f"GTK 3 could not open the display {os.environ.get('DISPLAY')!r}")


def toolkit_problem(name: str) -> str | None:
    """Why the desktop toolkit ``name`` cannot be used in this process, or None if it can.

    Imports the toolkit (in this process), so call it in a throwaway process when the
    answer must not pin a toolkit here.
    """
    kit = TOOLKITS.get(name)
    if kit is None:
        return f"unknown desktop toolkit {name!r} (choose one of {', '.join(TOOLKITS)})"
    problem = _display_problem()
    if problem:
        return problem
    try:
        if name == "gtk":
            _prepare_gtk3()
        __import__(kit.module)
    except (ImportError, BackendError, RuntimeError, ValueError) as exc:
        return f"{kit.backend} is not available: {exc}. Install: {kit.install}"
    return None


def canvas_class(name: str) -> type:
    """The matplotlib canvas class of toolkit ``name``; a clear BackendError if unusable."""
    kit = TOOLKITS.get(name)
    if kit is None:
        raise ConfigError(f"unknown desktop toolkit {name!r}; choose one of {', '.join(TOOLKITS)}")
    problem = _display_problem()
    if problem:
        raise BackendError(f"cannot open a {kit.backend} window: {problem}")
    if name == "gtk":
        _prepare_gtk3()
    try:
        module = __import__(kit.module, fromlist=[kit.canvas])
    except ImportError as exc:
        raise BackendError(
            f"{kit.backend} is not available: {exc}. Install: {kit.install}"
        ) from exc
    return getattr(module, kit.canvas)


def in_notebook_kernel() -> bool:
    """True inside a Jupyter (ipykernel) kernel, where the main thread runs cells."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
