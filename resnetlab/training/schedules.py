"""Learning-rate schedules as pure functions of the global step.

A schedule maps ``step`` (0-based optimiser steps) to a multiplier of the peak LR. Being
a pure function, it needs no state in checkpoints: resuming at step ``s`` gives exactly
the LR the uninterrupted run had at ``s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from resnetlab.errors import ConfigError

Schedule = Callable[[int], float]


def constant(total_steps: int) -> Schedule:
    """The same LR throughout."""
    return lambda step: 1.0


def one_cycle(
    total_steps: int, warmup: float = 0.25, start: float = 0.04, end: float = 1e-3
) -> Schedule:
    """Linear rise from ``start`` to 1 over ``warmup`` of training, then linear decay to ``end``.

    The triangular shape (as in airbench / Smith's one-cycle) reaches a good accuracy in
    few epochs and ends on a tiny LR, so the last weights are the good ones.
    """
    peak_at = max(1, round(warmup * total_steps))

    def f(step: int) -> float:
        if step < peak_at:
            return start + (1.0 - start) * step / peak_at
        frac = (step - peak_at) / max(1, total_steps - peak_at)
        return max(end, 1.0 + (end - 1.0) * min(frac, 1.0))

    return f


def cosine(total_steps: int, warmup: float = 0.05, end: float = 0.0) -> Schedule:
    """Linear warm-up over ``warmup`` of training, then half a cosine down to ``end``."""
    warm = round(warmup * total_steps)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        frac = min(1.0, (step - warm) / max(1, total_steps - warm))
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * frac))

    return f


def step_decay(
    total_steps: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
    warmup: float = 0.0,
) -> Schedule:
    """The ResNet papers' schedule: divide by 10 at 50% and 75% of training.

    He et al. train CIFAR for 64k iterations and divide at 32k and 48k; with ``warmup`` > 0
    the LR is 0.1x until then (their trick for the 1001-layer net).
    """
    bounds = sorted(round(m * total_steps) for m in milestones)
    warm = round(warmup * total_steps)

    def f(step: int) -> float:
        if step < warm:
            return 0.1
        return gamma ** sum(step >= b for b in bounds)

    return f


def build_schedule(
    name: str,
    total_steps: int,
    *,
    warmup: float | None = None,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
) -> Schedule:
    """The schedule called ``name`` for a run of ``total_steps`` optimiser steps."""
    if total_steps < 1:
        raise ConfigError(
            f"schedule {name!r}: total_steps={total_steps} must be at least 1 "
            "(the training set is empty or smaller than one batch)"
        )
    if name == "onecycle":
        return one_cycle(total_steps, warmup=0.25 if warmup is None else warmup)
    if name == "cosine":
        return cosine(total_steps, warmup=0.05 if warmup is None else warmup)
    if name == "step":
        return step_decay(total_steps, milestones, gamma, warmup=warmup or 0.0)
    if name == "constant":
        return constant(total_steps)
    raise ConfigError(f"unknown schedule {name!r}; choose onecycle, cosine, step or constant")


def with_restarts(
    make: Callable[[int], Schedule], restarts: Sequence[int], total_steps: int
) -> Schedule:
    """A schedule in segments: ``make(n)`` over each segment of ``n`` steps, started anew
    at each step of ``restarts`` (increasing, inside ``(0, total_steps)``).

    How an extended run continues (``resnetlab train --resume RUN --epochs MORE``): its
    first epochs keep the schedule they were trained with, the added ones get a schedule
    of their own, as SGDR's warm restarts do.
    """
    edges = [0, *restarts, total_steps]
    parts = [
        (start, make(max(1, end - start))) for start, end in zip(edges[:-1], edges[1:], strict=True)
    ]

    def f(step: int) -> float:
        for start, part in reversed(parts):
            if step >= start:
                return part(step - start)
        return parts[0][1](step)

    return f
