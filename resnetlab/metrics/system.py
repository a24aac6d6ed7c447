"""One system sampler, one key vocabulary: CPU, RAM and (when present) NVIDIA GPU usage.

Both the live :class:`~resnetlab.live.monitor.SystemMonitor` (keys ``sys/<measure>``) and
the per-rank callback under torchrun (keys ``rank<r>/<measure>``) sample through
:class:`SystemSampler`, so a measure has one name wherever it is shown or stored.
Measures (a ``/<i>`` suffix: per CPU core or per GPU ``i``):

========================  =====================================================
``cpu_percent``           host CPU busy %, all cores (``cpu_percent/<i>`` per core)
``proc_cpu_percent``      this process (can exceed 100 with several threads)
``ram_percent``           host RAM in use, %
``ram_used_gb``           host RAM in use (total - available), GiB
``ram_available_gb``      host RAM available, GiB
``rss_gb``                this process's resident memory, GiB
``gpu_util_percent``      GPU utilisation % (nvidia-ml-py)
``gpu_mem_used_gb``       GPU memory in use on the device, all processes (nvidia-ml-py)
``gpu_mem_total_gb``      GPU memory of the device (nvidia-ml-py)
``gpu_temp_c``            GPU temperature, °C (nvidia-ml-py)
``gpu_power_w``           GPU power draw, W (nvidia-ml-py)
``gpu_mem_gb``            peak CUDA memory this process allocated (``torch.cuda``)
``gpu_alloc_gb``          CUDA memory this process has allocated now (``torch.cuda``)
``gpu_reserved_gb``       CUDA memory held by this process's caching allocator
========================  =====================================================

No GPU, no driver or no nvidia-ml-py: the GPU measures are simply absent. The
``torch.cuda`` measures appear only when torch is already imported (a sample never pays
for importing it).

Imports only the standard library here; psutil and nvidia-ml-py when a sampler is made.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from typing import Any

logger = logging.getLogger(__name__)

GB = 1024**3

# The vocabulary: every measure a sampler writes (the table above), by name.
MEASURES: dict[str, str] = {
    "cpu_percent": "host CPU busy %, all cores (per core: cpu_percent/<i>)",
    "proc_cpu_percent": "this process's CPU % (can exceed 100)",
    "ram_percent": "host RAM in use, %",
    "ram_used_gb": "host RAM in use, GiB",
    "ram_available_gb": "host RAM available, GiB",
    "rss_gb": "this process's resident memory, GiB",
    "gpu_util_percent": "GPU utilisation %",
    "gpu_mem_used_gb": "GPU memory in use on the device, GiB",
    "gpu_mem_total_gb": "GPU memory of the device, GiB",
    "gpu_temp_c": "GPU temperature, degrees C",
    "gpu_power_w": "GPU power draw, W",
    "gpu_mem_gb": "peak CUDA memory this process allocated, GiB",
    "gpu_alloc_gb": "CUDA memory this process has allocated now, GiB",
    "gpu_reserved_gb": "CUDA memory held by this process's caching allocator, GiB",
}

# What each rank of a torchrun job reports at every epoch end (one short line per rank).
RANK_MEASURES = ("cpu_percent", "ram_percent", "gpu_mem_gb", "gpu_util_percent")


class _Nvml:
    """nvidia-ml-py handles, or nothing when there is no usable NVIDIA driver."""

    def __init__(self) -> None:
        self.pynvml: Any = None
        self.handles: list[Any] = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self.pynvml = pynvml
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded...
            logger.debug("no NVIDIA GPU metrics: %s", exc)

    def sample(self, index: int) -> dict[str, float]:
        """The NVML measures of GPU ``index`` (those its driver answers)."""
        nv, out = self.pynvml, {}
        if nv is None or not 0 <= index < len(self.handles):
            return out
        h = self.handles[index]
        with contextlib.suppress(nv.NVMLError):
            out["gpu_util_percent"] = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
        with contextlib.suppress(nv.NVMLError):
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            out["gpu_mem_used_gb"] = mem.used / GB
            out["gpu_mem_total_gb"] = mem.total / GB
        with contextlib.suppress(nv.NVMLError):
            out["gpu_temp_c"] = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
        with contextlib.suppress(nv.NVMLError):
            out["gpu_power_w"] = nv.nvmlDeviceGetPowerUsage(h) / 1000.0
        return out

    def close(self) -> None:
        if self.pynvml is not None:
            with contextlib.suppress(Exception):
                self.pynvml.nvmlShutdown()
            self.pynvml = None


def gpu_count() -> int:
    """How many NVIDIA GPUs NVML sees here (0 without driver or nvidia-ml-py)."""
    nv = _Nvml()
    try:
        return len(nv.handles)
    finally:
        nv.close()


# Shortest interval a process CPU % is measured over (see SystemSampler._proc_percent).
MIN_PROC_INTERVAL_S = 0.2


def _proc_cpu_seconds(proc: Any) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _busy(prev: Any, cur: Any) -> float:
    """CPU busy % between two ``psutil`` cpu_times samples (as ``psutil.cpu_percent``)."""
    idle = ("idle", "iowait")
    guest = ("guest", "guest_nice")  # already counted in user/nice on Linux
    total = sum(getattr(cur, f) - getattr(prev, f) for f in cur._fields if f not in guest)
    rest = sum(getattr(cur, f, 0.0) - getattr(prev, f, 0.0) for f in idle)
    return 0.0 if total <= 0 else min(max(100.0 * (total - rest) / total, 0.0), 100.0)


def _cuda_sample(index: int) -> dict[str, float]:
    """This process's ``torch.cuda`` memory on GPU ``index``; nothing if torch is not loaded."""
    torch = sys.modules.get("torch")  # only if the user already paid for importing it
    out: dict[str, float] = {}
    if torch is None:
        return out
    with contextlib.suppress(Exception):
        if torch.cuda.is_available() and index < torch.cuda.device_count():
            out["gpu_mem_gb"] = torch.cuda.max_memory_allocated(index) / GB
            out["gpu_alloc_gb"] = torch.cuda.memory_allocated(index) / GB
            out["gpu_reserved_gb"] = torch.cuda.memory_reserved(index) / GB
    return out


