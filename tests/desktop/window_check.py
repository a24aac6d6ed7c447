"""Run one desktop dashboard window in this process and report what happened (JSON).

Used by test_windows.py, one toolkit per process (a process can host one GUI toolkit):

    python tests/desktop/window_check.py qt OUTDIR

The main thread runs the window's event loop; a producer thread appends to the stream;
a second thread posts an event to the main loop and records how long it waited. Grabs of
the window (the toolkit's own screenshot) are saved at phases: while data flows (A, B),
and after the producer stopped (C, D), and while the main thread runs a busy
"training" loop that calls ``driver.pump()`` at each batch end (E); one that only appends
to the stream on the main thread, pumped by the driver's stream listener (F). Phases end on
conditions (redraws, handled events) with generous deadlines, not after fixed times, so a
loaded machine makes the check slower, not flaky. Every render of the figure records
whether it held the dashboard's lock; the figure's blit counter shows it blitted.
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
            receiver, QtCore.QEvent(QtCore.QEvent.Type.User)
        )
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
    from resnetlab.live.drivers.toolkits import toolkit_problem

    problem = toolkit_problem(kit)
    if problem:
        print(json.dumps({"skip": problem}))
        return 0
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.metrics.stream import MetricStream

    stream = MetricStream(name=f"check-{kit}")
    dash = Dashboard(
        ["loss", "accuracy"], stream=stream, backend=kit, mode="window", title=f"{kit} check"
    )
    dash.start(rate_hz=10)
    driver = dash.driver
    fig = dash.figures[0]
    # Every render of the window's figure: did it hold the dashboard's lock? (Renders that
    # skip the locked canvas also skip before_draw, and then the figure never blits.)
    lock_held: list[bool] = []
    figure_draw = fig.draw

    def checked_draw(renderer):
        lock_held.append(dash.lock._is_owned())
        return figure_draw(renderer)

    fig.draw = checked_draw
    blits_at_start = fig.blit_draws

    flowing = threading.Event()
    flowing.set()
    paused = threading.Event()
    done = threading.Event()

    def produce():
        step = 0
        while not done.is_set():
            if flowing.is_set():
                paused.clear()
                stream.log(
                    step,
                    loss=2.0 * math.exp(-step / 80) + 0.1 * math.sin(step / 3),
                    accuracy=1 - math.exp(-step / 60),
                )
                step += 1
            else:
                paused.set()  # acknowledged: nothing more is appended until flowing again
            time.sleep(0.02)

    beats: list[float] = []
    heartbeat = driver.managers[0].canvas.new_timer(interval=20)
    heartbeat.add_callback(lambda: beats.append(time.monotonic()))
    heartbeat.start()

    latencies: list[float] = []
    handled = threading.Event()
    posted_at = [0.0]
    posted = [0]

    def on_posted():
        latencies.append(time.monotonic() - posted_at[0])
        handled.set()

    post = post_from_thread(driver, on_posted)

    def poster():
        while not done.is_set():
            time.sleep(0.3)
            handled.clear()
            posted_at[0] = time.monotonic()
            posted[0] += 1
            post()
            handled.wait(30)

    threading.Thread(target=produce, daemon=True).start()
    threading.Thread(target=poster, daemon=True).start()
    grabs = {}
    driver.wait(1.0)
    grabs["A"] = str(driver.grab(out / f"{kit}-A.png"))
    n_a, draws_at_a = len(stream), driver.draws
    # B once the timer has redrawn the window a few times (1 s normally; up to 60 s loaded).
    deadline = time.monotonic() + 60
    driver.wait(1.0)
    while driver.draws < draws_at_a + 3 and time.monotonic() < deadline:
        driver.wait(0.2)
    grabs["B"] = str(driver.grab(out / f"{kit}-B.png"))
    n_b = len(stream)
    flowing.clear()
    paused.wait(30)
    # Let the window catch up with the last records (a loaded machine may lag behind the
    # 0.1 s timer), then two grabs with the refresh timer running and no new data between.
    driver.wait(0.6)
    driver._tick()
    driver.wait(0.3)
    grabs["C"] = str(driver.grab(out / f"{kit}-C.png"))
    draws_at_c = driver.draws
    driver.wait(0.5)
    grabs["D"] = str(driver.grab(out / f"{kit}-D.png"))
    draws_c_to_d = driver.draws - draws_at_c
    deadline = time.monotonic() + 60  # a few posted events answered while the loop waits
    while len(latencies) < 3 and time.monotonic() < deadline:
        driver.wait(0.2)
    posted_while_waiting, handled_while_waiting = posted[0], len(latencies)
    beats_while_waiting = len(beats)
    # A training loop on the main thread: busy batches, driver.pump() at each batch end.
    # It runs at least 1.5 s, and on (up to 60 s) until the window has redrawn, the timer
    # has fired and a posted event was handled meanwhile; a frozen loop gets none of that.
    flowing.set()
    t0 = time.monotonic()
    beats0, draws0, handled0 = len(beats), driver.draws, len(latencies)
    batches = 0
    while True:
        elapsed = time.monotonic() - t0
        live = (
            len(beats) - beats0 >= 5
            and driver.draws - draws0 >= 2
            and len(latencies) - handled0 >= 1
        )
        if (elapsed >= 1.5 and live) or elapsed > 60:
            break
        sum(i * i for i in range(20000))  # one "batch" of work, holding the main thread
        batches += 1
        driver.pump()
    training = {
        "beats": len(beats) - beats0,
        "draws": driver.draws - draws0,
        "handled": len(latencies) - handled0,
        "seconds": time.monotonic() - t0,
    }
    grabs["E"] = str(driver.grab(out / f"{kit}-E.png"))
    # The same loop without pump(): it only appends to the stream, on the main thread,
    # and the driver's stream listener gives the toolkit its event passes.
    flowing.clear()
    paused.wait(30)
    step = int(stream.series("loss")[0][-1]) + 1
    t0 = time.monotonic()
    beats0, draws0, handled0 = len(beats), driver.draws, len(latencies)
    appends = 0
    while True:
        elapsed = time.monotonic() - t0
        live = (
            len(beats) - beats0 >= 5
            and driver.draws - draws0 >= 2
            and len(latencies) - handled0 >= 1
        )
        if (elapsed >= 1.5 and live) or elapsed > 60:
            break
        sum(i * i for i in range(20000))  # one "batch" of work, holding the main thread
        stream.log(step, loss=1.0 + math.sin(step / 2), accuracy=0.5 + 0.4 * math.cos(step / 3))
        step += 1
        appends += 1
    listening = {
        "appends": appends,
        "beats": len(beats) - beats0,
        "draws": driver.draws - draws0,
        "handled": len(latencies) - handled0,
    }
    grabs["F"] = str(driver.grab(out / f"{kit}-F.png"))
    done.set()
    heartbeat.stop()
    canvas = driver.managers[0].canvas
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    report = {
        "grabs": grabs,
        "records_at_A": n_a,
        "records_at_B": n_b,
        "canvas": [c.__name__ for c in type(canvas).__mro__],
        "title": driver.managers[0].get_window_title(),
        "beats": len(beats),
        "max_gap_s": max(gaps) if gaps else None,
        "latencies_s": latencies,
        "refreshes": dash.refreshes,
        "posted_while_waiting": posted_while_waiting,
        "handled_while_waiting": handled_while_waiting,
        "beats_while_waiting": beats_while_waiting,
        "draws_c_to_d": draws_c_to_d,
        "batches": batches,
        "training": training,
        "listening": listening,
        "renders": len(lock_held),
        "renders_without_lock": lock_held.count(False),
        "blit_draws": fig.blit_draws - blits_at_start,
        "full_draws": fig.full_draws,
    }
    dash.close()
    report["open_after_close"] = driver.is_open
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
