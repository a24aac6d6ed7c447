"""Kills that race a worker's own exit: one reaper, no signal to a reaped PID, an exit code.

Two threads used to reap the same child (the output pump's ``join`` and ``kill``'s
``join``/``is_alive``): the loser saw "no such child" as "still running", logged that the
worker "survived SIGTERM" after a few milliseconds and sent SIGKILL to a PID that was
already reaped (which the OS may have given to an unrelated process); ``job.exitcode``
was often left ``None``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

import faults_workers as workers
import pytest

from resnetlab.jobs import JobRegistry

pytestmark = pytest.mark.timeout(240)

KILLS = 60
GRACE = 20.0  # long: a SIGKILL inside it can only mean kill() misread a dead worker


def _reaped(pid: int) -> bool:
    """Whether ``pid`` is no longer a child of ours that can be signalled safely."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True  # reaped: the number may already belong to another process
    return False


def _pidfd_target(fd: int) -> int:
    """The PID a pidfd refers to (-1 once that process was reaped)."""
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("Pid:"):
            return int(line.split()[1])
    return -1


class SignalWatch:
    """Records every signal this process sends to one of ``children`` after it was reaped."""

    def __init__(self) -> None:
        self.children: set[int] = set()
        self.to_reaped: list[tuple[int, int]] = []


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> SignalWatch:
    """Wrap ``os.kill`` and ``signal.pidfd_send_signal`` (real signals still go out)."""
    seen = SignalWatch()
    real_kill = os.kill

    def kill(pid: int, sig: int) -> None:
        if pid in seen.children and _reaped(pid):
            seen.to_reaped.append((pid, sig))
        real_kill(pid, sig)

    monkeypatch.setattr(os, "kill", kill)
    if hasattr(signal, "pidfd_send_signal"):
        real_send = signal.pidfd_send_signal

        def send(fd: int, sig: int, *args: object) -> None:
            if _pidfd_target(fd) == -1:
                seen.to_reaped.append((-1, sig))
            real_send(fd, sig, *args)

        monkeypatch.setattr(signal, "pidfd_send_signal", send)
    return seen


def _wait_exited(pid: int, timeout: float) -> None:
    """Block until child ``pid`` has exited, without reaping it (that is the job's to do)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return  # already reaped by the job's pump
        time.sleep(0.001)
    raise AssertionError(f"worker {pid} did not exit within {timeout} s")


def _kill_once(registry: JobRegistry, watch: SignalWatch, i: int) -> tuple:
    """Start a worker, kill it at a moment that races a reaper, check what kill() left."""
    if i % 3 == 2:  # it ends on its own; kill() lands while its pump may be reaping it
        job = registry.new(workers.exit_after, 0.0, kind="process", name=f"k{i}")
        watch.children.add(job.pid)
        _wait_exited(job.pid, 60)
    else:  # SIGTERM ends it at once: the pump and kill() both see the exit together
        job = registry.new(workers.sleep_forever, kind="process", name=f"k{i}")
        watch.children.add(job.pid)
        deadline = time.monotonic() + 60
        while "sleeping" not in job.output.last_line and time.monotonic() < deadline:
            time.sleep(0.005)
    t0 = time.monotonic()
    state = job.kill(grace=GRACE)
    outcome = (i, str(state), job.exitcode, round(time.monotonic() - t0, 3))
    assert job.exitcode is not None, outcome
    assert job.exitcode == job.process.exitcode, outcome
    assert not job.process.is_alive(), outcome
    if state == "completed":  # it ended on its own before the signal: its true status
        assert job.exitcode == 0 and job.result() == "done", outcome
    else:
        assert state == "killed", outcome
    return outcome


def test_kills_racing_the_workers_exit_signal_no_reaped_pid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, watch: SignalWatch
) -> None:
    caplog.set_level(logging.WARNING, logger="resnetlab.jobs.worker")
    registry = JobRegistry(tmp_path / "logs", stop_timeout=2.0)
    outcomes = []
    try:
        for i in range(KILLS):
            outcomes.append(_kill_once(registry, watch, i))
    finally:
        registry.stop_all(timeout=1.0)
    # Each worker died of its SIGTERM (or had ended) within milliseconds: a "survived
    # SIGTERM" before the 20 s grace is kill() mistaking a reaped child for a live one.
    survived = [r.getMessage() for r in caplog.records if "survived SIGTERM" in r.getMessage()]
    assert not survived, (survived, outcomes)
    assert not watch.to_reaped, (watch.to_reaped, outcomes)
