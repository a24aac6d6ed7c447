"""Process jobs: spawned workers stream output and metrics back, and can be killed."""

from __future__ import annotations

import os
import signal
import time

import jobs_workers as workers
import pytest
from jobs_helpers import registry_fixture, wait_for  # noqa: F401 (the registry fixture)

from resnetlab.errors import ConfigError, JobError

pytestmark = pytest.mark.timeout(90)

# Grace for SIGTERM in the kill tests: long enough that a loaded machine still lets the
# worker's interpreter shut down after SystemExit(143) before SIGKILL would follow.
GRACE = 20.0


def test_kill_ends_a_busy_worker_within_the_grace_period_and_we_keep_working(registry) -> None:
    job = registry.new(workers.busy, kind="process", name="spinner")
    assert wait_for(lambda: "busy" in job.output.last_line, 30), job.tail()
    assert job.pid != os.getpid()
    t0 = time.monotonic()
    assert job.kill(grace=GRACE) == "killed" and job.state == "killed"
    took = time.monotonic() - t0
    assert not job.process.is_alive()  # the busy worker is gone
    if took < GRACE:  # SIGTERM sufficed: it became SystemExit(143), so cleanup could run
        assert job.process.exitcode == 143, (took, job.process.exitcode)
    else:  # the machine was too busy for even that: SIGKILL followed, as promised
        assert job.process.exitcode == -9, (took, job.process.exitcode)
    # this process is unharmed and can start more work
    again = registry.new(workers.counter, 3, kind="process")
    assert again.wait(30) == "completed" and again.result() == 3


def test_a_worker_killed_while_reading_its_flags_leaves_the_parent_working(registry) -> None:
    # The worker dies at a random point of a flag read. A flag guarded by a semaphore both
    # processes take (multiprocessing.Event) was then often left locked: the parent hung
    # on its next read and the job stayed "running" for ever.
    for _ in range(3):
        job = registry.new(workers.poll_stop_flag, kind="process")
        assert wait_for(lambda j=job: "polling" in j.output.last_line, 30), job.tail()
        time.sleep(0.2)  # let it spin through many flag reads
        os.kill(job.pid, signal.SIGKILL)
        assert job.wait(30) == "failed", job
        assert job.stopping is False and job.stop() == "failed"
    again = registry.new(workers.counter, 3, kind="process")
    assert again.wait(30) == "completed"


def test_sigkill_follows_when_the_worker_ignores_sigterm(registry) -> None:
    job = registry.new(workers.stubborn, kind="process")
    assert wait_for(lambda: "ignoring SIGTERM" in job.tail(), 30)
    t0 = time.monotonic()
    assert job.kill(grace=0.5) == "killed"
    assert 0.5 <= time.monotonic() - t0 < 60  # waited the grace, then SIGKILL: no hang
    assert job.process.exitcode == -9 and not job.process.is_alive()


def test_output_and_metrics_stream_back_and_the_event_stops_it(registry) -> None:
    job = registry.new(workers.counter, 100_000, 0.01, kind="process")
    assert wait_for(lambda: len(job.stream.series("loss")[0]) >= 5, 30)
    assert registry.stop(job.id, how="event") == "stopped"
    last = job.result()
    steps, losses = job.stream.series("loss")
    assert last > 0 and steps[0] == 0 and losses[1] == pytest.approx(0.5)
    assert f"step {last}" in job.tail(3)
    assert "step 0" in job.log_path.read_text()


def test_worker_errors_keep_their_type_and_traceback(registry) -> None:
    job = registry.new(workers.fail, "disk full", kind="process")
    assert job.wait(30) == "failed"
    assert isinstance(job.exception, ValueError) and str(job.exception) == "disk full"
    assert "workers.py" in job.traceback and "ValueError: disk full" in job.traceback
    assert job.tail(1) == "about to fail"


def test_async_workers_and_descriptor_level_output(registry) -> None:
    a = registry.new(workers.async_counter, 4, kind="process")
    fd = registry.new(workers.write_fd, "written by C code\n", kind="process")
    assert a.wait(30) == "completed" and a.result() == 4
    assert fd.wait(30) == "completed"
    assert "written by C code" in fd.log_path.read_text()  # not in our terminal


def test_unpicklable_work_is_refused_before_spawning(registry) -> None:
    with pytest.raises(JobError, match="module-level function"):
        registry.new(lambda: 1, kind="process")
    with pytest.raises(JobError, match="how='kill'"):
        job = registry.new(workers.counter, 1000, kind="process")
        registry.stop(job.id, how="cancel")
    # an unknown mode: the one message every kind of job gives
    with pytest.raises(
        ConfigError, match=r"unknown stop mode how='evnt'; use one of 'event', 'loop', 'cancel'"
    ):
        job.stop("evnt")
    assert job.running
    assert registry.stop(job.id, how="kill") == "killed"
