"""Distributed data-parallel training with torchrun: one context object, plain PyTorch DDP.

``init_distributed()`` reads what torchrun exported (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR/PORT) and returns a :class:`DistContext`; without torchrun it is a
single-process context whose collectives are no-ops. See docs/distributed.md.
"""

from resnetlab.distributed.batching import BatchPlan, plan_batches, scaled_lr
from resnetlab.distributed.context import (
    DEFAULT_TIMEOUT_S,
    DistContext,
    init_distributed,
    resolve_device,
    unwrap,
)
from resnetlab.distributed.failures import (
    EXIT_RANK_LOST,
    DistributedError,
    RankLostError,
    is_collective_failure,
)
from resnetlab.distributed.launch_env import LaunchEnv, read_launch_env
from resnetlab.distributed.metrics import (
    SUM_KEYS,
    combine_metrics,
    format_rank_lines,
    rank_system_logs,
)
from resnetlab.distributed.sharding import eval_shard

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "EXIT_RANK_LOST",
    "SUM_KEYS",
    "BatchPlan",
    "DistContext",
    "DistributedError",
    "LaunchEnv",
    "RankLostError",
    "combine_metrics",
    "eval_shard",
    "format_rank_lines",
    "init_distributed",
    "is_collective_failure",
    "plan_batches",
    "rank_system_logs",
    "read_launch_env",
    "resolve_device",
    "scaled_lr",
    "unwrap",
]
