"""Figures that redraw only what moves, and canvases that render under the dashboard's lock.

Tick labels, titles and legends' text are most of the cost of a draw. On an Agg renderer
a :class:`BlitFigure`'s full draw leaves the moving artists (lines, the heat map,
legends) out, keeps a copy of that background, and draws them on top; the next draws
restore the copy and draw only the moving artists, as long as the figure's *signature*
(axes limits and positions, scales, artist counts, colour limits, renderer size) is the
same. When only some axes changed (a panel's limits moved, a colour bar's range) and the
layout did not, only those axes are drawn again (:meth:`BlitFigure._redraw_axes`): their
place is cleared, they are drawn without their moving artists, the background is copied
anew and every moving artist drawn on top. The buffer always ends up holding the complete figure, so every Agg-based canvas
(Agg snapshots, WebAgg, ipympl, Qt/Tk Agg) sends or shows the whole picture. Other
renderers (SVG, PDF) always get a plain full draw, and so does every save (``savefig``,
``print_figure``): a save first lays the figure out in a measuring pass that paints
nothing, and a background kept from that pass would give a transparent picture with only
the lines.

What the blitting needs between draws lives in one :class:`BlitState` per figure
(``fig.blit``); what a canvas needs to render safely is the figure's ``guard``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from matplotlib.backend_bases import DrawEvent
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

# () -> (moving artists, legends): what changes between redraws of one figure.
MovingArtists = Callable[[], tuple[list[Any], list[Any]]]


class DrawGuard(Protocol):
    """What a canvas holds while it renders a dashboard figure (the Dashboard is one)."""

    lock: threading.RLock

    def before_draw(self, fig: Any) -> None:
        """Called under ``lock`` just before a render of ``fig`` (lays it out if asked)."""

    def after_draw(self, fig: Any) -> None:
        """Called under ``lock`` just after a render of ``fig`` (a frame was produced)."""


@dataclass
class BlitState:
    """The blitting state of one figure: what the last full draw left behind."""

    moving: MovingArtists | None = None
    background: Any = None  # the renderer's copy of everything but the moving artists
    signature: tuple | None = None  # what the background was drawn for
    # id(legend) -> (axes limits when placed, legend): where "best" put it, kept fixed
    legend_places: dict[int, tuple[tuple, Any]] = field(default_factory=dict)
    # id(legend) -> its pixels as last drawn: a blit pastes them over the lines instead of
    # drawing the legend again (its text is most of a blit's cost). Legend frames are
    # opaque, so nothing under them shows through.
    legend_pixels: dict[int, Any] = field(default_factory=dict)
    # id(axes) -> its tight box (display pixels) as last drawn: what a redraw of that axes
    # alone clears, and how far its neighbours reach.
    extents: dict[int, Any] = field(default_factory=dict)
    # id(axes) -> its tight box after the last constrained layout: the room it was given.
    placed: dict[int, Any] = field(default_factory=dict)
    # An axes redrawn alone outgrew its room (wider tick labels): lay the figure out again.
    outgrown: bool = False
    full_draws: int = 0
    blit_draws: int = 0
    axes_draws: int = 0  # redraws of only the changed axes (each also counts as a blit draw)

    def invalidate(self) -> None:
        """Make the next draw a full one (of the same state)."""
        self.background = None


# The first parts of a signature are the figure's own; then one part per axes.
FIGURE_PARTS = 7
# Pixels of slack before an axes redrawn alone counts as having outgrown its room.
OUTGROW_SLACK = 2.0


def _signature(fig: Figure, renderer: Any) -> tuple:
    """Everything that, when changed, makes the cached background wrong: the figure's
    own parts (:data:`FIGURE_PARTS` of them), then one tuple per axes."""
    parts: list[Any] = [
        id(renderer),
        renderer.width,
        renderer.height,
        fig.dpi,
        tuple(fig.bbox.bounds),
        fig.patch.get_facecolor(),
        len(fig.get_children()),
    ]
    for ax in fig.axes:
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
                # a lone point's marker: the legend's sample shows it (kept as pixels)
                tuple(line.get_marker() for line in ax.lines),
            )
        )
    return tuple(parts)


def _changed_axes(fig: Figure, old: tuple | None, new: tuple) -> list[Any] | None:
    """The axes whose part of the signature changed while the figure's own parts and
    every axes' position stayed; None when that is not so (a full draw is needed)."""
    if old is None or len(old) != len(new) or old[:FIGURE_PARTS] != new[:FIGURE_PARTS]:
        return None
    changed = []
    for ax, before, after in zip(fig.axes, old[FIGURE_PARTS:], new[FIGURE_PARTS:], strict=True):
        if before == after:
            continue
        if before[1] != after[1] or before[7] != after[7]:  # moved, shown or hidden
            return None
        changed.append(ax)
    return changed


