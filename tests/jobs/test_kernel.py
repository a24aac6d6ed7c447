"""A real Jupyter kernel: background jobs keep working between cells, their output stays
out of the cells, and later cells stop them each of the three ways (and kill a worker).

Each test runs on both ipykernel generations (``[ipykernel7]``, ``[ipykernel6]``): the
kernel's own routing of a thread's print differs between them, resnetlab's does not.
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import pytest
from kernel_generations import VERSION_EXPRESSION, KernelGeneration

jupyter_client = pytest.importorskip("jupyter_client", reason="jupyter_client not installed")
pytest.importorskip("ipykernel", reason="ipykernel not installed")

WORKERS_DIR = Path(__file__).parent


class Kernel:
    """Drive a kernel cell by cell; remembers every stream message of the session."""

    def __init__(self, generation: KernelGeneration) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
        # Without PYTEST_CURRENT_TEST the kernel also captures file descriptors 1/2, as in
        # JupyterLab, so descriptor-level leaks would show up too.
        with pytest.MonkeyPatch.context() as mp:  # this process looks the kernelspec up
            for name, value in generation.env.items():
                mp.setenv(name, value)
            self.km, self.kc = jupyter_client.manager.start_new_kernel(
                kernel_name="python3", env={**env, **generation.env}, startup_timeout=60
            )
        self.all_streams: list[tuple[str, str]] = []  # (parent msg id, text)
        self.version = ""  # the kernel's ipykernel version, once asked
        self.comm_texts: list[str] = []

    def run(self, code: str, timeout: float = 30) -> dict:
        msg_id = self.kc.execute(code)
        out = {"stdout": "", "stderr": "", "error": None, "html": [], "widgets": 0, "id": msg_id}
        deadline = time.time() + timeout
        while True:
            try:
                msg = self.kc.get_iopub_msg(timeout=max(deadline - time.time(), 0.1))
            except queue.Empty:
                raise AssertionError(f"cell did not finish within {timeout} s: {code!r}") from None
            mtype, content = msg["msg_type"], msg["content"]
            parent = msg["parent_header"].get("msg_id")
            if mtype == "stream":
                self.all_streams.append((parent, content["text"]))
            if mtype == "comm_msg":
                self.comm_texts.append(str(content.get("data", {})))
            if parent != msg_id:
                continue
            if mtype == "stream":
                out[content["name"]] += content["text"]
            elif mtype == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}\n" + "\n".join(
                    content["traceback"]
                )
            elif mtype in ("execute_result", "display_data"):
                data = content["data"]
                if "text/html" in data:
                    out["html"].append(data["text/html"])
                if "application/vnd.jupyter.widget-view+json" in data:
                    out["widgets"] += 1
            elif mtype == "status" and content["execution_state"] == "idle":
                break
        assert out["error"] is None, out["error"]
        return out

    def value(self, expr: str) -> str:
        return self.run(f"print({expr})")["stdout"].strip()

    def close(self) -> None:
        try:
            self.run("from resnetlab import jobs; jobs.stop_all(timeout=2)", timeout=30)
        finally:
            self.kc.stop_channels()
            self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(kernel_generation: KernelGeneration):
    """One kernel per generation for the module's tests; it reports that generation."""
    k = Kernel(kernel_generation)
    try:
        k.version = k.value(VERSION_EXPRESSION)
        kernel_generation.check_version(k.version)
    except BaseException:
        k.close()
        raise
    yield k
    k.close()


SETUP = f"""
import asyncio, sys, time
sys.path.insert(0, {str(WORKERS_DIR)!r})
from resnetlab import jobs
state = {{}}

async def count(key, dt=0.02):
    me = jobs.current()
    state[key] = 0
    try:
        while not me.stopping:
            state[key] += 1
            print(f"{{key}} tick {{state[key]}}")
            await asyncio.sleep(dt)
        print(f"{{key}} saw the stop event")
        return state[key]
    finally:
        print(f"{{key}} cleanup")
"""


