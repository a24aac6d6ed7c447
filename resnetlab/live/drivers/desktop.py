"""Desktop-window drivers: the dashboard in QtAgg, TkAgg and GTK3Agg windows.

A GUI toolkit may only be touched from the main thread of the process that owns its
windows, so a desktop driver never draws from a background thread. Instead a canvas
timer on the main thread calls ``dashboard.refresh()`` and redraws when it returned True.
That timer only fires while the toolkit's event loop runs, which leaves three situations:

* a script or ``resnetlab watch`` that has nothing else to do: :meth:`wait` runs the
  event loop until the windows are closed;
* a training loop on the main thread (``resnetlab train --live qt``): the loop calls
  :meth:`pump` at every batch end (or hands :meth:`as_callback` to the trainer); pump is
  rate-limited to one event-loop pass per ``pump_every`` seconds, so the window stays
  responsive (toolbar, resize, close) while training costs almost nothing;
* a notebook kernel: in ``mode="window"`` the kernel's GUI integration (``%gui qt``,
  switched on by :meth:`start`) runs the loop between cells, so the window freezes while
  a cell blocks. The default ``mode="auto"`` therefore opens a *viewer process* in a
  kernel (see :mod:`resnetlab.live.viewer`): its own main thread owns the window, fed
  by the dashboard's stream, so it stays live whatever the kernel does.

Windows are created with ``FigureCanvas.new_manager`` (window, canvas and the normal
navigation toolbar: home, pan, zoom, save) but are not registered with pyplot, so
``plt.close("all")`` or an inline backend flushing figures at the end of a cell cannot
close them behind the driver's back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from resnetlab.errors import BackendError, ConfigError

log = logging.getLogger(__name__)


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
    pinned here first, and :meth:`_DesktopDriver.start` creates managers with
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


def _dashboard_options(dashboard: Any) -> dict[str, Any]:
    """The Dashboard arguments that rebuild the same figures in a viewer process."""
    options: dict[str, Any] = {}
    if getattr(dashboard, "max_points", None):
        options["max_points"] = int(dashboard.max_points)
    figures = list(getattr(dashboard, "figures", []))
    if figures and figures[0].axes:
        fig = figures[0]
        rows, cols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
        width, height = fig.get_size_inches()
        options.update(ncols=int(cols), panel_size=[width / cols, height / rows], dpi=fig.dpi)
    return options


def _dashboard_title(dashboard: Any) -> str | None:
    figures = list(getattr(dashboard, "figures", []))
    suptitle = getattr(figures[0], "_suptitle", None) if figures else None
    if suptitle is not None and suptitle.get_text():
        return suptitle.get_text().removesuffix(" (1)")
    return None


def _seconds(name: str, value: Any, allow_none: bool = False) -> float | None:
    """``value`` as seconds (a float), or a ConfigError naming the option."""
    if value is None and allow_none:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"desktop dashboard option {name} is seconds (a number), got {value!r}"
        ) from None


class _DesktopDriver:
    """Shows a Dashboard's figures in desktop windows of one toolkit (see module doc)."""

    toolkit: ClassVar[str]
    name: ClassVar[str]
    # Dashboard.start() must not draw from its background thread: toolkits are main-thread only.
    draws_from_background = False

    # Options a desktop driver takes, with defaults (anything else is a ConfigError).
    options: ClassVar[dict[str, Any]] = {
        "mode": "auto",
        "interval": None,
        "pump_every": 0.05,
        "title": None,
        "start_timeout": None,
    }

    def __init__(self, dashboard: Any, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            raise ConfigError(
                f"the {self.name!r} live backend does not take {', '.join(sorted(unknown))}; "
                f"its options: {', '.join(sorted(self.options))}"
            )
        config = {**self.options, **options}
        mode, title = config["mode"], config["title"]
        if mode not in ("auto", "window", "viewer"):
            raise ConfigError(
                f"desktop driver mode must be 'auto', 'window' or 'viewer', got {mode!r}"
            )
        interval = _seconds("interval", config["interval"], allow_none=True)
        pump_every = _seconds("pump_every", config["pump_every"])
        start_timeout = _seconds("start_timeout", config["start_timeout"], allow_none=True)
        if (interval is not None and interval <= 0) or pump_every < 0:
            raise ConfigError(
                f"interval must be > 0 and pump_every >= 0 (got {interval}, {pump_every})"
            )
        self.dashboard = dashboard
        # "auto": a viewer process inside a notebook kernel (a blocked cell would freeze
        # an in-process window), a window in this process everywhere else.
        self.mode = ("viewer" if in_notebook_kernel() else "window") if mode == "auto" else mode
        # Seconds between timer refreshes; None = the dashboard's rate (Dashboard.start(rate_hz)).
        self._interval = interval
        self.pump_every = float(pump_every)  # at most one event-loop pass per this many s
        self.title = title
        self.start_timeout = start_timeout  # viewer mode: how long to wait for the window
        self._dirty = False
        self.draws = 0  # redraws of the windows so far (a frozen window stops counting)
        self.managers: list[Any] = []
        self.viewer: Any = None
        self._open: set[int] = set()
        self._timer: Any = None
        self._timer_canvas: Any = None
        self._last_tick = 0.0
        self._last_pump = 0.0
        self._started = False
        self._stopped = False

    @property
    def interval(self) -> float:
        if self._interval is not None:
            return float(self._interval)
        return 1.0 / float(getattr(self.dashboard, "rate_hz", 4.0) or 4.0)

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> _DesktopDriver:
        """Open the windows (or the viewer process) and start the refresh timer."""
        if self._started:
            return self
        if self.mode == "viewer":
            from resnetlab.live.viewer import open_viewer

            extra = {} if self.start_timeout is None else {"start_timeout": self.start_timeout}
            self.viewer = open_viewer(
                self.dashboard.stream,
                backend=self.toolkit,
                panels=getattr(self.dashboard, "layout", None),
                title=self.title or _dashboard_title(self.dashboard),
                interval=self.interval,
                **extra,
                **_dashboard_options(self.dashboard),
            )
            self._started = True
            return self
        if threading.current_thread() is not threading.main_thread():
            raise BackendError(
                f"{TOOLKITS[self.toolkit].backend} windows can only be opened from the main "
                f"thread (this is {threading.current_thread().name!r}); use mode='viewer' or "
                "a webagg/ipympl dashboard from background threads"
            )
        import matplotlib as mpl

        from resnetlab.live.drivers.base import locked_canvas_class

        # Every render (ours, or one the toolkit asks for on expose/resize) holds the
        # dashboard's lock, so it never sees artists half-moved by a refresh elsewhere.
        canvas_cls = locked_canvas_class(canvas_class(self.toolkit))
        # Interactive mode while creating managers: backends (GTK3 notably) only show and
        # realise their window at creation when it is on.
        with mpl.rc_context({"interactive": True}):
            for i, fig in enumerate(self.dashboard.figures):
                manager = canvas_cls.new_manager(fig, 9000 + id(self) % 1000 + i)
                manager.canvas._resnetlab_dashboard = self.dashboard
                self._decorate(manager, i)
                manager.show()
                self._after_show(manager)
                self.managers.append(manager)
                self._open.add(id(manager.canvas))
                manager.canvas.mpl_connect("close_event", self._on_close)
        self._started = True
        self._enable_kernel_gui()
        self._tick(force=True)
        self._start_timer()
        self.flush()
        return self

    def stop_timer(self) -> None:
        """Stop refreshing; the windows stay open with what they show now."""
        if self._timer is not None:
            with contextlib.suppress(Exception):
                self._timer.stop()
            self._timer = None

    def stop(self) -> None:
        """Stop the timer and close the windows (or the viewer). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.viewer is not None:
            self.viewer.close()
            return
        if threading.current_thread() is not threading.main_thread():
            raise BackendError("close desktop dashboard windows from the main thread")
        self.stop_timer()
        for manager in self.managers:
            if id(manager.canvas) in self._open:
                with contextlib.suppress(Exception):
                    manager.destroy()
        self._open.clear()
        with contextlib.suppress(Exception):
            self.flush()

    close = stop

    @property
    def is_open(self) -> bool:
        """True while at least one window (or the viewer process) is open."""
        if self.viewer is not None:
            return self.viewer.alive
        return bool(self._open)

    # -- drawing ---------------------------------------------------------------------
    def draw(self) -> None:
        """Redraw every open window now.

        From another thread (``dash.update()`` in a worker) nothing is drawn there: the
        windows are marked stale and the main-thread timer draws them on its next tick.
        """
        if self.viewer is not None:
            return  # the viewer process draws its own window
        if threading.current_thread() is not threading.main_thread():
            self._dirty = True
            return
        self._dirty = False
        for manager in self.managers:
            if id(manager.canvas) in self._open:
                manager.canvas.draw()  # a locked canvas: holds dashboard.lock
        self.draws += 1

    def _tick(self, force: bool = False) -> None:
        self._last_tick = time.monotonic()
        try:
            changed = self.dashboard.refresh()
        except Exception:  # a timer callback must not die silently or kill the loop
            log.exception("dashboard refresh failed")
            return
        if changed or force or self._dirty:
            self.draw()

    def _start_timer(self) -> None:
        canvases = [m.canvas for m in self.managers if id(m.canvas) in self._open]
        if not canvases:
            return
        self._timer_canvas = canvases[0]
        self._timer = self._new_timer(self._timer_canvas, int(self.interval * 1000))
        self._timer.add_callback(self._tick)
        self._timer.start()

    def _new_timer(self, canvas: Any, interval_ms: int) -> Any:
        return canvas.new_timer(interval=interval_ms)

    # -- event loop ------------------------------------------------------------------
    def flush(self) -> None:
        """Handle the toolkit's pending events once (redraws, toolbar clicks, resizes)."""
        canvas = self._live_canvas()
        if canvas is not None:
            canvas.flush_events()

    def pump(self) -> None:
        """Give the GUI a moment from a busy main-thread loop; cheap to call every batch.

        At most one event-loop pass per ``pump_every`` seconds; refreshes the dashboard
        itself when the timer is due (timers only fire while events are processed).
        """
        if self.viewer is not None or not self._open:
            return
        now = time.monotonic()
        if now - self._last_pump < self.pump_every:
            return
        self._last_pump = now
        if now - self._last_tick >= self.interval:
            self._tick()
        self.flush()

    def wait(self, timeout: float | None = None) -> bool:
        """Run the event loop until every window is closed (True) or ``timeout`` s pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.viewer is not None:
            return self.viewer.wait(timeout)
        while self._open:
            left = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if left <= 0:
                return False
            canvas = self._live_canvas()
            if canvas is None:
                break
            try:
                self._run_loop(canvas, left)
            except Exception:  # the canvas was destroyed while its loop ran
                log.debug("event loop ended with the window", exc_info=True)
        return True

    def _run_loop(self, canvas: Any, seconds: float) -> None:
        """Run the toolkit's event loop for about ``seconds``."""
        canvas.start_event_loop(seconds)

    def as_callback(self) -> _PumpCallback:
        """A trainer callback that pumps the GUI at batch ends and draws at epoch ends."""
        return _PumpCallback(self)

    # -- screenshots -------------------------------------------------------------------
    def grab(self, path: str | os.PathLike[str], index: int = 0) -> Path:
        """Save what window ``index`` shows, as the toolkit (or the X server) sees it, to PNG."""
        path = Path(path)
        if self.viewer is not None:
            return self.viewer.grab(path)
        manager = self.managers[index]
        self.flush()
        self._grab(manager, path)
        return path

    # -- toolkit specifics -------------------------------------------------------------
    def _decorate(self, manager: Any, index: int) -> None:
        title = self.title or _dashboard_title(self.dashboard) or "resnetlab dashboard"
        if len(self.dashboard.figures) > 1:
            title = f"{title} ({index + 1})"
        manager.set_window_title(title)

    def _after_show(self, manager: Any) -> None:
        pass

    def _grab(self, manager: Any, path: Path) -> None:
        raise NotImplementedError

    def _enable_kernel_gui(self) -> None:
        """In IPython, switch on the kernel's event-loop integration for this toolkit."""
        if "IPython" not in sys.modules:
            return
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            return
        try:
            shell.enable_gui(TOOLKITS[self.toolkit].gui)
        except Exception as exc:  # another toolkit's loop is active, or no support
            log.warning(
                "could not enable IPython's %s event loop: %s; the window updates "
                "only when something pumps events",
                self.toolkit,
                exc,
            )

    def _on_close(self, event: Any) -> None:
        self._open.discard(id(event.canvas))
        if event.canvas is self._timer_canvas:
            if self._timer is not None:
                with contextlib.suppress(Exception):
                    self._timer.stop()
            self._timer = None
            if self._open:  # keep refreshing the windows that are left
                self._start_timer()

    def _live_canvas(self) -> Any:
        for manager in self.managers:
            if id(manager.canvas) in self._open:
                return manager.canvas
        return None


class _PumpCallback:
    """Trainer callback (duck-typed: ``(trainer, logs)`` hooks) feeding a desktop driver."""

    def __init__(self, driver: _DesktopDriver) -> None:
        self.driver = driver

    def on_batch_end(self, trainer: Any, logs: Any) -> None:
        self.driver.pump()

    def on_epoch_end(self, trainer: Any, logs: Any) -> None:
        self.driver._last_pump = 0.0
        self.driver.pump()

    def on_fit_end(self, trainer: Any, logs: Any) -> None:
        if self.driver.viewer is None and self.driver.is_open:
            self.driver._tick(force=True)
            self.driver.flush()


class QtDriver(_DesktopDriver):
    """Dashboard in QtAgg windows (PySide6, PyQt6 or PyQt5, as matplotlib finds them)."""

    toolkit = name = "qt"

    def _grab(self, manager: Any, path: Path) -> None:
        pixmap = manager.window.grab()
        if not pixmap.save(str(path), "PNG"):
            raise BackendError(f"Qt could not save the window grab to {path}")


class TkDriver(_DesktopDriver):
    """Dashboard in TkAgg windows."""

    toolkit = name = "tk"

    def _after_show(self, manager: Any) -> None:
        # The window manager's close button calls pyplot's Gcf.destroy by default, which
        # does nothing for windows pyplot does not know: close the window ourselves.
        manager.window.protocol("WM_DELETE_WINDOW", manager.destroy)

    def _grab(self, manager: Any, path: Path) -> None:
        window = manager.window
        window.update()
        x, y = window.winfo_rootx(), window.winfo_rooty()
        w, h = window.winfo_width(), window.winfo_height()
        try:  # the pixels the X server shows, toolbar included
            from PIL import ImageGrab

            image = ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=os.environ.get("DISPLAY"))
            image.save(path, "PNG")
        except Exception as exc:  # no XCB in Pillow, or not X11: Tk's own photo of the plot
            log.debug("X grab failed (%s); saving Tk's canvas photo", exc)
            manager.canvas._tkphoto.write(str(path), format="png")