def _cuda_utilization(index: int) -> float | None:
    """GPU % of CUDA device ``index`` via ``torch.cuda`` (it maps CUDA_VISIBLE_DEVICES to
    NVML's numbering itself; needs nvidia-ml-py); None when it cannot say."""
    torch = sys.modules.get("torch")
    try:
        return None if torch is None else float(torch.cuda.utilization(index))
    except Exception:
        return None


def _cuda_count() -> int:
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            return int(torch.cuda.device_count())
    return 0


class SystemSampler:
    """Samples the measures of the module docstring; CPU % is measured between calls.

    Each sampler keeps its own CPU counters, so two samplers in one process (a live
    monitor and the per-rank callback) do not shorten each other's interval. The first
    sample covers the time since the sampler was made. ``close()`` releases NVML.
    """

    def __init__(self, *, gpus: bool = True) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process(os.getpid())
        self._last_proc = (time.monotonic(), _proc_cpu_seconds(self._proc))
        self._last_total = psutil.cpu_times()
        self._last_cores = psutil.cpu_times(percpu=True)
        self._nvml = _Nvml() if gpus else None

    def host(self, *, per_core: bool = False) -> dict[str, float]:
        """CPU, RAM and this process's CPU/RSS (per-core CPU too with ``per_core``)."""
        ps = self._psutil
        total = ps.cpu_times()
        out = {"cpu_percent": _busy(self._last_total, total)}
        self._last_total = total
        if per_core:
            cores = ps.cpu_times(percpu=True)
            for i, (prev, cur) in enumerate(zip(self._last_cores, cores, strict=False)):
                out[f"cpu_percent/{i}"] = _busy(prev, cur)
            self._last_cores = cores
        out["proc_cpu_percent"] = self._proc_percent()
        vm = ps.virtual_memory()
        out["ram_percent"] = float(vm.percent)
        out["ram_used_gb"] = (vm.total - vm.available) / GB
        out["ram_available_gb"] = vm.available / GB
        out["rss_gb"] = self._proc.memory_info().rss / GB
        return out

    def _proc_percent(self) -> float:
        """This process's CPU % since the last call (since it started, over a shorter
        interval than MIN_PROC_INTERVAL_S).

        The kernel counts process CPU time in clock ticks (10 ms): over a few milliseconds
        one tick reads as ~1000%, which is what ``psutil``'s own first call gave."""
        now, cpu = time.monotonic(), _proc_cpu_seconds(self._proc)
        then, before = self._last_proc
        if now - then >= MIN_PROC_INTERVAL_S:
            self._last_proc = (now, cpu)
        else:  # too short to measure: the average over the process's life
            lifetime = time.time() - self._proc.create_time()
            then, before = now - max(lifetime, MIN_PROC_INTERVAL_S), 0.0
        limit = 100.0 * (os.cpu_count() or 1)
        return min(max(100.0 * (cpu - before) / (now - then), 0.0), limit)

    def gpu(self, index: int) -> dict[str, float]:
        """The measures of GPU ``index``: NVML (device-wide) and ``torch.cuda`` (this process)."""
        out = self._nvml.sample(index) if self._nvml is not None else {}
        out.update(_cuda_sample(index))
        return out

    def gpu_indices(self) -> range:
        nvml = len(self._nvml.handles) if self._nvml is not None else 0
        return range(max(nvml, _cuda_count()))

    def sample(self) -> dict[str, float]:
        """Everything: host measures per core, and every GPU's measures as ``<measure>/<i>``."""
        out = self.host(per_core=True)
        for i in self.gpu_indices():
            out.update({f"{key}/{i}": value for key, value in self.gpu(i).items()})
        return out

    def rank_sample(self, cuda_index: int | None = None) -> dict[str, float]:
        """The :data:`RANK_MEASURES` of this host and of its rank's GPU ``cuda_index``."""
        out = self.host()
        if cuda_index is not None:
            out.update(_cuda_sample(cuda_index))
            util = _cuda_utilization(cuda_index)
            if util is not None:
                out["gpu_util_percent"] = util
        return {key: out[key] for key in RANK_MEASURES if key in out}

    def close(self) -> None:
        if self._nvml is not None:
            self._nvml.close()

    def __enter__(self) -> SystemSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
