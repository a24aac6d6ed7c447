"""Curves of stored runs as PNG files (matplotlib's object API: no pyplot, no GUI)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

from resnetlab.errors import ConfigError
from resnetlab.store.runstore import MetricRow, RunInfo, RunStore
from resnetlab.utils.atomic import atomic_write_bytes

# Panels of `resnetlab plot`: title and the keys drawn in it (those a run has).
PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("loss", "val_loss")),
    ("accuracy", ("accuracy", "val_accuracy")),
    ("learning rate", ("lr",)),
    ("throughput (images/s)", ("images_per_s",)),
)


def _save(fig, out: str | os.PathLike[str]) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(out, buf.getvalue())


def plot_run(
    store: RunStore, run: RunInfo, out: str | os.PathLike[str], keys: Sequence[str] | None = None
) -> list[str]:
    """Write the run's curves (by optimiser step) to ``out``; returns the keys drawn."""
    from matplotlib.figure import Figure

    have = set(store.metric_keys(run.id))
    if keys:
        panels = [(k, (k,)) for k in keys if k in have]
        if not panels:
            return []  # nothing to draw: no file written
    else:
        panels = [(title, ks) for title, ks in PANELS if have & set(ks)]
    drawn: list[str] = []
    fig = Figure(figsize=(6.5, 2.4 * max(1, len(panels))), layout="constrained")
    axes = fig.subplots(max(1, len(panels)), 1, squeeze=False)[:, 0]
    for ax, (title, ks) in zip(axes, panels, strict=False):
        for key in ks:
            steps, values = store.series(run.id, key)
            if not steps:
                continue
            marker = "o" if len(steps) < 60 else None
            ax.plot(steps, values, label=key, marker=marker, markersize=3)
            drawn.append(key)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel("step")
    acc = run.final_metrics.get("test_accuracy")
    fig.suptitle(
        f"run {run.id} {run.name} ({run.status})"
        + (f" test accuracy {acc:.4f}" if acc is not None else ""),
        fontsize=11,
    )
    _save(fig, out)
    return drawn


# x axes of `resnetlab compare --out`: their labels.
X_AXES = {"step": "step", "epoch": "epoch", "time": "wall time (s)"}


def steps_per_epoch(rows: Sequence[MetricRow]) -> int | None:
    """A run's steps per epoch from its records: the last step logged in its first epoch
    (the trainer always logs an epoch's last batch); None without an epoch."""
    epochs = [r.epoch for r in rows if r.epoch is not None]
    if not epochs:
        return None
    first = min(epochs)
    last = max(r.step for r in rows if r.epoch == first)
    return max(1, last // (first + 1))


def x_values(rows: Sequence[MetricRow], x: str, spe: int | None, t0: float) -> list[float]:
    """The x of each row: its step, its (fractional) epoch ``step / steps per epoch``, or
    its wall time in seconds since ``t0`` (the run's first record)."""
    if x == "time":
        return [r.time - t0 for r in rows]
    if x == "epoch":
        return [r.step / spe if spe else float(r.epoch or 0) for r in rows]
    return [float(r.step) for r in rows]


def plot_compare(
    store: RunStore,
    runs: Sequence[RunInfo],
    out: str | os.PathLike[str],
    keys: Sequence[str] = ("val_accuracy", "loss"),
    x: str = "step",
) -> None:
    """One panel per key, one line per run, against ``x``: "step", "epoch" or "time"."""
    from matplotlib.figure import Figure

    if x not in X_AXES:
        raise ConfigError(f"x={x!r}: choose one of {', '.join(X_AXES)}")
    fig = Figure(figsize=(6.5, 2.6 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for run in runs:
        rows = store.metrics(run.id)
        spe = steps_per_epoch([r for r in rows if r.key == "loss"] or rows)
        t0 = min((r.time for r in rows), default=0.0)
        for ax, key in zip(axes, keys, strict=True):
            mine = [r for r in rows if r.key == key]
            if mine:
                ax.plot(
                    x_values(mine, x, spe, t0),
                    [r.value for r in mine],
                    label=f"{run.id} {run.name}",
                    marker="o" if len(mine) < 60 else None,
                    markersize=3,
                )
    for ax, key in zip(axes, keys, strict=True):
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel(X_AXES[x])
    _save(fig, out)
