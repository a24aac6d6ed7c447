"""Background jobs: stop latency of a BackgroundLoop, and the cost of keeping output apart.

    .venv/bin/python bench/bench_jobs.py
    .venv/bin/python bench/bench_jobs.py --repeats 300 --prints 100000

1. Stop latency, from the ``stop`` call until the loop's thread is joined, p50/p99 over
   ``--repeats`` loops, for an idle loop and a busy one (8 tasks yielding continuously,
   one watching the stop event). Peer: the bare recipe, ``asyncio`` loop in a
   ``threading.Thread`` stopped with ``call_soon_threadsafe(loop.stop)`` + ``join`` (no
   task cancellation, no bookkeeping), measured in the same run. Ratio = ours / peer.
2. Output capture: prints per second from a worker thread into a file, without capture
   (the thread prints to ``sys.stdout`` = that file) and with capture (a thread job whose
   prints the RoutingStream sends to its OutputSink: log file + in-memory tail). Also the
   pass-through cost for a thread that is *not* a job once the RoutingStream is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from resnetlab.jobs import JobRegistry
from resnetlab.runtime import capture
from resnetlab.runtime.loop import BackgroundLoop


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


# -- 1. stop latency ---------------------------------------------------------------------


async def _spin(bg: BackgroundLoop | None = None) -> None:
    # Busy but cooperative: yields continuously; ends when our loop's stop is requested.
    while bg is None or not bg.stopping:
        await asyncio.sleep(0)


def _busy(bg: BackgroundLoop, tasks: int = 8) -> None:
    for _ in range(tasks):
        bg.submit(_spin(bg))
    bg.submit(bg.stop_requested())


def ours(mode: str, busy: bool) -> float:
    bg = BackgroundLoop("bench-loop", until_tasks_done=(mode == "cancel"), stop_timeout=0.0)
    bg.start()
    if busy:
        _busy(bg)
    else:
        bg.submit(bg.stop_requested())
    bg.call(lambda: None)  # the tasks exist and run
    time.sleep(0.002)
    t0 = time.perf_counter()
    if mode == "cancel":
        bg.cancel_all(wait=False)
        bg.wait()
    else:
        bg.stop(hard=(mode == "hard"))
    return time.perf_counter() - t0


def peer(busy: bool) -> float:
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=main, name="bench-peer", daemon=True)
    thread.start()
    ready.wait()
    if busy:
        for _ in range(8):
            asyncio.run_coroutine_threadsafe(_spin(), loop)
    time.sleep(0.002)
    t0 = time.perf_counter()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    dt = time.perf_counter() - t0
    for task in asyncio.all_tasks(loop):  # outside the timing: cleanup the peer skips
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    return dt


def bench_stop(repeats: int) -> None:
    print(f"stop latency, call -> thread joined, {repeats} loops each (ms)")
    print(f"{'case':<34}{'p50':>9}{'p99':>9}{'ratio p50':>11}")
    for busy in (False, True):
        label = "busy" if busy else "idle"
        base = [peer(busy) * 1e3 for _ in range(repeats)]
        base50 = statistics.median(base)
        print(
            f"{'peer ' + label + ': loop.stop + join':<34}{base50:9.3f}{percentile(base, 99):9.3f}"
            f"{1.0:10.2f}x"
        )
        for mode, text in (
            ("clean", "stop() (event)"),
            ("hard", "stop(hard=True)"),
            ("cancel", "cancel_all + until_tasks_done"),
        ):
            times = [ours(mode, busy) * 1e3 for _ in range(repeats)]
            p50 = statistics.median(times)
            print(
                f"{label + ' ' + text:<34}{p50:9.3f}{percentile(times, 99):9.3f}"
                f"{p50 / base50:10.2f}x"
            )


# -- 2. output capture -------------------------------------------------------------------


def _printer(n: int) -> None:
    for i in range(n):
        print("progress line", i)


def bench_capture(prints: int, tmp: Path) -> None:
    print(f"\noutput capture, {prints} prints from a worker thread")
    real_stdout = sys.stdout
    results = {}
    try:
        # (a) no capture: the thread prints into a plain file that is sys.stdout.
        capture.uninstall()
        with open(tmp / "plain.log", "w") as fh:
            sys.stdout = fh
            thread = threading.Thread(target=_printer, args=(prints,))
            t0 = time.perf_counter()
            thread.start()
            thread.join()
            results["plain"] = prints / (time.perf_counter() - t0)
        # (b) the same prints in a thread job: routed to its log file + tail.
        with open(tmp / "other.log", "w") as fh:
            sys.stdout = fh
            registry = JobRegistry(tmp / "jobs")
            job = registry.new(_printer, prints, kind="thread")
            t0 = time.perf_counter()
            job.wait()
            results["job"] = prints / (time.perf_counter() - t0)
            assert job.tail(1) == f"progress line {prints - 1}", job.tail(1)
            # (c) a thread that is not a job, with the RoutingStream installed: pass-through.
            assert isinstance(sys.stdout, capture.RoutingStream)
            thread = threading.Thread(target=_printer, args=(prints,))
            t0 = time.perf_counter()
            thread.start()
            thread.join()
            results["pass"] = prints / (time.perf_counter() - t0)
    finally:
        capture.uninstall()
        sys.stdout = real_stdout
    plain = results["plain"]
    print(f"{'no capture (peer): print to a file':<46}{plain:12,.0f} prints/s  1.00x")
    print(
        f"{'thread job: routed to log file + tail':<46}{results['job']:12,.0f} prints/s  "
        f"{results['job'] / plain:.2f}x"
    )
    print(
        f"{'non-job thread through the RoutingStream':<46}{results['pass']:12,.0f} prints/s  "
        f"{results['pass'] / plain:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="loops per stop case")
    parser.add_argument("--prints", type=int, default=50_000, help="prints per capture case")
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    bench_stop(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        bench_capture(args.prints, Path(tmp))


if __name__ == "__main__":
    main()
