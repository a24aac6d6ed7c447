"""Decimation for drawing: fewer points, same picture.

A line plot of a million points is rendered into a few hundred pixel columns; all that a
column shows is the range between the lowest and highest value that falls into it. So
keeping, per bucket of consecutive points, the first-occurring of (min, max) in order
gives the same picture from ``2 * buckets`` points, and spikes (a loss blow-up, a NaN
step) are never smoothed away. Cost: one reshape and two arg-reductions, O(n) in numpy.
"""

from __future__ import annotations

import numpy as np


def minmax_decimate(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """About ``2 * buckets`` points (at most 4 more) of ``(x, y)``, keeping bucket extremes.

    Buckets hold equal numbers of consecutive points (for evenly spaced steps that is
    one pixel column each when ``buckets`` is the axes width in pixels). The first and
    last points are always kept, so the line spans the same x range. NaNs are ignored
    when choosing extremes; an all-NaN bucket keeps its first point (a visible gap).
    """
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    if n <= 2 * buckets:
        return x.copy(), y.copy()
    size = n // buckets  # points per bucket; the remainder joins the last bucket
    body = size * buckets
    if np.isnan(y).any():  # NaNs never win: the extremes are of the finite values
        lo_src, hi_src = np.where(np.isnan(y), np.inf, y), np.where(np.isnan(y), -np.inf, y)
    else:  # the usual case: no copies of a million values
        lo_src = hi_src = y
    lo = lo_src[:body].reshape(buckets, size).argmin(axis=1)
    hi = hi_src[:body].reshape(buckets, size).argmax(axis=1)
    offsets = np.arange(buckets) * size
    idx = [offsets + lo, offsets + hi]
    if body < n:  # tail shorter than a bucket: keep its extremes too
        tail_lo = body + int(lo_src[body:].argmin())
        tail_hi = body + int(hi_src[body:].argmax())
        idx.append(np.array([tail_lo, tail_hi]))
    keep = np.unique(np.concatenate([*idx, [0, n - 1]]))
    return x[keep], y[keep]
