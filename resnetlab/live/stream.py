"""MetricStream: the one seam between producers of metrics and everything that shows them.

Producers (the trainer, the system monitor, a user's own loop, a Keras callback) only
``append``; consumers (run store, dashboards, progress bars) only read. Appends and reads
are thread-safe; each reader keeps its own cursor and gets only what is new since its
last read. Values are kept per key in growing numpy columns, so drawing a series costs a
slice, not a Python loop over records.
"""

from __future__ import annotations

import math
import threading
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Record:
    """One appended row: the metrics known at ``step`` (wall-clock ``time``, seconds)."""

    step: int
    time: float
    metrics: Mapping[str, float]
    epoch: int | None = None


class _Column:
    """A growing (step, time, value) series for one key; capacity doubles as needed."""

    __slots__ = ("steps", "times", "values", "n")

    def __init__(self, capacity: int = 1024) -> None:
        self.steps = np.empty(capacity, dtype=np.float64)
        self.times = np.empty(capacity, dtype=np.float64)
        self.values = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def add(self, step: float, t: float, value: float) -> None:
        if self.n == self.values.shape[0]:
            cap = 2 * self.n
            self.steps = np.resize(self.steps, cap)
            self.times = np.resize(self.times, cap)
            self.values = np.resize(self.values, cap)
        self.steps[self.n] = step
        self.times[self.n] = t
        self.values[self.n] = value
        self.n += 1


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
    # keeps the durable copy. Set a bound for endless producers (a monitor left running).
    max_records: int | None = None
    _records: list[Record] = field(default_factory=list, init=False, repr=False)
    _dropped: int = field(default=0, init=False, repr=False)
    _columns: dict[str, _Column] = field(default_factory=dict, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    # -- producers -------------------------------------------------------------------
    def append(
        self,
        step: int,
        metrics: Mapping[str, float],
        *,
        time: float | None = None,
        epoch: int | None = None,
    ) -> None:
        """Add the metrics known at ``step``. Non-finite values are kept (a NaN loss matters)."""
        t = _time.time() if time is None else float(time)
        clean = {str(k): float(v) for k, v in metrics.items()}
        rec = Record(int(step), t, clean, epoch)
        with self._cond:
            self._records.append(rec)
            for key, value in clean.items():
                col = self._columns.get(key)
                if col is None:
                    col = self._columns[key] = _Column()
                col.add(rec.step, t, value)
            if self.max_records is not None and len(self._records) > self.max_records:
                extra = len(self._records) - self.max_records
                del self._records[:extra]
                self._dropped += extra
            self._cond.notify_all()

    def log(self, step: int, **metrics: float) -> None:
        """Keyword form of :meth:`append`: ``stream.log(step, loss=0.3, accuracy=0.9)``."""
        self.append(step, metrics)

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

    def series(self, key: str, x: str = "step") -> tuple[np.ndarray, np.ndarray]:
        """Copies of (x, value) for ``key``; ``x`` is ``"step"`` or ``"time"``. Empty if unseen."""
        if x not in ("step", "time"):
            raise ValueError(f"x must be 'step' or 'time', got {x!r}")
        with self._cond:
            col = self._columns.get(key)
            if col is None:
                return np.empty(0), np.empty(0)
            xs = col.steps if x == "step" else col.times
            return xs[: col.n].copy(), col.values[: col.n].copy()

    def last(self, key: str) -> float | None:
        """The latest value of ``key``, or None if never seen."""
        with self._cond:
            col = self._columns.get(key)
            if col is None or col.n == 0:
                return None
            return float(col.values[col.n - 1])

    def latest(self) -> dict[str, float]:
        """The latest finite value of every key."""
        with self._cond:
            out = {}
            for key, col in self._columns.items():
                if col.n and math.isfinite(col.values[col.n - 1]):
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
