"""Curves of stored runs as PNG files (matplotlib's object API: no pyplot, no GUI)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

from resnetlab.store.runstore import RunInfo, RunStore
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


def plot_compare(
    store: RunStore,
    runs: Sequence[RunInfo],
    out: str | os.PathLike[str],
    keys: Sequence[str] = ("val_accuracy", "loss"),
) -> None:
    """One panel per key, one line per run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 2.6 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys, strict=True):
        for run in runs:
            steps, values = store.series(run.id, key)
            if steps:
                ax.plot(
                    steps,
                    values,
                    label=f"{run.id} {run.name}",
                    marker="o" if len(steps) < 60 else None,
                    markersize=3,
                )
        ax.set_title(key, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel("step")
    _save(fig, out)
