"""Drivers: how and on which thread a Dashboard's figures get drawn.

Every driver has what :class:`~resnetlab.live.drivers.base.Driver` lists: ``start()``
(attach canvases, display/serve/open windows), ``draw()`` (draw the figures now; holds
``dashboard.lock`` while rendering), ``stop()`` (idempotent), ``stop_timer()``, ``wait()``,
``grab()``, and the attributes ``draws_from_background``, ``in_process_windows``,
``pending``, ``render_seconds`` and ``url``. A driver whose ``draws_from_background`` is
False (the desktop toolkits) gets no background refresh thread from ``Dashboard.start``:
a window driver runs a main-thread timer that calls ``dashboard.refresh()`` then
``draw()`` at ``dashboard.rate_hz``; a viewer driver leaves drawing to its process.

The registry maps names to import strings of driver factories (a driver class, or for a
desktop toolkit the function that picks its window or viewer driver), so a toolkit is
imported only when chosen.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from resnetlab.errors import BackendError

# backend name -> "module:factory"; a factory is called as factory(dashboard, **options).
DRIVERS: dict[str, str] = {
    "ipympl": "resnetlab.live.drivers.ipympl:IpymplDriver",
    "webagg": "resnetlab.live.drivers.webagg:WebAggDriver",
    "agg": "resnetlab.live.drivers.agg:AggDriver",
    "qt": "resnetlab.live.drivers.desktop:qt",
    "tk": "resnetlab.live.drivers.desktop:tk",
    "gtk": "resnetlab.live.drivers.desktop:gtk",
}

# Other spellings users (and matplotlib) use for the same thing.
ALIASES: dict[str, str] = {
    "widget": "ipympl",
    "module://ipympl.backend_nbagg": "ipympl",
    "headless": "agg",
    "snapshots": "agg",
    "png": "agg",
    "browser": "webagg",
    "web": "webagg",
    "qtagg": "qt",
    "qt5agg": "qt",
    "qtcairo": "qt",
    "pyside6": "qt",
    "tkagg": "tk",
    "tkinter": "tk",
    "gtk3agg": "gtk",
    "gtk3": "gtk",
    "gtk4agg": "gtk",
}


def resolve_backend_name(name: str) -> str:
    """The canonical driver name for ``name``; ``"auto"`` picks for the current context."""
    if not isinstance(name, str):
        raise BackendError(f"backend must be a string such as 'auto' or 'webagg', got {name!r}")
    key = name.strip().lower()
    if key == "auto":
        from resnetlab.live.backends import pick_backend

        return pick_backend().name
    key = ALIASES.get(key, key)
    if key not in DRIVERS:
        known = ", ".join(["auto", *DRIVERS])
        raise BackendError(
            f"unknown live backend {name!r}; known: {known} "
            f"(run `resnetlab backends` to see which work here)"
        )
    return key


def get_driver(name: str) -> Callable[..., Any]:
    """The driver factory (usually the class) of a backend name; imports its module now."""
    key = resolve_backend_name(name)
    module_name, cls_name = DRIVERS[key].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(
            f"the {key!r} live backend cannot be loaded here: {exc}. "
            f"Run `resnetlab backends` for the ones that work, or pick another backend"
        ) from exc
    try:
        return getattr(module, cls_name)
    except AttributeError:
        raise BackendError(f"{module_name} has no driver factory {cls_name}") from None


def create_driver(name: str, dashboard: Any, **options: Any) -> Any:
    """Build the driver (a :class:`~resnetlab.live.drivers.base.Driver`) for ``name`` bound
    to ``dashboard``, not started. Typed ``Any``: base.py imports matplotlib, this does not."""
    return get_driver(name)(dashboard, **options)
