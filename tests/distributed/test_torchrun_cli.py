"""End to end: ``torchrun --nproc-per-node 2 -m resnetlab train ...`` on this CPU (gloo).

What a user sees: the global batch / LR plan printed once, one run in the store with
its checkpoints, one line per rank of system metrics; a rank killed mid-run ends the job
with a message naming it; ``--resume`` continues the same run from its last checkpoint.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from ddp_launch import child_env, finish

from resnetlab.store import RunStore

pytestmark = pytest.mark.slow

DATA = (
    "--model",
    "resnetv2-micro",
    "--val-size",
    "256",
    "--test-limit",
    "256",
    "--batch-size",
    "64",
    "--live",
    "none",
    "--no-progress",
    # fp32 as `resnetlab eval` computes: a barely trained net has near-tied logits, and
    # bf16 rounding (the default on CPUs with AVX512-BF16) can flip a few of them.
    "--precision",
    "fp32",
)


def torchrun_train(tmp: Path, data_dir: Path, *args: str, nproc: int = 2) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "resnetlab",
        "train",
        *DATA,
        "--data-dir",
        str(data_dir),
        "--runs-db",
        str(tmp / "runs.db"),
        *args,
    ]
    return subprocess.Popen(
        cmd, env=child_env(), cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_two_ranks_train_one_run_and_print_the_plan_once(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    # 255 test images: not divisible by 2 ranks (a padded split would count one twice).
    status, out = finish(
        torchrun_train(
            tmp_path,
            fashion_mnist_dir,
            "--epochs",
            "2",
            "--train-limit",
            "768",
            "--test-limit",
            "255",
        ),
        timeout=120,
    )
    assert status == 0, out
    # 768 training images (after the 256 validation ones) = 6 steps x (64 per rank x 2 ranks).
    plan = "global batch 128 = 64 per rank x 2 ranks; lr 0.2 x 128/64 = 0.4"
    assert out.count(plan) == 1, out
    assert out.count("test accuracy") == 1, out  # rank 1 prints nothing
    assert "6 steps/epoch x 2 epochs" in out
    assert re.search(r"^\s+rank 0 .*cpu_percent=", out, re.M), out
    assert re.search(r"^\s+rank 1 .*cpu_percent=", out, re.M), out
    with RunStore(tmp_path / "runs.db") as store:
        runs = store.list_runs()
        assert [r.status for r in runs] == ["completed"]
        run = runs[0]
        assert run.config["world_size"] == 2 and run.config["lr"] == pytest.approx(0.4)
        steps, loss = store.series(run.id, "loss")
        assert steps[-1] == 12 and len(set(steps)) == len(steps)  # one writer, no duplicates
        # Each rank's own CPU/RAM, one series per rank, kept with the run (plottable).
        for rank in (0, 1):
            for key in ("cpu_percent", "ram_percent"):
                steps, values = store.series(run.id, f"rank{rank}/{key}")
                assert list(steps) == [6, 12], (rank, key, store.metric_keys(run.id))
                assert all(0 <= v <= 100 * (os.cpu_count() or 1) for v in values)
        test_accuracy = run.final_metrics["test_accuracy"]
    ckpts = sorted(p.name for p in tmp_path.glob("run-*/*.pt"))
    assert [p.parent.name for p in tmp_path.glob("run-*/*.pt")] == ["run-1"] * len(ckpts)
    state = torch.load(tmp_path / "run-1" / "last.pt", weights_only=True)
    assert state["step"] == 12
    assert not any(k.startswith("module.") for k in state["model"])  # loads on any world size

    # The job's test accuracy is what one process measures on the same 255 images.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resnetlab",
            "eval",
            str(tmp_path / "run-1"),
            "--data-dir",
            str(fashion_mnist_dir),
            "--limit",
            "255",
            "--device",
            "cpu",
        ],
        env=child_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status, out = finish(proc, timeout=120)
    assert status == 0, out
    match = re.search(r"test: (\d+) images .*acc(?:uracy)? ([0-9.]+)", out)
    assert match, out
    assert int(match[1]) == 255
    assert test_accuracy == pytest.approx(float(match[2]), abs=1e-4), out


def _rank_pid(launcher: subprocess.Popen, rank: int, deadline: float) -> int:
    while time.time() < deadline:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            try:
                if child.environ().get("RANK") == str(rank):
                    return child.pid
            except psutil.Error:
                continue
        time.sleep(0.1)
    raise AssertionError(f"rank {rank} did not start")


def test_killed_rank_is_named_and_resume_continues_the_run(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    timeout_s = 10
    job = ("--epochs", "3", "--train-limit", "2048", "--dist-timeout", str(timeout_s))
    launcher = torchrun_train(tmp_path, fashion_mnist_dir, *job)
    try:
        victim = _rank_pid(launcher, 1, time.time() + 60)
        last = tmp_path / "run-1" / "last.pt"
        deadline = time.time() + 90
        while not last.exists() and launcher.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert last.exists(), "no checkpoint after the first epoch"
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        status, out = finish(launcher, timeout=120)
        ended = time.time()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()
    assert status not in (0, -999), out
    # Ends by itself (no hang): the timeout plus a wide margin for a loaded machine.
    assert ended - killed_at < timeout_s + 45, out
    # What the user sees: a message naming rank 1 (ours, or torchrun's failure summary).
    assert re.search(r"rank 1 died|rank\s*:\s*1 \(local_rank: 1\)", out), out
    assert "test accuracy" not in out
    saved = torch.load(last, weights_only=True)
    # 2048 training images (after the 256 validation ones) = 16 steps x (64 per rank x 2
    # ranks) per epoch.
    assert saved["step"] % 16 == 0 and 0 < saved["step"] < 3 * 16

    status, out = finish(torchrun_train(tmp_path, fashion_mnist_dir, "--resume", "1"), timeout=120)
    assert status == 0, out
    assert f"resumed at epoch {saved['epoch']}, step {saved['step']}" in out
    assert "global batch 128 = 64 per rank x 2 ranks; lr 0.4 (kept from the checkpoint" in out
    with RunStore(tmp_path / "runs.db") as store:
        runs = store.list_runs()
        assert [(r.id, r.status) for r in runs] == [(1, "completed")]
        assert runs[0].config["lr"] == pytest.approx(0.4)
        steps, _ = store.series(1, "loss")
        assert steps[-1] == 3 * 16
    assert torch.load(last, weights_only=True)["step"] == 3 * 16


def test_ranks_on_separate_machines_name_the_dead_peer_and_resume_on_one_process(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    # Ranks started by hand, as on two machines: no torchrun agent kills the survivor, so
    # only its own collective timeout and the heartbeats act.
    from ddp_launch import free_port, port_clash

    timeout_s = 5
    last = tmp_path / "run-1" / "last.pt"

    def start_ranks() -> list[subprocess.Popen]:
        port = free_port()
        procs = []
        for rank in (0, 1):
            env = child_env(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE="2",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
            cmd = [
                sys.executable,
                "-m",
                "resnetlab",
                "train",
                *DATA,
                "--data-dir",
                str(fashion_mnist_dir),
                "--runs-db",
                str(tmp_path / "runs.db"),
                "--epochs",
                "3",
                "--train-limit",
                "2048",
                "--dist-timeout",
                str(timeout_s),
            ]
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        return procs

    def first_checkpoint(procs: list[subprocess.Popen]) -> None:
        deadline = time.time() + 90
        while not last.exists() and procs[0].poll() is None and time.time() < deadline:
            time.sleep(0.05)

    procs = start_ranks()
    try:
        first_checkpoint(procs)
        if not last.exists() and procs[0].poll() is not None:
            for proc in procs[1:]:
                proc.kill()
            status, out = finish(procs[0], timeout=30)
            if port_clash(out):  # the free port was taken meanwhile: once more, another port
                for proc in procs[1:]:
                    proc.communicate()
                procs = start_ranks()
                first_checkpoint(procs)
        assert last.exists(), "no checkpoint after the first epoch"
        procs[1].kill()
        killed_at = time.time()
        status, out = finish(procs[0], timeout=120)
        ended = time.time()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    assert status == 2, out
    # The peer may die in a backward all-reduce or in an epoch-end metric gather: both are
    # "training", the inner collective named in brackets.
    assert re.search(
        r"error: \(rank 0\) rank 1 died during training( \([^)]*\))?; "
        r"restart the job with --resume",
        out,
    ), out
    # Ends by itself (no hang): the timeout plus a wide margin for a loaded machine.
    assert ended - killed_at < timeout_s + 45, out
    with RunStore(tmp_path / "runs.db") as store:
        run = store.get_run(1)
        assert run.status == "failed" and "rank 1 died" in (run.error or "")
    saved = torch.load(last, weights_only=True)

    # Resume the 2-rank run in one process (another world size): same run, same step.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "resnetlab",
            "train",
            "--resume",
            "1",
            "--runs-db",
            str(tmp_path / "runs.db"),
            "--data-dir",
            str(fashion_mnist_dir),
            "--live",
            "none",
            "--no-progress",
        ],
        env=child_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status, out = finish(proc, timeout=120)
    assert status == 0, out
    assert f"resumed at epoch {saved['epoch']}, step {saved['step']}" in out
    assert "global batch 64 = 64 per rank x 1 rank; lr 0.4 (kept from the checkpoint" in out
    # One process takes the whole 2048-image epoch in 64-image steps: 32 steps per epoch.
    remaining = 3 - saved["epoch"]
    assert torch.load(last, weights_only=True)["step"] == saved["step"] + remaining * 32
    with RunStore(tmp_path / "runs.db") as store:
        assert [(r.id, r.status) for r in store.list_runs()] == [(1, "completed")]
