"""Train on the main thread with a Qt dashboard window of this process; count its frames.

    QT_QPA_PLATFORM=offscreen python tests/live/qt_frames.py

The window is refreshed by its main-thread timer, which only runs because the training
loop's appends pump the toolkit's events (nothing else does). Over a window of
WINDOW_SAMPLES system-monitor samples it counts the dashboard's new frames and the paint
events the window's canvas handled. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from frame_counting import CLOCK_KEY, WINDOW_SAMPLES, new_frames, train  # noqa: E402


def main() -> None:
    from resnetlab.live.drivers.toolkits import toolkit_problem

    problem = toolkit_problem("qt")
    if problem:
        print(json.dumps({"skip": problem}))
        return
    import torch
    from matplotlib.backends.qt_compat import QtCore

    from resnetlab.live import MetricStream, live_dashboard

    torch.set_num_threads(1)
    stream = MetricStream()
    session = live_dashboard(stream, backend="qt", mode="window", monitor_interval=1.0)
    dash = session.dashboard
    canvas = dash.driver.managers[0].canvas

    class CountPaints(QtCore.QObject):
        paints = 0

        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if event.type() == QtCore.QEvent.Type.Paint:
                self.paints += 1
            return False

    counter = CountPaints()
    canvas.installEventFilter(counter)
    stop, steps = threading.Event(), [0]
    window: dict[str, int] = {}

    def watch(record) -> None:  # on the appending thread: the monitor's or the main one
        samples = stream.series_length(CLOCK_KEY)
        if "s0" not in window and samples >= 2:  # the window opens once training runs
            window.update(s0=samples, f0=len(dash.frames), p0=counter.paints, n0=steps[0])
        elif "s0" in window and samples - window["s0"] >= WINDOW_SAMPLES:
            stop.set()

    stream.add_listener(watch)
    train(stream, stop, steps)  # on the main thread, until the window has closed
    frames = list(dash.frames)[window["f0"] :]
    report = {
        "samples": stream.series_length(CLOCK_KEY) - window["s0"],
        "new_frames": new_frames(frames),
        "paints": counter.paints - window["p0"],
        "steps": steps[0] - window["n0"],
    }
    session.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
