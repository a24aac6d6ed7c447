"""Where this process sits in a distributed job, read from the variables torchrun sets.

torchrun (``python -m torch.distributed.run``) exports ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` to every worker
(and ``TORCHELASTIC_RESTART_COUNT`` after a restart). A plain ``python`` process has none
of them and runs as a single process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from resnetlab.errors import ConfigError

# The variables that must all be present for a multi-process job.
REQUIRED = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class LaunchEnv:
    """The launcher's description of this worker."""

    # Global index of this process, 0..world_size-1; rank 0 writes the store and checkpoints.
    rank: int
    # Index on this machine: picks the GPU (cuda:local_rank).
    local_rank: int
    # Number of processes in the whole job (all machines).
    world_size: int
    # Processes on this machine (torchrun's --nproc-per-node).
    local_world_size: int
    # Host and port of the rendezvous key-value store (the TCPStore) every rank connects to.
    master_addr: str
    master_port: int
    # How many times torchrun restarted the workers (--max-restarts); keys in the store are
    # namespaced by it because the store outlives the workers.
    restart_count: int = 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def read_launch_env(environ: Mapping[str, str] | None = None) -> LaunchEnv | None:
    """The launch variables of this process, or None when started without a launcher.

    Raises ConfigError naming the missing or malformed variable for a half-set environment
    (for example ``WORLD_SIZE`` exported by hand without ``MASTER_ADDR``).
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return None
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise ConfigError(
            f"distributed launch: {', '.join(missing)} not set while "
            f"{'WORLD_SIZE' if 'WORLD_SIZE' in env else 'RANK'} is; start the job with "
            "`torchrun --nproc-per-node N -m resnetlab train ...` (it sets all of RANK, "
            "LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or unset them for one process"
        )

    def integer(name: str, default: str | None = None) -> int:
        raw = env.get(name, default)
        try:
            return int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ConfigError(f"distributed launch: {name}={raw!r} is not an integer") from None

    rank = integer("RANK")
    world_size = integer("WORLD_SIZE")
    local_rank = integer("LOCAL_RANK", str(rank))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(
            f"distributed launch: RANK={rank} must be in [0, WORLD_SIZE={world_size})"
        )
    return LaunchEnv(
        rank=rank,
        local_rank=local_rank,
        world_size=world_size,
        local_world_size=integer("LOCAL_WORLD_SIZE", str(world_size)),
        master_addr=env["MASTER_ADDR"],
        master_port=integer("MASTER_PORT"),
        restart_count=integer("TORCHELASTIC_RESTART_COUNT", "0"),
    )