@pytest.mark.timeout(120)
def test_job_runs_between_cells_and_its_output_stays_out_of_them(kernel: Kernel) -> None:
    assert kernel.run(SETUP)["stdout"] == ""
    started = kernel.run('a = jobs.new(count, "a", name="counter-a"); print("started", a.id)')
    assert started["stdout"].startswith("started"), started

    # A cell that runs while the job works: the counter advances, no tick lands here.
    busy = kernel.run('n0 = state["a"]; time.sleep(0.6); print("delta", state["a"] - n0)')
    assert busy["stdout"].startswith("delta ") and int(busy["stdout"].split()[1]) > 3, busy
    assert "tick" not in busy["stdout"] + busy["stderr"]

    # The kernel idles between cells: the job keeps counting (it does not stall).
    before = int(kernel.value('state["a"]'))
    time.sleep(0.6)
    after = int(kernel.value('state["a"]'))
    assert after > before + 3, (kernel.version, before, after)

    table = kernel.run("jobs.status()")
    assert table["html"] and "counter-a" in table["html"][0] and "running" in table["html"][0]
    # (cells print only booleans about the tail, so any "tick" in a cell would be a leak)
    assert kernel.value('a.tail(3).splitlines()[-1].startswith("a tick")') == "True"

    # The job's own widget receives its lines (as comm messages, not stream output).
    shown = kernel.run("a.show_output()")
    assert shown["widgets"] == 1 and shown["stdout"] == ""
    deadline = time.time() + 30
    while not any("a tick" in t for t in kernel.comm_texts):
        assert time.time() < deadline, "the job's widget never received a line"
        time.sleep(0.1)
        kernel.value("1")  # reads the comm messages that arrived meanwhile

    assert kernel.value("jobs.stop(a.id)") == "stopped"
    assert kernel.value("jobs.remove(a.id) or len(jobs.status())") == "0"
    # Not one of the job's prints reached any cell, during the whole session.
    leaked = [text for _, text in kernel.all_streams if "tick" in text or "cleanup" in text]
    assert leaked == []


@pytest.mark.timeout(120)
def test_a_plain_threads_print_goes_where_this_generation_sends_it(
    kernel: Kernel, kernel_generation: KernelGeneration
) -> None:
    """The kernel's own routing, without resnetlab: why a job routes its output by thread.

    A thread started in one cell prints while a later cell runs. ipykernel 6.29 attributes
    the line to the cell that started the thread (it records each new thread's parent
    header); ipykernel 7 to the cell that runs when it prints (the header is a context
    variable, which a plain thread does not inherit: it sees the process-wide fallback).
    """
    start = kernel.run(
        "import threading\n"
        "go = threading.Event()\n"
        "def plain():\n"
        "    go.wait()\n"
        "    print('plain thread line', flush=True)\n"
        "plain_thread = threading.Thread(target=plain, daemon=True)\n"
        "plain_thread.start()"
    )
    busy = kernel.run(
        "go.set(); plain_thread.join(10); print('joined', not plain_thread.is_alive())"
    )
    assert "joined True" in busy["stdout"], busy
    kernel.value("1")  # reads what arrived after the busy cell ended, if anything
    cells = [parent for parent, text in kernel.all_streams if "plain thread line" in text]
    expected = {6: start["id"], 7: busy["id"]}[kernel_generation.major]
    assert cells == [expected], (kernel.version, start["id"], busy["id"], cells)


