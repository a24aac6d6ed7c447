"""Stress: hundreds of random start/submit/stop/cancel/raise sequences from several threads.

Checks after every sequence: the loop is closed, every future is settled, every exception
a task raised is observable (on its future and in ``loop.errors``); at the end no thread
is left over. pytest-timeout turns a hang into a failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading

import pytest
from jobs_helpers import job_threads, wait_for

from resnetlab.errors import JobError
from resnetlab.jobs import BackgroundLoop, JobRegistry

SEQUENCES = 300
DRIVERS = 4
# The only refusals a driver may meet: submit()/call() after another driver stopped the
# loop (or, with until_tasks_done, after its last task ended). Any other JobError (a lost
# cancel, a stop that timed out) fails the test.
REFUSALS = ("it takes no new tasks", "call() needs a running loop")


class Tagged(Exception):
    """An exception that says which task raised it."""


async def sleeper(dt: float) -> float:
    await asyncio.sleep(dt)
    return dt


async def raiser(tag: str, dt: float) -> None:
    await asyncio.sleep(dt)
    raise Tagged(tag)


async def watcher(bg: BackgroundLoop) -> str:
    await bg.stop_requested()
    return "saw stop"


def run_sequence(seed: int, pool: concurrent.futures.ThreadPoolExecutor) -> None:
    rng = random.Random(seed)
    # cancel_timeout only bounds waits on tasks that all honour cancellation: generous, so
    # that a loaded machine cannot turn a slow cancel into a failure.
    bg = BackgroundLoop(
        f"stress-{seed}",
        until_tasks_done=rng.random() < 0.3,
        stop_timeout=0.02,
        cancel_timeout=30.0,
    )
    bg.start()
    futures: list[concurrent.futures.Future] = []
    raised_tags: dict[concurrent.futures.Future, str] = {}
    lock = threading.Lock()
    stop_kind = rng.choice(["clean", "hard", "cancel_all"])

    def driver(dseed: int) -> None:
        r = random.Random(dseed)
        for _ in range(r.randint(3, 8)):
            op = r.choice(["sleep", "sleep", "raise", "watch", "cancel", "call", "stop"])
            try:
                if op == "sleep":
                    fut = bg.submit(sleeper(r.uniform(0, 0.01)))
                elif op == "raise":
                    tag = f"{seed}-{dseed}-{r.random()}"
                    fut = bg.submit(raiser(tag, r.uniform(0, 0.005)))
                    with lock:
                        raised_tags[fut] = tag
                elif op == "watch":
                    fut = bg.submit(watcher(bg))
                elif op == "cancel":
                    with lock:
                        pick = r.choice(futures) if futures else None
                    if pick is not None:
                        bg.cancel(pick, wait=r.random() < 0.5)
                    continue
                elif op == "call":
                    assert bg.call(lambda: 41 + 1, timeout=30) == 42
                    continue
                else:  # a driver stops the loop while others keep working
                    _stop(bg, r.choice(["clean", "hard", "cancel_all"]))
                    continue
            except JobError as exc:
                if not any(refusal in str(exc) for refusal in REFUSALS):
                    raise AssertionError(f"{op}: unexpected {exc}") from exc
                continue  # the loop was already stopping: refused with a clear error
            with lock:
                futures.append(fut)

    drivers = [pool.submit(driver, seed * 100 + i) for i in range(DRIVERS)]
    for d in drivers:
        d.result(timeout=60)
    _stop(bg, stop_kind)

    assert bg.closed and bg.loop.is_closed(), bg
    assert not bg.running
    concurrent.futures.wait(futures, timeout=30)
    assert all(f.done() for f in futures)
    recorded = {str(e) for e in bg.errors if isinstance(e, Tagged)}
    for fut, tag in raised_tags.items():
        if fut.cancelled():
            continue
        exc = fut.exception(0)
        assert isinstance(exc, Tagged) and str(exc) == tag  # observable on its future
        assert tag in recorded  # and in loop.errors
    unexpected = [e for e in bg.errors if not isinstance(e, Tagged)]
    assert unexpected == []


def _stop(bg: BackgroundLoop, kind: str) -> None:
    try:
        if kind == "cancel_all":
            bg.cancel_all(wait=True, timeout=30)
            bg.stop(raise_errors=False)
        else:
            bg.stop(hard=(kind == "hard"), raise_errors=False)
    except JobError as exc:
        raise AssertionError(f"stop {kind} failed: {exc}") from exc


@pytest.mark.timeout(120)
def test_random_sequences_from_several_threads_never_hang_leak_or_lose_errors() -> None:
    before = set(threading.enumerate())
    with concurrent.futures.ThreadPoolExecutor(DRIVERS, thread_name_prefix="stress-driver") as pool:
        for seed in range(SEQUENCES):
            run_sequence(seed, pool)
    assert wait_for(lambda: set(threading.enumerate()) <= before, 30), (
        set(threading.enumerate()) - before
    )
    assert job_threads() == []


@pytest.mark.timeout(120)
def test_random_registry_jobs_stopped_every_way(tmp_path) -> None:
    reg = JobRegistry(tmp_path, stop_timeout=0.5)
    rng = random.Random(7)

    async def work(tag: str, fail: bool) -> str:
        for _ in range(rng.randint(0, 5)):
            await asyncio.sleep(0.002)
            print(tag)
        if fail:
            raise Tagged(tag)
        return tag

    started = []
    for i in range(60):
        fail = rng.random() < 0.3
        job = reg.new(work, f"job{i}", fail, name=f"stress-{i}")
        started.append((job, fail))
        if rng.random() < 0.7:
            reg.stop(job.id, how=rng.choice(["event", "loop", "cancel"]))
    for job, fail in started:
        assert job.wait(30) != "running"
        if job.state == "failed":
            assert fail and isinstance(job.exception, Tagged) and "Tagged" in job.traceback
            with pytest.raises(JobError, match="jobs.traceback"):
                reg.result(job.id)
        elif job.state == "completed":
            assert reg.result(job.id) == job.name.replace("stress-", "job")
        else:
            assert job.state == "stopped"
        reg.remove(job.id)
    assert len(reg.status()) == 0
    assert wait_for(lambda: job_threads() == [], 30), job_threads()
