"""Window drivers: the dashboard in QtAgg, TkAgg and GTK3Agg windows of this process.

A GUI toolkit may only be touched from the main thread of the process that owns its
windows, so a window driver never draws from a background thread. Instead a canvas timer
on the main thread calls ``dashboard.refresh()`` and redraws when it returned True. That
timer only fires while the toolkit's event loop runs, which leaves three situations:

* a script or ``resnetlab watch`` that has nothing else to do: :meth:`WindowDriver.wait`
  runs the event loop until the windows are closed;
* a loop on the main thread that appends to the dashboard's stream (``resnetlab train
  --live qt``): the driver listens to the stream and pumps the toolkit's events from
  appends made on the main thread, at most one event-loop pass per ``pump_every``
  seconds, so the window stays responsive (toolbar, resize, close) while training costs
  almost nothing; a loop that does not append calls :meth:`WindowDriver.pump` itself;
* a notebook kernel: the kernel's GUI integration (``%gui qt``, switched on by
  :meth:`WindowDriver.start`) runs the loop between cells, so the window freezes while a
  cell blocks; the viewer driver (:mod:`resnetlab.live.drivers.viewer`) avoids that.

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
from pathlib import Path
from typing import Any, ClassVar

from resnetlab.errors import BackendError
from resnetlab.live.blit import locked_canvas_class
from resnetlab.live.drivers.base import BaseDriver, DriverHost
from resnetlab.live.drivers.desktop_options import DESKTOP_OPTIONS, DesktopOptions, dashboard_title
from resnetlab.live.drivers.toolkits import TOOLKITS, canvas_class
from resnetlab.metrics.stream import Record

log = logging.getLogger(__name__)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _enable_kernel_gui(toolkit: str) -> None:
    """In IPython, switch on the kernel's event-loop integration for ``toolkit``."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    try:
        shell.enable_gui(TOOLKITS[toolkit].gui)
    except Exception as exc:  # another toolkit's loop is active, or no support
        log.warning(
            "could not enable IPython's %s event loop: %s; the window updates "
            "only when something pumps events",
            toolkit,
            exc,
        )


