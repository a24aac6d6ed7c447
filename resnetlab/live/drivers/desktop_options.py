"""The options every desktop driver takes (window and viewer alike), checked once."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from resnetlab.errors import ConfigError


class DesktopMode(str, enum.Enum):
    """Where a desktop dashboard's window lives."""

    AUTO = "auto"  # a viewer process inside a notebook kernel, a window elsewhere
    WINDOW = "window"  # in this process, refreshed by a main-thread timer
    VIEWER = "viewer"  # in a child process fed with the stream (see live/viewer.py)

    @classmethod
    def parse(cls, value: Any) -> DesktopMode:
        try:
            return cls(value)
        except ValueError:
            raise ConfigError(
                f"desktop driver mode must be 'auto', 'window' or 'viewer', got {value!r}"
            ) from None


# Option names with defaults (anything else is a ConfigError naming them).
DESKTOP_OPTIONS: dict[str, Any] = {
    "mode": "auto",
    # Seconds between timer refreshes; None = the dashboard's rate (Dashboard.start(rate_hz)).
    "interval": None,
    # At most one event-loop pass per this many seconds from a busy main-thread loop.
    "pump_every": 0.05,
    # Window title; default: the dashboard's title.
    "title": None,
    # Viewer mode: how long to wait for the window to be up (None: the viewer's default).
    "start_timeout": None,
}


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


@dataclass(frozen=True)
class DesktopOptions:
    """The checked values of :data:`DESKTOP_OPTIONS`."""

    mode: DesktopMode
    interval: float | None
    pump_every: float
    title: str | None
    start_timeout: float | None

    @classmethod
    def parse(cls, config: dict[str, Any]) -> DesktopOptions:
        config = {**DESKTOP_OPTIONS, **config}
        interval = _seconds("interval", config["interval"], allow_none=True)
        pump_every = _seconds("pump_every", config["pump_every"])
        assert pump_every is not None
        if (interval is not None and interval <= 0) or pump_every < 0:
            raise ConfigError(
                f"interval must be > 0 and pump_every >= 0 (got {interval}, {pump_every})"
            )
        return cls(
            mode=DesktopMode.parse(config["mode"]),
            interval=interval,
            pump_every=pump_every,
            title=config["title"],
            start_timeout=_seconds("start_timeout", config["start_timeout"], allow_none=True),
        )

    def refresh_interval(self, rate_hz: float) -> float:
        """Seconds between timer refreshes: ``interval``, else one per dashboard rate."""
        return self.interval if self.interval is not None else 1.0 / (rate_hz or 4.0)


def dashboard_title(figures: list[Any]) -> str | None:
    """The title the dashboard's first figure shows (without the `` (1)`` of several)."""
    suptitle = figures[0].get_suptitle() if figures else ""
    return suptitle.removesuffix(" (1)") or None
