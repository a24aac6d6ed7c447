"""SystemMonitor: CPU, RAM and (when present) NVIDIA GPU usage sampled into a MetricStream.

The sampler is one asyncio task in a background loop, so it costs nothing between
samples and never blocks a notebook cell. Keys it appends (x is wall-clock time; the
step is the sample number):

* ``sys/cpu`` total CPU %, ``sys/cpu/<i>`` per core, ``sys/proc_cpu`` this process
  (can exceed 100 with several threads), ``sys/ram_used_gb``, ``sys/ram_available_gb``,
  ``sys/ram_percent``, ``sys/rss_gb`` (this process).
* per NVIDIA GPU ``i`` via nvidia-ml-py: ``gpu/<i>/util``, ``gpu/<i>/mem_used_gb``,
  ``gpu/<i>/mem_total_gb``, ``gpu/<i>/temp_c``, ``gpu/<i>/power_w``.
* when torch is already imported and CUDA is available: ``cuda/<i>/allocated_gb`` and
  ``cuda/<i>/reserved_gb`` (this process's caching allocator).

No GPU, no driver or no nvidia-ml-py: the GPU keys are simply absent.

    with SystemMonitor(interval=1.0) as mon:   # "watch my machine while I do anything"
        ...
    mon.stream.series("sys/cpu", x="time")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from resnetlab.metrics.stream import MetricStream, default_stream
from resnetlab.runtime.loop import BackgroundLoop

logger = logging.getLogger(__name__)

GB = 1024**3


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

    def sample(self, out: dict[str, float]) -> None:
        nv = self.pynvml
        if nv is None:
            return
        for i, h in enumerate(self.handles):
            with contextlib.suppress(nv.NVMLError):
                out[f"gpu/{i}/util"] = float(nv.nvmlDeviceGetUtilizationRates(h).gpu)
            with contextlib.suppress(nv.NVMLError):
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                out[f"gpu/{i}/mem_used_gb"] = mem.used / GB
                out[f"gpu/{i}/mem_total_gb"] = mem.total / GB
            with contextlib.suppress(nv.NVMLError):
                out[f"gpu/{i}/temp_c"] = float(
                    nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)
                )
            with contextlib.suppress(nv.NVMLError):
                out[f"gpu/{i}/power_w"] = nv.nvmlDeviceGetPowerUsage(h) / 1000.0

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


def sample_system(process: Any = None, nvml: _Nvml | None = None) -> dict[str, float]:
    """One sample of every available system metric (see the module docstring for keys).

    CPU percentages are measured since the previous call with the same ``process``; the
    first call of a fresh process object reports 0 for ``sys/proc_cpu``.
    """
    import psutil

    proc = process if process is not None else psutil.Process(os.getpid())
    out: dict[str, float] = {}
    per_core = psutil.cpu_percent(percpu=True)
    out["sys/cpu"] = float(sum(per_core) / max(len(per_core), 1))
    for i, pct in enumerate(per_core):
        out[f"sys/cpu/{i}"] = float(pct)
    out["sys/proc_cpu"] = float(proc.cpu_percent())
    vm = psutil.virtual_memory()
    out["sys/ram_used_gb"] = (vm.total - vm.available) / GB
    out["sys/ram_available_gb"] = vm.available / GB
    out["sys/ram_percent"] = float(vm.percent)
    out["sys/rss_gb"] = proc.memory_info().rss / GB
    if nvml is not None:
        nvml.sample(out)
    torch = sys.modules.get("torch")  # only if the user already paid for importing it
    if torch is not None:
        with contextlib.suppress(Exception):
            if torch.cuda.is_available():
                for i in range(torch.cuda.device_count()):
                    out[f"cuda/{i}/allocated_gb"] = torch.cuda.memory_allocated(i) / GB
                    out[f"cuda/{i}/reserved_gb"] = torch.cuda.memory_reserved(i) / GB
    return out


class SystemMonitor:
    """Samples system metrics every ``interval`` seconds into ``stream`` from a background loop.

    ``start()``/``stop()`` or use it as a context manager. ``loop`` lets several
    background services share one loop thread; by default the monitor owns its own.
    """

    def __init__(
        self,
        stream: MetricStream | None = None,
        interval: float = 1.0,
        *,
        loop: BackgroundLoop | None = None,
    ) -> None:
        if not interval > 0:
            from resnetlab.errors import ConfigError

            raise ConfigError(f"SystemMonitor interval must be > 0 seconds, got {interval!r}")
        self.stream = stream if stream is not None else default_stream()
        self.interval = float(interval)
        self._own_loop = loop is None
        self._loop = loop if loop is not None else BackgroundLoop("resnetlab-monitor")
        self._future: Any = None
        self.samples = 0
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    def start(self) -> SystemMonitor:
        """Begin sampling (idempotent); the first sample is taken at once."""
        if self.running:
            return self
        if self._own_loop and self._loop.closed:  # a loop runs once: a restart gets a new one
            self._loop = BackgroundLoop("resnetlab-monitor")
        self._loop.start()
        self._future = self._loop.submit(self._run())
        return self

    async def _run(self) -> None:
        import psutil

        proc = psutil.Process(os.getpid())
        psutil.cpu_percent(percpu=True)  # prime the "since last call" counters
        proc.cpu_percent()
        nvml = await asyncio.to_thread(_Nvml)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(min(self.interval, 0.1))
            next_at = loop.time()
            while True:
                try:
                    metrics = sample_system(proc, nvml)
                except Exception as exc:  # a sensor that failed once; keep going
                    self.error = exc
                    logger.warning("system sample failed: %s", exc)
                else:
                    self.stream.append(self.samples, metrics)
                    self.samples += 1
                next_at += self.interval
                await asyncio.sleep(max(next_at - loop.time(), 0.0))
        finally:
            nvml.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sampling and (when it owns it) the loop thread; idempotent."""
        fut, self._future = self._future, None
        if fut is not None and not fut.done():
            fut.cancel()
            with contextlib.suppress(Exception):
                fut.result(timeout)
        if self._own_loop:
            # Hard: its only task is cancelled above; what it raised stays on its future.
            self._loop.stop(hard=True, raise_errors=False)

    def __enter__(self) -> SystemMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
