"""The background draw loop: refresh, draw when something moved, and keep within a budget.

Drawing competes with training for the CPU. The loop therefore measures what a refresh
and draw cost (also rendering the driver does on another thread, ``render_seconds``) and
waits long enough that drawing takes at most ``draw_budget`` of wall time. The cost is
the drawing thread's CPU time, not its wall time: in a kernel whose training thread holds
the GIL most of the time, a draw spends much of its wall time waiting for the GIL, which
costs training nothing; counting that wait would slow the picture for no gain: a slow draw
(many panels, a busy machine) lowers the rate instead of slowing training. It never
waits longer than :data:`MAX_DRAW_GAP` between refreshes, nor less than ``1 / rate_hz``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from resnetlab.live.drivers.base import Driver

logger = logging.getLogger(__name__)

# The background loop refreshes at least this often (seconds), whatever the draw budget.
MAX_DRAW_GAP = 5.0
# Refreshes that fail in a row before the loop gives up (and its task holds the error).
MAX_FAILURES = 5


class Scheduled(Protocol):
    """What the loop drives (a Dashboard)."""

    rate_hz: float  # wanted refreshes per second; read every round, so it can change
    draw_budget: float  # share of wall time drawing may take, in (0, 1]
    driver: Driver | None
    error: BaseException | None  # the last refresh error, for the user to inspect

    def refresh(self) -> bool:
        """Move artists to the newest data; True if anything changed."""

    def draw(self) -> None:
        """Draw through the driver."""


class DrawBudget:
    """The pause before the next refresh, from a smoothed cost of the last ones."""

    def __init__(self) -> None:
        self.cost: float | None = None

    def pause(self, spent: float, rate_hz: float, budget: float) -> float:
        """Seconds from the start of this round to the next, after one that took ``spent``.

        A smoothed cost, so one slow draw (the first layout, a busy moment) does not stall
        the picture.
        """
        self.cost = spent if self.cost is None else 0.7 * self.cost + 0.3 * spent
        return min(max(1.0 / rate_hz, self.cost * (1 / budget - 1)), MAX_DRAW_GAP)


def _render_seconds(target: Scheduled) -> float:
    return target.driver.render_seconds if target.driver is not None else 0.0


def _round(target: Scheduled) -> None:
    # pending: a driver that postponed a draw (Agg between snapshots) gets it once more,
    # also when no new data arrived meanwhile.
    if target.refresh() or (target.driver is not None and target.driver.pending):
        target.draw()


async def refresh_loop(target: Scheduled) -> None:
    """Refresh and draw ``target`` until cancelled (or :data:`MAX_FAILURES` errors in a row)."""
    loop = asyncio.get_running_loop()
    budget = DrawBudget()
    next_at = loop.time()
    failures = 0
    rendered = _render_seconds(target)
    while True:
        began = time.thread_time()  # this thread's CPU time (see the module docstring)
        try:
            _round(target)
            failures = 0
        except Exception as exc:
            target.error = exc
            failures += 1
            logger.exception("dashboard refresh failed (%d in a row)", failures)
            if failures >= MAX_FAILURES:
                raise
        now = loop.time()
        # Rendering a driver does on another thread (the WebAgg server's loop) counts too.
        before, rendered = rendered, _render_seconds(target)
        spent = time.thread_time() - began + max(rendered - before, 0.0)
        pause = budget.pause(spent, target.rate_hz, target.draw_budget)
        next_at = max(next_at + 1.0 / target.rate_hz, now + pause - spent)
        await asyncio.sleep(max(next_at - loop.time(), 0.0))
