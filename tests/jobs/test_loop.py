"""BackgroundLoop: start handshake, submit/call, the three ways to stop, errors never lost."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest
from jobs_helpers import job_threads, wait_for

from resnetlab.errors import JobError
from resnetlab.jobs import BackgroundLoop

pytestmark = pytest.mark.timeout(60)


def test_start_returns_once_the_loop_runs_in_its_own_named_thread() -> None:
    with BackgroundLoop("loop-handshake") as bg:
        assert bg.running and bg.loop.is_running()
        assert bg.thread.name == "loop-handshake"
        assert bg.call(threading.current_thread).name == "loop-handshake"
        assert bg.submit(asyncio.sleep(0, "done")).result(5) == "done"
        # a new loop, not this thread's (there is none here) and not shared
        assert bg.call(asyncio.get_running_loop) is bg.loop
    assert bg.closed and bg.loop.is_closed() and not bg.running


def test_startup_errors_reach_the_caller() -> None:
    def broken_setup() -> None:
        raise RuntimeError("no GPU context")

    bg = BackgroundLoop("loop-broken", setup=broken_setup)
    with pytest.raises(RuntimeError, match="no GPU context"):
        bg.start()
    assert bg.closed and not bg.running
    with pytest.raises(JobError, match="already started"):
        bg.start()


def test_clean_stop_lets_tasks_see_the_event_and_finish() -> None:
    bg = BackgroundLoop("loop-clean").start()

    async def watcher() -> str:
        await bg.stop_requested()
        await asyncio.sleep(0.01)  # cleanup that still awaits
        return "finished cleanly"

    async def poller() -> int:
        n = 0
        while not bg.stopping:
            n += 1
            await asyncio.sleep(0.005)
        return n

    w, p = bg.submit(watcher()), bg.submit(poller())
    time.sleep(0.05)
    bg.stop()
    assert w.result(0) == "finished cleanly" and p.result(0) > 0
    bg.stop()  # idempotent
    assert not bg.running


def test_clean_stop_cancels_tasks_that_ignore_the_event_after_the_timeout() -> None:
    bg = BackgroundLoop("loop-stubborn", stop_timeout=0.1).start()
    cleaned = threading.Event()

    async def deaf() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.set()

    fut = bg.submit(deaf())
    time.sleep(0.02)
    t0 = time.monotonic()
    bg.stop()
    assert time.monotonic() - t0 < 5
    assert fut.cancelled() and cleaned.is_set()


def test_hard_stop_cancels_pending_tasks_and_awaits_their_cleanup() -> None:
    bg = BackgroundLoop("loop-hard").start()
    order: list[str] = []

    async def slow_cleanup() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # cleanup that needs the loop
            order.append("cleanup done")
            raise

    fut = bg.submit(slow_cleanup())
    time.sleep(0.02)
    bg.stop(hard=True)
    order.append("stop returned")
    assert order == ["cleanup done", "stop returned"]
    with pytest.raises(concurrent.futures.CancelledError):
        fut.result(0)
    assert bg.loop.is_closed()


def test_cancel_one_task_then_all_ends_a_loop_started_until_tasks_done() -> None:
    bg = BackgroundLoop("loop-until", until_tasks_done=True).start()
    cleaned: list[int] = []

    async def forever(i: int) -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append(i)

    futs = [bg.submit(forever(i)) for i in range(3)]
    time.sleep(0.02)
    assert bg.cancel(futs[0]) is True  # returns after that task's cleanup ran
    assert futs[0].cancelled() and cleaned == [0] and bg.running
    assert bg.cancel(futs[0]) is False  # already finished
    assert bg.cancel_all() == 2
    assert bg.wait(5) and bg.closed
    assert sorted(cleaned) == [0, 1, 2]
    with pytest.raises(JobError, match="takes no new tasks"):
        bg.submit(asyncio.sleep(0))


def test_future_cancel_means_cancelled_after_cleanup() -> None:
    with BackgroundLoop("loop-futcancel") as bg:
        steps: list[str] = []

        async def work() -> None:
            try:
                await asyncio.sleep(60)
            finally:
                await asyncio.sleep(0.02)
                steps.append("cleaned")

        fut = bg.submit(work())
        time.sleep(0.02)
        assert fut.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            fut.result(5)
        assert steps == ["cleaned"]


def test_first_unretrieved_task_exception_is_reraised_by_stop() -> None:
    bg = BackgroundLoop("loop-errors").start()

    async def boom(msg: str) -> None:
        raise ValueError(msg)

    seen = bg.submit(boom("seen"))
    with pytest.raises(ValueError, match="seen"):
        seen.result(5)  # retrieved by the user: stop() will not raise it again
    bg.submit(boom("unseen"))
    wait_for(lambda: len(bg.errors) == 2)
    with pytest.raises(ValueError, match="unseen"):
        bg.stop()
    bg.stop()  # idempotent: nothing raised twice
    assert [str(e) for e in bg.errors] == ["seen", "unseen"]


def test_errors_can_be_recorded_instead_of_raised() -> None:
    bg = BackgroundLoop("loop-record").start()

    async def boom() -> None:
        raise KeyError("kept")

    bg.submit(boom())
    wait_for(lambda: bg.errors)
    bg.stop(raise_errors=False)
    assert isinstance(bg.errors[0], KeyError)


def test_blocking_calls_from_the_loop_thread_raise_instead_of_deadlocking() -> None:
    with BackgroundLoop("loop-deadlock") as bg:
        with pytest.raises(JobError, match="own thread"):
            bg.call(bg.stop)
        with pytest.raises(JobError, match="own thread"):
            bg.call(bg.call, print)

        async def waits_on_own_future() -> None:
            other = bg.submit(asyncio.sleep(10))
            other.result()

        with pytest.raises(JobError, match="deadlock"):
            bg.submit(waits_on_own_future()).result(5)
        bg.cancel_all()


def test_submit_rejects_a_function_with_a_fix() -> None:
    with BackgroundLoop("loop-submit") as bg, pytest.raises(JobError, match=r"submit\(work\(arg\)\)"):
        bg.submit(asyncio.sleep)


def test_with_block_error_stops_hard_and_keeps_the_error() -> None:
    with pytest.raises(ZeroDivisionError), BackgroundLoop("loop-with") as bg:
        bg.submit(asyncio.sleep(60))
        1 / 0  # noqa: B018
    assert bg.closed
    assert wait_for(lambda: "loop-with" not in job_threads())


def test_a_task_that_blocks_the_loop_gives_a_clear_error_not_a_hang() -> None:
    bg = BackgroundLoop("loop-blocked", stop_timeout=0.05, cancel_timeout=0.05).start()
    bg.join_grace = 0.2
    release = threading.Event()

    async def blocks() -> None:
        release.wait(30)  # synchronous wait: the loop cannot run anything else

    bg.submit(blocks())
    time.sleep(0.05)
    with pytest.raises(JobError, match="blocks the loop thread"):
        bg.stop()
    release.set()
    bg.stop(raise_errors=False)  # once unblocked, it stops
    assert bg.closed and not bg.running
