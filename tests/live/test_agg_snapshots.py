"""Headless Agg snapshots: written atomically, valid PNGs even when the writer is SIGKILLed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from resnetlab.live import MetricStream, live_dashboard

WRITER = Path(__file__).with_name("snapshot_writer.py")


def _all_pngs_valid(directory: Path) -> list[Path]:
    pngs = sorted(directory.glob("*.png"))
    for path in pngs:
        with Image.open(path) as im:
            im.verify()  # checks the PNG structure and CRCs
        with Image.open(path) as im:
            im.load()  # and that all pixel data is there
    return pngs


def test_snapshots_survive_sigkill_mid_write(tmp_path):
    rng = random.Random(7)
    kills = 0
    for _round in range(4):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().startswith("wrote"), "writer did not start"
            time.sleep(rng.uniform(0.05, 0.6))  # land somewhere inside a write
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        assert sorted(p.name for p in _all_pngs_valid(tmp_path)) == [
            "dashboard-1.png",
            "dashboard-2.png",
        ]
    assert kills == 4
    # leftovers of interrupted writes are hidden temp files, never *.png
    assert all(
        p.name.startswith(".") and p.suffix == ".tmp"
        for p in tmp_path.iterdir()
        if p.suffix != ".png"
    )


def test_live_dashboard_headless_writes_snapshots_and_final_png(tmp_path, monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    stream = MetricStream()
    session = live_dashboard(
        stream,
        backend="auto",
        run_dir=tmp_path,
        system_monitor=True,
        rate_hz=10,
        interval=0.2,
        monitor_interval=0.2,
    )
    try:
        assert session.backend == "agg" and session.url is None
        for i in range(30):
            stream.log(i, loss=1 / (i + 1))
            time.sleep(0.02)
        deadline = time.time() + 20
        while not (tmp_path / "dashboard.png").exists() and time.time() < deadline:
            time.sleep(0.1)
        first = (tmp_path / "dashboard.png").read_bytes()
        stream.log(31, loss=0.001)
        time.sleep(1.0)
    finally:
        session.close()
    assert (tmp_path / "dashboard.png").read_bytes() != first  # snapshots keep coming
    assert stream.series_length("sys/cpu_percent") >= 2  # the system monitor was feeding it
    names = {p.name for p in _all_pngs_valid(tmp_path)}
    assert names == {"dashboard.png", "dashboard-final.png"}
    n = stream.series_length("sys/cpu_percent")
    time.sleep(0.5)
    assert stream.series_length("sys/cpu_percent") == n  # close() stopped the monitor


def test_agg_renders_only_for_snapshots_and_writes_a_postponed_one(tmp_path):
    from resnetlab.live import Dashboard

    stream = MetricStream()
    dash = Dashboard(["loss"], stream=stream, backend="agg", directory=tmp_path, interval=1.0)
    fig = dash.figures[0]

    def renders() -> int:
        return fig.full_draws + fig.blit_draws

    for i in range(20):  # 20 updates in quick succession: one snapshot is due, no more
        dash.update(i, loss=1.0 / (i + 1))
    driver = dash.driver
    assert driver.snapshots == 1 and renders() == 1
    assert driver.pending  # the newer data waits for the next due snapshot
    first = (tmp_path / "dashboard.png").read_bytes()
    # The background loop writes the postponed snapshot once it is due, although no new
    # data arrived meanwhile, and renders nothing else.
    dash.start(rate_hz=20)
    try:
        deadline = time.monotonic() + 30
        while driver.snapshots < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert driver.snapshots == 2 and not driver.pending
        assert renders() == 2
        assert (tmp_path / "dashboard.png").read_bytes() != first  # it shows the newer data
    finally:
        dash.stop()
    assert renders() == driver.snapshots
