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

    def burn():  # make this process use CPU so proc_cpu_percent must be > 0
        while not stop.is_set():
            sum(i * i for i in range(10_000))

    t = threading.Thread(target=burn, daemon=True)
    t.start()
    try:
        with SystemMonitor(stream, interval=0.2) as mon:
            deadline = time.monotonic() + 30  # six samples: ~1.2 s, longer when loaded
            while stream.series_length("sys/cpu_percent") < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    assert not mon.running
    assert mon.samples >= 6
    n = stream.series_length("sys/cpu_percent")
    time.sleep(0.4)
    assert stream.series_length("sys/cpu_percent") == n  # really stopped
    _, proc_cpu = stream.series("sys/proc_cpu_percent")
    assert proc_cpu.max() > 10  # the busy thread shows up
    keys = stream.keys()
    cores = [k for k in keys if k.startswith("sys/cpu_percent/")]
    assert len(cores) == psutil.cpu_count()
    rss = stream.last("sys/rss_gb") * 1024**3
    assert abs(rss - psutil.Process(os.getpid()).memory_info().rss) < 200 * 1024**2
    total = psutil.virtual_memory().total / 1024**3
    used, avail = stream.last("sys/ram_used_gb"), stream.last("sys/ram_available_gb")
    assert 0 < used < total and 0 < avail < total
    assert abs(used + avail - total) < 0.01 * total
    # sampled again and again at about the asked 0.2 s (not the default 1 s); the median
    # gap, so one late sample on a loaded machine does not matter
    times, _ = stream.series("sys/cpu_percent", x="time")
    assert 0.1 < float(np.median(np.diff(times))) < 0.8, np.diff(times)


def test_no_gpu_means_no_gpu_keys_and_no_error():
    stream = MetricStream()
    with SystemMonitor(stream, interval=0.1):
        time.sleep(0.35)
    keys = stream.keys()
    gpu_keys = [k for k in keys if k.startswith("sys/gpu_")]
    if gpu_count() == 0:
        assert gpu_keys == []
    else:
        assert any(k.startswith("sys/gpu_util_percent/") for k in gpu_keys)


def test_monitor_rejects_bad_interval():
    import pytest

    from resnetlab.errors import ConfigError

    with pytest.raises(ConfigError, match="interval"):
        SystemMonitor(MetricStream(), interval=0)


def test_samples_carry_the_step_the_stream_has_reached():
    stream = MetricStream()
    with SystemMonitor(stream, interval=0.05):
        assert stream.wait(0, timeout=30)  # a first sample, before any training record
        stream.append(42, {"loss": 1.0})
        deadline = time.monotonic() + 30
        while stream.series("sys/cpu_percent")[0][-1] != 42 and time.monotonic() < deadline:
            stream.wait(len(stream), timeout=1.0)
    steps, _ = stream.series("sys/cpu_percent")
    assert steps[0] == 0  # nothing to line up with yet
    assert steps[-1] == 42  # stored with a run, it sits at that run's step
    assert set(steps.tolist()) <= {0.0, 42.0}