@pytest.mark.timeout(120)
def test_a_background_loops_stray_print_goes_to_the_cell_that_started_it(
    kernel: Kernel,
) -> None:
    """resnetlab's loops (a dashboard's, the system monitor's) run in the context of the
    code that started them: a line no job sink takes (a warning, a traceback) shows under
    the cell that started the loop on both generations, not under whichever cell runs."""
    start = kernel.run(
        "import threading\n"
        "from resnetlab.runtime.loop import BackgroundLoop\n"
        "release = threading.Event()\n"
        "def stray_line():\n"
        "    release.wait(10)\n"
        "    print('stray loop line', flush=True)\n"
        "stray = BackgroundLoop('stray').start()\n"
        "stray.call_soon(stray_line)"
    )
    busy = kernel.run("release.set(); stray.stop(); print('closed', stray.closed)")
    assert "closed True" in busy["stdout"], busy
    kernel.value("1")  # reads what arrived after the busy cell ended, if anything
    cells = [parent for parent, text in kernel.all_streams if "stray loop line" in text]
    assert cells == [start["id"]], (kernel.version, start["id"], busy["id"], cells)


@pytest.mark.timeout(120)
def test_cells_stop_jobs_each_of_the_three_ways(kernel: Kernel) -> None:
    kernel.run(SETUP)
    kernel.run("\n".join(f'{k} = jobs.new(count, "{k}", name="{k}")' for k in "bcd"))
    deadline = time.time() + 30
    while kernel.value('all(state.get(k, 0) > 0 for k in "bcd")') != "True":
        assert time.time() < deadline, "the jobs never started counting"
        time.sleep(0.1)

    out = kernel.run('print(jobs.stop(b.id, how="event"), jobs.result(b.id) == state["b"])')
    assert out["stdout"].split() == ["stopped", "True"]
    assert kernel.value('"b saw the stop event" in b.tail(5)') == "True"

    out = kernel.run('print(jobs.stop(c.id, how="loop"), c.stop_reason)')
    assert out["stdout"].split() == ["stopped", "loop"]
    # cancelled (never saw the event), but its cleanup ran
    assert kernel.value('"c cleanup" in c.tail(5), "saw the stop" in c.tail(5)') == "True False"

    out = kernel.run('print(jobs.stop(d.id, how="cancel"), d.stop_reason)')
    assert out["stdout"].split() == ["stopped", "cancel"]
    assert kernel.value('"d cleanup" in d.tail(5)') == "True"

    frozen = kernel.value('[state[k] for k in "bcd"]')
    time.sleep(0.3)
    assert kernel.value('[state[k] for k in "bcd"]') == frozen  # nothing counts any more
    assert (
        kernel.value(
            "sorted(t.name for t in __import__('threading').enumerate() if t.name.startswith('job-'))"
        )
        == "[]"
    )
    leaked = [text for _, text in kernel.all_streams if "tick" in text or "cleanup" in text]
    assert leaked == []


@pytest.mark.timeout(120)
def test_kill_a_busy_worker_process_from_a_cell(kernel: Kernel) -> None:
    kernel.run(SETUP)
    kernel.run(
        'import jobs_workers\np = jobs.new(jobs_workers.busy, kind="process", name="spinner")'
    )
    deadline = time.time() + 30
    while kernel.value('"busy" in p.tail(1)') != "True":
        assert time.time() < deadline, "worker never reported"
        time.sleep(0.2)
    out = kernel.run(
        "t0 = time.monotonic(); print(p.kill(grace=20.0), p.process.exitcode, "
        "p.process.is_alive(), time.monotonic() - t0)",
        timeout=60,
    )
    state, code, alive, took = out["stdout"].split()
    assert (state, alive) == ("killed", "False"), out  # the worker is gone, the job says so
    # SIGTERM -> SystemExit(143) unless the machine was too busy to exit within the grace
    assert code == ("143" if float(took) < 20.0 else "-9"), out
    assert kernel.value("1 + 1") == "2"  # the kernel keeps working
    # A function defined in the notebook cannot reach a fresh process: a clear error.
    err = kernel.run(
        "def local(): pass\ntry:\n    jobs.new(local, kind='process')\n"
        "except Exception as e:\n    print(type(e).__name__, e)"
    )["stdout"]
    assert err.startswith("JobError") and ".py module" in err
    leaked = [text for _, text in kernel.all_streams if "busy" in text]
    assert leaked == []
