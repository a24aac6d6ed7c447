"""Writing a dashboard out: its figures as PNG/SVG/PDF files, its stream as a wide CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.metrics.stream import MetricStream
from resnetlab.utils.atomic import atomic_write, atomic_write_bytes

FORMATS = ("png", "svg", "pdf")


def figure_paths(path: Path, count: int) -> list[Path]:
    """``dash.png`` for one figure; ``dash-1.png``, ``dash-2.png``, ... for several."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i + 1}{path.suffix}") for i in range(count)]


def save_figures(figures: Sequence[Any], path: str | Path, **savefig_kw: Any) -> list[Path]:
    """Write ``figures`` (format by suffix) atomically; the caller holds the dashboard lock."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise ConfigError(f"Dashboard.save({str(path)!r}): use a .png, .svg or .pdf name")
    targets = figure_paths(path, len(figures))
    for fig, target in zip(figures, targets, strict=True):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, **savefig_kw)
        atomic_write_bytes(target, buf.getvalue())
    return targets


def write_csv(stream: MetricStream, path: str | Path) -> Path:
    """Every record of ``stream`` as a wide CSV: step, time, epoch, one column per key."""
    path = Path(path)
    records, _ = stream.read_since(0)
    keys = stream.keys()
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
