"""Runs as pandas DataFrames: the runs table and one run's metrics.

``runs_frame(store)`` has one row per run (newest first): ``id``, ``name``, ``status``,
``model``, ``data``, ``started``/``ended`` (UTC timestamps), ``duration_s``, the checkpoint
paths, every config field as a ``config.<field>`` column (nested dicts flattened with
dots, ``config.extra.model``) and every final metric under its own key (``test_accuracy``).
``metrics_frame(store, run)`` is ``resnetlab export --csv`` as a frame: one row per step,
``step``, ``epoch``, ``time`` (the first value's wall time, seconds since the epoch) and a
column per metric key, NaN where a key has no value at a step; ``long=True`` gives the
``--long`` form. pandas is an optional extra: ``pip install 'resnetlab[frames]'``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from resnetlab.errors import ConfigError

if TYPE_CHECKING:  # pandas is optional; imported on use
    import pandas as pd

CONFIG_PREFIX = "config."
# The columns every row of runs_frame starts with.
RUN_COLUMNS = (
    "id",
    "name",
    "status",
    "model",
    "data",
    "started",
    "ended",
    "duration_s",
    "checkpoint_best",
    "checkpoint_last",
)


class RunRecord(Protocol):
    """What a row is made of: ``runstore.RunInfo`` (not imported: runstore imports this)."""

    id: int
    name: str
    status: str
    model: str | None
    dataset: str | None
    config: dict[str, Any]
    started_at: float
    ended_at: float | None
    final_metrics: dict[str, float]
    checkpoint_last: str | None
    checkpoint_best: str | None

    @property
    def duration(self) -> float: ...


class MetricRecord(Protocol):
    step: int
    epoch: int | None
    key: str
    value: float
    time: float


class RunSource(Protocol):
    """The part of ``RunStore`` the frames read."""

    def list_runs(
        self, *, status: str | None = None, limit: int | None = None
    ) -> Sequence[RunRecord]: ...
    def get_run(self, id_or_name: int | str) -> RunRecord: ...
    def metrics(self, run_id: int) -> Sequence[MetricRecord]: ...
    def metric_keys(self, run_id: int) -> list[str]: ...


def _pandas() -> Any:
    try:
        return importlib.import_module("pandas")
    except ImportError:
        raise ConfigError(
            "runs as DataFrames need the pandas package: pip install 'resnetlab[frames]'"
        ) from None


def flatten_config(config: Mapping[str, Any], prefix: str = CONFIG_PREFIX) -> dict[str, Any]:
    """``{"lr": 0.1, "extra": {"model": "m"}}`` -> ``{"config.lr": 0.1, "config.extra.model": "m"}``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def run_row(run: RunRecord) -> dict[str, Any]:
    """One run as the flat dict that is its row in :func:`runs_frame`."""
    values = (
        run.id,
        run.name,
        run.status,
        run.model,
        run.dataset,
        run.started_at,
        run.ended_at,
        run.duration,
        run.checkpoint_best,
        run.checkpoint_last,
    )
    row: dict[str, Any] = dict(zip(RUN_COLUMNS, values, strict=True))
    row.update(flatten_config(run.config))
    for key, value in run.final_metrics.items():
        row[key] = float("nan") if value is None else value
    return row


def runs_frame(
    store: RunSource, *, status: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """One row per run of ``store``, newest first (see the module docstring for columns)."""
    pd = _pandas()
    frame = pd.DataFrame([run_row(r) for r in store.list_runs(status=status, limit=limit)])
    if frame.empty:
        return pd.DataFrame(columns=list(RUN_COLUMNS))
    for col in ("started", "ended"):
        frame[col] = pd.to_datetime(frame[col], unit="s", utc=True)
    return frame


def metrics_frame(store: RunSource, run: int | str, *, long: bool = False) -> pd.DataFrame:
    """A run's metrics, one row per step and a column per key (``long``: one row per value)."""
    pd = _pandas()
    info = store.get_run(run)
    rows = store.metrics(info.id)
    if long:
        frame = pd.DataFrame(
            [(m.step, m.epoch, m.time, m.key, m.value) for m in rows],
            columns=["step", "epoch", "time", "key", "value"],
        )
        frame["epoch"] = frame["epoch"].astype("Int64")
        return frame
    keys = store.metric_keys(info.id)
    # The same pivot as `resnetlab export --csv`: the step's first wall time, its last
    # known epoch, the last value of each key.
    table: dict[int, dict[str, Any]] = {}
    for m in rows:
        entry = table.setdefault(m.step, {"step": m.step, "epoch": m.epoch, "time": m.time})
        entry[m.key] = m.value
        if m.epoch is not None:
            entry["epoch"] = m.epoch
    frame = pd.DataFrame(
        [table[s] for s in sorted(table)], columns=["step", "epoch", "time", *keys]
    )
    frame["epoch"] = frame["epoch"].astype("Int64")
    frame[keys] = frame[keys].astype("float64")
    return frame
