"""BackgroundLoop: start handshake, submit/call, the three ways to stop, errors never lost."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

import pytest

from resnetlab.errors import JobError
from resnetlab.runtime.loop import BackgroundLoop, TaskFuture

pytestmark = pytest.mark.timeout(60)


def loop_threads() -> list[str]:
    """Names of live threads that belong to loops of these tests."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("loop-"))


def wait_for(predicate: Callable[[], object], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_start_returns_once_the_loop_runs_in_its_own_named_thread() -> None:
    with BackgroundLoop("loop-handshake") as bg:
        assert bg.running and bg.loop.is_running()
        assert bg.thread.name == "loop-handshake"
        assert bg.call(threading.current_thread).name == "loop-handshake"
        assert bg.submit(asyncio.sleep(0, "done")).result(30) == "done"
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
    watching, polled = threading.Event(), threading.Event()

    async def watcher() -> str:
        watching.set()
        await bg.stop_requested()
        await asyncio.sleep(0.01)  # cleanup that still awaits
        return "finished cleanly"

    async def poller() -> int:
        n = 0
        while not bg.stopping:
            n += 1
            polled.set()
            await asyncio.sleep(0.005)
        return n

    w, p = bg.submit(watcher()), bg.submit(poller())
    assert watching.wait(30) and polled.wait(30)  # both run before the stop
    bg.stop()
    assert w.result(0) == "finished cleanly" and p.result(0) > 0
    bg.stop()  # idempotent
    assert not bg.running


def test_clean_stop_cancels_tasks_that_ignore_the_event_after_the_timeout() -> None:
    bg = BackgroundLoop("loop-stubborn", stop_timeout=0.1).start()
    started, cleaned = threading.Event(), threading.Event()

    async def deaf() -> None:
        started.set()
        try:
            await asyncio.sleep(120)
        finally:
            cleaned.set()

    fut = bg.submit(deaf())
    assert started.wait(30)
    t0 = time.monotonic()
    bg.stop()
    assert time.monotonic() - t0 < 60  # cancelled after the timeout, not waited for
    assert fut.cancelled() and cleaned.is_set()


def test_hard_stop_cancels_pending_tasks_and_awaits_their_cleanup() -> None:
    bg = BackgroundLoop("loop-hard").start()
    order: list[str] = []
    started = threading.Event()

    async def slow_cleanup() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # cleanup that needs the loop
            order.append("cleanup done")
            raise

    fut = bg.submit(slow_cleanup())
    assert started.wait(30)
    bg.stop(hard=True)
    order.append("stop returned")
    assert order == ["cleanup done", "stop returned"]
    with pytest.raises(concurrent.futures.CancelledError):
        fut.result(0)
    assert bg.loop.is_closed()


def test_cancel_one_task_then_all_ends_a_loop_started_until_tasks_done() -> None:
    bg = BackgroundLoop("loop-until", until_tasks_done=True).start()
    cleaned: list[int] = []
    started = [threading.Event() for _ in range(3)]

    async def forever(i: int) -> None:
        started[i].set()
        try:
            await asyncio.sleep(60)
        finally:
            cleaned.append(i)

    futs = [bg.submit(forever(i)) for i in range(3)]
    assert all(s.wait(30) for s in started)
    assert bg.cancel(futs[0]) is True  # returns after that task's cleanup ran
    assert futs[0].cancelled() and cleaned == [0] and bg.running
    assert bg.cancel(futs[0]) is False  # already finished
    assert bg.cancel_all() == 2
    assert bg.wait(30) and bg.closed
    assert sorted(cleaned) == [0, 1, 2]
    with pytest.raises(JobError, match="takes no new tasks"):
        bg.submit(asyncio.sleep(0))


def test_future_cancel_means_cancelled_after_cleanup() -> None:
    with BackgroundLoop("loop-futcancel") as bg:
        steps: list[str] = []
        started = threading.Event()

        async def work() -> None:
            started.set()
            try:
                await asyncio.sleep(60)
            finally:
                await asyncio.sleep(0.02)
                steps.append("cleaned")

        fut = bg.submit(work())
        assert started.wait(30)
        assert fut.cancel()
        with pytest.raises(concurrent.futures.CancelledError):
            fut.result(30)
        assert steps == ["cleaned"]


def test_first_unretrieved_task_exception_is_reraised_by_stop() -> None:
    bg = BackgroundLoop("loop-errors").start()

    async def boom(msg: str) -> None:
        raise ValueError(msg)

    seen = bg.submit(boom("seen"))
    with pytest.raises(ValueError, match="seen"):
        seen.result(30)  # retrieved by the user: stop() will not raise it again
    bg.submit(boom("unseen"))
    assert wait_for(lambda: len(bg.errors) == 2, 30)
    with pytest.raises(ValueError, match="unseen"):
        bg.stop()
    bg.stop()  # idempotent: nothing raised twice
    assert [str(e) for e in bg.errors] == ["seen", "unseen"]


def test_errors_can_be_recorded_instead_of_raised() -> None:
    bg = BackgroundLoop("loop-record").start()

    async def boom() -> None:
        raise KeyError("kept")

    bg.submit(boom())
    assert wait_for(lambda: bg.errors, 30)
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
            bg.submit(waits_on_own_future()).result(30)
        bg.cancel_all()


def test_submit_rejects_a_function_with_a_fix() -> None:
    with (
        BackgroundLoop("loop-submit") as bg,
        pytest.raises(JobError, match=r"submit\(work\(arg\)\)"),
    ):
        bg.submit(asyncio.sleep)


def test_with_block_error_stops_hard_and_keeps_the_error() -> None:
    with pytest.raises(ZeroDivisionError), BackgroundLoop("loop-with") as bg:
        bg.submit(asyncio.sleep(60))
        1 / 0  # noqa: B018
    assert bg.closed
    assert wait_for(lambda: "loop-with" not in loop_threads(), 30)


def test_a_task_that_blocks_the_loop_gives_a_clear_error_not_a_hang() -> None:
    bg = BackgroundLoop("loop-blocked", stop_timeout=0.05, cancel_timeout=0.05).start()
    bg.join_grace = 0.2
    blocking, release = threading.Event(), threading.Event()

    async def blocks() -> None:
        blocking.set()
        release.wait(60)  # synchronous wait: the loop cannot run anything else

    bg.submit(blocks())
    assert blocking.wait(30)
    with pytest.raises(JobError, match="blocks the loop thread"):
        bg.stop()  # gives up after 0.3 s: the task blocks for up to 60 s
    release.set()
    bg.join_grace = 60.0  # a busy machine may take a while to schedule the thread again
    bg.stop(raise_errors=False)  # once unblocked, it stops
    assert bg.closed and not bg.running


def test_a_cancel_while_the_loop_creates_the_task_still_cancels_it() -> None:
    # Reproduces the window between "the loop checked for an early cancel" and "the task
    # is known to the future": a task factory (called inside create_task) cancels the
    # future from another thread right there, and waits until that cancel() returned.
    victim: dict[str, TaskFuture] = {}
    known = threading.Event()
    cancel_errors: list[BaseException] = []

    def cancel_from_another_thread() -> None:
        try:
            bg.cancel(victim["fut"], wait=False)
        except BaseException as exc:  # pragma: no cover - only on a regression
            cancel_errors.append(exc)

    def factory(loop: asyncio.AbstractEventLoop, coro, **kwargs) -> asyncio.Task:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        if coro.__name__ == "forever":
            assert known.wait(30)
            other = threading.Thread(target=cancel_from_another_thread)
            other.start()
            other.join(30)
        return task

    async def forever() -> None:
        await asyncio.Event().wait()

    bg = BackgroundLoop(
        "loop-cancel-race", setup=lambda: asyncio.get_event_loop().set_task_factory(factory)
    )
    with bg:
        victim["fut"] = fut = bg.submit(forever())
        known.set()
        done, _ = concurrent.futures.wait([fut], timeout=30)
        assert fut in done and fut.cancelled(), fut  # the cancel reached the task
        assert bg.cancel(fut) is False  # already finished: nothing to wait for
    assert cancel_errors == []


def test_cancelling_a_task_the_blocked_loop_never_started_says_so() -> None:
    bg = BackgroundLoop("loop-cancel-unstarted").start()
    blocking, release = threading.Event(), threading.Event()

    async def blocks() -> None:
        blocking.set()
        release.wait(30)  # synchronous: the loop cannot create the next task meanwhile

    bg.submit(blocks())
    assert blocking.wait(30)
    later = bg.submit(asyncio.sleep(60), name="later")
    with pytest.raises(JobError, match="cancelled before it started") as info:
        bg.cancel(later, timeout=0.2)
    assert "swallows CancelledError" not in str(info.value)  # it never ran: not its fault
    release.set()
    concurrent.futures.wait([later], timeout=30)
    assert later.cancelled()  # the cancel took effect once the loop ran again
    bg.stop()


# -- what the live services (monitor, dashboard refresh, WebAgg server) rely on ----------


def _blocker(blocking: threading.Event, release: threading.Event) -> Callable[[], None]:
    def block() -> None:  # synchronous: the loop runs nothing else meanwhile
        blocking.set()
        assert release.wait(30)

    return block


def test_call_returns_the_result_or_raises_the_error_of_the_function() -> None:
    with BackgroundLoop("loop-call") as bg:
        assert bg.call(divmod, 7, 2, timeout=30) == (3, 1)
        with pytest.raises(ZeroDivisionError):
            bg.call(divmod, 1, 0, timeout=30)
        fut = bg.call(sum, [1, 2, 3], wait=False)
        assert fut.result(30) == 6
    # the caller got the error: it is not kept for stop() to raise again
    assert bg.errors == []


def test_call_on_a_busy_loop_times_out_and_drops_a_call_that_had_not_begun() -> None:
    bg = BackgroundLoop("loop-call-timeout").start()
    blocking, release = threading.Event(), threading.Event()
    ran: list[str] = []
    bg.call_soon(_blocker(blocking, release))
    assert blocking.wait(30)
    with pytest.raises(TimeoutError, match=r"loop-call-timeout.*dropped before it began"):
        bg.call(ran.append, "late", timeout=0.05)
    release.set()
    bg.call(ran.append, "after", timeout=30)  # runs after everything queued before it
    assert ran == ["after"]  # the timed-out call never ran behind the caller's back
    bg.stop()


def test_call_that_times_out_while_running_runs_on_to_its_end() -> None:
    bg = BackgroundLoop("loop-call-running").start()
    blocking, release = threading.Event(), threading.Event()
    block = _blocker(blocking, release)
    ran: list[str] = []

    def slow() -> None:
        block()
        ran.append("finished")

    messages = []
    while not blocking.is_set() and len(messages) < 20:
        with pytest.raises(TimeoutError) as info:
            bg.call(slow, timeout=0.5)
        # on a busy machine the call may not begin in time: then it was dropped; try again
        messages.append(str(info.value))
    assert blocking.is_set() and "it still runs" in messages[-1], messages
    release.set()
    bg.call(lambda: None, timeout=30)
    assert ran == ["finished"]
    bg.stop()


def test_call_soon_hands_over_from_any_thread_and_keeps_the_order() -> None:
    with BackgroundLoop("loop-soon") as bg:
        order: list[object] = []
        blocking, release = threading.Event(), threading.Event()
        bg.call_soon(_blocker(blocking, release))
        assert blocking.wait(30)
        # returns at once, also while the loop is busy, and also on the loop thread itself
        futs = [bg.call_soon(order.append, i) for i in range(3)]
        futs.append(bg.call(bg.call_soon, order.append, "from the loop", wait=False))
        release.set()
        assert [f.result(30) for f in futs[:3]] == [None, None, None]
        inner = futs[3].result(30)
        assert isinstance(inner, concurrent.futures.Future)
        inner.result(30)
        assert order == [0, 1, 2, "from the loop"]
        assert bg.call(threading.current_thread, timeout=30).name == "loop-soon"


def test_call_soon_errors_are_logged_and_on_the_future_not_raised_by_stop(caplog) -> None:
    bg = BackgroundLoop("loop-soon-error").start()

    def broken() -> None:
        raise KeyError("redraw failed")

    with caplog.at_level(logging.ERROR, logger="resnetlab.runtime.loop"):
        fut = bg.call_soon(broken)
        assert isinstance(fut.exception(30), KeyError)
        bg.call(lambda: None, timeout=30)  # the done-callback ran on the loop before this
    assert any(
        "loop-soon-error" in r.getMessage() and "redraw failed" in r.getMessage()
        for r in caplog.records
    )
    bg.stop()  # a fire-and-forget error is logged, not re-raised into an unrelated stop()
    assert bg.errors == []


def test_call_soon_is_a_no_op_when_the_loop_takes_no_work() -> None:
    bg = BackgroundLoop("loop-soon-closed")
    ran: list[int] = []
    assert bg.call_soon(ran.append, 1) is None  # not started
    bg.start()
    bg.stop()
    assert bg.call_soon(ran.append, 2) is None  # stopped: a redraw racing a close is dropped
    assert ran == []
    with pytest.raises(JobError, match="call\\(\\) needs a running loop"):
        bg.call(ran.append, 3)  # a call that waits for its result still says so


def test_on_loop_thread_is_true_only_on_the_loop_thread() -> None:
    with BackgroundLoop("loop-where") as bg, BackgroundLoop("loop-other") as other:
        assert not bg.on_loop_thread()
        assert bg.call(bg.on_loop_thread, timeout=30)
        assert not other.call(bg.on_loop_thread, timeout=30)  # another loop's thread
        helper = bg.submit(asyncio.to_thread(bg.on_loop_thread))
        assert helper.result(30) is False  # a helper thread of a task may block on the loop


def test_start_is_idempotent_while_running_and_a_stopped_loop_never_restarts() -> None:
    shared = BackgroundLoop("loop-shared")
    # two services that share a loop each start it: one thread, one handshake
    results: list[BackgroundLoop] = []
    starters = [threading.Thread(target=lambda: results.append(shared.start())) for _ in range(4)]
    for t in starters:
        t.start()
    for t in starters:
        t.join(30)
    assert results == [shared] * 4 and loop_threads().count("loop-shared") == 1
    thread = shared.thread
    assert shared.start() is shared and shared.thread is thread
    shared.stop()
    with pytest.raises(JobError, match="a loop runs once: create a new BackgroundLoop"):
        shared.start()
    # what a restartable service (the system monitor) does instead: a new loop
    again = BackgroundLoop("loop-shared").start()
    assert again.call(lambda: "runs", timeout=30) == "runs"
    again.stop()


def test_hard_stop_without_raising_keeps_a_failed_service_task_on_its_future() -> None:
    # The dashboard's refresh task gives up after repeated errors; its owner stops the
    # loop hard without raising, and the error stays on the task's future (and in errors).
    bg = BackgroundLoop("loop-service").start()

    async def refresh_forever() -> None:
        raise RuntimeError("draw failed 5 times")

    async def sample_forever() -> None:
        await asyncio.Event().wait()

    failed, sampling = bg.submit(refresh_forever()), bg.submit(sample_forever())
    assert isinstance(failed.exception(30), RuntimeError)
    bg.stop(hard=True, raise_errors=False)
    assert sampling.cancelled() and not bg.running
    assert [str(e) for e in bg.errors] == ["draw failed 5 times"]


def test_the_loop_thread_runs_in_the_context_of_the_code_that_started_it() -> None:
    # In Jupyter the running cell is a context variable (ipykernel 7): a loop's stray lines
    # then show under the cell that started it (tests/jobs/test_kernel.py, both kernels).
    # A loop started inside a job's routing writes to that job's sink the same way.
    import contextvars

    from resnetlab.runtime.capture import OutputSink, route_thread

    cell = contextvars.ContextVar("cell", default="none")
    cell.set("the starting cell")
    sink = OutputSink(None)
    with route_thread(sink):
        bg = BackgroundLoop("loop-context").start()
    try:
        assert bg.call(cell.get, timeout=30) == "the starting cell"
        bg.call(print, "a line of the inner loop", timeout=30)
    finally:
        bg.stop()
    assert sink.tail(1) == ["a line of the inner loop"]
    assert cell.get() == "the starting cell"  # this thread's own context is untouched
