"""Metric records across a thread or process boundary: one codec, one feed, one mirror.

Every path that carries records out of a :class:`MetricStream` or into one goes through
here: the worker process of a job, the render process, the viewer process, a trainer's
forwarding stream and the run store's recorder.

* **Codec.** A record travels as a *row*, ``(step, time, metrics, epoch)`` — the fields
  of :class:`Record` in order, plain ints/floats/dicts that pickle and JSON-encode — and a
  batch as a list of rows. :func:`encode` / :func:`decode` convert one record,
  :func:`encode_batch` / :func:`decode_batch` a batch. Decoding checks each row exactly
  as ``MetricStream.append`` does, so a malformed row is a ConfigError naming key, value
  and step, never a half-appended batch.
* **Feed.** A :class:`Producer` is anything with ``append``/``log`` like a stream that
  checks each record *where it is made* (a bad value raises there, in the producer, with
  the same message ``MetricStream.append`` gives) and sends rows through its
  :meth:`Producer.send_rows`. :class:`QueueFeed` is the picklable one over a
  ``multiprocessing`` queue; :class:`FeedPump` is its consumer half, a thread appending
  what arrives into a stream::

      pump = FeedPump(stream, context=multiprocessing.get_context("spawn")).start()
      Process(target=work, args=(pump.feed,)).start()   # child: feed.log(step, loss=0.3)
      ...
      pump.stop()                                       # drain what is queued, then end

* **Mirror.** A :class:`StreamMirror` reads a stream in the background and hands new
  records in batches to a sink (the run store's recorder, a render process's queue, the
  viewer's pipe); ``flush()`` hands over what is new now, ``stop()`` the rest.

Imports only ``resnetlab.errors`` and the stream.
"""

from __future__ import annotations

import logging
import queue as _queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from resnetlab.errors import ConfigError
from resnetlab.metrics.stream import MetricStream, Record, make_record

logger = logging.getLogger(__name__)

# One record on the wire: (step, time, {key: value}, epoch), Record's fields in order.
Row = tuple[int, float, dict[str, float], int | None]


# -- codec ---------------------------------------------------------------------------------
def encode(record: Record) -> Row:
    """A record as a plain row (picklable and JSON-able)."""
    return (record.step, record.time, dict(record.metrics), record.epoch)


def encode_batch(records: Iterable[Record]) -> list[Row]:
    """Records as a list of rows: one message across the boundary."""
    return [encode(r) for r in records]


def decode(row: Sequence[Any]) -> Record:
    """A row (a tuple, or the list JSON makes of it) as a record, checked like ``append``."""
    try:
        step, t, metrics, epoch = row
    except (TypeError, ValueError):
        raise ConfigError(
            f"a metric row is (step, time, {{key: value}}, epoch), got {row!r:.200}"
        ) from None
    return make_record(step, metrics, time=t, epoch=epoch)


def decode_batch(rows: Iterable[Sequence[Any]]) -> list[Record]:
    """Every row of a batch as a record; the first bad row raises (nothing is returned)."""
    return [decode(row) for row in rows]


def append_records(stream: MetricStream, records: Iterable[Record]) -> int:
    """Append records (already checked) to ``stream``; returns how many."""
    n = 0
    for rec in records:
        stream.append(rec.step, rec.metrics, time=rec.time, epoch=rec.epoch)
        n += 1
    return n


def append_rows(stream: MetricStream, rows: Iterable[Sequence[Any]]) -> int:
    """Decode a received batch and append it to ``stream``; returns how many records.

    A batch with a malformed row appends nothing of it and raises the ConfigError.
    """
    return append_records(stream, decode_batch(rows))


# -- feed: producer side -----------------------------------------------------------------
class RecordAppender(Protocol):
    """Anything records are appended to: a :class:`MetricStream` or a :class:`Producer`."""

    def append(
        self,
        step: int,
        metrics: Mapping[str, float],
        *,
        time: float | None = None,
        epoch: int | None = None,
    ) -> None: ...


