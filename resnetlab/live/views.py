"""Panel views: the artists of one panel, moved in place to the stream's current data.

A view is created once per panel (title, labels, a placeholder text) and its
``update(keys)`` moves its artists (``Line2D.set_data``, ``AxesImage.set_data``, sticky
axis limits) when the stream has new values for its keys; True if anything moved. Views
never draw. What they need from the dashboard is the small :class:`ViewHost`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from resnetlab.live.panels import Panel, matching_keys
from resnetlab.metrics.decimate import minmax_decimate
from resnetlab.metrics.stream import MetricStream

# Columns of the gradient-norm heat map (steps are binned into these).
HEATMAP_COLUMNS = 200


class SeriesSource(Protocol):
    """Another run drawn behind the live lines: a MetricStream, a stored run's series."""

    def keys(self) -> list[str]:
        """The keys the run has logged (so far)."""

    def series(self, key: str) -> tuple[Any, Any]:
        """(steps, values) of ``key``; empty when the run has no such key."""


@runtime_checkable
class LiveSeriesSource(SeriesSource, Protocol):
    """A compared run that is still being appended to (a MetricStream, ``job.stream``):
    its lines are read again whenever a key's version changes."""

    def series_version(self, key: str) -> int:
        """Appends to ``key`` so far (grows with every append, also when bounded)."""


class ViewHost(Protocol):
    """What a panel view reads from (and reports to) its dashboard."""

    stream: MetricStream
    t0: float  # time axis origin (seconds)
    max_points: int  # points per line after decimation
    compare_sources: dict[str, SeriesSource | Mapping[str, Any]]

    def color_for(self, key: str) -> str:
        """The line colour of ``key`` (a val_ key shares its train key's colour)."""

    def compare_color(self, label: str) -> str:
        """The colour of compared run ``label``: its own, in every panel."""

    def needs_layout(self, fig: Any) -> None:
        """Artists were added to ``fig``: lay it out again at its next draw."""


def is_val(key: str) -> bool:
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


# x limits of a growing run: 75 % of the range ahead, kept while the data spans at least
# 45 % of the view. Each move of the limits redraws that panel's ticks and labels (the
# costly part of a frame), so a run moves them every 1.75x of its length, not every 1.25x.
X_GROW = (0.02, 0.75)
X_KEEP = 0.45


