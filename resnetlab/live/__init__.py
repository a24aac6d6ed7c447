"""Live view of training: metric stream, system monitor, dashboard and its drivers.

    from resnetlab.live import Dashboard, MetricStream, SystemMonitor, log, live_dashboard

Names are imported lazily so ``import resnetlab.live`` does not import matplotlib.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

_LAZY = {
    "MetricStream": "resnetlab.metrics.stream:MetricStream",
    "StreamReader": "resnetlab.metrics.stream:StreamReader",
    "QueueFeed": "resnetlab.metrics.transport:QueueFeed",
    "Record": "resnetlab.metrics.stream:Record",
    "default_stream": "resnetlab.metrics.stream:default_stream",
    "log": "resnetlab.metrics.stream:log",
    "minmax_decimate": "resnetlab.metrics.decimate:minmax_decimate",
    "SystemMonitor": "resnetlab.live.monitor:SystemMonitor",
    "sample_system": "resnetlab.live.monitor:sample_system",
    "Dashboard": "resnetlab.live.dashboard:Dashboard",
    "Panel": "resnetlab.live.panels:Panel",
    "PRESETS": "resnetlab.live.panels:PRESETS",
    "live_dashboard": "resnetlab.live.session:live_dashboard",
    "LiveSession": "resnetlab.live.session:LiveSession",
    "pick_backend": "resnetlab.live.backends:pick_backend",
    "list_backends": "resnetlab.live.backends:list_backends",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
