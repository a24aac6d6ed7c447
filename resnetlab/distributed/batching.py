"""Global batch size and learning-rate scaling, stated explicitly.

With data parallelism every rank takes ``per_rank_batch`` samples per step, so one
optimiser step sees ``per_rank_batch * world_size`` samples. The linear scaling rule
(Goyal et al., 2017) keeps the update per sample the same: multiply the learning rate by
``global_batch / reference_batch``, where the reference is the batch size the base
learning rate was tuned for.
"""

from __future__ import annotations

from dataclasses import dataclass

from resnetlab.errors import ConfigError


def scaled_lr(base_lr: float, global_batch: int, reference_batch: int) -> float:
    """Linear scaling rule: ``base_lr * global_batch / reference_batch``."""
    if reference_batch < 1 or global_batch < 1:
        raise ConfigError(
            f"scaled_lr: batch sizes must be >= 1, got global_batch={global_batch}, "
            f"reference_batch={reference_batch}"
        )
    return base_lr * global_batch / reference_batch


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch is split over ranks, and the learning rate that goes with it."""

    # Samples each rank puts through the model per step (the TensorLoader's batch_size).
    per_rank_batch: int
    # Number of ranks taking part in every step.
    world_size: int
    # The learning rate tuned for ``reference_batch``.
    base_lr: float
    # The batch size ``base_lr`` was tuned for; the LR is scaled by global/reference.
    reference_batch: int

    @property
    def global_batch(self) -> int:
        """Samples per optimiser step over all ranks."""
        return self.per_rank_batch * self.world_size

    @property
    def lr(self) -> float:
        """The learning rate to use: scaled linearly from the reference batch."""
        return scaled_lr(self.base_lr, self.global_batch, self.reference_batch)

    def describe(self) -> str:
        """One line for the log: ``global batch 512 = 256 per rank x 2 ranks; lr ...``."""
        ranks = "rank" if self.world_size == 1 else "ranks"
        line = (
            f"global batch {self.global_batch} = {self.per_rank_batch} per rank x "
            f"{self.world_size} {ranks}; "
        )
        if self.global_batch == self.reference_batch:
            return line + f"lr {self.base_lr:g}"
        return (
            line + f"lr {self.base_lr:g} x {self.global_batch}/{self.reference_batch} = "
            f"{self.lr:g} (linear scaling from batch {self.reference_batch})"
        )


def plan_batches(
    world_size: int,
    base_lr: float,
    *,
    per_rank_batch: int | None = None,
    global_batch: int | None = None,
    reference_batch: int | None = None,
) -> BatchPlan:
    """Give exactly one of ``per_rank_batch`` or ``global_batch``; the other follows.

    ``reference_batch`` defaults to the per-rank batch: a recipe tuned on one process
    keeps its per-sample update when run on ``world_size`` processes.
    """
    if (per_rank_batch is None) == (global_batch is None):
        raise ConfigError("plan_batches: give exactly one of per_rank_batch or global_batch")
    if global_batch is not None:
        if global_batch < world_size or global_batch % world_size:
            raise ConfigError(
                f"global batch {global_batch} does not split evenly over {world_size} ranks; "
                f"use a multiple of {world_size} (e.g. {max(1, global_batch // world_size) * world_size})"
            )
        per_rank_batch = global_batch // world_size
    assert per_rank_batch is not None
    if per_rank_batch < 1:
        raise ConfigError(f"per-rank batch must be >= 1, got {per_rank_batch}")
    if not base_lr > 0:
        raise ConfigError(f"learning rate must be positive, got {base_lr}")
    return BatchPlan(
        per_rank_batch=per_rank_batch,
        world_size=world_size,
        base_lr=base_lr,
        reference_batch=reference_batch or per_rank_batch,
    )
