"""Figures that redraw only what moves, and canvases that render under the dashboard's lock.

Tick labels, titles and legends' text are most of the cost of a draw. On an Agg renderer
a :class:`BlitFigure`'s full draw leaves the moving artists (lines, the heat map,
legends) out, keeps a copy of that background, and draws them on top; the next draws
restore the copy and draw only the moving artists, as long as the figure's *signature*
(axes limits and positions, scales, artist counts, colour limits, renderer size) is the
same. The buffer always ends up holding the complete figure, so every Agg-based canvas
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


@dataclass
class BlitState:
    """The blitting state of one figure: what the last full draw left behind."""

    moving: MovingArtists | None = None
    background: Any = None  # the renderer's copy of everything but the moving artists
    signature: tuple | None = None  # what the background was drawn for
    # id(legend) -> (axes limits when placed, legend): where "best" put it, kept fixed
    legend_places: dict[int, tuple[tuple, Any]] = field(default_factory=dict)
    full_draws: int = 0
    blit_draws: int = 0

    def invalidate(self) -> None:
        """Make the next draw a full one (of the same state)."""
        self.background = None


def _signature(fig: Figure, renderer: Any) -> tuple:
    """Everything that, when changed, makes the cached background wrong."""
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
            )
        )
    return tuple(parts)


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

    def draw(self, renderer: Any) -> None:
        state = self.blit
        moving, legends = state.moving() if state.moving is not None else ([], [])
        if not moving or _needs_plain_draw(self, renderer):
            state.background = None
            return super().draw(renderer)
        signature = None
        if not isinstance(self.get_layout_engine(), ConstrainedLayoutEngine):
            signature = _signature(self, renderer)
        if state.background is not None and signature is not None and signature == state.signature:
            self._blit(renderer, [*moving, *legends])
        else:
            self._full_draw(renderer, moving, legends)
        self.stale = False
        return None

    def _blit(self, renderer: Any, artists: list[Any]) -> None:
        """Restore the background and draw only what moves (legends stay where they were)."""
        renderer.restore_region(self.blit.background)
        _draw_visible(artists, renderer)
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
        state.background = background
        # The layout may have moved axes: the signature after the draw is the one the
        # next draw compares against.
        state.signature = _signature(self, renderer)
        state.full_draws += 1


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
            return base.draw(self, *args, **kwargs)

    return type(f"Locked{base.__name__}", (base,), {"draw": draw})
