"""A "kernel" process that opens a viewer process on its stream (used by test_viewer.py).

python tests/desktop/viewer_parent.py sleep BACKEND OUTDIR
    main thread blocks (as a long notebook cell would) while helper threads produce
    data and ask the viewer for grabs of its window; prints a JSON report.
python tests/desktop/viewer_parent.py kill-viewer BACKEND OUTDIR
    kills its own viewer with SIGKILL and carries on producing; prints a JSON report.
python tests/desktop/viewer_parent.py orphan BACKEND OUTDIR
    prints {"viewer_pid": ...} and sleeps until killed (the test kills it).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    mode, kit, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    from resnetlab.errors import BackendError
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.metrics.stream import MetricStream

    stream = MetricStream(name="kernel")
    stop = threading.Event()

    def produce():
        step = 0
        while not stop.is_set():
            stream.log(
                step,
                loss=2 * math.exp(-step / 60) + 0.1 * math.sin(step / 4),
                accuracy=1 - math.exp(-step / 50),
            )
            step += 1
            time.sleep(0.02)

    threading.Thread(target=produce, daemon=True).start()
    dash = Dashboard(
        ["loss", "accuracy"], stream=stream, backend=kit, mode="viewer", title=f"viewer {kit}"
    )
    try:
        dash.start(rate_hz=10)
    except BackendError as exc:
        print(json.dumps({"skip": f"the {kit} viewer cannot start here: {exc}"}))
        return 0
    viewer = dash.driver.viewer
    if mode == "orphan":
        print(json.dumps({"viewer_pid": viewer.pid}), flush=True)
        time.sleep(120)
        return 0
    if mode == "kill-viewer":
        time.sleep(0.5)
        os.kill(viewer.pid, signal.SIGKILL)
        n0 = len(stream)
        deadline = time.monotonic() + 30  # the parent carries on
        while len(stream) <= n0 + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            viewer.grab(out / "after-kill.png", timeout=5)
            grab_error = None
        except BackendError as exc:
            grab_error = str(exc)
        dash.close()  # closing a dead viewer is fine
        stop.set()
        print(
            json.dumps(
                {
                    "alive": viewer.alive,
                    "records_grew": len(stream) > n0,
                    "grab_error": grab_error,
                    "feeder_alive": viewer._feeder.is_alive(),
                }
            )
        )
        return 0
    # mode == "sleep": the kernel's main thread is blocked for the whole check: it waits
    # (as a long cell would) until the grabber is done, however long a loaded machine takes.
    grabs: dict = {}
    sleeping = threading.Event()
    grabbed = threading.Event()

    def grabber():
        try:
            sleeping.wait()
            time.sleep(1.0)  # let the window show some data first (not a synchronisation)
            grabs["A"] = str(viewer.grab(out / f"viewer-{kit}-A.png", timeout=60))
            grabs["A_draws"] = viewer.window_draws
            records_at_a = len(stream)
            # Grabs do not redraw the window: grab again until the viewer's own timer has
            # redrawn it a few times and the steps have grown past the x axis' headroom
            # (25 %), so the picture must have changed a lot, not by a few line pixels
            # (or give up after a generous minute).
            deadline = time.monotonic() + 60
            while True:
                time.sleep(0.3)
                grown = len(stream) > 1.3 * records_at_a
                grabs["B"] = str(viewer.grab(out / f"viewer-{kit}-B.png", timeout=60))
                grabs["B_draws"] = viewer.window_draws
                redrawn = grabs["B_draws"] >= grabs["A_draws"] + 3
                if (grown and redrawn) or time.monotonic() > deadline:
                    break
            grabs["main_asleep"] = sleeping.is_set()
        except Exception as exc:
            grabs["error"] = repr(exc)
        finally:
            grabbed.set()

    threading.Thread(target=grabber, daemon=True).start()
    sleeping.set()
    grabbed.wait(180)  # a notebook cell blocking the kernel (Event.wait: a plain block)
    sleeping.clear()
    stop.set()
    dash.close()
    print(
        json.dumps(
            {"grabs": grabs, "viewer_alive_after_close": viewer.alive, "records": len(stream)}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
