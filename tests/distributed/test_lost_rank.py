"""A rank that dies (SIGKILL) or hangs (SIGSTOP) mid-run: its peer exits within the
collective timeout with a message that names it, instead of hanging.

The ranks are started by hand (as on two machines), so no torchrun agent on the same
node kills the survivor first: only the survivor's own timeouts and heartbeats act.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from ddp_launch import finish, free_port, rank_processes

pytestmark = pytest.mark.slow

TIMEOUT_S = 4.0
# Heartbeat diagnosis (3 x 0.5 s) plus interpreter exit on a loaded 2-core machine.
SLACK_S = 6.0


def test_peer_of_a_dead_or_hung_rank_exits_naming_it(tmp_path: Path,
                                                      fashion_mnist_dir: Path) -> None:
    jobs = {}
    for how in ("kill", "stop"):
        out = tmp_path / how
        jobs[how] = (out, rank_processes(out, fashion_mnist_dir, free_port(), "--steps", "50",
                                         "--die-at", "3", "--die-how", how, "--bn", "train",
                                         "--timeout", str(TIMEOUT_S)))
    try:
        ended: dict[str, float] = {}
        deadline = time.time() + 120
        while len(ended) < len(jobs) and time.time() < deadline:
            for how, (_, (rank0, _)) in jobs.items():
                if how not in ended and rank0.poll() is not None:
                    ended[how] = time.time()
            time.sleep(0.05)
        results = {}
        for how, (out, (rank0, _)) in jobs.items():
            status, output = finish(rank0, timeout=1)
            results[how] = (status, output, ended.get(how, float("inf")), out)
    finally:
        for _, (_, procs) in jobs.items():
            victim = procs[1]
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGKILL)
            victim.communicate()

    status, output, ended, out = results["kill"]
    assert status == 3, output
    assert "rank 1 died during training" in output
    assert "--resume" in output
    assert ended - float((out / "died_at").read_text()) < TIMEOUT_S + SLACK_S

    status, output, ended, out = results["stop"]
    assert status == 3, output
    assert f"rank 1 stopped responding (timeout {TIMEOUT_S:g} s) during training" in output
    assert ended - float((out / "died_at").read_text()) < TIMEOUT_S + SLACK_S
