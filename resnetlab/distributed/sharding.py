"""Which samples a rank evaluates: an exact split of the data set, no sample twice.

Training shards are padded (or truncated) so that every rank takes the same number of
steps: DDP all-reduces the gradients of every step, and a rank with one step more would
wait for peers that never come. Evaluation has no such collective per batch (only the
final sums of loss, correct and count are all-reduced), so its shards may differ in size
by one, and every sample is counted exactly once: test accuracy and the confusion matrix
of N images add up to N, whatever the world size.
"""

from __future__ import annotations

import torch

from resnetlab.errors import ConfigError


def eval_shard(n: int, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s indices of ``n`` samples, ``arange(n)[rank::world_size]`` (CPU int64).

    The shards of all ranks are disjoint and together hold every index once; their sizes
    are ``n // world_size`` or one more (a rank may get none when ``n < world_size``).
    """
    if n < 0:
        raise ConfigError(f"eval_shard: n must be >= 0, got {n}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(
            f"eval_shard: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
        )
    return torch.arange(rank, n, world_size, dtype=torch.int64)
