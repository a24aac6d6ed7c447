"""A stop/pause flag shared with a worker process, with no lock to leave behind.

``multiprocessing.Event`` guards its state with a semaphore that both processes take.
A worker's training loop reads its flags every batch, so SIGTERM (raised as
``SystemExit`` between two bytecodes) or SIGKILL can end the worker while it holds that
semaphore: the worker then hangs in its own cleanup, and the parent's next ``is_set()``
hangs for ever (seen in CI as a job stuck in "running" after ``kill()``). One byte of
shared memory, set and read without a lock, cannot be left locked.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import time
from typing import Any

# How often wait() looks at the flag: the latency of a stop or resume seen by a worker.
POLL_S = 0.01


class SharedFlag:
    """The ``threading.Event`` API (``set``, ``clear``, ``is_set``, ``wait``) across processes.

    Pass it to the worker in the ``Process`` arguments (shared memory is inherited at
    spawn); ``wait`` polls every :data:`POLL_S` seconds.
    """

    def __init__(self, context: Any = None) -> None:
        context = context or multiprocessing.get_context("spawn")
        self._value = context.RawValue(ctypes.c_bool, False)

    def set(self) -> None:
        self._value.value = True

    def clear(self) -> None:
        self._value.value = False

    def is_set(self) -> bool:
        return bool(self._value.value)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or ``timeout`` seconds passed; True if it is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._value.value:
            if deadline is None:
                time.sleep(POLL_S)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(POLL_S, left))
        return True

    def __repr__(self) -> str:
        return f"SharedFlag({'set' if self.is_set() else 'clear'})"
