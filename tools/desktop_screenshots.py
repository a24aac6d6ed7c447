"""Screenshots of the live dashboard in a Qt and a Tk window, for docs/desktop.md.

    .venv/bin/python tools/desktop_screenshots.py            # writes docs/img/desktop-{qt,tk}.png

Runs under a private Xvfb display when DISPLAY is unset. Each toolkit opens in its own
process (one GUI toolkit per process); the window is grabbed by the toolkit itself (Qt)
or from the X server (Tk), toolbar included, while a producer thread is still appending.
The curves are a synthetic training run (exponential decay plus noise, a cosine learning
rate schedule), so the script needs no model and runs in seconds.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def window(kit: str, out: Path) -> None:
    """In a child process: open the dashboard in a ``kit`` window, feed it, grab it."""
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.live.stream import MetricStream

    stream = MetricStream(name="fashion-mnist resnetv2-20")
    dash = Dashboard(["loss", "accuracy", "lr", "throughput"], stream=stream, backend=kit,
                     mode="window", ncols=2, title="resnetv2-20 on Fashion-MNIST")
    dash.start(rate_hz=5)
    rng = random.Random(0)
    steps_per_epoch, epochs = 120, 8

    def produce():
        for step in range(1, steps_per_epoch * epochs + 1):
            epoch = (step - 1) // steps_per_epoch
            lr = 0.05 * 0.5 * (1 + math.cos(math.pi * step / (steps_per_epoch * epochs)))
            loss = 0.25 + 2.0 * math.exp(-step / 150) + rng.gauss(0, 0.04)
            acc = min(0.99, 0.93 - 0.8 * math.exp(-step / 120) + rng.gauss(0, 0.01))
            stream.log(step, loss=loss, accuracy=acc, lr=lr,
                       images_per_s=2400 + rng.gauss(0, 60))
            if step % steps_per_epoch == 0:
                stream.append(step, {"val_loss": 0.3 + 1.6 * math.exp(-step / 170),
                                     "val_accuracy": 0.91 - 0.7 * math.exp(-step / 140)},
                              epoch=epoch)
            time.sleep(0.002)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    while producer.is_alive():
        dash.driver.wait(0.3)
    dash.driver.wait(1.0)
    dash.driver.grab(out)
    dash.close()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        window(sys.argv[2], Path(sys.argv[3]))
        return 0
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "QT_QPA_PLATFORM")}
    xvfb = None
    if not env.get("DISPLAY"):
        if not shutil.which("Xvfb"):
            print("no DISPLAY and no Xvfb (apt-get install xvfb)", file=sys.stderr)
            return 2
        display = ":93"
        xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1200x24", "-nolisten",
                                 "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        env["DISPLAY"] = display
    try:
        for kit in ("qt", "tk"):
            out = ROOT / "docs" / "img" / f"desktop-{kit}.png"
            subprocess.run([sys.executable, __file__, "--child", kit, str(out)], env=env,
                           check=True, timeout=120)
            print(f"wrote {out.relative_to(ROOT)}")
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
