"""One system sampler, one vocabulary: the live monitor, the per-rank callback, the panels."""

from __future__ import annotations

import fnmatch
import re
import sys
import threading
import time

import psutil

from resnetlab.live.monitor import sample_system
from resnetlab.live.panels import PRESETS
from resnetlab.metrics.system import (
    MEASURES,
    MIN_PROC_INTERVAL_S,
    RANK_MEASURES,
    SystemSampler,
    gpu_count,
)

HOST = {"cpu_percent", "proc_cpu_percent", "ram_percent", "ram_used_gb", "ram_available_gb"}


def test_the_sampler_measures_this_host_under_the_documented_names():
    with SystemSampler() as sampler:
        out = sampler.sample()
    assert HOST | {"rss_gb"} <= set(out)
    cores = [k for k in out if k.startswith("cpu_percent/")]
    assert len(cores) == psutil.cpu_count()
    assert all(0.0 <= out[k] <= 100.0 for k in ["cpu_percent", "ram_percent", *cores])
    assert {k.split("/")[0] for k in out} <= set(MEASURES)  # one vocabulary
    gpu = [k for k in out if k.startswith("gpu_")]
    assert all(k.rsplit("/", 1)[-1].isdigit() for k in gpu)  # one series per GPU
    if gpu_count() == 0:  # no NVML: no device-wide measures
        assert not [k for k in gpu if k.startswith(("gpu_util", "gpu_mem_used", "gpu_temp"))]


def test_the_rank_sample_uses_the_same_names_and_only_the_rank_measures():
    with SystemSampler(gpus=False) as sampler:
        sample = sampler.rank_sample(None)
    assert set(sample) == {"cpu_percent", "ram_percent"}
    assert set(sample) <= set(RANK_MEASURES)


def test_two_samplers_do_not_shorten_each_others_cpu_interval():
    stop = threading.Event()

    def burn():
        while not stop.is_set():
            sum(i * i for i in range(10_000))

    me = psutil.Process()
    a, b = SystemSampler(gpus=False), SystemSampler(gpus=False)
    t0, c0 = time.monotonic(), sum(me.cpu_times()[:2])
    t = threading.Thread(target=burn, daemon=True)
    t.start()
    try:
        # b samples often; a's one reading still covers the whole time since a was made.
        while time.monotonic() - t0 < 5 * MIN_PROC_INTERVAL_S:
            b.host()
        busy = a.host()["proc_cpu_percent"]
        t1, c1 = time.monotonic(), sum(me.cpu_times()[:2])
        recent = b.host()["proc_cpu_percent"]  # b's own, short interval
    finally:
        stop.set()
        t.join()
    expected = 100.0 * (c1 - c0) / (t1 - t0)
    assert abs(busy - expected) <= 0.2 * expected + 2.0, (busy, expected, recent)


def test_every_system_panel_reads_keys_the_monitor_writes():
    keys = list(sample_system())
    assert all(k.startswith("sys/") for k in keys)
    panels = ["cpu", "ram"] + (["gpu", "vram"] if gpu_count() else [])
    for name in panels:
        patterns = PRESETS[name].keys
        assert any(fnmatch.fnmatchcase(k, p) for k in keys for p in patterns), name
    for name in ("cpu", "ram", "gpu", "vram"):  # and never a key no sampler writes
        for pattern in PRESETS[name].keys:
            measure = pattern.removeprefix("sys/").split("/")[0]
            assert measure in MEASURES, (name, pattern)


def test_the_documented_table_lists_the_vocabulary():
    import resnetlab.metrics.system as system

    documented = set(re.findall(r"^``(\w+)``  ", system.__doc__, re.M))  # the table's rows
    assert documented == set(MEASURES)
    assert set(RANK_MEASURES) <= set(MEASURES)


class _FakeCuda:
    """torch.cuda as a CPU-only machine cannot show it: two devices, 1 and 2 GiB in use."""

    @staticmethod
    def is_available():
        return True

    @staticmethod
    def device_count():
        return 2

    @staticmethod
    def max_memory_allocated(i):
        return (i + 1) * 2 * 1024**3

    @staticmethod
    def memory_allocated(i):
        return (i + 1) * 1024**3

    @staticmethod
    def memory_reserved(i):
        return (i + 1) * 3 * 1024**3

    @staticmethod
    def utilization(i):
        return 40 + i


def test_cuda_measures_per_gpu_for_the_monitor_and_for_a_rank(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=_FakeCuda))
    with SystemSampler(gpus=False) as sampler:
        out = sampler.sample()
        rank = sampler.rank_sample(1)
    assert out["gpu_alloc_gb/0"] == 1.0 and out["gpu_alloc_gb/1"] == 2.0
    assert out["gpu_mem_gb/1"] == 4.0 and out["gpu_reserved_gb/0"] == 3.0
    assert rank == {
        "cpu_percent": rank["cpu_percent"],
        "ram_percent": rank["ram_percent"],
        "gpu_mem_gb": 4.0,  # the peak, as the per-rank lines always showed
        "gpu_util_percent": 41.0,
    }
    keys = [f"sys/{k}" for k in out]
    assert any(fnmatch.fnmatchcase(k, p) for k in keys for p in PRESETS["vram"].keys)


def test_the_process_cpu_of_a_fresh_sampler_is_never_a_clock_tick_artefact():
    # psutil's first reading over a few milliseconds counted one 10 ms tick as ~1000%.
    limit = 100.0 * psutil.cpu_count()
    readings = []
    for _ in range(20):
        with SystemSampler(gpus=False) as sampler:
            readings.append(sampler.host()["proc_cpu_percent"])
    assert all(0.0 <= r <= limit for r in readings), readings
