"""Module-level functions for the fault tests' process jobs (a spawned worker imports them)."""

from __future__ import annotations

import time


def exit_after(seconds: float) -> str:
    """Return after ``seconds``: a job whose kill may land just before, at or after its exit."""
    if seconds > 0:
        time.sleep(seconds)
    return "done"


def sleep_forever() -> None:
    """Say so, then sleep until killed (SIGTERM ends it at once: SystemExit in the sleep)."""
    print("sleeping", flush=True)
    while True:
        time.sleep(0.01)
