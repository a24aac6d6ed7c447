"""Small workers for the examples and docs (importable, so process jobs can run them)."""

from __future__ import annotations

import math

from resnetlab import jobs


def spin(report_every: float = 0.1) -> int:
    """A CPU-bound worker: computes, prints a heartbeat and logs a metric until stopped.

    Run it as ``jobs.new(spin, kind="process")``; end it with ``jobs.stop(id)`` (it
    checks the stop flag between reports) or ``job.kill()`` (it does not have to).
    """
    me = jobs.current()
    rounds = 0
    total = 0.0
    while me is None or not me.stopping:
        for i in range(20_000):  # busy work between two checks
            total += math.sin(i)
        rounds += 1
        print(f"spin: round {rounds}")
        if me is not None:
            me.log(rounds, total=total)
            if me.sleep(report_every):
                break
    return rounds
