"""Counting the frames a live dashboard makes and the frames its viewer receives, over a
window of real training measured in samples of the system monitor (its 1 s clock slows
down with the machine, so a loaded machine gets a longer window, not a failed test)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

# Samples of the system monitor the window lasts (about 16 s on a quiet machine).
WINDOW_SAMPLES = 16
# Fewest new frames in that window: a dashboard at 0.3 Hz makes about 5, one at 1-2 Hz
# 16-32; a loaded machine may halve the rate and still passes.
MIN_NEW_FRAMES = 7
# The stream key the monitor writes once per sample.
CLOCK_KEY = "sys/cpu_percent"

# Counts the pictures a page paints: ipympl draws each image that arrives from the kernel
# with one drawImage(<img>) onto a canvas, our WebAgg page with one drawImage(<bitmap>).
COUNT_FRAMES_JS = """
window.__frames = 0;
const drawImage = CanvasRenderingContext2D.prototype.drawImage;
CanvasRenderingContext2D.prototype.drawImage = function (source, ...rest) {
  if (source instanceof HTMLImageElement || source instanceof ImageBitmap) {
    window.__frames += 1;
  }
  return drawImage.call(this, source, ...rest);
};
"""


def new_frames(frames: Iterable[Any]) -> int:
    """Frames of figure 0 that show records the frame before them did not."""
    shown = [f for f in frames if f.figure == 0]
    return sum(1 for a, b in zip(shown, shown[1:], strict=False) if b.records > a.records)


def train(stream: Any, stop: threading.Event, steps: list[int]) -> None:
    """A small CNN on 2000 real Fashion-MNIST images until ``stop``; logs every step to
    ``stream`` and counts them in ``steps[0]``."""
    import torch
    from torch import nn

    from resnetlab.data import load

    ds = load("fashion-mnist", "train")
    x, y = ds.images[:2000].float().div(255), ds.labels[:2000]
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
        nn.Linear(16 * 7 * 7, 10),
    )  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    step = 0
    while not stop.is_set():
        idx = torch.randint(0, x.shape[0], (64,))
        out = model(x[idx])
        loss = nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        stream.log(step, loss=loss.item(), accuracy=(out.argmax(1) == y[idx]).float().mean().item())
        step += 1
        steps[0] = step
