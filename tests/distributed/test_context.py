"""DistContext in one process (what a plain `python` run or a notebook gets), the launch
environment checks, batch/LR planning, metric merging and the heartbeat watchdog."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from ddp_launch import free_port, master_store, port_clash
from torch import nn

from resnetlab.distributed import (
    EXIT_RANK_LOST,
    DistContext,
    RankLostError,
    combine_metrics,
    eval_shard,
    format_rank_lines,
    init_distributed,
    is_collective_failure,
    plan_batches,
    rank_system_logs,
    read_launch_env,
    scaled_lr,
    unwrap,
)
from resnetlab.distributed.heartbeat import Heartbeat
from resnetlab.errors import ConfigError

TORCHRUN_ENV = {
    "RANK": "1",
    "LOCAL_RANK": "1",
    "WORLD_SIZE": "2",
    "LOCAL_WORLD_SIZE": "2",
    "MASTER_ADDR": "10.0.0.5",
    "MASTER_PORT": "29500",
}


def test_without_launcher_a_single_process_context_with_local_collectives() -> None:
    ctx = init_distributed("cpu", environ={})
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.backend) == (0, 1, True, None)
    assert not torch.distributed.is_initialized()
    logs = ctx.reduce_metrics({"loss": torch.tensor(0.25), "step": 3, "phase": "train"}, weight=7)
    assert logs == {"loss": 0.25, "step": 3, "phase": "train"}
    assert ctx.all_gather_object({"a": 1}) == [{"a": 1}]
    assert ctx.broadcast_object("x") == "x"
    assert ctx.all_reduce_sum(torch.tensor([2.0])).item() == 2.0
    ctx.barrier()
    model = nn.Linear(3, 2)
    assert ctx.wrap_model(model) is model
    assert ctx.main_only(lambda: "wrote")() == "wrote"
    with ctx.local_main_first():
        pass
    assert [s["rank"] for s in ctx.gather_system_metrics({"cpu_percent": 3.0})] == [0]
    ctx.publish_system_metrics({"ram_gb": 1.5})
    assert ctx.system_metrics_by_rank()[0]["ram_gb"] == 1.5
    assert ctx.cpu_threads() == (os.cpu_count() or 1)
    assert DistContext(0, 2, "cpu", local_world_size=2).cpu_threads() == max(
        1, (os.cpu_count() or 1) // 2
    )
    ctx.shutdown()
    ctx.shutdown()  # idempotent


def test_launch_environment_is_read_and_checked() -> None:
    env = read_launch_env(TORCHRUN_ENV)
    assert env is not None and (env.rank, env.local_rank, env.world_size) == (1, 1, 2)
    assert (env.master_addr, env.master_port) == ("10.0.0.5", 29500)
    assert read_launch_env({}) is None
    with pytest.raises(ConfigError, match="MASTER_ADDR, MASTER_PORT not set"):
        read_launch_env({"RANK": "0", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="RANK='one' is not an integer"):
        read_launch_env({**TORCHRUN_ENV, "RANK": "one"})
    with pytest.raises(ConfigError, match=r"RANK=2 must be in \[0, WORLD_SIZE=2\)"):
        read_launch_env({**TORCHRUN_ENV, "RANK": "2"})
    # torchrun --nproc-per-node 1: no process group needed.
    ctx = init_distributed(
        "cpu", environ={**TORCHRUN_ENV, "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    )
    assert ctx.world_size == 1 and not torch.distributed.is_initialized()


def test_sync_batchnorm_on_cpu_ranks_is_refused_with_the_fix() -> None:
    ctx = DistContext(0, 2, "cpu", backend="gloo")  # positional like the trainer's context
    with pytest.raises(ConfigError, match="sync_batchnorm=True needs CUDA.*sync_batchnorm=False"):
        ctx.wrap_model(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), sync_batchnorm=True)


def test_sync_batchnorm_on_one_process_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx = init_distributed("cpu", environ={})
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with caplog.at_level(logging.WARNING, logger="resnetlab.distributed"):
        assert ctx.wrap_model(model, sync_batchnorm=True) is model
    assert isinstance(model[1], nn.BatchNorm2d) and not isinstance(model[1], nn.SyncBatchNorm)
    assert "sync_batchnorm=True ignored: this is a single process" in caplog.text


def test_evaluation_shards_hold_every_sample_once() -> None:
    shards = [eval_shard(10, r, 3).tolist() for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert eval_shard(1, 1, 2).tolist() == []  # fewer samples than ranks: nothing to do
    assert DistContext(1, 3, "cpu").eval_indices(10).tolist() == [1, 4, 7]
    assert init_distributed("cpu", environ={}).eval_indices(4).tolist() == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match=r"need 0 <= rank < world_size, got rank=2"):
        eval_shard(10, 2, 2)


def test_global_batch_and_linear_lr_scaling_are_explicit() -> None:
    assert scaled_lr(0.1, 512, 128) == pytest.approx(0.4)
    plan = plan_batches(4, 0.1, per_rank_batch=128)
    assert (plan.global_batch, plan.lr) == (512, pytest.approx(0.4))
    assert plan.describe() == (
        "global batch 512 = 128 per rank x 4 ranks; "
        "lr 0.1 x 512/128 = 0.4 (linear scaling from batch 128)"
    )
    plan = plan_batches(2, 0.2, global_batch=256, reference_batch=256)
    assert (plan.per_rank_batch, plan.lr) == (128, 0.2)
    assert plan.describe() == "global batch 256 = 128 per rank x 2 ranks; lr 0.2"
    with pytest.raises(
        ConfigError, match="does not split evenly over 3 ranks; use a multiple of 3"
    ):
        plan_batches(3, 0.1, global_batch=100)


def test_metrics_of_ranks_combine_like_one_process() -> None:
    merged = combine_metrics(
        [
            ({"loss": 1.0, "accuracy": 0.5, "images_per_s": 400.0, "lr": 0.1, "epoch": 2}, 96),
            (
                {
                    "loss": 2.0,
                    "accuracy": 1.0,
                    "images_per_s": 300.0,
                    "lr": 0.1,
                    "epoch": 2,
                    "val_loss": 0.7,
                },
                32,
            ),
        ]
    )
    assert merged["loss"] == pytest.approx((96 * 1.0 + 32 * 2.0) / 128)
    assert merged["accuracy"] == pytest.approx((96 * 0.5 + 32 * 1.0) / 128)
    assert merged["images_per_s"] == 700.0
    assert merged["lr"] == 0.1 and merged["epoch"] == 2 and isinstance(merged["epoch"], int)
    assert merged["val_loss"] == 0.7  # only rank 1 had it
    lines = format_rank_lines(
        [
            {"rank": 0, "host": "a", "device": "cuda:0", "gpu_percent": 88.0},
            {"rank": 1, "host": "b", "device": "cuda:0", "gpu_percent": 7.5},
        ]
    )
    assert lines == ["rank 0 a cuda:0  gpu_percent=88.0", "rank 1 b cuda:0  gpu_percent=7.5"]
    # The same samples as metrics of the run: one series per rank and measure.
    logs = rank_system_logs(
        [
            {
                "rank": 0,
                "host": "a",
                "device": "cuda:0",
                "cpu_percent": 41.0,
                "gpu_mem_gb": torch.tensor(2.5),
            },
            {"rank": 1, "host": "b", "device": "cpu", "ram_percent": 7},
        ]
    )
    assert logs == {"rank0/cpu_percent": 41.0, "rank0/gpu_mem_gb": 2.5, "rank1/ram_percent": 7.0}


def test_unwrap_gives_the_bare_model_for_checkpoints() -> None:
    model = nn.Linear(3, 2)
    assert unwrap(nn.DataParallel(model)) is model
    assert unwrap(torch.compile(model)) is model
    assert unwrap(model) is model
    assert list(unwrap(nn.DataParallel(model)).state_dict()) == ["weight", "bias"]


def test_collective_failures_are_recognised() -> None:
    gloo_reset = RuntimeError(
        "[third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error "
        "[127.0.0.1]:27810: Connection reset by peer."
    )
    gloo_timeout = RuntimeError(
        "[gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting "
        "5000ms for recv operation to complete"
    )
    assert is_collective_failure(gloo_reset) and is_collective_failure(gloo_timeout)
    # What gloo raises (no source path) when a hung peer outlasts the timeout.
    assert is_collective_failure(RuntimeError("Application timeout caused pair closure"))
    store_error = torch.distributed.DistNetworkError("failed to recv, got 0 bytes")
    assert is_collective_failure(store_error)
    assert not is_collective_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_collective_failure(ValueError("restore the connection"))


def test_a_local_error_mentioning_sockets_or_timeouts_is_not_a_lost_peer() -> None:
    # The training code's own errors may use the same words as a lost connection; they
    # must reach the user as they are, not as "a peer rank stopped responding".
    local = [
        RuntimeError("socket.timeout: timed out reading the dataset over NFS"),
        RuntimeError("connection refused by the metrics server at 127.0.0.1:9"),
        RuntimeError("ProcessGroup-style pool: worker timed out"),
    ]
    for exc in local:
        assert not is_collective_failure(exc), exc
    ctx = DistContext(rank=0, world_size=2, backend="gloo", timeout_s=5)
    with pytest.raises(RuntimeError) as caught, ctx.guard("training"):
        raise local[0]
    assert caught.value is local[0] and not isinstance(caught.value, RankLostError)
    assert not ctx.failed


def test_a_peer_lost_in_a_nested_collective_names_both_operations() -> None:
    # A peer that dies while the training loop gathers epoch metrics: the user reads
    # "training", with the collective that noticed it in brackets.
    ctx = DistContext(rank=0, world_size=2, backend="gloo", timeout_s=5)
    reset = RuntimeError("[gloo/transport/tcp/pair.cc:537] Connection reset by peer.")
    with (
        pytest.raises(RankLostError) as caught,
        ctx.guard("training"),
        ctx.guard("all_gather_object"),
    ):
        raise reset
    assert "during training (all_gather_object) " in str(caught.value)
    assert "--resume" in str(caught.value) and caught.value.__cause__ is reset
    assert ctx.failed and caught.value.operation == "training (all_gather_object)"
    with pytest.raises(RankLostError, match=r"during barrier "), ctx.guard("barrier"):
        raise reset


def test_heartbeats_tell_silent_ranks_from_live_and_finished_ones() -> None:
    master = master_store()
    port = master.port
    beats = [
        Heartbeat("127.0.0.1", port, r, 4, prefix="t", interval_s=0.2, exit_after_s=None)
        for r in range(4)
    ]
    try:
        beats[0].start()
        beats[2].start()
        beats[3].start()  # rank 1 never beats: it "hangs" from the start
        beats[3].stop()  # rank 3 finished on purpose
        # Rank 1 is silent in every window; rank 2 beats every 0.2 s, but on a loaded
        # machine its thread may miss one window: look again (generous deadline).
        deadline = time.monotonic() + 60
        while (silent := beats[0].silent_ranks(wait_s=1.0)) != [1] and time.monotonic() < deadline:
            assert silent is not None and 1 in silent and 3 not in silent, (
                silent
            )  # never the finished rank
        assert silent == [1]
        beats[0].publish("system", '{"rank": 0}')
        assert beats[2].read_all("system") == {0: b'{"rank": 0}'}
    finally:
        for hb in beats:
            hb.stop()
        del master


def test_watchdog_ends_a_stuck_process_naming_the_silent_rank() -> None:
    # The last resort: the main thread is stuck where no timeout reaches (here: sleeping),
    # and rank 1 never beats. The watchdog must end the process, naming rank 1.
    def run() -> subprocess.CompletedProcess:
        script = textwrap.dedent(f"""
            import time, torch
            from resnetlab.distributed.heartbeat import Heartbeat
            store = torch.distributed.TCPStore("127.0.0.1", {free_port()}, is_master=True,
                                               wait_for_workers=False)
            hb = Heartbeat("127.0.0.1", store.port, 0, 2, prefix="w", interval_s=0.2,
                           exit_after_s=1.5)
            hb.start()
            time.sleep(60)
        """)
        return subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )

    proc = run()
    if port_clash(proc.stderr):  # the free port was taken meanwhile: once more, another port
        proc = run()
    assert proc.returncode == EXIT_RANK_LOST, proc.stderr
    assert "rank 1 stopped responding (timeout 1.5 s)" in proc.stderr
    assert "--resume" in proc.stderr