class Producer:
    """``append``/``log`` like a MetricStream, for records that go somewhere else.

    Each record is checked here, where it is made — a bad value raises the ConfigError
    ``MetricStream.append`` would, before anything is sent — and then handed to
    :meth:`send_rows` as a batch of one row. Subclasses say where rows go.
    """

    def send_rows(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def append(
        self,
        step: int,
        metrics: Mapping[str, float],
        *,
        time: float | None = None,
        epoch: int | None = None,
    ) -> None:
        self.send_rows([encode(make_record(step, metrics, time=time, epoch=epoch))])

    def log(self, step: int, **metrics: float) -> None:
        """Keyword form of :meth:`append`: ``feed.log(step, loss=0.3)``."""
        self.append(step, metrics)


class QueueFeed(Producer):
    """The picklable producer half of a feed over a ``multiprocessing`` (or thread) queue.

    Pass it to a worker process as an argument; its :class:`FeedPump` in the parent
    appends what it sends. ``close()`` tells the pump this producer is done.
    """

    def __init__(self, q: Any) -> None:
        self.queue = q

    def send_rows(self, rows: list[Row]) -> None:
        self.queue.put(rows)

    def close(self) -> None:
        """Tell the consumer's pump that this producer is finished."""
        self.queue.put(None)


# -- feed: consumer side ---------------------------------------------------------------
class BatchSource(Protocol):
    """Where a pump reads batches: ``multiprocessing.Queue``, ``queue.Queue``."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any: ...


def pump(
    stream: MetricStream,
    source: BatchSource,
    *,
    should_stop: Callable[[], bool],
    poll: float = 0.1,
) -> int:
    """Append every batch that arrives on ``source`` to ``stream``, on this thread.

    ``source`` is a queue with ``get(timeout=...)`` carrying batches of rows. Returns (the
    number of records appended) at a ``None`` sentinel, when the queue is closed, or when
    it is empty and ``should_stop()`` is true — so what was queued before a stop is kept.
    A malformed batch is logged and dropped; the pump goes on.
    """
    count = 0
    while True:
        try:
            batch = source.get(timeout=poll)
        except _queue.Empty:
            if should_stop():
                return count
            continue
        except (EOFError, OSError, ValueError):  # the queue was closed under us
            return count
        if batch is None:
            return count
        try:
            count += append_rows(stream, batch)
        except (ConfigError, TypeError) as exc:  # not from a Producer: nobody checked it
            logger.warning("dropped a malformed batch from a feed: %s", exc)


class FeedPump:
    """A daemon thread appending what a :class:`QueueFeed` sends into ``stream``.

    ``source`` is the queue to read (by default a new ``context.Queue()``; ``context`` is a
    ``multiprocessing`` context, the default context if None). :attr:`feed` is the
    producer to hand to the other side; :attr:`count` is how many records were appended
    once the pump has ended.
    """

    def __init__(
        self, stream: MetricStream, source: BatchSource | None = None, *, context: Any = None
    ) -> None:
        if source is None:
            import multiprocessing

            ctx = context if context is not None else multiprocessing.get_context()
            source = ctx.Queue()
        self.stream = stream
        self.source = source
        self.feed = QueueFeed(source)
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resnetlab-feed", daemon=True)

    def start(self) -> FeedPump:
        self._thread.start()
        return self

    def _run(self) -> None:
        self.count = pump(self.stream, self.source, should_stop=self._stop.is_set)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the producer closed the feed (its ``None``); False on timeout."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Append what is already queued, then end the thread (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> FeedPump:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- mirror ------------------------------------------------------------------------------
class StreamMirror:
    """Hands new records of ``stream`` to ``sink`` in batches every ``interval`` seconds.

    A batch the sink rejects (it raised) is kept and offered again with the next one, so
    a locked database loses nothing; the error is kept in :attr:`error` and the thread
    goes on. ``from_start=False`` skips what the stream already holds. ``wake=True`` also
    hands a batch over as soon as records arrive (then ``interval`` is the longest wait),
    at most one batch every ``gather`` seconds so that a fast loop's appends share one:
    for a viewer that should see each record promptly.
    """

    def __init__(
        self,
        stream: MetricStream,
        sink: Callable[[list[Record]], None],
        interval: float = 1.0,
        *,
        from_start: bool = True,
        wake: bool = False,
        gather: float = 0.0,
        name: str = "resnetlab-mirror",
    ) -> None:
        self.stream = stream
        self.reader = stream.reader(from_start=from_start)
        self.sink = sink
        self.interval = float(interval)
        self.wake = wake
        self.gather = float(gather)
        self.error: BaseException | None = None
        self._pending: list[Record] = []
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def backlog(self) -> int:
        """Records not yet accepted by the sink (kept after a failed batch, or not read)."""
        return len(self._pending) + len(self.stream) - self.reader.position

    def start(self) -> StreamMirror:
        self._thread.start()
        return self

    def flush(self) -> None:
        """Give the sink every record it has not accepted yet (kept if it raises)."""
        with self._flush_lock:
            self._pending.extend(self.reader.read())
            if self._pending:
                self.sink(list(self._pending))
                self._pending.clear()

    def _wait(self) -> bool:
        """Sleep until the next batch is due; True when stopping."""
        if not self.wake:
            return self._stop.wait(self.interval)
        # First let the appends that follow the last batch gather, then wait for one; the
        # stream's condition cannot be told about stop(): wait on it in short slices.
        if self._stop.wait(self.gather):
            return True
        deadline = time.monotonic() + self.interval
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self.stream.wait(self.reader.position, timeout=min(left, 0.1)):
                break
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._wait():
            try:
                self.flush()
            except Exception as exc:  # keep the producer running; report at stop()
                self.error = exc
                logger.exception("mirroring metrics failed; will retry")

    def is_alive(self) -> bool:
        """True while the background thread runs."""
        return self._thread.is_alive()

    def cancel(self) -> None:
        """End the thread after the current batch, handing nothing more to the sink.

        For a sink whose other end is gone (a closed pipe): callable from the sink itself.
        """
        self._cancelled = True
        self._stop.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread and hand over what is still unwritten (raises the sink's error)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if not self._cancelled:
            self.flush()
