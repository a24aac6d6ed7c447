"""SystemMonitor samples real values from this machine."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import psutil

from resnetlab.live.monitor import SystemMonitor, gpu_count
from resnetlab.metrics.stream import MetricStream


def test_monitor_samples_real_cpu_ram_and_rss():
    stream = MetricStream()
    stop = threading.Event()

    def burn():  # make this process use CPU so proc_cpu must be > 0
        while not stop.is_set():
            sum(i * i for i in range(10_000))

    t = threading.Thread(target=burn, daemon=True)
    t.start()
    try:
        with SystemMonitor(stream, interval=0.2) as mon:
            deadline = time.monotonic() + 30  # six samples: ~1.2 s, longer when loaded
            while stream.series_length("sys/cpu") < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    assert not mon.running
    assert mon.samples >= 6
    n = stream.series_length("sys/cpu")
    time.sleep(0.4)
    assert stream.series_length("sys/cpu") == n  # really stopped
    _, proc_cpu = stream.series("sys/proc_cpu")
    assert proc_cpu.max() > 10  # the busy thread shows up
    keys = stream.keys()
    cores = [k for k in keys if k.startswith("sys/cpu/")]
    assert len(cores) == psutil.cpu_count()
    rss = stream.last("sys/rss_gb") * 1024**3
    assert abs(rss - psutil.Process(os.getpid()).memory_info().rss) < 200 * 1024**2
    total = psutil.virtual_memory().total / 1024**3
    used, avail = stream.last("sys/ram_used_gb"), stream.last("sys/ram_available_gb")
    assert 0 < used < total and 0 < avail < total
    assert abs(used + avail - total) < 0.01 * total
    # sampled again and again at about the asked 0.2 s (not the default 1 s); the median
    # gap, so one late sample on a loaded machine does not matter
    times, _ = stream.series("sys/cpu", x="time")
    assert 0.1 < float(np.median(np.diff(times))) < 0.8, np.diff(times)


def test_no_gpu_means_no_gpu_keys_and_no_error():
    stream = MetricStream()
    with SystemMonitor(stream, interval=0.1):
        time.sleep(0.35)
    keys = stream.keys()
    gpu_keys = [k for k in keys if k.startswith(("gpu/", "cuda/"))]
    if gpu_count() == 0:
        assert gpu_keys == []
    else:
        assert any(k.endswith("/util") for k in gpu_keys)


def test_monitor_rejects_bad_interval():
    import pytest

    from resnetlab.errors import ConfigError

    with pytest.raises(ConfigError, match="interval"):
        SystemMonitor(MetricStream(), interval=0)
