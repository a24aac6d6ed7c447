"""A stored run as series a plot can draw: read once from the run store, then plain arrays.

    run = load_run_series("baseline", store="runs.db")
    dash.compare(run.label, run)          # drawn behind the live lines, its own colour

:class:`RunSeries` has the ``series(key) -> (steps, values)`` of a MetricStream, so a
dashboard treats a stored run like another stream and never queries the store itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from resnetlab.errors import StoreError
from resnetlab.store.runstore import RunStore, default_store_path


@dataclass(frozen=True)
class RunSeries:
    """Every metric of one stored run as ``{key: (steps, values)}`` float arrays."""

    run_id: int
    name: str
    data: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How a plot names this run: ``run 12: baseline``."""
        return f"run {self.run_id}: {self.name}"

    def keys(self) -> list[str]:
        return list(self.data)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of ``key``; empty arrays when the run never logged it."""
        return self.data.get(key, (np.empty(0), np.empty(0)))


def read_run_series(store: RunStore, run: int | str) -> RunSeries:
    """The series of run ``run`` (id or name) of an open ``store``."""
    info = store.get_run(run)
    data = {}
    for key in store.metric_keys(info.id):
        xs, ys = store.series(info.id, key)
        data[key] = (np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    return RunSeries(info.id, info.name, data)


def load_run_series(
    run: int | str, store: RunStore | str | os.PathLike[str] | None = None
) -> RunSeries:
    """The series of run ``run`` from ``store`` (a RunStore, a path; default: the default
    run store). A path that does not exist is a StoreError: it is read, never created."""
    if isinstance(store, RunStore):
        return read_run_series(store, run)
    path = Path(store) if store is not None else default_store_path()
    if not path.is_file():
        raise StoreError(
            f"no run store at {path} to read run {run!r} from; pass store= the runs.db "
            "your training wrote (resnetlab runs --runs-db PATH lists its runs)"
        )
    with RunStore(path, read_only=True) as opened:
        return read_run_series(opened, run)
