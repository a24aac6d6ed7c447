"""Dashboard: figures created once, then updated in place from a MetricStream.

``refresh()`` pulls what is new from the stream and moves existing artists
(``Line2D.set_data``, ``AxesImage.set_data``, rescale) under ``dash.lock``; it never
draws and never touches a GUI toolkit, so it is safe from any thread. A *driver*
(``live/drivers``, behind the one :class:`~resnetlab.live.drivers.base.Driver` protocol)
decides how and on which thread the figures are drawn: ipympl widgets, a WebAgg page,
desktop windows, or Agg PNG snapshots.

Three ways to drive it::

    dash = Dashboard(["loss", "accuracy", "cpu"])
    dash.update(step, loss=l)        # 1. from any cell: append + refresh + draw
    for dash in (d1, d2):            # 2. one common loop updating several figures
        if dash.refresh(): dash.draw()
    dash.start(rate_hz=2.0)          # 3. a background loop refreshes and draws
    ...
    dash.stop()

The parts: panel views (:mod:`~resnetlab.live.views`), blitting figures and locked
canvases (:mod:`~resnetlab.live.blit`), the draw loop and its budget
(:mod:`~resnetlab.live.scheduler`), export (:mod:`~resnetlab.live.export`).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg

from resnetlab.errors import ConfigError
from resnetlab.live.blit import BlitFigure, locked_canvas_class
from resnetlab.live.drivers import create_driver, resolve_backend_name
from resnetlab.live.drivers.base import Driver
from resnetlab.live.export import save_figures, write_csv
from resnetlab.live.panels import resolve_layout
from resnetlab.live.scheduler import refresh_loop
from resnetlab.live.views import (
    HeatmapView,
    LineView,
    SeriesSource,
    is_val,
    make_view,
    moving_artists,
)
from resnetlab.metrics.stream import MetricStream, default_stream
from resnetlab.runtime.loop import BackgroundLoop
from resnetlab.store.series import load_run_series

logger = logging.getLogger(__name__)

# Points per line after decimation: about two per horizontal pixel of a panel.
DEFAULT_MAX_POINTS = 1000
# Frames remembered (when each was made, the newest record it shows): an hour at 2 Hz.
FRAMES_KEPT = 7200


@dataclass(frozen=True)
class Frame:
    """One picture a dashboard figure rendered (and its driver pushed or showed)."""

    figure: int  # index into Dashboard.figures
    produced: float  # wall-clock time (time.time()) when the render had finished
    records: int  # stream records read by the refresh before it: records[: records] show
    newest: float  # time of the newest of those records (nan before any)


def _check_options(ncols: int, max_points: int, draw_budget: float) -> None:
    if ncols < 1:
        raise ConfigError(f"Dashboard(ncols={ncols}): needs at least one column")
    if max_points < 4:
        raise ConfigError(f"Dashboard(max_points={max_points}): needs at least 4")
    if not 0 < draw_budget <= 1:
        raise ConfigError(f"Dashboard(draw_budget={draw_budget!r}): a share of wall time in (0, 1]")


class Dashboard:
    """Live figures of a :class:`MetricStream`: training curves, system usage, gradients.

    ``panels``: preset names (``loss``, ``accuracy``, ``lr``, ``throughput``, ``cpu``,
    ``ram``, ``gpu``, ``vram``, ``grad_norms``), custom stream keys, :class:`Panel`
    objects; a list of lists makes one figure per inner list; ``None`` = training +
    system panels (GPU panels only if a GPU is present), ``"all"`` = everything.
    ``backend``: ``"auto"`` (see ``resnetlab backends``), ``"ipympl"``, ``"webagg"``,
    ``"agg"``, ``"qt"``, ``"tk"``, ``"gtk"``. ``compare``: label -> MetricStream (or a
    stored run's series, or ``{key: (steps, values)}``) drawn behind (see ``compare()``).
    ``draw_budget``: the share of wall time background drawing may use, counted as the
    drawing thread's CPU time (default 0.1); when drawing is slow the effective rate
    drops below ``rate_hz``. ``dash.frames``: the :class:`Frame` of every render.
    Other keyword arguments go to the driver (``directory=``/``interval=`` for Agg
    snapshots, ``port=``/``address=`` for WebAgg).
    """

    def __init__(
        self,
        panels: Any = None,
        *,
        stream: MetricStream | None = None,
        backend: str = "auto",
        ncols: int = 3,
        panel_size: tuple[float, float] = (4.0, 2.8),
        dpi: float = 100,
        max_points: int = DEFAULT_MAX_POINTS,
        title: str | None = None,
        compare: Mapping[str, Any] | None = None,
        draw_budget: float = 0.1,
        **driver_options: Any,
    ) -> None:
        _check_options(ncols, max_points, draw_budget)
        # Share of wall time the background loop may spend refreshing and drawing (its CPU
        # time): a slow draw (many panels, a busy CPU) lowers the rate instead of slowing
        # training.
        self.draw_budget = float(draw_budget)
        self.dpi = float(dpi)  # the figures' own; set_pixel_ratio() scales one for a page
        self.stream = stream if stream is not None else default_stream()
        self.lock = threading.RLock()
        self.max_points = int(max_points)
        self.compare_sources: dict[str, SeriesSource | Mapping[str, Any]] = dict(compare or {})
        self.title = title
        self.layout = resolve_layout(panels)
        self.panels = [p for group in self.layout for p in group]
        # ("key", base key) or ("run", compared run label) -> colour: one pool, so a
        # compared run never takes a colour the live lines use (until all ten are used).
        self._colors: dict[tuple[str, str], str] = {}
        self.t0 = time.time()
        self._t0_fixed = False
        self.figures: list[BlitFigure] = []
        self._views: list[LineView | HeatmapView] = []
        for number, group in enumerate(self.layout):
            self.figures.append(self._make_figure(number, group, ncols, panel_size, dpi))
        self.backend_requested = backend
        self.driver_options = driver_options
        self.driver: Driver | None = None
        self.rate_hz = 2.0
        self._loop: BackgroundLoop | None = None
        self._task: Any = None
        self._auto_step = 0
        self.refreshes = 0
        self.draws = 0
        self._layout_at: dict[int, float] = {}
        # Frames drawn, newest last: how often and how late the picture shows new data.
        self.frames: deque[Frame] = deque(maxlen=FRAMES_KEPT)
        self._shown: tuple[int, float] = (0, math.nan)  # (records, newest time) refreshed
        # Called with each Frame this dashboard renders (a render process sends them on).
        self.frame_listeners: list[Callable[[Frame], None]] = []
        self.error: BaseException | None = None
        self._restyled = False  # set_title()/set_pixel_ratio() since the last refresh: draw
        self.backend = resolve_backend_name(backend)

    def _make_figure(
        self,
        number: int,
        group: list[Any],
        ncols: int,
        panel_size: tuple[float, float],
        dpi: float,
    ) -> BlitFigure:
        """One figure of panels ``group``, its views, and an Agg canvas (drawable at once)."""
        cols = min(ncols, len(group))
        rows = math.ceil(len(group) / cols)
        fig = BlitFigure(
            figsize=(panel_size[0] * cols, panel_size[1] * rows), dpi=dpi, layout="constrained"
        )
        fig.guard = self
        locked_canvas_class(FigureCanvasAgg)(fig)  # drawable before any driver
        if self.title:
            fig.suptitle(self._figure_title(number))
        views = [
            make_view(self, panel, fig.add_subplot(rows, cols, i + 1))
            for i, panel in enumerate(group)
        ]
        self._views += views
        fig.blit.moving = functools.partial(moving_artists, views)
        return fig

    def _figure_title(self, number: int) -> str:
        return str(self.title) if len(self.layout) == 1 else f"{self.title} ({number + 1})"

    def set_title(self, title: str) -> None:
        """Change the figures' title (suptitle); the next refresh redraws them in full."""
        with self.lock:
            self.title = title
            for number, fig in enumerate(self.figures):
                fig.suptitle(self._figure_title(number))
                fig.blit.invalidate()  # the title is part of the kept background
                self.needs_layout(fig)
            self._restyled = True

    def set_pixel_ratio(self, index: int, ratio: float) -> None:
        """Render figure ``index`` at ``ratio`` device pixels per CSS pixel (``dpi * ratio``,
        as ipympl scales a figure for a HiDPI page); the next refresh redraws it."""
        with self.lock:
            fig = self.figures[index]
            if fig.dpi == self.dpi * ratio:
                return
            fig.set_dpi(self.dpi * ratio)
            fig.blit.invalidate()
            self.needs_layout(fig)
            self._restyled = True

    # -- data -> artists (any thread, no drawing) --------------------------------------
    def color_for(self, key: str) -> str:
        """The colour of ``key``'s lines: ``val_loss`` (and ``keras/val_loss``) share
        ``loss``'s (``keras/loss``'s)."""
        head, _, name = key.rpartition("/")
        base = (f"{head}/{name[4:]}" if head else name[4:]) if is_val(key) else key
        return self._color(("key", base))

    def compare_color(self, label: str) -> str:
        """The colour of compared run ``label``, the same in every panel and different from
        the live lines' colours."""
        return self._color(("run", label))

    def _color(self, owner: tuple[str, str]) -> str:
        if owner not in self._colors:
            self._colors[owner] = f"C{len(self._colors) % 10}"
        return self._colors[owner]

    def needs_layout(self, fig: Any) -> None:
        """Ask for a constrained-layout pass at the next draw of ``fig`` (artists added)."""
        self._layout_at.pop(id(fig), None)

    def before_draw(self, fig: Any) -> None:
        """Called by driver canvases under the lock: lay out only when asked to (artists
        were added, or an axes' tick labels outgrew the room the last layout gave them).

        Redraws the browser asks for (reload, resize) keep the last layout, so the picture
        changes only when the data does.
        """
        if fig.blit.outgrown:
            self._layout_at.pop(id(fig), None)
        if id(fig) not in self._layout_at:
            fig.set_layout_engine("constrained")
            self._layout_at[id(fig)] = time.monotonic()
        else:
            fig.set_layout_engine("none")  # keeps the positions of the last layout

    def after_draw(self, fig: Any) -> None:
        """Called by driver canvases under the lock after a render: remember the frame."""
        records, newest = self._shown
        frame = Frame(self.figures.index(fig), time.time(), records, newest)
        self.frames.append(frame)
        for listener in self.frame_listeners:
            listener(frame)

    def refresh(self) -> bool:
        """Move artists to the stream's current data; True if anything changed. No drawing."""
        with self.lock:
            if not self._t0_fixed:
                records, _ = self.stream.read_since(0)
                if records:
                    self.t0 = min(self.t0, records[0].time)
                    self._t0_fixed = True
            # Counted before the series are read: every record below it is shown.
            records, position = self.stream.read_since(max(len(self.stream) - 1, 0))
            if records:
                self._shown = (position, records[-1].time)
            keys = self.stream.keys()
            changed, self._restyled = self._restyled, False
            for view in self._views:
                changed |= view.update(keys)
            self.refreshes += 1
            return changed

    # -- drawing -------------------------------------------------------------------------
    def show(self) -> Dashboard:
        """Create and start the driver (display the widgets, serve the page, open windows)."""
        with self.lock:
            if self.driver is None:
                self.driver = create_driver(self.backend, self, **self.driver_options)
                self.driver.start()
        return self

    @property
    def url(self) -> str | None:
        """The WebAgg page address (None for other backends or before ``show()``)."""
        return self.driver.url if self.driver is not None else None

    def draw(self) -> None:
        """Draw the figures now through the driver (shows them first if needed)."""
        self.show()
        assert self.driver is not None
        self.driver.draw()
        self.draws += 1

    def update(self, step: int | None = None, **metrics: float) -> None:
        """Append ``metrics`` at ``step`` (default: previous + 1), refresh and draw."""
        if step is None:
            step = self._auto_step
        self._auto_step = int(step) + 1
        if metrics:
            self.stream.append(int(step), metrics)
        self.refresh()
        self.draw()

    def start(self, rate_hz: float = 2.0) -> Dashboard:
        """Refresh and draw ``rate_hz`` times a second from a background loop (idempotent)."""
        if not rate_hz > 0:
            raise ConfigError(f"Dashboard.start(rate_hz={rate_hz!r}): the rate must be > 0")
        self.rate_hz = float(rate_hz)
        self.show()
        assert self.driver is not None
        if not self.driver.draws_from_background:
            return self  # a main-thread driver (desktop) runs its own timer at rate_hz
        if self._task is not None and not self._task.done():
            return self
        if self._loop is None:
            self._loop = BackgroundLoop("resnetlab-dashboard")
        self._loop.start()
        self._task = self._loop.submit(refresh_loop(self))
        return self

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def stop(self) -> None:
        """Stop the background refresh after one last refresh+draw (idempotent)."""
        task, self._task = self._task, None
        if self._loop is not None:
            # Hard: the refresh task never ends by itself; its error is self.error, logged.
            self._loop.stop(hard=True, raise_errors=False)
            self._loop = None
        if task is not None and self.driver is not None:
            try:
                if self.refresh():
                    self.draw()
            except Exception:
                logger.exception("final dashboard refresh failed")
        if self.driver is not None:
            self.driver.stop_timer()

    def finish(self, message: str = "The run has finished.") -> None:
        """The run has ended: stop refreshing (after a last refresh and draw) and tell the
        driver, which says ``message`` where it can (a notice on the WebAgg page, which
        stays served with the final dashboard until ``close()`` or the process's exit)."""
        self.stop()
        if self.driver is not None:
            self.refresh()
            self.driver.finish(message)

    def close(self) -> None:
        """Stop refreshing and stop the driver (close the server / windows)."""
        self.stop()
        if self.driver is not None:
            self.driver.stop()

    # -- export --------------------------------------------------------------------------
    def save(self, path: str | Path, **savefig_kw: Any) -> list[Path]:
        """Write the figures (PNG/SVG/PDF by suffix) atomically; returns the paths written.

        With several figures, ``dash.png`` becomes ``dash-1.png``, ``dash-2.png``, ...
        """
        with self.lock:
            self.refresh()
            return save_figures(self.figures, path, **savefig_kw)

    def to_csv(self, path: str | Path) -> Path:
        """Every record of the stream as a wide CSV: step, time, epoch, one column per key."""
        return write_csv(self.stream, path)

    # -- other runs ----------------------------------------------------------------------
    def compare(self, label: str, source: SeriesSource | Mapping[str, Any]) -> None:
        """Draw another run behind the live lines, in a colour of its own (the same in
        every panel): its training values dotted, its validation values dash-dot with
        markers (the live run's: solid and dashed).

        ``source``: anything with ``keys()`` and ``series(key) -> (steps, values)`` (a
        :class:`~resnetlab.store.series.RunSeries` of a stored run: read once) or a
        ``{key: (steps, values)}`` mapping; a MetricStream (``job.stream`` of a job still
        training) is followed: its lines grow at every refresh. A second call with the same
        ``label`` replaces the source.
        """
        with self.lock:
            self.compare_sources[label] = source
            for view in self._views:
                view.forget_compare(label)

    def compare_run(self, run: int | str, store: Any = None, label: str | None = None) -> None:
        """Draw a run from the run store (id or name) behind the live lines.

        ``store``: a ``RunStore`` or a path; default: the default run store. A path that
        does not exist is a StoreError (it is read, never created). The run is read once
        (:func:`~resnetlab.store.series.load_run_series`) and shown like a stream.
        """
        series = load_run_series(run, store)
        self.compare(label or series.label, series)

    # -- notebook display ----------------------------------------------------------------
    def _ipython_display_(self) -> None:
        self.show()
        if self.url:
            from IPython.display import HTML, display

            display(HTML(f'dashboard: <a href="{self.url}" target="_blank">{self.url}</a>'))

    def __repr__(self) -> str:
        names = ", ".join(p.title for p in self.panels)
        return f"<Dashboard [{names}] backend={self.backend!r} stream={self.stream.name!r}>"
