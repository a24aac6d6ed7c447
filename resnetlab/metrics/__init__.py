"""Metric records and how they travel: the stream (the seam), its codec, system samples.

    from resnetlab.metrics import MetricStream, log

Modules: ``stream`` (MetricStream, the seam), ``transport`` (the one record codec, feed and
mirror across threads and processes), ``system`` (the one system sampler and its key
vocabulary), ``decimate``. Imports only ``resnetlab.errors`` and ``resnetlab.utils``:
every other layer may use it.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

_LAZY = {
    "MetricStream": "resnetlab.metrics.stream:MetricStream",
    "StreamReader": "resnetlab.metrics.stream:StreamReader",
    "Record": "resnetlab.metrics.stream:Record",
    "default_stream": "resnetlab.metrics.stream:default_stream",
    "log": "resnetlab.metrics.stream:log",
    "make_record": "resnetlab.metrics.stream:make_record",
    "minmax_decimate": "resnetlab.metrics.decimate:minmax_decimate",
    "QueueFeed": "resnetlab.metrics.transport:QueueFeed",
    "FeedPump": "resnetlab.metrics.transport:FeedPump",
    "StreamMirror": "resnetlab.metrics.transport:StreamMirror",
    "SystemSampler": "resnetlab.metrics.system:SystemSampler",
}

__all__ = list(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
