"""Save a desktop dashboard window's figure while it runs, after it stopped, and at the end
of a live session (``dashboard-final.png``); report the paths (JSON).

    python tests/desktop/save_check.py qt OUTDIR

Used by test_saved_images.py, one toolkit per process. The window blits its redraws; the
saves must still be whole pictures (test_saved_images checks the files).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def feed(stream, start: int, stop: int) -> None:
    for i in range(start, stop):
        stream.log(i, loss=2.0 / (i + 1) + 0.05 * (i % 7), accuracy=1 - 1 / (i + 2))


def window_saves(kit: str, out: Path) -> dict[str, str]:
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.metrics.stream import MetricStream

    stream = MetricStream(name=f"save-{kit}")
    feed(stream, 0, 30)
    dash = Dashboard(
        ["loss", "accuracy"], stream=stream, backend=kit, mode="window", title=f"{kit} save"
    )
    dash.start(rate_hz=10)
    driver, fig = dash.driver, dash.figures[0]
    # Feed (on this, the main thread) until the window has blitted a redraw: the state in
    # which saves used to come out as lines on a transparent background.
    step, deadline = 30, time.monotonic() + 90
    while fig.blit_draws < 2 and time.monotonic() < deadline:
        stream.log(step, loss=0.4 - step * 1e-4, accuracy=0.7)
        step += 1
        driver.wait(0.1)
    saved = {"blit_draws": fig.blit_draws}
    saved["running"] = str(dash.save(out / f"{kit}-running.png")[0])
    saved["grab"] = str(driver.grab(out / f"{kit}-grab.png"))
    dash.stop()
    saved["stopped"] = str(dash.save(out / f"{kit}-stopped.png")[0])
    dash.close()
    return saved


def session_final(kit: str, out: Path) -> str:
    from resnetlab.live import live_dashboard
    from resnetlab.metrics.stream import MetricStream

    run_dir = out / f"{kit}-run"
    run_dir.mkdir()
    stream = MetricStream(name=f"session-{kit}")
    session = live_dashboard(
        stream,
        backend=kit,
        run_dir=run_dir,
        system_monitor=False,
        panels=["loss", "accuracy"],
        mode="window",
        rate_hz=10,
    )
    try:
        feed(stream, 0, 60)
        session.wait_closed(0.5)  # let the window draw what arrived
    finally:
        session.close()
    return str(run_dir / "dashboard-final.png")


def main() -> int:
    kit, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    from resnetlab.live.drivers.toolkits import toolkit_problem

    problem = toolkit_problem(kit)
    if problem:
        print(json.dumps({"skip": problem}))
        return 0
    report = window_saves(kit, out)
    report["final"] = session_final(kit, out)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
