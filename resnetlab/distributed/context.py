"""``DistContext``: one object that says where this process sits in a job and does the
few collective operations a trainer needs.

Started by torchrun, :func:`init_distributed` joins the process group (``nccl`` when the
rank has a CUDA device, ``gloo`` on CPUs) with a timeout, starts the heartbeat watchdog
and quiets the logs of every rank but 0. Started as a plain process, it returns a
single-process context whose methods are local no-ops, so a trainer has one code path::

    ctx = init_distributed()
    model = ctx.wrap_model(model)                       # DDP when world_size > 1
    with ctx.guard("training"):                         # a dead peer -> RankLostError
        ...
        logs = ctx.reduce_metrics(logs, weight=n_samples)
        if ctx.is_main:
            save(unwrap(model).state_dict())
    ctx.shutdown()
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import torch
from torch import nn

from resnetlab.distributed.batching import BatchPlan, plan_batches
from resnetlab.distributed.failures import (
    DistributedError,
    RankLostError,
    describe_loss,
    is_collective_failure,
)
from resnetlab.distributed.heartbeat import Heartbeat
from resnetlab.distributed.launch_env import LaunchEnv, read_launch_env
from resnetlab.distributed.metrics import SUM_KEYS, combine_metrics, plain_value
from resnetlab.distributed.rendezvous import create_store, keep_gloo_on_loopback
from resnetlab.distributed.sharding import eval_shard
from resnetlab.errors import ConfigError
from resnetlab.utils.device import resolve_device

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 60.0


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / DataParallel / torch.compile wrappers.

    Save ``unwrap(model).state_dict()`` in checkpoints: its keys have no ``module.``
    prefix, so the checkpoint loads into a plain model on any world size.
    """
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model


