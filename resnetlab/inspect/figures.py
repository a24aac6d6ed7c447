"""Saving the inspection figures: rendered with Agg in memory, written atomically.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so making one
never opens a window or touches a GUI toolkit, from any thread.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from resnetlab.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def figure_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default) atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    atomic_write_bytes(target, buf.getvalue())
    return target
