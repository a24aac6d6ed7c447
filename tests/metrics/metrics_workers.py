"""Module-level work for the process jobs of the transport tests (spawn imports it by name)."""

from __future__ import annotations

from resnetlab import jobs


def logs_then_a_bad_value(n: int) -> None:
    """Log ``n`` good records, then one whose value is not a number."""
    ctx = jobs.current()
    for i in range(n):
        ctx.log(i, loss=1.0 / (i + 1))
    ctx.append(n, {"loss": None}, epoch=0)
