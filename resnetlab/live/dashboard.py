"""Dashboard: figures created once, then updated in place from a MetricStream.

``refresh()`` pulls what is new from the stream and moves existing artists
(``Line2D.set_data``, ``AxesImage.set_data``, rescale) under ``dash.lock``; it never
draws and never touches a GUI toolkit, so it is safe from any thread. A *driver*
(``live/drivers``) decides how and on which thread the figures are drawn: ipympl widgets,
a WebAgg page, desktop windows, or Agg PNG snapshots.

Three ways to drive it::

    dash = Dashboard(["loss", "accuracy", "cpu"])
    dash.update(step, loss=l)        # 1. from any cell: append + refresh + draw
    for dash in (d1, d2):            # 2. one common loop updating several figures
        if dash.refresh(): dash.draw()
    dash.start(rate_hz=2.0)          # 3. a background loop refreshes and draws
    ...
    dash.stop()
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from resnetlab.errors import ConfigError
from resnetlab.live.drivers.base import locked_canvas_class
from resnetlab.live.panels import Panel, matching_keys, resolve_layout
from resnetlab.metrics.decimate import minmax_decimate
from resnetlab.metrics.stream import MetricStream, default_stream
from resnetlab.runtime.loop import BackgroundLoop
from resnetlab.utils.atomic import atomic_write, atomic_write_bytes

logger = logging.getLogger(__name__)

# Points per line after decimation: about two per horizontal pixel of a panel.
DEFAULT_MAX_POINTS = 1000
# Columns of the gradient-norm heat map (steps are binned into these).
HEATMAP_COLUMNS = 200
# The background loop refreshes at least this often (seconds), whatever the draw budget.
MAX_DRAW_GAP = 5.0
# Constrained layout doubles the cost of a draw; redo it only when artists were added
# or tick labels may have grown, at most this often (seconds), and keep positions between.
RELAYOUT_EVERY = 10.0


def _is_val(key: str) -> bool:
    """A validation series: ``val_loss``, also under a prefix (``keras/val_loss``)."""
    return key.rpartition("/")[2].startswith("val_")


def _ema(values: np.ndarray, weight: float, start: int, state: list[float]) -> np.ndarray:
    """TensorBoard's debiased EMA of ``values[start:]`` continuing from ``state``.

    ``state`` is ``[biased_last, count]`` and is updated, so each refresh only smooths
    the new points (a Python loop over new points only).
    """
    last, count = state
    out = np.empty(values.shape[0] - start)
    for i, v in enumerate(values[start:].tolist()):
        if math.isfinite(v):
            last = last * weight + (1.0 - weight) * v
            count += 1
            out[i] = last / (1.0 - weight**count)
        else:
            out[i] = v
    state[0], state[1] = last, count
    return out


def _sticky(
    data: tuple[float, float], view: tuple[float, float], log: bool, grow: tuple[float, float]
) -> tuple[float, float] | None:
    """New axis limits for ``data``, or None to keep ``view``.

    The view is kept while it holds the data and the data spans at least half of it;
    otherwise the data range plus ``grow`` (fractions of the range below and above).
    ``log``: work with log10 (values <= 0 are left to matplotlib).
    """
    lo, hi = data
    if log:
        if lo <= 0 or view[0] <= 0:
            return None
        lo, hi, vlo, vhi = (math.log10(v) for v in (lo, hi, *view))
    else:
        vlo, vhi = view
    span = hi - lo
    if vlo <= lo and hi <= vhi and (span <= 0 or span >= 0.5 * (vhi - vlo)):
        return None
    if span <= 0:  # a constant: centre it
        span = abs(lo) * 0.1 or 1.0
        grow = (0.5, 0.5)
    new = (lo - grow[0] * span, hi + grow[1] * span)
    return (10 ** new[0], 10 ** new[1]) if log else new


class _LineView:
    """The artists of one line panel and what it last drew."""

    def __init__(self, dash: Dashboard, panel: Panel, ax: Any) -> None:
        self.dash = dash
        self.panel = panel
        self.ax = ax
        self.lines: dict[str, Any] = {}
        self.raw_lines: dict[str, Any] = {}
        self.drawn_n: dict[str, int] = {}
        self.smooth: dict[str, tuple[np.ndarray, list[float]]] = {}
        self.compared: set[tuple[str, str]] = set()
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step" if panel.x == "step" else "seconds", fontsize=8)
        if panel.ylabel:
            ax.set_ylabel(panel.ylabel, fontsize=8)
        if panel.logy:
            ax.set_yscale("log")
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        self.placeholder = ax.text(
            0.5,
            0.5,
            "waiting for\n" + "\n".join(panel.keys[:3]),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="0.5",
        )

    def _add_line(self, key: str) -> None:
        minor = self.panel.is_minor(key)
        if minor:
            (line,) = self.ax.plot([], [], lw=0.6, alpha=0.35, color="0.4", label="_nolegend_")
        else:
            color = self.dash._color_for(key)
            style = "--" if _is_val(key) else "-"
            if self.panel.smoothing:
                (raw,) = self.ax.plot([], [], lw=0.8, alpha=0.25, color=color, label="_nolegend_")
                self.raw_lines[key] = raw
            # val_ lines are sparse (once per epoch): markers show each evaluation.
            marker = "o" if _is_val(key) else ""
            (line,) = self.ax.plot(
                [],
                [],
                lw=1.4,
                ls=style,
                color=color,
                marker=marker,
                markersize=3,
                label=self.panel.label(key),
            )
        self.lines[key] = line
        self.drawn_n[key] = -1
        if self.placeholder.get_visible():
            self.placeholder.set_visible(False)
        if not minor:
            self.ax.legend(fontsize=7, loc="best")
        self.dash.needs_layout(self.ax.figure)
        self._add_compare(key)

    def _add_compare(self, key: str) -> None:
        sources = {**self.dash.compare_sources, **self.panel.compare}
        for label, source in sources.items():
            if (label, key) in self.compared or self.panel.x != "step":
                continue
            xs, ys = _series_of(source, key)
            if xs.size == 0:
                continue
            xs, ys = minmax_decimate(xs, ys, self.dash.max_points // 2)
            self.ax.plot(
                xs,
                ys,
                lw=1.0,
                ls=":",
                alpha=0.7,
                color=self.dash._color_for(key),
                label=f"{self.panel.label(key)} ({label})",
            )
            self.compared.add((label, key))
            self.ax.legend(fontsize=7, loc="best")

    def update(self, keys: Sequence[str]) -> bool:
        stream = self.dash.stream
        for key in matching_keys(self.panel, keys):
            if key not in self.lines:
                self._add_line(key)
        if self.dash.compare_sources and len(self.compared) < len(self.lines) * len(
            self.dash.compare_sources
        ):
            for key in list(self.lines):
                self._add_compare(key)
        # Versions, not lengths: a bounded stream (max_records) keeps lengths constant.
        changed_keys = [k for k in self.lines if stream.series_version(k) != self.drawn_n[k]]
        if not changed_keys:
            return False
        data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        xmax = -np.inf
        for key in self.lines:
            self.drawn_n[key] = stream.series_version(key)  # before the copy: never skips one
            xs, ys = stream.series(key, self.panel.x)
            if self.panel.x == "time":
                xs = xs - self.dash.t0
            smooth = None
            if self.panel.smoothing and key in self.raw_lines:
                # A bounded stream (max_records) dropped old values: positions no longer
                # line up with the cache, so smooth the (bounded) kept window afresh.
                trimmed = stream.series_length(key) < stream.series_version(key)
                smooth = self._smoothed(key, ys, restart=trimmed)
            if xs.size:
                xmax = max(xmax, float(xs[-1]))
            data[key] = (xs, ys, smooth)
        for key, (xs, ys, smooth) in data.items():
            if self.panel.window is not None and xs.size:
                start = int(np.searchsorted(xs, xmax - self.panel.window, side="left"))
                xs, ys = xs[start:], ys[start:]
                smooth = smooth[start:] if smooth is not None else None
            buckets = max(self.dash.max_points // 2, 1)
            if smooth is not None:
                self.raw_lines[key].set_data(*minmax_decimate(xs, ys, buckets))
                self.lines[key].set_data(*minmax_decimate(xs, smooth, buckets))
            else:
                self.lines[key].set_data(*minmax_decimate(xs, ys, buckets))
            line = self.lines[key]
            if not _is_val(key) and not self.panel.is_minor(key):
                line.set_marker("o" if xs.size == 1 else "")  # a lone point is no line
        self._rescale(xmax)
        return True

    def _rescale(self, xmax: float) -> None:
        """Sticky limits: change them only when the data leaves them (or uses too little
        of them), then leave headroom, so most redraws keep ticks and labels as they were
        and the figure can redraw only its lines (see :class:`_BlitFigure`)."""
        ax = self.ax
        ax.relim()
        data = ax.dataLim
        if self.panel.window is not None and math.isfinite(xmax):
            ax.set_xlim(max(xmax - self.panel.window, 0), max(xmax, 1))
        elif np.isfinite(data.intervalx).all():
            lims = _sticky(tuple(data.intervalx), ax.get_xlim(), False, grow=(0.02, 0.25))
            if lims is not None:
                ax.set_xlim(*lims)
        if self.panel.ylim is None and np.isfinite(data.intervaly).all():
            lims = _sticky(tuple(data.intervaly), ax.get_ylim(), self.panel.logy, grow=(0.1, 0.1))
            if lims is not None:
                ax.set_ylim(*lims)

    def _smoothed(self, key: str, ys: np.ndarray, restart: bool = False) -> np.ndarray:
        cached, state = self.smooth.get(key, (np.empty(0), [0.0, 0]))
        done = cached.shape[0]
        if restart or done > ys.shape[0]:
            cached, state, done = np.empty(0), [0.0, 0], 0
        new = _ema(ys, self.panel.smoothing, done, state)
        cached = np.concatenate([cached, new])
        self.smooth[key] = (cached, state)
        return cached


class _HeatmapView:
    """Rows = matching keys (layers), columns = binned steps, colour = log10 of the value."""

    def __init__(self, dash: Dashboard, panel: Panel, ax: Any) -> None:
        self.dash = dash
        self.panel = panel
        self.ax = ax
        self.rows: list[str] = []
        self.labelled_rows = 0
        self.drawn_n: dict[str, int] = {}
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        self.image = ax.imshow(
            np.full((1, 1), np.nan),
            aspect="auto",
            origin="lower",
            interpolation="nearest",
            cmap="viridis",
            extent=(0, 1, -0.5, 0.5),
        )
        ax.set_autoscale_on(False)  # update() sets sticky limits itself
        self.colorbar = ax.figure.colorbar(self.image, ax=ax, fraction=0.05, pad=0.02)
        self.colorbar.ax.tick_params(labelsize=7)
        ax.set_yticks([])
        self.placeholder = ax.text(
            0.5,
            0.5,
            "waiting for grad_norm/<layer> keys",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            color="0.5",
        )

    def update(self, keys: Sequence[str]) -> bool:
        stream = self.dash.stream
        for key in matching_keys(self.panel, keys):
            if key not in self.drawn_n:
                self.rows.append(key)
                self.drawn_n[key] = -1
        if not any(stream.series_version(k) != self.drawn_n[k] for k in self.rows):
            return False
        series = {}
        for key in self.rows:
            self.drawn_n[key] = stream.series_version(key)
            xs, ys = stream.series(key)
            series[key] = (xs, ys)
        lo = min((s[0][0] for s in series.values() if s[0].size), default=0.0)
        hi = max((s[0][-1] for s in series.values() if s[0].size), default=1.0)
        if self.panel.window is not None:
            lo = max(lo, hi - self.panel.window)
        if hi <= lo:
            hi = lo + 1.0
        # No more columns than logged steps, so sparse logging (every k steps) leaves no gaps.
        points = max((int(np.count_nonzero(s[0] >= lo)) for s in series.values()), default=1)
        ncols = int(min(HEATMAP_COLUMNS, max(hi - lo + 1, 1), max(points, 1)))
        edges = np.linspace(lo, hi, ncols + 1)
        matrix = np.full((len(self.rows), ncols), np.nan)
        for r, key in enumerate(self.rows):
            xs, ys = series[key]
            keep = (xs >= lo) & np.isfinite(ys) & (ys > 0)
            if not keep.any():
                continue
            vals = np.log10(ys[keep]) if self.panel.logy else ys[keep]
            col = np.clip(np.searchsorted(edges, xs[keep], side="right") - 1, 0, ncols - 1)
            sums = np.bincount(col, weights=vals, minlength=ncols)
            counts = np.bincount(col, minlength=ncols)
            with np.errstate(invalid="ignore", divide="ignore"):
                row = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            # carry the last value into empty columns (uneven logging), never before the first
            filled = np.where(np.isnan(row), 0, np.arange(ncols))
            matrix[r] = row[np.maximum.accumulate(filled)]
        self.image.set_data(matrix)
        self.image.set_extent((lo, hi, -0.5, len(self.rows) - 0.5))
        # Sticky x limits with headroom (as for line panels): most redraws keep the ticks.
        lims = _sticky((lo, hi), self.ax.get_xlim(), False, grow=(0.0, 0.25))
        if self.panel.window is not None:
            lims = (lo, hi)
        if lims is not None:
            self.ax.set_xlim(*lims)
        self.ax.set_ylim(-0.5, len(self.rows) - 0.5)
        finite = matrix[np.isfinite(matrix)]
        if finite.size:
            vmin, vmax = float(finite.min()), float(finite.max())
            self.image.set_clim(vmin, vmax if vmax > vmin else vmin + 1e-6)
            self.placeholder.set_visible(False)
        if len(self.rows) != self.labelled_rows:  # new layers: new tick labels, new layout
            self.labelled_rows = len(self.rows)
            self.dash.needs_layout(self.ax.figure)
            step = max(1, math.ceil(len(self.rows) / 24))
            ticks = list(range(0, len(self.rows), step))
            self.ax.set_yticks(ticks, [self.panel.label(self.rows[i]) for i in ticks], fontsize=6)
        return True


def _moving_artists(views: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """What changes between redraws of a figure: (lines and the heat map, legends)."""
    artists: list[Any] = []
    legends: list[Any] = []
    for view in views:
        if isinstance(view, _LineView):
            artists += view.raw_lines.values()
            artists += view.lines.values()
        else:
            artists.append(view.image)
        legend = view.ax.get_legend()
        if legend is not None:
            legends.append(legend)
    return artists, legends


def _series_of(source: Any, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` from a MetricStream-like object or a {key: (x, y)} mapping."""
    if isinstance(source, Mapping):
        if key not in source:
            return np.empty(0), np.empty(0)
        xs, ys = source[key]
        return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    xs, ys = source.series(key)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _blit_figure_class() -> type:
    """``Figure`` that redraws only its moving artists while nothing else changed.

    Tick labels, titles and legends' text are most of the cost of a draw. On an Agg
    renderer a full draw leaves the moving artists (lines, the heat map, legends) out,
    keeps a copy of that background, and draws them on top; the next draws restore the
    copy and draw only the moving artists, as long as the figure's *signature* (axes
    limits and positions, scales, artist counts, colour limits, renderer size) is the
    same. The buffer always ends up holding the complete figure, so every Agg-based
    canvas (Agg snapshots, WebAgg, ipympl, Qt/Tk Agg) sends or shows the whole picture.
    Other renderers (SVG, PDF) always get a plain full draw.
    """
    from matplotlib.backend_bases import DrawEvent
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    class _BlitFigure(Figure):
        _resnetlab_moving: Any = None  # callable -> list of (artist, ...) set by Dashboard
        _resnetlab_background: Any = None
        _resnetlab_signature: Any = None
        _resnetlab_legend_limits: Any = None
        full_draws = 0
        blit_draws = 0

        def _signature(self, renderer: Any) -> tuple:
            parts: list[Any] = [
                id(renderer),
                renderer.width,
                renderer.height,
                self.dpi,
                tuple(self.bbox.bounds),
                self.patch.get_facecolor(),
                len(self.get_children()),
            ]
            for ax in self.axes:
                parts.append(
                    (
                        tuple(ax.viewLim.bounds),
                        tuple(ax.get_position().bounds),
                        ax.get_xscale(),
                        ax.get_yscale(),
                        len(ax.get_children()),
                        tuple(t.get_visible() for t in ax.texts),
                        tuple(im.get_clim() for im in ax.images),
                        ax.get_visible(),
                    )
                )
            return tuple(parts)

        def draw(self, renderer: Any) -> None:
            moving, legends = (
                self._resnetlab_moving() if self._resnetlab_moving is not None else ([], [])
            )
            if (
                not moving
                or not isinstance(renderer, RendererAgg)
                or self.get_animated()
                or not self.get_visible()
            ):
                self._resnetlab_background = None
                return super().draw(renderer)
            if self._resnetlab_legend_limits is None:
                self._resnetlab_legend_limits = {}
            signature = None
            if not isinstance(self.get_layout_engine(), ConstrainedLayoutEngine):
                signature = self._signature(renderer)
            if (
                self._resnetlab_background is not None
                and signature is not None
                and signature == self._resnetlab_signature
            ):
                renderer.restore_region(self._resnetlab_background)
                # Legends stay where the last full draw placed them (finding the "best"
                # place again on every redraw costs more than the lines themselves).
                for artist in (*moving, *legends):
                    if artist.get_visible():
                        artist.draw(renderer)
                self.blit_draws += 1
                self.stale = False
                DrawEvent("draw_event", self.canvas, renderer)._process()
                return None
            else:
                # A legend keeps the place "best" chose until its axes' limits change, so
                # a full draw for another reason (a browser reload) shows the same picture.
                placed = self._resnetlab_legend_limits
                for leg in legends:
                    limits = tuple(leg.axes.viewLim.bounds)
                    if placed.get(id(leg), (limits,))[0] != limits:
                        leg.set_loc("best")
                        placed.pop(id(leg))
                for artist in (*moving, *legends):
                    artist.set_animated(True)
                try:
                    super().draw(renderer)
                finally:
                    for artist in (*moving, *legends):
                        artist.set_animated(False)
                background = renderer.copy_from_bbox(self.bbox)
                for leg in legends:  # where "best" puts it now, then fixed there
                    if id(leg) not in placed and leg.get_visible():
                        box = leg.get_window_extent(renderer).transformed(
                            leg.axes.transAxes.inverted()
                        )
                        leg.set_loc((box.x0, box.y0))
                        placed[id(leg)] = (tuple(leg.axes.viewLim.bounds), leg)
                for artist in (*moving, *legends):
                    if artist.get_visible():
                        artist.draw(renderer)
                self._resnetlab_background = background
                # The layout may have moved axes: the signature after the draw is the one
                # the next draw compares against.
                self._resnetlab_signature = self._signature(renderer)
                self.full_draws += 1
            self.stale = False
            return None

    return _BlitFigure


