"""The job registry and per-job output, in this process (threads and loops)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest
from jobs_helpers import registry_fixture, wait_for  # noqa: F401 (the registry fixture)

from resnetlab import jobs
from resnetlab.errors import ConfigError, JobError
from resnetlab.runtime import capture
from resnetlab.states import RunStatus, StopMode

pytestmark = pytest.mark.timeout(60)


async def sprint(tag: str, dt: float = 0.005) -> int:
    me = jobs.current()
    n = 0
    while not me.stopping:
        n += 1
        print(f"{tag} {n}")
        await asyncio.sleep(dt)
    return n


def chatty(tag: str) -> int:
    me = jobs.current()
    n = 0
    while not me.sleep(0.005):
        n += 1
        print(f"{tag} {n}")
        me.log(n, value=float(n))
    return n


def test_the_same_function_twice_gives_two_independent_jobs(registry) -> None:
    a = registry.new(sprint, "alpha", name="twin")
    b = registry.new(sprint, "beta", name="twin")
    assert a.id != b.id and a.loop is not b.loop and a.stream is not b.stream
    assert wait_for(lambda: a.output.last_line and b.output.last_line)
    registry.stop(a.id)
    assert a.state == "stopped" and b.state == "running"
    assert all(line.startswith("alpha") for line in a.tail(50).splitlines())
    assert all(line.startswith("beta") for line in b.tail(50).splitlines())
    assert a.log_path != b.log_path and "alpha 1" in a.log_path.read_text()
    registry.stop(b.id, how="loop")


def test_prints_of_a_job_stay_out_of_the_main_thread_and_other_threads(registry, capsys) -> None:
    job = registry.new(chatty, "job-line", name="chatty")
    outside = threading.Thread(target=lambda: [print("plain-thread-line") for _ in range(3)])
    for _ in range(5):
        print("main-line")
        time.sleep(0.01)
    outside.start()
    outside.join()
    assert wait_for(lambda: len(job.output.tail(1000)) > 5)
    registry.stop(job.id)
    captured = capsys.readouterr().out
    assert "main-line" in captured and "plain-thread-line" in captured  # not stolen
    assert "job-line" not in captured  # kept apart
    tail = job.tail(1000)
    assert "job-line 1" in tail and "main-line" not in tail and "plain-thread" not in tail
    assert isinstance(sys.stdout, capture.RoutingStream)
    # its metrics went to its own stream
    steps, values = job.stream.series("value")
    assert len(steps) >= 5 and list(values[:3]) == [1.0, 2.0, 3.0]


def test_helper_threads_of_a_task_inherit_its_output(registry, capsys) -> None:
    async def offload() -> str:
        await asyncio.to_thread(print, "from a helper thread")
        return "ok"

    job = registry.new(offload)
    assert job.wait(30) == "completed" and job.result() == "ok"
    assert "from a helper thread" in job.tail()
    assert "from a helper thread" not in capsys.readouterr().out


def test_tail_shows_the_last_rewrite_of_a_progress_line(registry) -> None:
    def progress() -> None:
        for i in range(5):
            sys.stderr.write(f"\rprogress {i}/4")
        sys.stderr.write("\n")
        print("done")

    job = registry.new(progress)
    job.wait(30)
    assert job.tail(2).splitlines() == ["progress 4/4", "done"]
    assert b"progress 0/4\rprogress 1/4" in job.log_path.read_bytes()  # the file keeps it raw


def test_status_table_text_and_html(registry) -> None:
    job = registry.new(sprint, "tick", name="sprinter")
    assert wait_for(lambda: job.output.last_line.startswith("tick"))
    table = registry.status()
    text = repr(table)
    header, rule, row = text.splitlines()[:3]
    assert header.split() == [
        "id",
        "name",
        "kind",
        "state",
        "started",
        "duration",
        "last",
        "output",
    ]
    assert row.split()[:4] == [str(job.id), "sprinter", "loop", "running"] and "tick" in row
    html = table._repr_html_()
    assert "<table>" in html and "sprinter" in html and "running" in html
    registry.stop(job.id, how="cancel")
    assert registry.status()[job.id].state == "stopped"


def test_result_traceback_remove_give_clear_errors(registry) -> None:
    async def broken() -> None:
        await asyncio.sleep(0)
        raise ArithmeticError("bad step size")

    long = registry.new(sprint, "x")
    with pytest.raises(JobError, match="still running"):
        registry.result(long.id)
    with pytest.raises(JobError, match="stop it first"):
        registry.remove(long.id)
    job = registry.new(broken)
    assert job.wait(30) == "failed"
    with pytest.raises(JobError, match=r"bad step size.*jobs.traceback") as info:
        registry.result(job.id)
    assert isinstance(info.value.__cause__, ArithmeticError)
    tb = registry.traceback(job.id)
    assert "ArithmeticError: bad step size" in tb and "in broken" in tb
    registry.remove(job.id)
    with pytest.raises(JobError, match="no job with id"):
        registry.get(job.id)
    registry.stop(long.id)


def test_thread_jobs_stop_by_event_only_and_say_why(registry) -> None:
    job = registry.new(chatty, "t")
    with pytest.raises(JobError, match="stops only by its stop event"):
        registry.stop(job.id, how="cancel")
    with pytest.raises(JobError, match="kind='process'"):
        job.kill()
    assert wait_for(lambda: job.output.last_line)
    assert registry.stop(job.id) == "stopped" and job.result() > 0

    def deaf() -> None:
        time.sleep(0.5)

    stuck = registry.new(deaf)
    with pytest.raises(JobError, match="did not end within"):
        registry.stop(stuck.id, timeout=0.05)
    assert stuck.wait(30) == "stopped"


UNKNOWN_MODE = r"unknown stop mode how='evnt'; use one of 'event', 'loop', 'cancel', 'kill'"


def test_an_unknown_stop_mode_gets_one_message_for_every_kind_of_job(registry) -> None:
    loop_job, thread_job = registry.new(sprint, "l"), registry.new(chatty, "t")
    messages = set()
    for job in (loop_job, thread_job):
        for stop in (lambda j: registry.stop(j.id, how="evnt"), lambda j: j.stop("evnt")):
            with pytest.raises(ConfigError, match=UNKNOWN_MODE) as info:
                stop(job)
            messages.add(str(info.value))
    assert len(messages) == 1 and loop_job.running and thread_job.running
    # jobs.stop checks the mode first: the typo is named even for an id that does not exist
    with pytest.raises(ConfigError, match=UNKNOWN_MODE):
        jobs.stop(10**9, how="evnt")
    # a mode that only another kind supports says what this kind can do
    with pytest.raises(JobError, match="only kind='process' jobs can be killed"):
        registry.stop(loop_job.id, how="kill")
    # the shared enum works where the strings do, and the states are the shared RunStatus
    assert registry.stop(loop_job.id, how=StopMode.CANCEL) == RunStatus.STOPPED
    assert loop_job.stop_reason == "cancel" and isinstance(loop_job.state, RunStatus)
    assert registry.stop(thread_job.id, how="event") == "stopped"
    with pytest.raises(ConfigError, match=UNKNOWN_MODE):  # also once the job has ended
        thread_job.stop("evnt")


def test_bad_arguments_are_refused_clearly(registry) -> None:
    with pytest.raises(JobError, match="kind must be one of"):
        registry.new(chatty, "x", kind="fiber")
    with pytest.raises(JobError, match="use kind='loop'"):
        registry.new(sprint, "x", kind="thread")
    with pytest.raises(JobError, match="needs a function"):
        registry.new(42)
    assert len(registry.status()) == 0


def test_stop_all_ends_every_kind(registry) -> None:
    a = registry.new(sprint, "a")
    b = registry.new(chatty, "b")

    async def deaf() -> None:
        await asyncio.sleep(60)

    c = registry.new(deaf)
    # a short event timeout: the deaf loop job is cancelled after it, not waited for
    registry.stop_all(timeout=0.2)
    assert [a.state, c.state] == ["stopped", "stopped"]  # loop jobs: joined by stop_all
    # A thread cannot be forced: on a busy machine it may need longer than 0.2 s to see its
    # stop event (stop_all then only logs that); it must still end, stopped, by itself.
    assert b.wait(30) == "stopped" and b.stop_reason == "event"


def test_stop_all_stops_jobs_side_by_side_not_one_after_another(registry) -> None:
    # A job that ignores its stop event must not hold up the others' stop: every job gets
    # its stop request at once, so "stop everything" costs one timeout, not one per job.
    release, b_saw_stop = threading.Event(), threading.Event()

    def deaf() -> None:
        release.wait(120)  # never checks jobs.current().stopping

    def polite() -> None:
        me = jobs.current()
        while not me.sleep(0.01):
            pass
        b_saw_stop.set()

    registry.new(deaf, name="deaf")
    registry.new(polite, name="polite")
    stopper = threading.Thread(target=registry.stop_all, kwargs={"timeout": 60})
    stopper.start()
    try:
        # One after another, "polite" would hear of the stop only after deaf's 60 s.
        assert b_saw_stop.wait(30), "the second job was not asked to stop while the first hung"
    finally:
        release.set()
        stopper.join(90)


def test_show_output_mirrors_the_tail_into_a_widget(registry, monkeypatch) -> None:
    pytest.importorskip("ipywidgets", reason="ipywidgets not installed")
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    monkeypatch.setattr(capture, "WIDGET_INTERVAL", 0.02)
    job = registry.new(sprint, "w")
    job.show_output()
    widget = job.output.widget
    assert shown == [widget]

    def widget_text() -> str:
        return "".join(o.get("text", "") for o in widget.outputs)

    assert wait_for(lambda: widget_text().count("w ") > 3)
    registry.stop(job.id)
    assert widget_text().rstrip().splitlines()[-1] == job.tail(1)


def test_jobs_still_running_at_interpreter_exit_are_stopped_by_event(tmp_path) -> None:
    # A script that ends while jobs run: the atexit hook stops them cleanly (their stop
    # event), side by side, without an error at shutdown.
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from resnetlab import jobs

        out = Path({str(tmp_path)!r})

        def polite(tag):
            me = jobs.current()
            while not me.sleep(0.01):
                pass
            (out / tag).write_text("stopped")

        async def polite_loop(tag):
            await jobs.current().stop_requested()
            (out / tag).write_text("stopped")

        jobs.new(polite, "thread", kind="thread")
        jobs.new(polite_loop, "loop")
        print("leaving", flush=True)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "leaving" in done.stdout, done.stderr
    assert "Exception ignored in atexit" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert (tmp_path / "thread").read_text() == "stopped"
    assert (tmp_path / "loop").read_text() == "stopped"