class WindowDriver(BaseDriver):
    """Shows a Dashboard's figures in windows of one toolkit (see the module doc)."""

    toolkit: ClassVar[str]
    draws_from_background = False  # toolkits are main-thread only: our own timer draws
    in_process_windows = True
    options = DESKTOP_OPTIONS

    def __init__(self, dashboard: DriverHost, **options: Any) -> None:
        super().__init__(dashboard, **options)
        self.settings = DesktopOptions.parse(self.config)
        self.pump_every = self.settings.pump_every
        self.title = self.settings.title
        self._dirty = False
        self.draws = 0  # redraws of the windows so far (a frozen window stops counting)
        self.managers: list[Any] = []
        self._open: set[int] = set()
        self._timer: Any = None
        self._timer_canvas: Any = None
        self._last_tick = 0.0
        self._last_pump = 0.0
        self._pumping = False
        self._stopped = False

    @property
    def interval(self) -> float:
        """Seconds between timer refreshes."""
        return self.settings.refresh_interval(self.dashboard.rate_hz)

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Open the windows, start the refresh timer, pump events from main-thread appends."""
        if self.started:
            return
        if not _on_main_thread():
            raise BackendError(
                f"{TOOLKITS[self.toolkit].backend} windows can only be opened from the main "
                f"thread (this is {threading.current_thread().name!r}); use mode='viewer' or "
                "a webagg/ipympl dashboard from background threads"
            )
        self._open_windows()
        self.started = True
        _enable_kernel_gui(self.toolkit)
        self._tick(force=True)
        self._start_timer()
        self.flush()
        self.dashboard.stream.add_listener(self._on_append)

    def _open_windows(self) -> None:
        import matplotlib as mpl

        # Every render (ours, or one the toolkit asks for on expose/resize) holds the
        # dashboard's lock, so it never sees artists half-moved by a refresh elsewhere.
        canvas_cls = locked_canvas_class(canvas_class(self.toolkit))
        # Interactive mode while creating managers: backends (GTK3 notably) only show and
        # realise their window at creation when it is on.
        with mpl.rc_context({"interactive": True}):
            for i, fig in enumerate(self.dashboard.figures):
                manager = canvas_cls.new_manager(fig, 9000 + id(self) % 1000 + i)
                self._decorate(manager, i)
                manager.show()
                self._after_show(manager)
                self.managers.append(manager)
                self._open.add(id(manager.canvas))
                manager.canvas.mpl_connect("close_event", self._on_close)

    def stop_timer(self) -> None:
        """Stop refreshing; the windows stay open with what they show now."""
        if self._timer is not None:
            with contextlib.suppress(Exception):
                self._timer.stop()
            self._timer = None

    def stop(self) -> None:
        """Stop the timer and close the windows. Safe to call twice."""
        if self._stopped:
            return
        if not _on_main_thread():
            raise BackendError("close desktop dashboard windows from the main thread")
        self._stopped = True
        self.dashboard.stream.remove_listener(self._on_append)
        self.stop_timer()
        for manager in self.managers:
            if id(manager.canvas) in self._open:
                with contextlib.suppress(Exception):
                    manager.destroy()
        self._open.clear()
        with contextlib.suppress(Exception):
            self.flush()
        super().stop()

    close = stop

    @property
    def is_open(self) -> bool:
        """True while at least one window is open."""
        return bool(self._open)

    # -- drawing ---------------------------------------------------------------------
    def draw(self) -> None:
        """Redraw every open window now.

        From another thread (``dash.update()`` in a worker) nothing is drawn there: the
        windows are marked stale and the main-thread timer draws them on its next tick.
        """
        if not _on_main_thread():
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
        Called by the stream for every append made on the main thread.
        """
        if not self._open or self._pumping or not _on_main_thread():
            return
        now = time.monotonic()
        if now - self._last_pump < self.pump_every:
            return
        self._last_pump = now
        self._pumping = True  # an event handler that appends must not pump again inside
        try:
            if now - self._last_tick >= self.interval:
                self._tick()
            self.flush()
        finally:
            self._pumping = False

    def _on_append(self, record: Record) -> None:
        """Stream listener: a main-thread producer gives the windows their event passes."""
        self.pump()

    def wait(self, timeout: float | None = None) -> bool:
        """Run the event loop until every window is closed (True) or ``timeout`` s pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
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

    # -- screenshots -------------------------------------------------------------------
    def grab(self, path: str | os.PathLike[str], index: int = 0) -> Path:
        """Save what window ``index`` shows, as the toolkit (or the X server) sees it, to PNG."""
        path = Path(path)
        manager = self.managers[index]
        self.flush()
        self._grab(manager, path)
        return path

    # -- toolkit specifics -------------------------------------------------------------
    def _decorate(self, manager: Any, index: int) -> None:
        title = self.title or dashboard_title(self.dashboard.figures) or "resnetlab dashboard"
        if len(self.dashboard.figures) > 1:
            title = f"{title} ({index + 1})"
        manager.set_window_title(title)

    def _after_show(self, manager: Any) -> None:
        pass

    def _grab(self, manager: Any, path: Path) -> None:
        raise NotImplementedError

    def _on_close(self, event: Any) -> None:
        self._open.discard(id(event.canvas))
        if event.canvas is self._timer_canvas:
            self.stop_timer()
            if self._open:  # keep refreshing the windows that are left
                self._start_timer()

    def _live_canvas(self) -> Any:
        for manager in self.managers:
            if id(manager.canvas) in self._open:
                return manager.canvas
        return None


class QtDriver(WindowDriver):
    """Dashboard in QtAgg windows (PySide6, PyQt6 or PyQt5, as matplotlib finds them)."""

    toolkit = name = "qt"

    def _grab(self, manager: Any, path: Path) -> None:
        pixmap = manager.window.grab()
        if not pixmap.save(str(path), "PNG"):
            raise BackendError(f"Qt could not save the window grab to {path}")


class TkDriver(WindowDriver):
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


class GtkDriver(WindowDriver):
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


# toolkit name -> its window driver (the backend registry is drivers.DRIVERS).
WINDOW_DRIVERS: dict[str, type[WindowDriver]] = {"qt": QtDriver, "tk": TkDriver, "gtk": GtkDriver}
