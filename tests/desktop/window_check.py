"""Run one desktop dashboard window in this process and report what happened (JSON).

Used by test_windows.py, one toolkit per process (a process can host one GUI toolkit):

    python tests/desktop/window_check.py qt OUTDIR

The main thread runs the window's event loop; a producer thread appends to the stream;
a second thread posts an event to the main loop and records how long it waited. Grabs of
the window (the toolkit's own screenshot) are saved at phases: while data flows (A, B),
and after the producer stopped (C, D), and while the main thread runs a busy
"training" loop that calls ``driver.pump()`` at each batch end (E).
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path


def post_from_thread(driver, callback):
    """Hand ``callback`` to the main loop from another thread, the toolkit's own way."""
    kit = driver.toolkit
    if kit == "qt":
        from matplotlib.backends.qt_compat import QtCore

        class Receiver(QtCore.QObject):
            def event(self, ev):
                if ev.type() == QtCore.QEvent.Type.User:
                    callback()
                    return True
                return super().event(ev)

        receiver = Receiver()  # lives on the main thread
        driver._keep = receiver
        return lambda: QtCore.QCoreApplication.postEvent(
            receiver, QtCore.QEvent(QtCore.QEvent.Type.User))
    if kit == "gtk":
        from gi.repository import GLib

        # At the priority GDK delivers input events with: what a user click would get.
        return lambda: GLib.idle_add(lambda: (callback(), False)[1], priority=GLib.PRIORITY_DEFAULT)
    # Tk: tkinter calls from other threads fail unless the main thread sits in mainloop
    # (not so while a training loop pumps), so use Tk's usual pattern: the thread puts
    # a message on a queue that a main-thread ``after`` handler drains every 20 ms.
    import queue

    inbox: queue.SimpleQueue = queue.SimpleQueue()
    window = driver.managers[0].window

    def drain():
        while not inbox.empty():
            inbox.get()()
        window.after(20, drain)

    window.after(20, drain)
    return lambda: inbox.put(callback)


def main() -> int:
    kit, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    from resnetlab.live.drivers.desktop import toolkit_problem

    problem = toolkit_problem(kit)
    if problem:
        print(json.dumps({"skip": problem}))
        return 0
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.live.stream import MetricStream

    stream = MetricStream(name=f"check-{kit}")
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend=kit, mode="window",
                     title=f"{kit} check")
    dash.start(rate_hz=10)
    driver = dash.driver

    flowing = threading.Event()
    flowing.set()
    done = threading.Event()

    def produce():
        step = 0
        while not done.is_set():
            if flowing.is_set():
                stream.log(step, loss=2.0 * math.exp(-step / 80) + 0.1 * math.sin(step / 3),
                           accuracy=1 - math.exp(-step / 60))
                step += 1
            time.sleep(0.02)

    beats: list[float] = []
    heartbeat = driver.managers[0].canvas.new_timer(interval=20)
    heartbeat.add_callback(lambda: beats.append(time.monotonic()))
    heartbeat.start()

    latencies: list[float] = []
    handled = threading.Event()
    posted_at = [0.0]

    def on_posted():
        latencies.append(time.monotonic() - posted_at[0])
        handled.set()

    post = post_from_thread(driver, on_posted)

    def poster():
        while not done.is_set():
            time.sleep(0.3)
            handled.clear()
            posted_at[0] = time.monotonic()
            post()
            handled.wait(10)

    threading.Thread(target=produce, daemon=True).start()
    threading.Thread(target=poster, daemon=True).start()
    grabs = {}
    driver.wait(1.0)
    grabs["A"] = str(driver.grab(out / f"{kit}-A.png"))
    n_a = len(stream)
    driver.wait(1.0)
    grabs["B"] = str(driver.grab(out / f"{kit}-B.png"))
    n_b = len(stream)
    flowing.clear()
    driver.wait(0.6)
    grabs["C"] = str(driver.grab(out / f"{kit}-C.png"))
    driver.wait(0.5)
    grabs["D"] = str(driver.grab(out / f"{kit}-D.png"))
    posted_while_waiting = len(latencies)
    # A training loop on the main thread: busy batches, driver.pump() at each batch end.
    flowing.set()
    t0 = time.monotonic()
    batches = 0
    while time.monotonic() - t0 < 1.5:
        sum(i * i for i in range(20000))  # one "batch" of work, holding the main thread
        batches += 1
        driver.pump()
    grabs["E"] = str(driver.grab(out / f"{kit}-E.png"))
    done.set()
    heartbeat.stop()
    canvas = driver.managers[0].canvas
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    report = {
        "grabs": grabs, "records_at_A": n_a, "records_at_B": n_b,
        "canvas": [c.__name__ for c in type(canvas).__mro__],
        "title": driver.managers[0].get_window_title(),
        "beats": len(beats), "max_gap_s": max(gaps) if gaps else None,
        "latencies_s": latencies, "refreshes": dash.refreshes,
        "posted_while_waiting": posted_while_waiting, "batches": batches,
    }
    dash.close()
    report["open_after_close"] = driver.is_open
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
