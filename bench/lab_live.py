"""The live dashboard in a real JupyterLab page (Chromium): frames, latency, throughput,
and how fast the kernel answers ``1+1`` while a model trains in one of its threads.

Run by ``bench/bench_live.py --lab`` (it needs jupyterlab, ipympl, playwright and Debian's
Chromium; the JupyterLab helper of the test suite starts the server). The page runs one
cell per round, which starts training in a kernel thread (with or without the dashboard)
and returns; meanwhile this script, as a second client of the same kernel, sends ``1+1``
over and over and times each reply, until the round's thread has finished.

Modes: ``off`` (no dashboard), ``ipympl`` (the default: a render process makes the
frames, the kernel forwards them to the widget), ``ipympl in kernel``
(``in_process=True``: the kernel renders them itself).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "live")]

MODES = ("off", "ipympl", "ipympl in kernel")
# Seconds between two 1+1 probes of the kernel.
PROBE_EVERY = 0.25

SETUP = """%matplotlib widget
import sys, threading, time
sys.path.insert(0, {bench!r})
import torch
torch.set_num_threads({threads})
import bench_live as B
from resnetlab.data import load
from resnetlab.live import live_dashboard
from resnetlab.metrics.stream import default_stream
ds = load("fashion-mnist", "train")
x, y = ds.images[:10_000].float().div(255), ds.labels[:10_000]
B._train_steps(x, y, 20, 128)
results, session, thread = [], None, None

def start(mode):
    global session, thread
    if session is not None:
        session.close()
    session = None
    if mode != "off":
        session = live_dashboard(default_stream(), backend="ipympl", panels="all",
                                 rate_hz=2.0, in_process=(mode == "ipympl in kernel"))
    stream, live = default_stream(), session
    n0 = len(stream)
    def run():
        t0 = time.time()
        speed = B._train_steps(x, y, {steps}, 128)
        t1 = time.time()
        rate = p95 = float("nan")
        if live is not None:
            recs, _ = stream.read_since(n0)
            records = [(n0 + i, r.time) for i, r in enumerate(recs) if r.time <= t1]
            rate, p95 = B.frame_figures(list(live.dashboard.frames), records, t0, t1)
        results.append(dict(mode=mode, speed=speed, rate=rate, p95=p95))
    thread = threading.Thread(target=run, name="bench-training")
    thread.start()
    print("started", mode)

print("ready")
"""
FINISH = """if session is not None:
    session.close()
import json
with open("results.json", "w") as f:
    json.dump(results, f)
