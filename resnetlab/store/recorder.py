"""StoreRecorder: the trainer callback that copies a run's MetricStream into the RunStore.

It is a stream *consumer*: each batch it takes the records that are new in the trainer's
stream (a list slice, no database work) and hands them to the store's buffer; the buffer
reaches SQLite in one transaction at every epoch end, every ``flush_every_s`` seconds and
at the end of the run. That keeps the store's cost per batch at a few microseconds.
"""

from __future__ import annotations

import time
from typing import Any

from resnetlab.metrics.stream import MetricStream, StreamReader
from resnetlab.store.runstore import RunStore


class StoreRecorder:
    """Copy new stream records of a run into ``store`` (duck-typed trainer callback)."""

    def __init__(
        self,
        store: RunStore,
        run_id: int,
        stream: MetricStream | None = None,
        *,
        flush_every_s: float = 5.0,
        exclude_prefixes: tuple[str, ...] = ("sys/",),
    ) -> None:
        self.store = store
        self.run_id = run_id
        # The system monitor's samples share the stream but count their own steps (sample
        # numbers, not optimiser steps): they stay out of the run's metric table.
        self.exclude_prefixes = exclude_prefixes
        # Time-based flushing bounds what a SIGKILL can lose to a few seconds of rows.
        self.flush_every_s = flush_every_s
        self._reader: StreamReader | None = stream.reader(from_start=False) if stream else None
        self._last_flush = time.monotonic()

    def _pull(self, trainer: Any) -> None:
        if self._reader is None:
            self._reader = trainer.stream.reader(from_start=False)
        skip = self.exclude_prefixes
        for rec in self._reader.read():
            metrics = (
                {k: v for k, v in rec.metrics.items() if not k.startswith(skip)}
                if skip
                else rec.metrics
            )
            if metrics:
                self.store.log_metrics(
                    self.run_id, rec.step, metrics, epoch=rec.epoch, time_s=rec.time
                )

    def flush(self, trainer: Any = None) -> None:
        if trainer is not None or self._reader is not None:
            self._pull(trainer)
        self.store.flush()
        self._last_flush = time.monotonic()

    # -- trainer events ----------------------------------------------------------------
    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self._reader is None:
            # Records appended before fit (none usually) are not part of this run.
            self._reader = trainer.stream.reader(from_start=False)

    def on_batch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._pull(trainer)
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush(trainer)

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.flush(trainer)

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.flush(trainer)
