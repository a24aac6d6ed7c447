"""The shared vocabularies of modes and states: how work is stopped, what state a run is in.

Jobs, the trainer, the run store and the CLI all speak these two types, so a status read
from the store compares equal to the one a job reports, and an unknown stop mode gets one
message wherever it is given. Both are ``str`` enums: they compare equal to, print as and
are stored in SQLite as their plain values (``RunStatus.COMPLETED == "completed"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from resnetlab.errors import ConfigError


class _StrEnum(str, Enum):
    """``str`` mix-in enum that prints as its value (``enum.StrEnum`` is 3.11+)."""

    __str__ = str.__str__
    __format__ = str.__format__

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(m.value for m in cls)


class StopMode(_StrEnum):
    """How background work is asked to stop (``jobs.stop(id, how=...)``)."""

    EVENT = "event"  # clean: set the job's stop event; the work notices at its next check
    LOOP = "loop"  # hard: ``loop.stop()`` on the job's event loop, tasks left unfinished
    CANCEL = "cancel"  # cancel the job's tasks: ``CancelledError`` raised inside them
    KILL = "kill"  # SIGTERM, then SIGKILL: process jobs only

    @classmethod
    def parse(cls, how: str | StopMode, allowed: Iterable[StopMode] | None = None) -> StopMode:
        """``how`` as a StopMode; a ConfigError names the value and the modes allowed here."""
        allowed = tuple(cls) if allowed is None else tuple(allowed)
        try:
            mode = cls(how)
        except ValueError:
            mode = None
        if mode is None or mode not in allowed:
            names = ", ".join(repr(m.value) for m in allowed)
            raise ConfigError(f"unknown stop mode how={how!r}; use one of {names}")
        return mode


class RunStatus(_StrEnum):
    """The state of a job or a training run, in memory and in the run store.

    A job is ``starting``/``running``/``paused`` and ends ``completed``, ``stopped``,
    ``failed`` or ``killed``. A stored run ends ``completed`` (everything it promised is
    recorded), ``stopped`` (asked to stop; a checkpoint was written), ``interrupted`` (the
    process was ended by a signal or vanished) or ``failed`` (an error; its message is kept).
    """

    PENDING = "pending"  # queued behind other work (an experiment's arm waiting its turn)
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    STOPPED = "stopped"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    KILLED = "killed"

    @property
    def finished(self) -> bool:
        """Whether nothing more will happen to the job or run."""
        return self in _FINISHED


_FINISHED = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.STOPPED,
        RunStatus.INTERRUPTED,
        RunStatus.FAILED,
        RunStatus.KILLED,
    }
)
