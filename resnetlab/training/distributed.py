"""DistContext: the one place where the trainer meets distributed training.

The single-process context does nothing. A torchrun context (``resnetlab.training.ddp``,
added separately) overrides ``wrap_model`` (DistributedDataParallel), ``all_reduce_sum``
(metrics summed over ranks) and ``barrier``; the trainer only asks ``is_main`` before
writing the store, checkpoints or dashboards, and loaders shard themselves with
``rank``/``world_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class DistContext:
    """Rank, world size and device of this process, plus the collective hooks."""

    rank: int = 0
    world_size: int = 1
    device: Any = "cpu"  # a torch.device or a string

    @property
    def is_main(self) -> bool:
        """Only the main process writes the run store, checkpoints and dashboards."""
        return self.rank == 0

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train (DDP wraps it here); the trainer keeps the bare one too."""
        return model

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes (in place where possible); identity here."""
        return tensor

    def barrier(self) -> None:
        """Wait for every process; nothing to wait for in one process."""

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (e.g. the run id); identity here."""
        return obj
