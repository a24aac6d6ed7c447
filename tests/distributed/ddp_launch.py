"""Launching the tiny DDP job (ddp_job.py) in real processes for the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

JOB = Path(__file__).with_name("ddp_job.py")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_clash(output: str) -> bool:
    """True when a store could not bind its port: another process took the port that
    :func:`free_port` saw free. Launch again (with a new port) rather than fail."""
    return "address already in use" in output.lower()


def master_store(attempts: int = 3):  # -> torch.distributed.TCPStore
    """A TCPStore hosted by this process on a free port (a new port if one is taken)."""
    import torch.distributed as dist

    for attempt in range(attempts):
        try:
            return dist.TCPStore("127.0.0.1", free_port(), is_master=True, wait_for_workers=False)
        except dist.DistNetworkError as exc:
            if not port_clash(str(exc)) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment for a child: one thread each, no launcher variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "RANK",
            "LOCAL_RANK",
            "WORLD_SIZE",
            "LOCAL_WORLD_SIZE",
            "MASTER_ADDR",
            "MASTER_PORT",
            "TORCHELASTIC_RESTART_COUNT",
        )
    }
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def torchrun(out: Path, data: Path, *args: str, nproc: int = 2) -> subprocess.Popen:
    """``python -m torch.distributed.run --standalone --nproc-per-node N ddp_job.py OUT ...``."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        str(JOB),
        str(out),
        "--data",
        str(data),
        *args,
    ]
    return subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def single(out: Path, data: Path, *args: str) -> subprocess.Popen:
    """The job as one plain process (no launcher variables)."""
    cmd = [sys.executable, str(JOB), str(out), "--data", str(data), *args]
    return subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def rank_processes(
    out: Path, data: Path, port: int, *args: str, world_size: int = 2
) -> list[subprocess.Popen]:
    """One process per rank started by hand, as on separate machines: no torchrun agent
    watches them, so a dead rank is noticed only by its peers."""
    procs = []
    for rank in range(world_size):
        env = child_env(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world_size),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        cmd = [sys.executable, str(JOB), str(out), "--data", str(data), *args]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return procs


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    """Wait for ``proc``; kill it if it overruns. Returns (status, output)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return -999, (out or "") + (err or "")
    return proc.returncode, (out or "") + (err or "")
