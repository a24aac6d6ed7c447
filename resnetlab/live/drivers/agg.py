"""Agg driver (headless): PNG snapshots of the dashboard written atomically.

With a ``directory``, ``draw()`` writes a snapshot ``<name>.png`` (or ``<name>-<i>.png``
with several figures) at most every ``interval`` seconds and once more on ``stop()``;
between snapshots it renders nothing (nobody would see it) and only marks the change
``pending``, which the dashboard's loop turns into a snapshot once one is due. Without a
directory every ``draw()`` renders (the canvas buffer stays current for ``buffer_rgba``). Files are replaced with ``os.replace`` after fsync, so a
reader (or a crash, or SIGKILL) never sees a half-written PNG.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.live.drivers.base import BaseDriver
from resnetlab.utils.atomic import atomic_write_bytes

logger = logging.getLogger(__name__)


class AggDriver(BaseDriver):
    name = "agg"
    options = {
        # Where snapshots go (the run directory); None = render only (dash.save still works).
        "directory": None,
        # Seconds between snapshots: often enough to watch, rare enough to cost nothing.
        "interval": 5.0,
        # File name stem of the snapshots.
        "name": "dashboard",
    }

    def __init__(self, dashboard: Any, **options: Any) -> None:
        super().__init__(dashboard, **options)
        self.directory = Path(self.config["directory"]) if self.config["directory"] else None
        try:
            self.interval = float(self.config["interval"])
        except (TypeError, ValueError):
            raise ConfigError(
                f"the agg live backend's interval is seconds between snapshots, "
                f"got {self.config['interval']!r}"
            ) from None
        if not self.interval >= 0:
            raise ConfigError(
                f"the agg live backend's interval must be >= 0 seconds, got {self.interval!r}"
            )
        self._last_write = -float("inf")
        self.snapshots = 0
        # A draw asked for while no snapshot was due: written at the next due draw().
        self.pending = False

    def start(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        if not self.started:
            self.attach(FigureCanvasAgg)
        super().start()

    def paths(self) -> list[Path]:
        """The snapshot files this driver writes."""
        if self.directory is None:
            return []
        stem = self.config["name"]
        n = len(self.dashboard.figures)
        if n == 1:
            return [self.directory / f"{stem}.png"]
        return [self.directory / f"{stem}-{i + 1}.png" for i in range(n)]

    def draw(self) -> None:
        if self.directory is None:
            super().draw()
        elif time.monotonic() - self._last_write >= self.interval:
            self.snapshot()
        else:
            self.pending = True

    def snapshot(self) -> list[Path]:
        """Render and write the snapshot files now."""
        from matplotlib.image import imsave

        paths = self.paths()
        with self.dashboard.lock:
            images = []
            for fig in self.dashboard.figures:
                # A live frame (the locked canvas: blitted, counted in dashboard.frames),
                # then its pixels as PNG, as print_png would write them.
                fig.canvas.draw()
                buf = io.BytesIO()
                # zlib level 1: a third of the default's encoding time, for a somewhat
                # larger file; snapshots are rewritten every few seconds.
                imsave(
                    buf,
                    fig.canvas.buffer_rgba(),
                    format="png",
                    origin="upper",
                    dpi=fig.dpi,
                    pil_kwargs={"compress_level": 1},
                )
                images.append(buf.getvalue())
        for path, data in zip(paths, images, strict=True):
            atomic_write_bytes(path, data)
        self._last_write = time.monotonic()
        self.pending = False
        self.snapshots += 1
        return paths

    def stop(self) -> None:
        if self.started and self.directory is not None:
            try:
                self.dashboard.refresh()
                self.snapshot()
            except Exception:
                logger.exception("writing the final dashboard snapshot failed")
        super().stop()
