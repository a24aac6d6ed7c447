"""Screenshots of the live dashboard in a Qt and a Tk window, for docs/desktop.md.

    .venv/bin/python tools/desktop_screenshots.py            # writes docs/img/desktop-{qt,tk}.png

First a short real training run (``resnetv2-micro`` on the first 10,000 Fashion-MNIST
training images, 3 epochs, on the CPU: about a minute) is recorded in a temporary run
store. Then each toolkit opens in its own process (one GUI toolkit per process) and the
run's stored metrics are replayed into the dashboard's stream while the window is open,
as ``resnetlab watch`` would show them; the window is grabbed by the toolkit itself (Qt) or
from the X server (Tk), toolbar included. Runs under a private Xvfb display when DISPLAY
is unset.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MODEL = "resnetv2-micro"
TRAIN_IMAGES = 10_000  # the first N training images (1,000 of them held out to validate)
EPOCHS = 3
# The run is real; the window shows it replayed from the run store.
TITLE = f"{MODEL} on Fashion-MNIST: first {TRAIN_IMAGES:,} images, {EPOCHS} epochs (real run)"


def record_run(db: Path) -> int:
    """Train for real and record the run in the store at ``db``; returns the run id."""
    import resnetlab

    result = resnetlab.train(
        MODEL,
        data="fashion-mnist",
        epochs=EPOCHS,
        train_limit=TRAIN_IMAGES,
        val_size=1000,
        test_limit=1000,
        batch_size=64,
        log_every=5,
        store=db,
        live=None,
    )
    print(
        f"trained {MODEL}: test accuracy {result.test_accuracy:.3f} "
        f"in {result.wall_time:.0f} s (run {result.run_id})"
    )
    return int(result.run_id)


class _Recorder:
    """Collects the records a RunFollower would append to a stream."""

    def __init__(self) -> None:
        self.records: list[tuple] = []

    def append(self, step, metrics, *, time=None, epoch=None) -> None:  # noqa: A002
        self.records.append((step, dict(metrics), time, epoch))


def window(kit: str, out: Path, db: Path, run_id: int) -> None:
    """In a child process: open the dashboard in a ``kit`` window, replay the run, grab it."""
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.live.watch import RunFollower
    from resnetlab.metrics.stream import MetricStream
    from resnetlab.store import RunStore

    recorder = _Recorder()
    RunFollower(RunStore(db), run_id, recorder).poll()  # the run's records, as watch sees them
    stream = MetricStream(name=f"{MODEL} fashion-mnist")
    dash = Dashboard(
        ["loss", "accuracy", "lr", "throughput"],
        stream=stream,
        backend=kit,
        mode="window",
        ncols=2,
        title=TITLE,
    )
    dash.start(rate_hz=5)
    pause = 4.0 / max(len(recorder.records), 1)  # the whole run in about 4 s
    for step, metrics, t, epoch in recorder.records:
        stream.append(step, metrics, time=t, epoch=epoch)
        dash.driver.wait(pause)
    dash.driver.wait(1.5)
    dash.driver.grab(out)
    dash.close()


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        window(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
        return 0
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "QT_QPA_PLATFORM")}
    xvfb = None
    with tempfile.TemporaryDirectory(prefix="resnetlab-shots-") as tmp:
        db = Path(tmp) / "runs.db"
        run_id = record_run(db)
        if not env.get("DISPLAY"):
            if not shutil.which("Xvfb"):
                print("no DISPLAY and no Xvfb (apt-get install xvfb)", file=sys.stderr)
                return 2
            display = ":93"
            xvfb = subprocess.Popen(
                ["Xvfb", display, "-screen", "0", "1600x1200x24", "-nolisten", "tcp"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            env["DISPLAY"] = display
        try:
            for kit in ("qt", "tk"):
                out = ROOT / "docs" / "img" / f"desktop-{kit}.png"
                subprocess.run(
                    [sys.executable, __file__, "--child", kit, str(out), str(db), str(run_id)],
                    env=env,
                    check=True,
                    timeout=120,
                )
                print(f"wrote {out.relative_to(ROOT)}")
        finally:
            if xvfb is not None:
                xvfb.terminate()
                xvfb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
