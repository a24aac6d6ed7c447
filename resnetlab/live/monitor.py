"""SystemMonitor: CPU, RAM and (when present) NVIDIA GPU usage sampled into a MetricStream.

The sampling is one asyncio task in a background loop, so it costs nothing between
samples and never blocks a notebook cell. It appends what
:class:`resnetlab.metrics.system.SystemSampler` measures, keyed ``sys/<measure>`` — the
measures and their names are listed there (the per-rank callback of a torchrun job uses
the same names under ``rank<r>/``):

* ``sys/cpu_percent`` (per core ``sys/cpu_percent/<i>``), ``sys/proc_cpu_percent``,
  ``sys/ram_percent``, ``sys/ram_used_gb``, ``sys/ram_available_gb``, ``sys/rss_gb``;
* per GPU ``i``: ``sys/gpu_util_percent/<i>``, ``sys/gpu_mem_used_gb/<i>``, ... (absent
  without a GPU, its driver or nvidia-ml-py).

x is wall-clock time. A sample's step is the step the stream has reached (its newest
record's, 0 while it is empty), so samples stored with a training run line up with the
run's steps.

    with SystemMonitor(interval=1.0) as mon:   # "watch my machine while I do anything"
        ...
    mon.stream.series("sys/cpu_percent", x="time")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from resnetlab.metrics.stream import MetricStream, default_stream
from resnetlab.metrics.system import SystemSampler, gpu_count
from resnetlab.runtime.loop import BackgroundLoop

logger = logging.getLogger(__name__)

PREFIX = "sys/"
__all__ = ["PREFIX", "SystemMonitor", "gpu_count", "sample_system"]


def sample_system(sampler: SystemSampler | None = None) -> dict[str, float]:
    """One sample of every available system metric, keyed ``sys/<measure>``.

    ``sampler`` keeps the CPU counters between calls; without one, a fresh sampler's CPU
    percentages cover only the moment since it was made.
    """
    own = sampler is None
    sampler = sampler if sampler is not None else SystemSampler()
    try:
        return {f"{PREFIX}{key}": value for key, value in sampler.sample().items()}
    finally:
        if own:
            sampler.close()


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
        sampler = await asyncio.to_thread(SystemSampler)  # NVML start-up can take a while
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(min(self.interval, 0.1))
            next_at = loop.time()
            while True:
                try:
                    metrics = sample_system(sampler)
                except Exception as exc:  # a sensor that failed once; keep going
                    self.error = exc
                    logger.warning("system sample failed: %s", exc)
                else:
                    step = self.stream.last_step()
                    self.stream.append(0 if step is None else step, metrics)
                    self.samples += 1
                next_at += self.interval
                await asyncio.sleep(max(next_at - loop.time(), 0.0))
        finally:
            sampler.close()

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
