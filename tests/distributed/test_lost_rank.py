"""A rank that dies (SIGKILL) or hangs (SIGSTOP) mid-run: its peer exits by itself with a
message that names it, instead of hanging.

The ranks are started by hand (as on two machines), so no torchrun agent on the same
node kills the survivor first: only the survivor's own timeouts and heartbeats act. The
two cases run one after the other, so no more than two ranks share the CPU.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from ddp_launch import finish, free_port, port_clash, rank_processes

pytestmark = pytest.mark.slow

TIMEOUT_S = 6.0
# What "does not hang" means here: the collective timeout plus heartbeat diagnosis
# (3 x 0.5 s) and interpreter exit, with a wide margin for a loaded CI machine.
END_BOUND_S = TIMEOUT_S + 45


def lose_rank(out: Path, data: Path, how: str) -> tuple[int, str, float]:
    """Run a 2-rank job whose rank 1 dies (``how``) at step 3; (status, output, seconds
    from rank 1's death to rank 0's exit). Launched again once if the port was taken."""
    for attempt in (1, 2):
        procs = rank_processes(
            out / str(attempt),
            data,
            free_port(),
            "--steps",
            "50",
            "--die-at",
            "3",
            "--die-how",
            how,
            "--bn",
            "train",
            "--timeout",
            str(TIMEOUT_S),
        )
        rank0, victim = procs
        try:
            status, output = finish(rank0, timeout=120)
            ended = time.time()
        finally:
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGKILL)
            victim_output = "".join(victim.communicate())
        if attempt == 1 and port_clash(output + victim_output):
            continue
        died_at = out / str(attempt) / "died_at"
        assert died_at.exists(), f"rank 1 never reached step 3:\n{output}\n{victim_output}"
        return status, output, ended - float(died_at.read_text())
    raise AssertionError("unreachable")


def test_peer_of_a_killed_rank_exits_naming_it(tmp_path: Path, fashion_mnist_dir: Path) -> None:
    status, output, took = lose_rank(tmp_path, fashion_mnist_dir, "kill")
    assert status == 3, output
    assert "rank 1 died during training" in output
    assert "--resume" in output
    assert took < END_BOUND_S, output


def test_peer_of_a_hung_rank_exits_naming_it(tmp_path: Path, fashion_mnist_dir: Path) -> None:
    status, output, took = lose_rank(tmp_path, fashion_mnist_dir, "stop")
    assert status == 3, output
    assert f"rank 1 stopped responding (timeout {TIMEOUT_S:g} s) during training" in output
    assert "--resume" in output
    assert took < END_BOUND_S, output
