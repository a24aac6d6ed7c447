"""Frames as PNG images in the two modes of matplotlib's WebAgg protocol (which ipympl
speaks): ``"full"``, the whole picture, or ``"diff"``, only the pixels that changed since
the previous frame, the rest transparent, for the page to paint over what it shows.

A dashboard frame changes a few panels' lines and labels, so a diff image is mostly zeros:
several times smaller and faster to encode, send and decode than the whole picture.

    frames = FrameDiffer()
    mode, png = frames.encode(0, canvas.buffer_rgba())   # "full" first, then "diff"
    frames.reset(0)                                        # the page lost it: whole next
"""

from __future__ import annotations

import threading
from io import BytesIO
from typing import Literal

import numpy as np

ImageMode = Literal["full", "diff"]
# zlib level 1: a third of the default level's encoding time for a somewhat larger file;
# live frames are sent a few times a second and thrown away.
PNG_LEVEL = 1
# A whole frame at least this often (frames), even when diffs would do: a page that missed
# one diff (an image replaced before it loaded) shows the right picture again soon.
FULL_EVERY = 20


def encode_png(rgba: np.ndarray) -> bytes:
    """An ``(h, w, 4)`` uint8 array as PNG bytes."""
    from PIL import Image

    with BytesIO() as png:
        Image.fromarray(rgba).save(png, format="png", compress_level=PNG_LEVEL)
        return png.getvalue()


def as_pixels(rgba: np.ndarray) -> np.ndarray:
    """``(h, w, 4)`` uint8 RGBA as ``(h, w)`` uint32: one comparison per pixel."""
    return np.ascontiguousarray(rgba).view(np.uint32).squeeze(2)


def diff_pixels(pixels: np.ndarray, last: np.ndarray | None) -> tuple[ImageMode, np.ndarray]:
    """What to send for ``pixels`` (uint32, :func:`as_pixels`) after ``last`` was shown:
    the changed pixels (others 0, transparent), or the whole image when it cannot be painted
    over (nothing shown yet, another size, transparency of its own). As RGBA uint8."""
    rgba = pixels.view(np.uint8).reshape((*pixels.shape, 4))
    if last is None or pixels.shape != last.shape or (rgba[..., 3] != 255).any():
        mode: ImageMode = "full"
        out = pixels
    else:
        mode = "diff"
        out = np.where(pixels != last, pixels, 0)
    return mode, out.view(np.uint8).reshape((*out.shape, 4))


class FrameDiffer:
    """Encodes successive frames of several figures, each as a diff over the one before
    it where that can be painted over; thread-safe (:meth:`reset` comes from a reader)."""

    def __init__(self, full_every: int = FULL_EVERY) -> None:
        self.full_every = full_every
        self._last: dict[int, np.ndarray] = {}
        self._since_full: dict[int, int] = {}
        self._lock = threading.Lock()

    def encode(self, figure: int, rgba: np.ndarray) -> tuple[ImageMode, bytes]:
        pixels = as_pixels(rgba)
        with self._lock:
            last = self._last.get(figure)
            if self._since_full.get(figure, 0) >= self.full_every:
                last = None
            mode, out = diff_pixels(pixels, last)
            self._last[figure] = pixels.copy()
            self._since_full[figure] = 0 if mode == "full" else self._since_full[figure] + 1
        return mode, encode_png(out)

    def reset(self, figure: int) -> None:
        """Make ``figure``'s next frame whole (the page does not hold the last one)."""
        with self._lock:
            self._last.pop(figure, None)
