"""MetricStream extensions: decimation and windowed series (feeds and mirrors: tests/metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from resnetlab.metrics.decimate import minmax_decimate
from resnetlab.metrics.stream import MetricStream


def test_decimation_keeps_extremes_and_ends():
    rng = np.random.default_rng(0)
    x = np.arange(1_000_000, dtype=float)
    y = rng.normal(size=x.size)
    y[123_457] = 50.0  # a spike a mean-based downsampler would flatten
    y[777_777] = -40.0
    y[500_000] = np.nan  # a NaN step must not hide its bucket's extremes
    xs, ys = minmax_decimate(x, y, 500)
    assert xs.size <= 1004
    assert np.nanmax(ys) == 50.0 and np.nanmin(ys) == -40.0
    assert xs[0] == 0 and xs[-1] == x[-1]
    assert np.all(np.diff(xs) > 0)  # still a line in x order
    # every bucket's extremes survive: compare per-bucket max with the original
    size = x.size // 500
    for b in (0, 123_457 // size, 499):
        chunk = y[b * size : (b + 1) * size]
        inside = ys[(xs >= b * size) & (xs < (b + 1) * size)]
        assert np.nanmax(inside) == np.nanmax(chunk)


def test_decimation_leaves_short_series_alone():
    x = np.arange(10.0)
    xs, ys = minmax_decimate(x, x**2, 10)
    np.testing.assert_array_equal(ys, x**2)
    with pytest.raises(ValueError):
        minmax_decimate(x, x, 0)


def test_series_window_and_max_points():
    s = MetricStream()
    for i in range(5000):
        s.log(i, loss=float(i % 100))
    xs, ys = s.series("loss", since=4000)
    assert xs[0] == 4000 and xs.size == 1000
    xs, ys = s.series("loss", max_points=200)
    assert xs.size <= 200 and ys.max() == 99 and ys.min() == 0
    assert s.series_length("loss") == 5000 and s.series_length("nope") == 0