@dataclass
class DistContext:
    """Where this process sits in the job, and the collectives a trainer needs."""

    # Global index of this process; rank 0 alone writes the run store and checkpoints.
    rank: int = 0
    # Processes in the whole job; 1 for a plain single process.
    world_size: int = 1
    # This rank's device (cuda:LOCAL_RANK, or cpu). (rank, world_size, device) come first
    # so this class is a drop-in for resnetlab.training.distributed.DistContext.
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # Index on this machine; picks the GPU.
    local_rank: int = 0
    # Processes on this machine; they share its CPU cores.
    local_world_size: int = 1
    # "nccl" (CUDA) or "gloo" (CPU); None for a single process (no process group).
    backend: str | None = None
    # Seconds a collective waits for a peer before failing (process-group timeout).
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Where the rendezvous store lives ("host:port"), for messages.
    store_address: str = ""
    # True once a RankLostError was raised: the group is unusable, skip the final barrier.
    failed: bool = False
    _heartbeat: Heartbeat | None = field(default=None, repr=False)
    _owns_group: bool = field(default=False, repr=False)
    _closed: bool = field(default=False, repr=False)
    _last_system: dict[str, Any] = field(default_factory=dict, repr=False)
    # Operations of the guards now open, outermost first: a peer lost in a metric gather
    # inside the training loop is reported as "training (all_gather_object)".
    _operations: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the store, checkpoints and dashboards."""
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """Local rank 0: the process that prepares per-machine files (dataset caches)."""
        return self.local_rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def cpu_threads(self) -> int:
        """Intra-op threads for this rank: the machine's cores shared by its local ranks
        (``torch.set_num_threads(ctx.cpu_threads())``; all cores in every process would
        oversubscribe the CPU)."""
        return max(1, (os.cpu_count() or 1) // max(1, self.local_world_size))

    # -- failures -------------------------------------------------------------------------
    @contextlib.contextmanager
    def guard(self, operation: str = "training") -> Iterator[None]:
        """Turn a failed collective (a dead or hung peer) into a :class:`RankLostError`.

        Wrap the training loop in it: DDP's all-reduce runs inside ``backward()``, where
        only this context manager can catch it. The message names the silent rank(s),
        found from the heartbeats; this takes about three heartbeat intervals.
        """
        if not self.is_distributed:
            yield
            return
        self._operations.append(operation)
        try:
            yield
        except RankLostError:
            raise
        except Exception as exc:
            if not is_collective_failure(exc):
                raise
            outer, *inner = self._operations
            where = f"{outer} ({', '.join(inner)})" if inner else outer
            raise self._rank_lost(exc, where) from exc
        finally:
            self._operations.pop()

    def _rank_lost(self, exc: BaseException, operation: str) -> RankLostError:
        self.failed = True
        text = str(exc).lower()
        timed_out = "timed out" in text or "timeout" in text
        lost: list[int] | None = []
        if self._heartbeat is not None:
            self._heartbeat.disarm()
            lost = self._heartbeat.silent_ranks()
        message = describe_loss(
            lost or [],
            operation=operation,
            timeout_s=self.timeout_s,
            timed_out=timed_out,
            store_unreachable=lost is None,
            store_address=self.store_address,
        )
        lost_ranks = [0] if lost is None else lost
        return RankLostError(
            f"(rank {self.rank}) {message}", lost_ranks=lost_ranks, operation=operation
        )

    # -- collectives ----------------------------------------------------------------------
    def barrier(self) -> None:
        """Wait until every rank gets here (no-op for one process)."""
        if not self.is_distributed:
            return
        import torch.distributed as dist

        with self.guard("barrier"):
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all ranks, in place, and return it (identity for one process).

        The cheap way to reduce running sums kept on the device (loss sum, correct, count).
        """
        if not self.is_distributed:
            return tensor
        import torch.distributed as dist

        with self.guard("all_reduce of metrics"):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather_object(self, obj: T) -> list[T]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.is_distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        with self.guard("all_gather_object"):
            dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: T, src: int = 0) -> T:
        """Rank ``src``'s ``obj`` on every rank (e.g. a checkpoint's optimiser state)."""
        if not self.is_distributed:
            return obj
        import torch.distributed as dist

        box = [obj if self.rank == src else None]
        with self.guard("broadcast_object"):
            dist.broadcast_object_list(box, src=src)
        return box[0]

    def reduce_metrics(
        self, metrics: Mapping[str, Any], weight: float = 1.0, *, sum_keys: Iterable[str] = SUM_KEYS
    ) -> dict[str, Any]:
        """The job-wide values of this rank's ``metrics``, on every rank.

        Loss, accuracy and other means are averaged weighted by ``weight`` (the number of
        samples behind this rank's values); ``images_per_s`` and the other ``sum_keys``
        are summed. Call it on every rank at the same logging points (it is a collective).
        """
        local = {k: plain_value(v) for k, v in metrics.items()}
        if not self.is_distributed:
            return dict(local)
        gathered = self.all_gather_object((local, float(weight)))
        return combine_metrics(gathered, sum_keys)

    def gather_system_metrics(self, sample: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every rank's system sample (CPU/RAM/GPU), tagged with rank, host and device.

        A collective: call it from the training loop on every rank (not from a
        background thread, whose collectives would interleave with DDP's).
        """
        return self.all_gather_object(self._tag(sample))

    def _tag(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        values = {k: plain_value(v) for k, v in sample.items()}
        return {
            "rank": self.rank,
            "host": socket.gethostname(),
            "device": str(self.device),
            **values,
        }

    def publish_system_metrics(self, sample: Mapping[str, Any]) -> None:
        """Leave this rank's latest system sample where rank 0 can read it, at any time.

        Not a collective: safe from a monitor thread or task. Goes through the job's
        key-value store (a few hundred bytes per call).
        """
        tagged = self._tag(sample)
        self._last_system = tagged
        if self._heartbeat is not None:
            try:
                self._heartbeat.publish("system", json.dumps(tagged, default=str))
            except Exception as exc:
                log.debug("publish_system_metrics: store unreachable: %s", exc)

    def system_metrics_by_rank(self) -> list[dict[str, Any]]:
        """The latest sample each rank published (rank order; ranks yet silent left out)."""
        if self._heartbeat is None:
            return [self._last_system] if self._last_system else []
        try:
            raw = self._heartbeat.read_all("system")
        except Exception as exc:
            log.debug("system_metrics_by_rank: store unreachable: %s", exc)
            return [self._last_system] if self._last_system else []
        return [json.loads(raw[r]) for r in sorted(raw)]

    # -- model and batch ------------------------------------------------------------------
    def wrap_model(
        self, model: nn.Module, sync_batchnorm: bool = False, **ddp_options: Any
    ) -> nn.Module:
        """Move ``model`` to this rank's device and wrap it in DistributedDataParallel.

        DDP broadcasts rank 0's weights at construction, so every rank starts identical,
        and averages gradients during ``backward()``. ``sync_batchnorm`` computes
        BatchNorm statistics over the global batch (CUDA only in PyTorch); without it each
        rank normalises with its own batch. One process: the model is returned unwrapped,
        and ``sync_batchnorm`` is ignored with a warning (one process already normalises
        over its whole batch, so there is nothing to synchronise).
        """
        model = model.to(self.device)
        if not self.is_distributed:
            if sync_batchnorm:
                log.warning(
                    "sync_batchnorm=True ignored: this is a single process (no "
                    "torchrun job), so BatchNorm already sees the whole batch"
                )
            return model
        if sync_batchnorm:
            if self.device.type != "cuda":
                raise ConfigError(
                    f"sync_batchnorm=True needs CUDA devices (PyTorch's SyncBatchNorm has no "
                    f"CPU kernel), but rank {self.rank} runs on {self.device}; set "
                    "sync_batchnorm=False (each rank then uses its own batch statistics)"
                )
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.device.type == "cuda":
            ddp_options.setdefault("device_ids", [self.device.index])
            ddp_options.setdefault("output_device", self.device.index)
        with self.guard("DistributedDataParallel set-up"):
            return nn.parallel.DistributedDataParallel(model, **ddp_options)

    def eval_indices(self, n: int) -> torch.Tensor:
        """This rank's share of ``n`` evaluation samples: every sample on exactly one rank.

        Unlike the training loader's shards these are not padded to equal sizes, so
        accuracy and confusion matrices all-reduced from them count each sample once.
        One process: all of ``arange(n)``.
        """
        return eval_shard(n, self.rank, self.world_size)

    def batch_plan(
        self,
        base_lr: float,
        *,
        per_rank_batch: int | None = None,
        global_batch: int | None = None,
        reference_batch: int | None = None,
    ) -> BatchPlan:
        """The global batch and scaled learning rate of this job (logged on rank 0)."""
        plan = plan_batches(
            self.world_size,
            base_lr,
            per_rank_batch=per_rank_batch,
            global_batch=global_batch,
            reference_batch=reference_batch,
        )
        if self.is_main:
            log.info("%s", plan.describe())
        return plan

    # -- rank-0-only work -----------------------------------------------------------------
    def main_only(self, fn: Callable[..., T]) -> Callable[..., T | None]:
        """``fn`` wrapped to run on rank 0 only (other ranks get None)."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T | None:
            return fn(*args, **kwargs) if self.is_main else None

        return wrapper

    @contextlib.contextmanager
    def local_main_first(self) -> Iterator[None]:
        """Local rank 0 runs the block first (download, cache), then the others."""
        if not self.is_distributed:
            yield
            return
        if not self.is_local_main:
            self.barrier()
        yield
        if self.is_local_main:
            self.barrier()

    # -- the end --------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Leave the job: final barrier (unless a peer was lost), close the group. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.stop()
        if not self.is_distributed or not self._owns_group:
            return
        import torch.distributed as dist

        if not self.failed:
            try:
                self.barrier()
            except RankLostError as exc:
                log.error("%s", exc)
        with contextlib.suppress(Exception):
            dist.destroy_process_group()

    def __enter__(self) -> DistContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def init_distributed(
    device: str | torch.device = "auto",
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    backend: str = "auto",
    heartbeat_s: float | None = 1.0,
    quiet_others: bool = True,
    environ: Mapping[str, str] | None = None,
) -> DistContext:
    """Join the job torchrun started, or return a single-process context.

    ``timeout_s`` bounds every collective: a rank whose peer died or hangs fails after
    at most that long (usually at once, when the peer's sockets close) with a
    :class:`RankLostError` naming the peer. ``heartbeat_s`` is the heartbeat interval
    (None: no heartbeats; errors then cannot name the rank). ``quiet_others`` raises the
    ``resnetlab`` log level to ERROR on every rank but 0.
    """
    if not timeout_s > 0:
        raise ConfigError(f"init_distributed: timeout_s must be positive, got {timeout_s}")
    env = read_launch_env(environ)
    if env is None or not env.is_distributed:
        local_rank = env.local_rank if env is not None else 0
        dev = resolve_device(device, local_rank)
        return DistContext(
            rank=0,
            local_rank=local_rank,
            world_size=1,
            device=dev,
            backend=None,
            timeout_s=timeout_s,
        )
    return _join(
        env,
        device,
        timeout_s=timeout_s,
        backend=backend,
        heartbeat_s=heartbeat_s,
        quiet_others=quiet_others,
    )


def _join(
    env: LaunchEnv,
    device: str | torch.device,
    *,
    timeout_s: float,
    backend: str,
    heartbeat_s: float | None,
    quiet_others: bool,
) -> DistContext:
    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedError(
            "this PyTorch build has no torch.distributed; install the "
            "official wheel from pytorch.org"
        )
    dev = resolve_device(device, env.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    chosen = backend if backend != "auto" else ("nccl" if dev.type == "cuda" else "gloo")
    if chosen == "nccl" and dev.type != "cuda":
        raise ConfigError(
            f"backend='nccl' needs CUDA devices but rank {env.rank} runs on {dev}; "
            "use backend='gloo' or 'auto'"
        )
    address = f"{env.master_addr}:{env.master_port}"
    owns = False
    if not dist.is_initialized():
        options: dict[str, Any] = {}
        if dev.type == "cuda":
            options["device_id"] = dev
        keep_gloo_on_loopback(env.master_addr, os.environ)
        try:
            # Our own store, not init_method="env://": torch's would listen on every
            # interface whatever MASTER_ADDR says (see distributed/rendezvous.py).
            store = create_store(
                env.master_addr,
                env.master_port,
                rank=env.rank,
                world_size=env.world_size,
                timeout_s=timeout_s,
                restart_count=env.restart_count,
            )
            dist.init_process_group(
                chosen,
                store=store,
                rank=env.rank,
                world_size=env.world_size,
                timeout=timedelta(seconds=timeout_s),
                **options,
            )
        except ConfigError:
            raise
        except Exception as exc:
            raise DistributedError(
                f"rank {env.rank}: could not join the job at {address} within {timeout_s:g} s "
                f"({exc}); check that all {env.world_size} ranks were started with the same "
                "--rdzv-endpoint / MASTER_ADDR:MASTER_PORT and that the port is reachable"
            ) from exc
        owns = True
    ctx = DistContext(
        rank=env.rank,
        local_rank=env.local_rank,
        world_size=env.world_size,
        local_world_size=env.local_world_size,
        device=dev,
        backend=chosen,
        timeout_s=timeout_s,
        store_address=address,
        _owns_group=owns,
    )
    if heartbeat_s is not None:
        try:
            hb = Heartbeat(
                env.master_addr,
                env.master_port,
                env.rank,
                env.world_size,
                prefix=f"resnetlab/heartbeat/{env.restart_count}",
                interval_s=heartbeat_s,
                warn_after_s=max(5 * heartbeat_s, timeout_s / 2),
                exit_after_s=2 * timeout_s + 10 * heartbeat_s,
                store_timeout_s=min(timeout_s, 30.0),
            )
            hb.start()
            ctx._heartbeat = hb
        except Exception as exc:
            log.warning("no heartbeats (store %s: %s); a lost rank will not be named", address, exc)
    if quiet_others and not ctx.is_main:
        logging.getLogger("resnetlab").setLevel(logging.ERROR)
    log.info(
        "distributed: %d ranks, backend %s, device %s, collective timeout %g s, store %s",
        ctx.world_size,
        chosen,
        dev,
        timeout_s,
        address,
    )
    return ctx
