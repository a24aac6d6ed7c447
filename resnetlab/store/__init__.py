"""The embedded SQLite run store: runs, their configs, metrics and checkpoint paths."""

from resnetlab.store.recorder import StoreRecorder
from resnetlab.store.runstore import (
    COMPLETED,
    FAILED,
    INTERRUPTED,
    RUNNING,
    STOPPED,
    MetricRow,
    RunInfo,
    RunStore,
    default_store_path,
)

__all__ = [
    "COMPLETED",
    "FAILED",
    "INTERRUPTED",
    "RUNNING",
    "STOPPED",
    "MetricRow",
    "RunInfo",
    "RunStore",
    "StoreRecorder",
    "default_store_path",
]
