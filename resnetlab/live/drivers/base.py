"""What every driver shares: the dashboard, its lock, and canvases that draw under it."""

from __future__ import annotations

import functools
from typing import Any

from resnetlab.errors import ConfigError


@functools.cache
def locked_canvas_class(base: type) -> type:
    """A subclass of canvas class ``base`` whose ``draw()`` holds the dashboard's lock.

    A browser can ask for a redraw (resize, reconnect) on the server's thread at any
    moment; rendering while ``refresh()`` moves artists on another thread would draw a
    half-updated figure or crash, so every render takes the same lock.
    """

    def draw(self: Any, *args: Any, **kwargs: Any) -> Any:
        dash = getattr(self, "_resnetlab_dashboard", None)
        if dash is None:
            return base.draw(self, *args, **kwargs)
        with dash.lock:
            dash.before_draw(self.figure)
            return base.draw(self, *args, **kwargs)

    return type(f"Locked{base.__name__}", (base,), {"draw": draw})


class BaseDriver:
    """Common constructor and defaults; subclasses set ``name`` and override the hooks."""

    name = "base"
    # True: Dashboard.start() may call draw() from its background loop thread.
    draws_from_background = True
    # Options a subclass accepts, with defaults (unknown options are a ConfigError).
    options: dict[str, Any] = {}

    def __init__(self, dashboard: Any, **options: Any) -> None:
        unknown = set(options) - set(self.options)
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(
                f"the {self.name!r} live backend does not take {', '.join(sorted(unknown))}; "
                f"its options: {allowed}"
            )
        self.dashboard = dashboard
        self.config = {**self.options, **options}
        self.started = False
        self.url: str | None = None

    def start(self) -> None:
        self.started = True

    def draw(self) -> None:
        with self.dashboard.lock:
            for fig in self.dashboard.figures:
                fig.canvas.draw()

    def stop(self) -> None:
        self.started = False

    def attach(self, canvas_cls: type) -> list[Any]:
        """Give every dashboard figure a locked canvas of ``canvas_cls``; returns them."""
        cls = locked_canvas_class(canvas_cls)
        canvases = []
        for fig in self.dashboard.figures:
            canvas = cls(fig)
            canvas._resnetlab_dashboard = self.dashboard
            canvases.append(canvas)
        return canvases
