"""``torchrun ... -m resnetlab train``: the per-rank system lines of an epoch follow it.

The rank monitor samples every rank at each epoch end; the CLI prints those samples
after the epoch. It must sample before the CLI prints, or each epoch shows the previous
epoch's numbers and a one-epoch job shows none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

LAUNCHER_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RESTART_COUNT",
)


def test_a_one_epoch_torchrun_job_prints_each_ranks_system_line(tmp_path, fashion_mnist_dir):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "resnetlab",
        "train",
        "--model",
        "resnetv2-micro",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--train-limit",
        "512",
        "--val-size",
        "0",
        "--test-limit",
        "128",
        "--live",
        "none",
        "--no-progress",
        "--data-dir",
        str(fashion_mnist_dir),
        "--runs-db",
        str(tmp_path / "runs.db"),
    ]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "4 steps/epoch x 1 epochs" in out, out
    assert re.search(r"^\s+rank 0 .*cpu_percent=", out, re.M), out
    assert re.search(r"^\s+rank 1 .*cpu_percent=", out, re.M), out
