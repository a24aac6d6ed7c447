"""MetricStream: the one seam between producers of metrics and everything that shows them.

Producers (the trainer, the system monitor, a user's own loop, a Keras callback) only
``append``; consumers (run store, dashboards, progress bars) only read. Appends and reads
are thread-safe; each reader keeps its own cursor and gets only what is new since its
last read. Values are kept per key in growing numpy columns, so drawing a series costs a
slice, not a Python loop over records; ``series(key, max_points=N)`` decimates (min/max
per bucket, extremes kept) so a million points draw about as fast as a thousand.

Carrying records to another thread or process (a worker, the render process, the viewer,
the run store) is :mod:`resnetlab.metrics.transport`: one codec, one feed, one mirror.
"""

from __future__ import annotations

import logging
import math
import threading
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from resnetlab.errors import ConfigError
from resnetlab.metrics.decimate import minmax_decimate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Record:
    """One appended row: the metrics known at ``step`` (wall-clock ``time``, seconds)."""

    step: int
    time: float
    metrics: Mapping[str, float]
    epoch: int | None = None


def _clean_metrics(step: Any, metrics: Any, t: Any) -> tuple[int, float, dict[str, float]]:
    """``(step, time, {key: float})`` checked; a ConfigError names the key, value and step."""
    try:
        step_i = int(step)
    except (TypeError, ValueError):
        raise ConfigError(
            f"metric step must be an integer, got {step!r}; log(step, key=value) takes the "
            "step first"
        ) from None
    try:
        t_f = _time.time() if t is None else float(t)
    except (TypeError, ValueError):
        raise ConfigError(
            f"metric time at step {step_i} must be seconds (a float), got {t!r}"
        ) from None
    if not isinstance(metrics, Mapping):
        raise ConfigError(
            f"metrics at step {step_i} must be a mapping {{key: number}}, "
            f"got {type(metrics).__name__}"
        )
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        try:
            clean[str(key)] = float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"metric {str(key)!r} at step {step_i} is {value!r}, not a number; log plain "
                "numbers (a tensor: .item(); a missing value: float('nan'), or leave it out)"
            ) from None
    return step_i, t_f, clean


def make_record(step: Any, metrics: Any, *, time: Any = None, epoch: int | None = None) -> Record:
    """A :class:`Record` checked exactly as :meth:`MetricStream.append` checks one.

    For producers whose records are appended elsewhere (another process): the same
    ConfigError, naming key, value and step, is raised where the record is made.
    """
    step_i, t, clean = _clean_metrics(step, metrics, time)
    return Record(step_i, t, clean, epoch)


class _Column:
    """A growing (step, time, value) series for one key; capacity doubles as needed.

    The live values are ``[start:n]``; :meth:`trim` drops old ones by moving ``start``, and
    the next growth reuses that space first, so a bounded column stays bounded.
    ``total`` counts every value ever added (trimmed ones too).
    """

    __slots__ = ("steps", "times", "values", "start", "n", "total")

    def __init__(self, capacity: int = 1024) -> None:
        self.steps = np.empty(capacity, dtype=np.float64)
        self.times = np.empty(capacity, dtype=np.float64)
        self.values = np.empty(capacity, dtype=np.float64)
        self.start = 0
        self.n = 0
        self.total = 0

    def __len__(self) -> int:
        return self.n - self.start

    def add(self, step: float, t: float, value: float) -> None:
        if self.n == self.values.shape[0]:
            if self.start >= self.n // 2:  # half of it is dropped values: compact in place
                live = slice(self.start, self.n)
                size = self.n - self.start
                for name in ("steps", "times", "values"):
                    arr = getattr(self, name)
                    arr[:size] = arr[live]
                self.start, self.n = 0, size
            else:
                cap = 2 * self.n
                self.steps = np.resize(self.steps, cap)
                self.times = np.resize(self.times, cap)
                self.values = np.resize(self.values, cap)
        self.steps[self.n] = step
        self.times[self.n] = t
        self.values[self.n] = value
        self.n += 1
        self.total += 1

    def trim(self, keep: int) -> None:
        """Keep only the newest ``keep`` values."""
        if self.n - self.start > keep:
            self.start = self.n - keep


