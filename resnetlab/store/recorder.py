"""StoreRecorder: a run's MetricStream mirrored into the RunStore.

It is a stream *consumer* built on the transport's :class:`StreamMirror`: a background
thread hands the records that are new in the stream to the store every
``flush_every_s`` seconds, one transaction per batch (a locked database keeps the batch
for the next try), and the trainer's epoch end and run end hand over the rest at once.
The training loop itself does no database work per batch.

Every record of the stream is stored, system samples too (``sys/*``, stamped with the
training step they were taken at), so a stored run and ``resnetlab watch`` show the same
panels as the live dashboard.

As a trainer callback (the trainer adds it when it has a store), or by hand::

    recorder = StoreRecorder(store, run_id, stream).start()
    ...                      # appends to stream
    recorder.stop()          # the rest, then the mirror thread ends
"""

from __future__ import annotations

from typing import Any

from resnetlab.metrics.stream import MetricStream, Record
from resnetlab.metrics.transport import StreamMirror
from resnetlab.store.runstore import RunStore


class StoreRecorder:
    """Copy new stream records of a run into ``store`` (a mirror; also a trainer callback).

    ``stream`` defaults to the trainer's, taken at ``on_fit_start``. Only records appended
    after the recorder starts belong to the run.
    """

    def __init__(
        self,
        store: RunStore,
        run_id: int,
        stream: MetricStream | None = None,
        *,
        flush_every_s: float = 5.0,
    ) -> None:
        self.store = store
        self.run_id = run_id
        # Time-based flushing bounds what a SIGKILL can lose to a few seconds of rows.
        self.flush_every_s = flush_every_s
        self.mirror: StreamMirror | None = None
        self._running = False
        if stream is not None:  # the run's records are those appended from now on
            self.mirror = self._mirror(stream)

    def _mirror(self, stream: MetricStream) -> StreamMirror:
        return StreamMirror(
            stream,
            self._write,
            self.flush_every_s,
            from_start=False,
            name=f"resnetlab-store-run-{self.run_id}",
        )

    def _write(self, records: list[Record]) -> None:
        for rec in records:
            self.store.log_metrics(
                self.run_id, rec.step, rec.metrics, epoch=rec.epoch, time_s=rec.time
            )
        self.store.flush()

    def start(self, stream: MetricStream | None = None) -> StoreRecorder:
        """Begin mirroring in the background (``stream``: if none was given before)."""
        if self.mirror is None:
            if stream is None:
                raise ValueError("StoreRecorder.start() needs a stream")
            self.mirror = self._mirror(stream)
        if not self._running:
            self.mirror.start()
            self._running = True
        return self

    def flush(self) -> None:
        """Write every record appended so far (raises the store's error)."""
        if self.mirror is not None:
            self.mirror.flush()
        self.store.flush()

    def stop(self) -> None:
        """Write the rest and end the mirror thread (raises the store's error).

        :meth:`flush` still works afterwards, on the calling thread: records appended
        after the fit (the test split's metrics) reach the store that way.
        """
        running, self._running = self._running, False
        if self.mirror is not None and running:
            self.mirror.stop()
        self.store.flush()

    # -- trainer events ----------------------------------------------------------------
    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.start(trainer.stream)

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.flush()

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.stop()