class Dashboard:
    """Live figures of a :class:`MetricStream`: training curves, system usage, gradients.

    ``panels``: preset names (``loss``, ``accuracy``, ``lr``, ``throughput``, ``cpu``,
    ``ram``, ``gpu``, ``vram``, ``grad_norms``), custom stream keys, :class:`Panel`
    objects; a list of lists makes one figure per inner list; ``None`` = training +
    system panels (GPU panels only if a GPU is present), ``"all"`` = everything.
    ``backend``: ``"auto"`` (see ``resnetlab backends``), ``"ipympl"``, ``"webagg"``,
    ``"agg"``, ``"qt"``, ``"tk"``, ``"gtk"``. ``compare``: label -> MetricStream (or a
    run loaded from the run store, or ``{key: (steps, values)}``) drawn dotted behind.
    ``draw_budget``: the share of wall time background drawing may take (default 0.1);
    when drawing is slow the effective rate drops below ``rate_hz``.
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
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        figure_cls = _blit_figure_class()
        if ncols < 1:
            raise ConfigError(f"Dashboard(ncols={ncols}): needs at least one column")
        if max_points < 4:
            raise ConfigError(f"Dashboard(max_points={max_points}): needs at least 4")
        if not 0 < draw_budget <= 1:
            raise ConfigError(
                f"Dashboard(draw_budget={draw_budget!r}): a share of wall time in (0, 1]"
            )
        # Share of wall time the background loop may spend refreshing and drawing: a slow
        # draw (many panels, a busy CPU) lowers the rate instead of slowing training.
        self.draw_budget = float(draw_budget)
        self.stream = stream if stream is not None else default_stream()
        self.lock = threading.RLock()
        self.max_points = int(max_points)
        self.compare_sources: dict[str, Any] = dict(compare or {})
        self.title = title
        self.layout = resolve_layout(panels)
        self.panels = [p for group in self.layout for p in group]
        self._colors: dict[str, str] = {}
        self.t0 = time.time()
        self._t0_fixed = False
        self.figures: list[Any] = []
        self._views: list[_LineView | _HeatmapView] = []
        for number, group in enumerate(self.layout):
            cols = min(ncols, len(group))
            rows = math.ceil(len(group) / cols)
            fig = figure_cls(
                figsize=(panel_size[0] * cols, panel_size[1] * rows), dpi=dpi, layout="constrained"
            )
            canvas = locked_canvas_class(FigureCanvasAgg)(fig)  # drawable before any driver
            canvas._resnetlab_dashboard = self
            if title:
                fig.suptitle(title if len(self.layout) == 1 else f"{title} ({number + 1})")
            for i, panel in enumerate(group):
                ax = fig.add_subplot(rows, cols, i + 1)
                view_cls = _HeatmapView if panel.kind == "heatmap" else _LineView
                self._views.append(view_cls(self, panel, ax))
            views = [v for v in self._views if v.ax.figure is fig]
            fig._resnetlab_moving = functools.partial(_moving_artists, views)
            self.figures.append(fig)
        self.backend_requested = backend
        self.driver_options = driver_options
        self.driver: Any = None
        self.rate_hz = 2.0
        self._loop: BackgroundLoop | None = None
        self._task: Any = None
        self._auto_step = 0
        self.refreshes = 0
        self.draws = 0
        self._layout_at: dict[int, float] = {}
        self.error: BaseException | None = None
        from resnetlab.live.drivers import resolve_backend_name

        self.backend = resolve_backend_name(backend)

    # -- data -> artists (any thread, no drawing) --------------------------------------
    def _color_for(self, key: str) -> str:
        head, _, name = key.rpartition("/")  # "keras/val_loss" shares "keras/loss"'s colour
        base = (f"{head}/{name[4:]}" if head else name[4:]) if _is_val(key) else key
        if base not in self._colors:
            self._colors[base] = f"C{len(self._colors) % 10}"
        return self._colors[base]

    def needs_layout(self, fig: Any) -> None:
        """Ask for a constrained-layout pass at the next draw of ``fig`` (artists added)."""
        self._layout_at.pop(id(fig), None)

    def before_draw(self, fig: Any) -> None:
        """Called by driver canvases under the lock: lay out only when asked to.

        Redraws the browser asks for (reload, resize) keep the last layout, so the picture
        changes only when the data does.
        """
        if id(fig) not in self._layout_at:
            fig.set_layout_engine("constrained")
            self._layout_at[id(fig)] = time.monotonic()
        else:
            fig.set_layout_engine("none")  # keeps the positions of the last layout

    def refresh(self) -> bool:
        """Move artists to the stream's current data; True if anything changed. No drawing."""
        with self.lock:
            if not self._t0_fixed:
                records, _ = self.stream.read_since(0)
                if records:
                    self.t0 = min(self.t0, records[0].time)
                    self._t0_fixed = True
            keys = self.stream.keys()
            changed = False
            for view in self._views:
                changed |= view.update(keys)
            if changed:  # tick labels may have grown: lay out again now and then
                now = time.monotonic()
                for fig in self.figures:
                    if now - self._layout_at.get(id(fig), -math.inf) >= RELAYOUT_EVERY:
                        self._layout_at.pop(id(fig), None)
            self.refreshes += 1
            return changed

    # -- drawing -------------------------------------------------------------------------
    def show(self) -> Dashboard:
        """Create and start the driver (display the widgets, serve the page, open windows)."""
        with self.lock:
            if self.driver is None:
                from resnetlab.live.drivers import create_driver

                self.driver = create_driver(self.backend, self, **self.driver_options)
                self.driver.start()
        return self

    @property
    def url(self) -> str | None:
        """The WebAgg page address (None for other backends or before ``show()``)."""
        return getattr(self.driver, "url", None)

    def draw(self) -> None:
        """Draw the figures now through the driver (shows them first if needed)."""
        self.show()
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
        if not getattr(self.driver, "draws_from_background", True):
            return self  # a main-thread driver (desktop) runs its own timer at rate_hz
        if self._task is not None and not self._task.done():
            return self
        if self._loop is None:
            self._loop = BackgroundLoop("resnetlab-dashboard")
        self._loop.start()
        self._task = self._loop.submit(self._refresh_loop())
        return self

    async def _refresh_loop(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        next_at = loop.time()
        failures = 0
        cost: float | None = None
        # Rendering a driver does on another thread (the WebAgg server's loop) counts too.
        rendered = getattr(self.driver, "render_seconds", 0.0)
        while True:
            began = loop.time()
            try:
                # pending: a driver that postponed a draw (Agg between snapshots) gets
                # it once more, also when no new data arrived meanwhile.
                if self.refresh() or getattr(self.driver, "pending", False):
                    self.draw()
                failures = 0
            except Exception as exc:
                self.error = exc
                failures += 1
                logger.exception("dashboard refresh failed (%d in a row)", failures)
                if failures >= 5:
                    raise
            now = loop.time()
            # A smoothed cost, so one slow draw (the first layout, a busy moment) does not
            # stall the picture; never wait longer than MAX_DRAW_GAP between refreshes.
            before, rendered = rendered, getattr(self.driver, "render_seconds", 0.0)
            spent = now - began + max(rendered - before, 0.0)
            cost = spent if cost is None else 0.7 * cost + 0.3 * spent
            pause = min(max(1.0 / self.rate_hz, cost * (1 / self.draw_budget - 1)), MAX_DRAW_GAP)
            next_at = max(next_at + 1.0 / self.rate_hz, now + pause - spent)
            await asyncio.sleep(max(next_at - loop.time(), 0.0))

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
        if self.driver is not None and not getattr(self.driver, "draws_from_background", True):
            stop_timer = getattr(self.driver, "stop_timer", None)
            if stop_timer is not None:
                stop_timer()

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
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower() or "png"
        if fmt not in ("png", "svg", "pdf"):
            raise ConfigError(f"Dashboard.save({str(path)!r}): use a .png, .svg or .pdf name")
        out = []
        with self.lock:
            self.refresh()
            for i, fig in enumerate(self.figures):
                target = (
                    path
                    if len(self.figures) == 1
                    else path.with_name(f"{path.stem}-{i + 1}{path.suffix}")
                )
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, **savefig_kw)
                atomic_write_bytes(target, buf.getvalue())
                out.append(target)
        return out

    def to_csv(self, path: str | Path) -> Path:
        """Every record of the stream as a wide CSV: step, time, epoch, one column per key."""
        path = Path(path)
        records, _ = self.stream.read_since(0)
        keys = self.stream.keys()
        with atomic_write(path, "w") as fh:
            writer = csv.writer(fh)
            writer.writerow(["step", "time", "epoch", *keys])
            for rec in records:
                writer.writerow(
                    [
                        rec.step,
                        f"{rec.time:.3f}",
                        "" if rec.epoch is None else rec.epoch,
                        *(repr(rec.metrics[k]) if k in rec.metrics else "" for k in keys),
                    ]
                )
        return path

    def compare(self, label: str, source: Any) -> None:
        """Draw another run (a MetricStream, a stored run, ``{key: (x, y)}``) dotted behind."""
        with self.lock:
            self.compare_sources[label] = source
            for view in self._views:
                if isinstance(view, _LineView):
                    view.compared = {c for c in view.compared if c[0] != label}
                    for key in list(view.lines):
                        view._add_compare(key)

    def compare_run(self, run: int | str, store: Any = None, label: str | None = None) -> None:
        """Draw a run from the run store (id or name) dotted behind the live lines.

        ``store``: a ``RunStore`` or a path; default: the default run store. A path that
        does not exist is a StoreError (it is read, never created).
        """
        from resnetlab.errors import StoreError
        from resnetlab.store import RunStore, default_store_path

        own = not hasattr(store, "series")
        if own:
            path = Path(store) if store is not None else default_store_path()
            if not path.is_file():
                raise StoreError(
                    f"compare_run({run!r}): no run store at {path}; pass store= the runs.db "
                    "your training wrote (resnetlab runs --runs-db PATH lists its runs)"
                )
        rs = RunStore(path) if own else store
        try:
            info = rs.get_run(run)
            data = {}
            for key in rs.metric_keys(info.id):
                xs, ys = rs.series(info.id, key)
                data[key] = (np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
        finally:
            if own:
                rs.close()
        self.compare(label or f"run {info.id}: {info.name}", data)

    # -- notebook display ----------------------------------------------------------------
    def _ipython_display_(self) -> None:
        self.show()
        if self.url:
            from IPython.display import HTML, display

            display(HTML(f'dashboard: <a href="{self.url}" target="_blank">{self.url}</a>'))

    def __repr__(self) -> str:
        names = ", ".join(p.title for p in self.panels)
        return f"<Dashboard [{names}] backend={self.backend!r} stream={self.stream.name!r}>"