def sticky_limits(
    data: tuple[float, float],
    view: tuple[float, float],
    log: bool,
    grow: tuple[float, float],
    keep: float = 0.5,
) -> tuple[float, float] | None:
    """New axis limits for ``data``, or None to keep ``view``.

    The view is kept while it holds the data and the data spans at least ``keep`` of it;
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
    if vlo <= lo and hi <= vhi and (span <= 0 or span >= keep * (vhi - vlo)):
        return None
    if span <= 0:  # a constant: centre it
        span = abs(lo) * 0.1 or 1.0
        grow = (0.5, 0.5)
    new = (lo - grow[0] * span, hi + grow[1] * span)
    return (10 ** new[0], 10 ** new[1]) if log else new


def keys_of(source: SeriesSource | Mapping[str, Any]) -> list[str]:
    """The keys a compared run has (a mapping's keys, or ``source.keys()``)."""
    return list(source) if isinstance(source, Mapping) else list(source.keys())


def version_of(source: SeriesSource | Mapping[str, Any], key: str) -> int:
    """How far ``key`` of a compared run has grown: a live source's series version, 0 for
    a fixed one (a stored run, a mapping), which is therefore read once."""
    return source.series_version(key) if isinstance(source, LiveSeriesSource) else 0


def series_of(source: SeriesSource | Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of ``key`` from a MetricStream-like object or a {key: (x, y)} mapping."""
    if isinstance(source, Mapping):
        if key not in source:
            return np.empty(0), np.empty(0)
        xs, ys = source[key]
        return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    xs, ys = source.series(key)
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


class LineView:
    """The artists of one line panel and what it last drew."""

    def __init__(self, host: ViewHost, panel: Panel, ax: Any) -> None:
        self.host = host
        self.panel = panel
        self.ax = ax
        self.lines: dict[str, Any] = {}
        self.raw_lines: dict[str, Any] = {}
        self.drawn_n: dict[str, int] = {}
        self.smooth: dict[str, tuple[np.ndarray, list[float]]] = {}
        # (run label, key) -> the compared run's line, and the version of its data drawn.
        self.compare_lines: dict[tuple[str, str], Any] = {}
        self.compare_drawn: dict[tuple[str, str], int] = {}
        # y given: the title stays put instead of being placed anew above the top
        # decorations at every draw (a seventh of an axes' redraw).
        ax.set_title(panel.title, fontsize=10, y=1.0)
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
            color = self.host.color_for(key)
            style = "--" if is_val(key) else "-"
            if self.panel.smoothing:
                (raw,) = self.ax.plot([], [], lw=0.8, alpha=0.25, color=color, label="_nolegend_")
                self.raw_lines[key] = raw
            # val_ lines are sparse (once per epoch): markers show each evaluation.
            marker = "o" if is_val(key) else ""
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
            # An opaque frame: blits paste the legend's pixels over the lines.
            self.ax.legend(fontsize=7, loc="best", framealpha=1.0)
        self.host.needs_layout(self.ax.figure)

    # -- compared runs: colour per run, style per train/val, behind the live lines ------
    def _compare_sources(self) -> dict[str, SeriesSource | Mapping[str, Any]]:
        if self.panel.x != "step":  # another run's wall-clock times do not line up
            return {}
        return {**self.host.compare_sources, **self.panel.compare}

    def _add_compare_line(self, label: str, key: str) -> Any:
        """A compared run's line: the run's own colour; dotted for training values,
        dash-dot with markers for validation (the live run: solid and dashed)."""
        val = is_val(key)
        (line,) = self.ax.plot(
            [],
            [],
            lw=1.2,
            ls="-." if val else ":",
            marker="o" if val else "",
            markersize=2.5,
            alpha=0.85,
            zorder=1.5,  # behind the live lines (2)
            color=self.host.compare_color(label),
            label=f"{self.panel.label(key)} ({label})",
        )
        self.compare_lines[(label, key)] = line
        self.placeholder.set_visible(False)
        self.ax.legend(fontsize=7, loc="best", framealpha=1.0)
        self.host.needs_layout(self.ax.figure)
        return line

    def _update_compare(self) -> bool:
        """Draw what is new in the compared runs (a live source keeps growing); True if a
        compared line moved."""
        changed = False
        for label, source in self._compare_sources().items():
            for key in matching_keys(self.panel, keys_of(source)):
                if self.panel.is_minor(key):
                    continue
                version = version_of(source, key)
                if self.compare_drawn.get((label, key)) == version:
                    continue
                xs, ys = series_of(source, key)
                if xs.size == 0:  # no line (nor legend entry) before there is data
                    continue
                line = self.compare_lines.get((label, key)) or self._add_compare_line(label, key)
                line.set_data(*minmax_decimate(xs, ys, max(self.host.max_points // 2, 1)))
                self.compare_drawn[(label, key)] = version
                changed = True
        return changed

    def forget_compare(self, label: str) -> None:
        """Draw the compared run ``label`` again (its source was replaced or removed)."""
        for pair in [p for p in self.compare_lines if p[0] == label]:
            self.compare_lines.pop(pair).remove()
            self.compare_drawn.pop(pair, None)
        self.host.needs_layout(self.ax.figure)
        self._update_compare()  # at once: compare() shows the new source before a refresh

    # -- the live lines --------------------------------------------------------------------
    def update(self, keys: Sequence[str]) -> bool:
        """Add lines for new matching keys; move them all if one has new values; draw
        what is new in the compared runs."""
        stream = self.host.stream
        for key in matching_keys(self.panel, keys):
            if key not in self.lines:
                self._add_line(key)
        compared = self._update_compare()
        # Versions, not lengths: a bounded stream (max_records) keeps lengths constant.
        if all(stream.series_version(k) == self.drawn_n[k] for k in self.lines):
            if compared:
                self._rescale(self._compare_xmax())
            return compared
        data = {key: self._read(key) for key in self.lines}
        xmax = max((float(xs[-1]) for xs, _, _ in data.values() if xs.size), default=-np.inf)
        for key, (xs, ys, smooth) in data.items():
            self._set_line(key, xs, ys, smooth, xmax)
        self._rescale(max(xmax, self._compare_xmax()))
        return True

    def _compare_xmax(self) -> float:
        ends = [line.get_xdata() for line in self.compare_lines.values()]
        return max((float(xs[-1]) for xs in ends if len(xs)), default=-np.inf)

    def _read(self, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(x, values, smoothed values or None) of ``key`` as the panel shows them."""
        stream = self.host.stream
        self.drawn_n[key] = stream.series_version(key)  # before the copy: never skips one
        whole = self.panel.smoothing or self.panel.window is not None
        # Neither smoothing nor a window needs every point: the stream decimates under
        # its lock, so a million points are never copied (what _set_line does again to
        # the short result is a no-op).
        xs, ys = stream.series(
            key, self.panel.x, max_points=None if whole else self.host.max_points
        )
        if self.panel.x == "time":
            xs = xs - self.host.t0
        smooth = None
        if self.panel.smoothing and key in self.raw_lines:
            # A bounded stream (max_records) dropped old values: positions no longer
            # line up with the cache, so smooth the (bounded) kept window afresh.
            trimmed = stream.series_length(key) < stream.series_version(key)
            smooth = self._smoothed(key, ys, restart=trimmed)
        return xs, ys, smooth

    def _set_line(
        self, key: str, xs: np.ndarray, ys: np.ndarray, smooth: np.ndarray | None, xmax: float
    ) -> None:
        """Move ``key``'s line(s) to the (windowed, decimated) data."""
        if self.panel.window is not None and xs.size:
            start = int(np.searchsorted(xs, xmax - self.panel.window, side="left"))
            xs, ys = xs[start:], ys[start:]
            smooth = smooth[start:] if smooth is not None else None
        buckets = max(self.host.max_points // 2, 1)
        if smooth is not None:
            self.raw_lines[key].set_data(*minmax_decimate(xs, ys, buckets))
            self.lines[key].set_data(*minmax_decimate(xs, smooth, buckets))
        else:
            self.lines[key].set_data(*minmax_decimate(xs, ys, buckets))
        if not is_val(key) and not self.panel.is_minor(key):
            self.lines[key].set_marker("o" if xs.size == 1 else "")  # a lone point is no line

    def _rescale(self, xmax: float) -> None:
        """Sticky limits: change them only when the data leaves them (or uses too little
        of them), then leave headroom, so most redraws keep ticks and labels as they were
        and the figure can redraw only its lines (see :mod:`resnetlab.live.blit`)."""
        ax = self.ax
        ax.relim()
        data = ax.dataLim
        if self.panel.window is not None and math.isfinite(xmax):
            ax.set_xlim(max(xmax - self.panel.window, 0), max(xmax, 1))
        elif np.isfinite(data.intervalx).all():
            lims = sticky_limits(
                tuple(data.intervalx), ax.get_xlim(), False, grow=X_GROW, keep=X_KEEP
            )
            if lims is not None:
                ax.set_xlim(*lims)
        if self.panel.ylim is None and np.isfinite(data.intervaly).all():
            lims = sticky_limits(
                tuple(data.intervaly), ax.get_ylim(), self.panel.logy, grow=(0.15, 0.15)
            )
            if lims is not None:
                ax.set_ylim(*lims)

    def moving(self) -> list[Any]:
        """The artists a redraw moves (see :mod:`resnetlab.live.blit`): the live lines and
        the compared ones (a compared stream keeps growing)."""
        return [*self.compare_lines.values(), *self.raw_lines.values(), *self.lines.values()]

    def _smoothed(self, key: str, ys: np.ndarray, restart: bool = False) -> np.ndarray:
        cached, state = self.smooth.get(key, (np.empty(0), [0.0, 0]))
        done = cached.shape[0]
        if restart or done > ys.shape[0]:
            cached, state, done = np.empty(0), [0.0, 0], 0
        new = _ema(ys, self.panel.smoothing, done, state)
        cached = np.concatenate([cached, new])
        self.smooth[key] = (cached, state)
        return cached


def heatmap_matrix(
    series: Sequence[tuple[np.ndarray, np.ndarray]], window: float | None, logy: bool
) -> tuple[np.ndarray, float, float]:
    """(rows x columns of binned values, first step, last step) of one (steps, values)
    series per row; values <= 0 or non-finite are left out, ``logy`` takes log10."""
    lo = min((xs[0] for xs, _ in series if xs.size), default=0.0)
    hi = max((xs[-1] for xs, _ in series if xs.size), default=1.0)
    if window is not None:
        lo = max(lo, hi - window)
    if hi <= lo:
        hi = lo + 1.0
    # No more columns than logged steps, so sparse logging (every k steps) leaves no gaps.
    points = max((int(np.count_nonzero(xs >= lo)) for xs, _ in series), default=1)
    ncols = int(min(HEATMAP_COLUMNS, max(hi - lo + 1, 1), max(points, 1)))
    edges = np.linspace(lo, hi, ncols + 1)
    matrix = np.full((len(series), ncols), np.nan)
    for r, (xs, ys) in enumerate(series):
        keep = (xs >= lo) & np.isfinite(ys) & (ys > 0)
        if not keep.any():
            continue
        vals = np.log10(ys[keep]) if logy else ys[keep]
        col = np.clip(np.searchsorted(edges, xs[keep], side="right") - 1, 0, ncols - 1)
        sums = np.bincount(col, weights=vals, minlength=ncols)
        counts = np.bincount(col, minlength=ncols)
        with np.errstate(invalid="ignore", divide="ignore"):
            row = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        # carry the last value into empty columns (uneven logging), never before the first
        filled = np.where(np.isnan(row), 0, np.arange(ncols))
        matrix[r] = row[np.maximum.accumulate(filled)]
    return matrix, float(lo), float(hi)


class HeatmapView:
    """Rows = matching keys (layers), columns = binned steps, colour = log10 of the value."""

    def __init__(self, host: ViewHost, panel: Panel, ax: Any) -> None:
        self.host = host
        self.panel = panel
        self.ax = ax
        self.rows: list[str] = []
        self.labelled_rows = 0
        self.drawn_n: dict[str, int] = {}
        # y given: the title stays put instead of being placed anew above the top
        # decorations at every draw (a seventh of an axes' redraw).
        ax.set_title(panel.title, fontsize=10, y=1.0)
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

    def moving(self) -> list[Any]:
        """The artists a redraw moves: the heat map."""
        return [self.image]

    def forget_compare(self, label: str) -> None:
        """Heat maps draw no compared runs."""

    def update(self, keys: Sequence[str]) -> bool:
        stream = self.host.stream
        for key in matching_keys(self.panel, keys):
            if key not in self.drawn_n:
                self.rows.append(key)
                self.drawn_n[key] = -1
        if not any(stream.series_version(k) != self.drawn_n[k] for k in self.rows):
            return False
        series = []
        for key in self.rows:
            self.drawn_n[key] = stream.series_version(key)
            series.append(stream.series(key))
        matrix, lo, hi = heatmap_matrix(series, self.panel.window, self.panel.logy)
        self.image.set_data(matrix)
        self.image.set_extent((lo, hi, -0.5, len(self.rows) - 0.5))
        # Sticky x limits with headroom (as for line panels): most redraws keep the ticks.
        lims = sticky_limits(
            (lo, hi), self.ax.get_xlim(), False, grow=(0.0, X_GROW[1]), keep=X_KEEP
        )
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
            self.host.needs_layout(self.ax.figure)
            step = max(1, math.ceil(len(self.rows) / 24))
            ticks = list(range(0, len(self.rows), step))
            self.ax.set_yticks(ticks, [self.panel.label(self.rows[i]) for i in ticks], fontsize=6)
        return True


def moving_artists(views: Sequence[LineView | HeatmapView]) -> tuple[list[Any], list[Any]]:
    """What changes between redraws of a figure: (lines and the heat map, legends)."""
    artists: list[Any] = []
    legends: list[Any] = []
    for view in views:
        artists += view.moving()
        legend = view.ax.get_legend()
        if legend is not None:
            legends.append(legend)
    return artists, legends


def make_view(host: ViewHost, panel: Panel, ax: Any) -> LineView | HeatmapView:
    """The view for ``panel`` on axes ``ax``."""
    return HeatmapView(host, panel, ax) if panel.kind == "heatmap" else LineView(host, panel, ax)
