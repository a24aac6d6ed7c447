"""Metric records and how they travel: the stream (the seam), its codec, system samples.

    from resnetlab.metrics import MetricStream, log

Imports only ``resnetlab.errors`` and ``resnetlab.utils``: every other layer may use it.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

_LAZY = {
    "MetricStream": "resnetlab.metrics.stream:MetricStream",
    "StreamReader": "resnetlab.metrics.stream:StreamReader",
    "Record": "resnetlab.metrics.stream:Record",
    "default_stream": "resnetlab.metrics.stream:default_stream",
    "log": "resnetlab.metrics.stream:log",
    "minmax_decimate": "resnetlab.metrics.decimate:minmax_decimate",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