class _IdleGLibTimer:
    """A repeating GLib timeout at idle priority, below GTK's repaint and input events.

    matplotlib's GTK timer runs at default priority; a refresh that takes longer than its
    interval (a slow draw on a loaded machine) is then always due and starves the
    repaint, so the window shows an old frame although the canvas was redrawn.
    """

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = max(int(interval_ms), 1)
        self.callbacks: list[Any] = []
        self._source: int | None = None

    def add_callback(self, func: Any) -> None:
        self.callbacks.append(func)

    def _fire(self) -> bool:
        for func in self.callbacks:
            func()
        return self._source is not None

    def start(self) -> None:
        from gi.repository import GLib

        self.stop()
        self._source = GLib.timeout_add(
            self.interval_ms, self._fire, priority=GLib.PRIORITY_DEFAULT_IDLE
        )

    def stop(self) -> None:
        from gi.repository import GLib

        if self._source is not None:
            GLib.source_remove(self._source)
            self._source = None


class GtkDriver(_DesktopDriver):
    """Dashboard in GTK3Agg windows."""

    toolkit = name = "gtk"

    def _new_timer(self, canvas: Any, interval_ms: int) -> Any:
        return _IdleGLibTimer(interval_ms)

    def flush(self) -> None:
        # matplotlib's flush_events iterates until nothing is pending, which under running
        # timers can take seconds; a time bound keeps pump() and grab() cheap.
        from gi.repository import GLib

        context = GLib.MainContext.default()
        deadline = time.monotonic() + 0.05
        while context.pending() and time.monotonic() < deadline:
            context.iteration(False)

    def _run_loop(self, canvas: Any, seconds: float) -> None:
        # matplotlib's GTK3 canvas has no start_event_loop of its own; the generic one
        # flushes until nothing is pending, which never happens while timers run.
        from gi.repository import GLib

        loop = GLib.MainLoop()
        GLib.timeout_add(max(int(seconds * 1000), 1), lambda: (loop.quit(), False)[1])
        loop.run()

    def _grab(self, manager: Any, path: Path) -> None:
        from gi.repository import Gdk

        gdk_window = manager.window.get_window()
        if gdk_window is None:
            raise BackendError("the GTK window is not realised yet; nothing to grab")
        pixbuf = Gdk.pixbuf_get_from_window(
            gdk_window, 0, 0, gdk_window.get_width(), gdk_window.get_height()
        )
        pixbuf.savev(str(path), "png", [], [])


DRIVERS: dict[str, type[_DesktopDriver]] = {"qt": QtDriver, "tk": TkDriver, "gtk": GtkDriver}