@dataclass
class MetricStream:
    """Append-only, thread-safe log of ``(step, time, {key: value})`` records.

    >>> s = MetricStream()
    >>> s.append(1, {"loss": 2.3})
    >>> s.log(2, loss=2.1, accuracy=0.3)
    >>> steps, values = s.series("loss")
    """

    name: str = "run"
    # Keep every record by default: a few million floats are cheap, and the run store
    # keeps the durable copy. Set a bound for endless producers (a monitor left running):
    # then only the newest max_records records, and per key its newest max_records values,
    # are kept (memory stays bounded; readers that fell behind skip what was dropped).
    max_records: int | None = None
    _records: list[Record] = field(default_factory=list, init=False, repr=False)
    _dropped: int = field(default=0, init=False, repr=False)
    _columns: dict[str, _Column] = field(default_factory=dict, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    # Replaced, never mutated (copy on write): append() reads it under the lock and calls
    # the listeners after releasing it.
    _listeners: tuple[Callable[[Record], None], ...] = field(default=(), init=False, repr=False)

    # -- producers -------------------------------------------------------------------
    def append(
        self,
        step: int,
        metrics: Mapping[str, float],
        *,
        time: float | None = None,
        epoch: int | None = None,
    ) -> None:
        """Add the metrics known at ``step``. Non-finite values are kept (a NaN loss matters).

        A value that is not a number (None, a string) is a ConfigError naming the key, the
        value and the step; nothing of that call is appended.
        """
        step_i, t, clean = _clean_metrics(step, metrics, time)
        rec = Record(step_i, t, clean, epoch)
        with self._cond:
            self._records.append(rec)
            for key, value in clean.items():
                col = self._columns.get(key)
                if col is None:
                    col = self._columns[key] = _Column()
                col.add(rec.step, t, value)
                if self.max_records is not None:
                    col.trim(self.max_records)
            if self.max_records is not None and len(self._records) > self.max_records:
                extra = len(self._records) - self.max_records
                del self._records[:extra]
                self._dropped += extra
            self._cond.notify_all()
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(rec)
            except Exception:  # a consumer's bug must never stop the producer
                logger.exception("metric stream %r: listener %r failed", self.name, listener)

    def log(self, step: int, **metrics: float) -> None:
        """Keyword form of :meth:`append`: ``stream.log(step, loss=0.3, accuracy=0.9)``."""
        self.append(step, metrics)

    def add_listener(self, fn: Callable[[Record], None]) -> None:
        """Call ``fn(record)`` after each append, on the appending thread, outside the lock.

        For consumers that must act on the producer's thread (a GUI pumped by a training
        loop on the main thread). Keep it cheap: it runs inside every append. An exception
        is logged, never raised into the producer.
        """
        with self._cond:
            self._listeners = (*self._listeners, fn)

    def remove_listener(self, fn: Callable[[Record], None]) -> None:
        """Stop calling ``fn`` (no error if it was not added)."""
        with self._cond:
            self._listeners = tuple(f for f in self._listeners if f != fn)

    # -- consumers -------------------------------------------------------------------
    def __len__(self) -> int:
        with self._cond:
            return self._dropped + len(self._records)

    def keys(self) -> list[str]:
        """Every metric key seen so far, in first-seen order."""
        with self._cond:
            return list(self._columns)

    def read_since(self, index: int) -> tuple[list[Record], int]:
        """Records appended since position ``index`` and the new position."""
        with self._cond:
            start = max(index - self._dropped, 0)
            return self._records[start:], self._dropped + len(self._records)

    def reader(self, from_start: bool = True) -> StreamReader:
        """A cursor that returns only the records that are new since its last read."""
        return StreamReader(self, 0 if from_start else len(self))

    def wait(self, index: int, timeout: float | None = None) -> bool:
        """Block until more than ``index`` records exist; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._dropped + len(self._records) > index, timeout=timeout
            )

    def series(
        self,
        key: str,
        x: str = "step",
        *,
        since: float | None = None,
        max_points: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Copies of (x, value) for ``key``; ``x`` is ``"step"`` or ``"time"``. Empty if unseen.

        ``since`` keeps only points whose x is >= it (a sliding window); ``max_points``
        decimates longer series to about that many points, keeping every bucket's min
        and max (what a plot needs to look the same).
        """
        if x not in ("step", "time"):
            raise ValueError(f"x must be 'step' or 'time', got {x!r}")
        with self._cond:
            col = self._columns.get(key)
            if col is None:
                return np.empty(0), np.empty(0)
            xs = (col.steps if x == "step" else col.times)[col.start : col.n]
            ys = col.values[col.start : col.n]
            start = 0
            if since is not None:
                # x is non-decreasing for steps and times of one producer; searchsorted
                # then costs O(log n) instead of a scan.
                start = int(np.searchsorted(xs, since, side="left"))
            xs, ys = xs[start:], ys[start:]
            if max_points is not None and xs.shape[0] > max_points:
                return minmax_decimate(xs, ys, max(max_points // 2, 1))
            return xs.copy(), ys.copy()

    def series_length(self, key: str) -> int:
        """How many values ``key`` has (0 if unseen); cheap, no copy."""
        with self._cond:
            col = self._columns.get(key)
            return 0 if col is None else len(col)

    def series_version(self, key: str) -> int:
        """How many values ``key`` ever received (0 if unseen): changes with every append,
        also once ``max_records`` keeps the length constant. Cheap; for change detection."""
        with self._cond:
            col = self._columns.get(key)
            return 0 if col is None else col.total

    def last_step(self) -> int | None:
        """The step of the newest record, or None while the stream is empty."""
        with self._cond:
            return self._records[-1].step if self._records else None

    def last(self, key: str) -> float | None:
        """The latest value of ``key``, or None if never seen."""
        with self._cond:
            col = self._columns.get(key)
            if col is None or len(col) == 0:
                return None
            return float(col.values[col.n - 1])

    def latest(self) -> dict[str, float]:
        """The latest finite value of every key."""
        with self._cond:
            out = {}
            for key, col in self._columns.items():
                if len(col) and math.isfinite(col.values[col.n - 1]):
                    out[key] = float(col.values[col.n - 1])
            return out


class StreamReader:
    """A consumer's cursor into a :class:`MetricStream`."""

    def __init__(self, stream: MetricStream, position: int = 0) -> None:
        self.stream = stream
        self.position = position

    def read(self) -> list[Record]:
        """Records appended since the previous read (all of them on the first read)."""
        records, self.position = self.stream.read_since(self.position)
        return records


_default_lock = threading.Lock()
_default: MetricStream | None = None


def default_stream() -> MetricStream:
    """The process-wide stream that :func:`log` writes to and dashboards read by default."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MetricStream(name="default")
        return _default


def log(step: int, **metrics: float) -> None:
    """Record metrics from any hand-written loop: ``resnetlab.log(step, loss=l)``."""
    default_stream().append(step, metrics)