def _overlaps(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _with_neighbours(fig: Figure, state: BlitState, dirty: list[Any]) -> list[Any] | None:
    """``dirty`` and every axes whose drawn box overlaps one of theirs (clearing a place
    must not leave a neighbour half erased); None when a box is unknown or the figure's
    own texts (the title) are in the way."""
    boxes = [state.extents.get(id(ax)) for ax in fig.axes]
    if any(box is None for box in boxes):
        return None
    chosen = {id(ax) for ax in dirty}
    grew = True
    while grew:
        grew = False
        for ax, box in zip(fig.axes, boxes, strict=True):
            if id(ax) in chosen:
                continue
            if any(_overlaps(box, state.extents[i]) for i in chosen):
                chosen.add(id(ax))
                grew = True
    for text in fig.texts:  # a suptitle is one of them
        if text.get_visible() and text.get_text():
            box = state.extents.get(id(text))
            if box is None or any(_overlaps(box, state.extents[i]) for i in chosen):
                return None
    return [ax for ax in fig.axes if id(ax) in chosen]


def _clear(renderer: Any, box: Any, color: Any) -> None:
    """Paint ``box`` (display pixels, padded by one) in ``color`` on an Agg renderer."""
    from matplotlib.colors import to_rgba_array

    pixels = np.asarray(renderer.buffer_rgba())
    height, width = pixels.shape[:2]
    x0, x1 = max(int(box.x0) - 1, 0), min(int(np.ceil(box.x1)) + 1, width)
    top, bottom = max(height - int(np.ceil(box.y1)) - 1, 0), min(height - int(box.y0) + 1, height)
    if x0 < x1 and top < bottom:
        pixels[top:bottom, x0:x1] = (to_rgba_array(color)[0] * 255).round().astype(np.uint8)


def _measuring(renderer: Any) -> bool:
    """True in ``renderer._draw_disabled()``: the layout-only pass of a save or of
    ``draw_without_rendering``, whose draw_* methods are no-ops set on the instance."""
    return "draw_path" in vars(renderer)


def _needs_plain_draw(fig: Figure, renderer: Any) -> bool:
    """A draw that must not blit nor keep its background: a save (whose first pass only
    measures and whose options, e.g. ``transparent=``, change the picture), a non-Agg
    renderer, a hidden or animated figure."""
    return (
        not isinstance(renderer, RendererAgg)
        or _measuring(renderer)
        # Set by matplotlib's print_figure for every save, also ones that bypass savefig
        # (IPython's inline display, a toolbar's save button).
        or getattr(fig.canvas, "_is_saving", False)
        or fig.get_animated()
        or not fig.get_visible()
    )


def _draw_visible(artists: Any, renderer: Any) -> None:
    for artist in artists:
        if artist.get_visible():
            artist.draw(renderer)


def _release_moved_legends(state: BlitState, legends: list[Any]) -> None:
    """A legend keeps the place "best" chose until its axes' limits change, so a full draw
    for another reason (a browser reload) shows the same picture."""
    for leg in legends:
        limits = tuple(leg.axes.viewLim.bounds)
        if state.legend_places.get(id(leg), (limits,))[0] != limits:
            leg.set_loc("best")
            state.legend_places.pop(id(leg))


# Pixels around a legend's extent that its drawing touches (edge line, anti-aliasing).
LEGEND_PAD_PX = 1.5


def _keep_legends(state: BlitState, legends: list[Any], renderer: Any) -> None:
    """Copy the pixels of every visible legend just drawn (see ``legend_pixels``)."""
    state.legend_pixels = {
        # Padded: the frame's edge line and its anti-aliasing reach about a pixel beyond
        # the legend's extent (unpadded, a blit showed the grid through its top edge).
        id(leg): renderer.copy_from_bbox(leg.get_window_extent(renderer).padded(LEGEND_PAD_PX))
        for leg in legends
        if leg.get_visible()
    }


def _pin_legends(state: BlitState, legends: list[Any], renderer: Any) -> None:
    """Fix each newly placed legend where "best" put it now (finding the best place again
    on every redraw costs more than the lines themselves)."""
    for leg in legends:
        if id(leg) not in state.legend_places and leg.get_visible():
            box = leg.get_window_extent(renderer).transformed(leg.axes.transAxes.inverted())
            leg.set_loc((box.x0, box.y0))
            state.legend_places[id(leg)] = (tuple(leg.axes.viewLim.bounds), leg)


class BlitFigure(Figure):
    """``Figure`` that redraws only its moving artists while nothing else changed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blit = BlitState()
        # Set by the Dashboard: locked canvases render this figure under guard.lock.
        self.guard: DrawGuard | None = None

    @property
    def full_draws(self) -> int:
        return self.blit.full_draws

    @property
    def blit_draws(self) -> int:
        return self.blit.blit_draws

    @property
    def axes_draws(self) -> int:
        return self.blit.axes_draws

    def draw(self, renderer: Any) -> None:
        state = self.blit
        moving, legends = state.moving() if state.moving is not None else ([], [])
        if not moving or _needs_plain_draw(self, renderer):
            state.background = None
            return super().draw(renderer)
        signature = None
        if not isinstance(self.get_layout_engine(), ConstrainedLayoutEngine):
            signature = _signature(self, renderer)
        redraw = None
        if state.background is not None and signature is not None:
            changed = _changed_axes(self, state.signature, signature)
            redraw = _with_neighbours(self, state, changed) if changed else changed
        if redraw == []:
            self._blit(renderer, moving, legends)
        elif redraw is not None:
            self._redraw_axes(renderer, redraw, moving, legends)
        else:
            self._full_draw(renderer, moving, legends)
        self.stale = False
        return None

    def _redraw_axes(
        self, renderer: Any, axes: list[Any], moving: list[Any], legends: list[Any]
    ) -> None:
        """Draw ``axes`` again in their places on the kept background (their ticks and
        labels moved), keep the new background, then draw every moving artist on top."""
        state = self.blit
        renderer.restore_region(state.background)
        own = {id(ax) for ax in axes}
        _release_moved_legends(state, [leg for leg in legends if id(leg.axes) in own])
        hidden = [a for a in (*moving, *legends) if id(a.axes) in own]
        for ax in axes:
            _clear(renderer, state.extents[id(ax)], self.patch.get_facecolor())
        for artist in hidden:
            artist.set_animated(True)
        try:
            for ax in axes:
                ax.draw(renderer)
        finally:
            for artist in hidden:
                artist.set_animated(False)
        state.background = renderer.copy_from_bbox(self.bbox)
        _pin_legends(state, legends, renderer)
        _draw_visible([*moving, *legends], renderer)
        _keep_legends(state, legends, renderer)
        for ax in axes:
            box = ax.get_tightbbox(renderer)
            state.extents[id(ax)] = box
            room = state.placed.get(id(ax))
            if room is not None and box is not None and _outgrows(box, room):
                state.outgrown = True  # the dashboard lays the figure out at the next draw
        state.signature = _signature(self, renderer)
        state.blit_draws += 1
        state.axes_draws += 1
        DrawEvent("draw_event", self.canvas, renderer)._process()

    def _blit(self, renderer: Any, moving: list[Any], legends: list[Any]) -> None:
        """Restore the background, draw only what moves, and paste the legends' pixels
        back on top (they stay where they were, and look as they did)."""
        state = self.blit
        renderer.restore_region(state.background)
        _draw_visible(moving, renderer)
        for leg in legends:
            pixels = state.legend_pixels.get(id(leg))
            if pixels is not None:
                renderer.restore_region(pixels)
            elif leg.get_visible():
                leg.draw(renderer)
        self.blit.blit_draws += 1
        DrawEvent("draw_event", self.canvas, renderer)._process()

    def _full_draw(self, renderer: Any, moving: list[Any], legends: list[Any]) -> None:
        """Draw all but the moving artists, keep that background, then draw them on top."""
        state = self.blit
        _release_moved_legends(state, legends)
        artists = [*moving, *legends]
        for artist in artists:
            artist.set_animated(True)
        try:
            super().draw(renderer)
        finally:
            for artist in artists:
                artist.set_animated(False)
        background = renderer.copy_from_bbox(self.bbox)
        _pin_legends(state, legends, renderer)
        _draw_visible(artists, renderer)
        _keep_legends(state, legends, renderer)
        state.background = background
        # The layout may have moved axes: the signature after the draw is the one the
        # next draw compares against.
        state.signature = _signature(self, renderer)
        state.extents = _extents(self, renderer)
        if isinstance(self.get_layout_engine(), ConstrainedLayoutEngine) or not state.placed:
            state.placed = dict(state.extents)
            state.outgrown = False
        state.full_draws += 1


def _outgrows(box: Any, room: Any) -> bool:
    return (
        box.x0 < room.x0 - OUTGROW_SLACK
        or box.y0 < room.y0 - OUTGROW_SLACK
        or box.x1 > room.x1 + OUTGROW_SLACK
        or box.y1 > room.y1 + OUTGROW_SLACK
    )


def _extents(fig: Figure, renderer: Any) -> dict[int, Any]:
    """id -> drawn box (display pixels) of every axes and figure text of ``fig``."""
    boxes: dict[int, Any] = {}
    for ax in fig.axes:
        boxes[id(ax)] = ax.get_tightbbox(renderer)
    for text in fig.texts:  # a suptitle is one of them
        boxes[id(text)] = text.get_window_extent(renderer)
    return {k: v for k, v in boxes.items() if v is not None}


@functools.cache
def locked_canvas_class(base: type) -> type:
    """A subclass of canvas class ``base`` whose ``draw()`` holds its figure's guard lock.

    A browser can ask for a redraw (resize, reconnect) on the server's thread at any
    moment; rendering while ``refresh()`` moves artists on another thread would draw a
    half-updated figure or crash, so every render of a dashboard figure takes the same lock.
    """

    def draw(self: Any, *args: Any, **kwargs: Any) -> Any:
        guard = self.figure.guard if isinstance(self.figure, BlitFigure) else None
        if guard is None:
            return base.draw(self, *args, **kwargs)
        with guard.lock:
            guard.before_draw(self.figure)
            done = base.draw(self, *args, **kwargs)
            guard.after_draw(self.figure)
            return done

    return type(f"Locked{base.__name__}", (base,), {"draw": draw})
