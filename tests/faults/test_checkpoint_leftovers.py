"""A checkpoint write killed mid-way leaves a temporary file; the next start removes it.

Real writers in real processes: one is SIGKILLed while its ``atomic_write`` is open (its
``.ckpt-….tmp`` is a leftover), one is still writing (its file must survive the cleanup).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from resnetlab.training.checkpoint import CheckpointManager, load_checkpoint

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
WRITER = """
import sys, time
from resnetlab.utils.atomic import atomic_write
with atomic_write(sys.argv[1]) as fh:
    fh.write(b"half a checkpoint" * 1000)
    fh.flush()
    print("writing", flush=True)
    time.sleep(600)
"""


def _writer(target: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    return proc


def test_leftovers_of_killed_writers_are_removed_writes_in_progress_kept(tmp_path: Path) -> None:
    killed = _writer(tmp_path / "ckpt-step00000010.pt")
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    alive = _writer(tmp_path / "ckpt-step00000020.pt")
    try:
        old_style = tmp_path / ".ckpt-step00000003.pt.k2j3h4ab.tmp"  # no pid: before this fix
        old_style.write_bytes(b"x")
        link_left = tmp_path / f".last.pt.{killed.pid}.tmp"  # a killed last.pt update
        link_left.write_bytes(b"x")
        foreign = tmp_path / ".notes.txt.1.tmp"  # not a checkpoint: not ours to delete
        foreign.write_bytes(b"x")
        temps = sorted(p.name for p in tmp_path.glob(".*.tmp"))
        assert any(n.startswith(f".ckpt-step00000010.pt.{killed.pid}.") for n in temps), temps

        manager = CheckpointManager(tmp_path)  # what a trainer makes on start and resume

        left = sorted(p.name for p in tmp_path.glob(".*.tmp"))
        assert foreign.name in left
        assert [n for n in left if n.startswith(".ckpt-step00000020.pt.")], left  # in progress
        assert not [n for n in left if "00000010" in n or "00000003" in n], left
        assert link_left.name not in left
        path = manager.save({"model": {}, "step": 30}, 30)  # the manager still works
        assert load_checkpoint(path)["step"] == 30
    finally:
        alive.kill()
        alive.wait(30)