print("RESULTS written")
"""


def _kernel_client(runtime: Path):
    from jupyter_client import BlockingKernelClient

    files = sorted(runtime.glob("kernel-*.json"), key=lambda p: p.stat().st_mtime)
    client = BlockingKernelClient(connection_file=str(files[-1]))
    client.load_connection_file()
    client.start_channels()
    return client


def _ask(client, code: str = "", expression: str | None = None, timeout: float = 120.0):
    """(seconds to the reply, the expression's text value or None)."""
    began = time.perf_counter()
    msg_id = client.execute(
        code, silent=False, store_history=False, user_expressions={"e": expression or "0"}
    )
    while True:
        reply = client.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    took = time.perf_counter() - began
    value = reply["content"].get("user_expressions", {}).get("e", {})
    return took, value.get("data", {}).get("text/plain")


# Which part of the set-up a process is, by its command line (first match wins).
CPU_GROUPS = (
    ("render child", "resnetlab.live.render_process"),
    ("kernel", "ipykernel"),
    ("chromium", "chrom"),
    ("server", "jupyter"),
)


def _cpu_seconds() -> dict[int, tuple[str, float]]:
    """(group, CPU seconds used so far) of each process of the set-up, by pid (this
    script's own group is 'bench')."""
    import psutil

    used: dict[int, tuple[str, float]] = {}
    me = psutil.Process().pid
    for proc in psutil.process_iter(["cmdline", "cpu_times"]):
        times, cmd = proc.info["cpu_times"], " ".join(proc.info["cmdline"] or [])
        group = "bench" if proc.pid == me else None
        group = group or next((g for g, key in CPU_GROUPS if key in cmd), None)
        if group is not None and times is not None:
            used[proc.pid] = (group, times.user + times.system)
    return used


def _cores(before: dict, after: dict, wall: float) -> dict[str, float]:
    """Cores each group kept busy between two :func:`_cpu_seconds`: processes that
    started in between count from zero; those that ended in between are not seen."""
    cores = dict.fromkeys([g for g, _ in CPU_GROUPS] + ["bench"], 0.0)
    for pid, (group, seconds) in after.items():
        cores[group] += (seconds - before.get(pid, (group, 0.0))[1]) / wall
    return cores


def _run_cell(page, index: int, text: str) -> None:
    page.locator(".jp-Cell").nth(index).click()
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Enter")
    page.locator(".jp-Cell").nth(index).locator(".jp-OutputArea-output").filter(
        has_text=text
    ).wait_for(timeout=300_000)


def _rounds(page, client, order: list[str]) -> tuple[dict, dict]:
    """Run the round cells (1..len(order)); the 1+1 round trips of each, by mode, and the
    cores each group of processes kept busy during each round, by mode."""
    trips: dict[str, list[float]] = {m: [] for m in MODES}
    cores: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for index, mode in enumerate(order, start=1):
        before, began = _cpu_seconds(), time.perf_counter()
        _run_cell(page, index, f"started {mode}")
        while True:
            took, _ = _ask(client, "1+1")
            trips[mode].append(took)
            _, done = _ask(client, expression="not thread.is_alive()")
            if done == "True":
                break
            # Pacing, not synchronisation: about what a user typing does, so the probes
            # themselves do not load the kernel that is being measured.
            time.sleep(PROBE_EVERY)
        after, wall = _cpu_seconds(), time.perf_counter() - began
        cores[mode].append(_cores(before, after, wall))
    return trips, cores


def bench_lab(steps: int, rounds: int, threads: int, modes: list[str]) -> None:
    from lab_server import jupyter_lab, write_notebook
    from playwright.sync_api import sync_playwright
    from suite_support import CHROMIUM, CHROMIUM_ARGS

    chosen = ["off", *[m for m in modes if m != "off"]]
    order = [m for r in range(rounds) for m in (chosen if r % 2 == 0 else chosen[::-1])]
    cells = [SETUP.format(bench=str(ROOT / "bench"), threads=threads, steps=steps)]
    cells += [f'start("{mode}")' for mode in order] + [FINISH]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_notebook(root / "bench.ipynb", cells)
        with jupyter_lab(root) as (base, token, _server), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1720, "height": 1180})
                page.goto(f"{base}/lab/tree/bench.ipynb?token={token}", wait_until="load")
                page.get_by_text(re.compile(r"\(ipykernel\) \| Idle")).wait_for(timeout=120_000)
                page.keyboard.press("Control+b")
                _run_cell(page, 0, "ready")
                client = _kernel_client(root / ".home" / "runtime")
                try:
                    trips, cores = _rounds(page, client, order)
                finally:
                    client.stop_channels()
                _run_cell(page, len(cells) - 1, "RESULTS written")
            finally:
                browser.close()
        results = json.loads((root / "results.json").read_text())
    _report(results, trips, cores, steps, rounds, threads, chosen)


def _report(
    results: list[dict],
    trips: dict[str, list[float]],
    cores: dict[str, list[dict[str, float]]],
    steps,
    rounds,
    threads,
    modes: list[str],
) -> None:
    import os

    by = {m: [r for r in results if r["mode"] == m] for m in modes}
    base = [r["speed"] for r in by["off"]]
    print(
        f"\nipympl in JupyterLab + Chromium, {steps} steps x batch 128, {rounds} rounds, "
        f"torch threads {threads}, all 9 panels at 2 Hz; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  {'off':>16}: {statistics.median(base):.0f} images/s, "
        f"1+1 median {statistics.median(trips['off']) * 1e3:.0f} ms"
    )
    for mode in modes[1:]:
        ratios = [r["speed"] / b for r, b in zip(by[mode], base, strict=True)]
        print(
            f"  {mode:>16}: ratio {statistics.median(ratios):.3f} "
            f"(rounds {', '.join(f'{v:.3f}' for v in ratios)}), "
            f"new frames {statistics.median(r['rate'] for r in by[mode]):.2f}/s, "
            f"latency p95 {statistics.median(r['p95'] for r in by[mode]):.2f} s, "
            f"1+1 median {statistics.median(trips[mode]) * 1e3:.0f} ms"
        )
    print("  cores kept busy during the rounds (CPU seconds per second, median of rounds):")
    for mode in modes:
        split = {g: statistics.median(c[g] for c in cores[mode]) for g in cores[mode][0]}
        parts = ", ".join(f"{g} {v:.2f}" for g, v in split.items())
        print(f"  {mode:>16}: {parts}; all {sum(split.values()):.2f}")
