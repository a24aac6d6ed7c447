"""DistContext for the trainer: a re-export of :mod:`resnetlab.distributed` (one
implementation only).

The trainer asks ``is_main`` before writing the store, checkpoints or dashboards, wraps
its model with ``wrap_model`` (DistributedDataParallel under torchrun), sums its metric
counters with ``all_reduce_sum`` and turns a lost peer into a ``RankLostError`` with
``guard``. A plain ``DistContext()`` is the single-process context: every collective is
a local no-op.
"""

from __future__ import annotations

from resnetlab.distributed.context import DistContext, init_distributed, unwrap

__all__ = ["DistContext", "init_distributed", "unwrap"]
