"""Is a saved dashboard image whole? Opaque everywhere, with its text (titles, tick labels,
axis labels) drawn and not only its lines.

A save that kept the blitted background of a layout-only pass gave a transparent PNG with
nothing but the coloured lines. Text is black; lines use the C0..C9 colours and the grid is
light grey, so dark pixels in the bands where text lives (the left band: the first
column's y tick labels; the top band: titles; the bottom band: the last row's x ticks and
x label) tell that the axes were drawn. Used by tests/live and tests/desktop (imported as
``live.image_checks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Channel values below this count as text (black, anti-aliased edges are greyer).
DARK = 100
# Share of the width / height that the text bands take.
BAND = 0.12
# Dark pixels a band needs: a few characters' worth.
MIN_TEXT_PIXELS = 20


def load_rgba(path: str | Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def text_pixels(rgba: np.ndarray) -> np.ndarray:
    """Boolean mask of opaque, dark pixels (text and spines)."""
    return (rgba[..., 3] == 255) & (rgba[..., :3].max(axis=-1) < DARK)


def whole_image_problems(path: str | Path) -> list[str]:
    """What is wrong with the saved dashboard image ``path`` (empty when it is whole)."""
    rgba = load_rgba(path)
    h, w = rgba.shape[:2]
    problems = []
    see_through = float((rgba[..., 3] < 255).mean())
    if see_through:
        problems.append(f"{see_through:.1%} of the pixels are not opaque")
    dark = text_pixels(rgba)
    bands = {
        "left (y tick labels)": dark[:, : max(1, int(w * BAND))],
        "top (titles)": dark[: max(1, int(h * BAND))],
        "bottom (x tick labels, x label)": dark[h - max(1, int(h * BAND)) :],
    }
    for name, band in bands.items():
        if int(band.sum()) < MIN_TEXT_PIXELS:
            problems.append(f"no text in the {name} band ({int(band.sum())} dark pixels)")
    return problems


def assert_whole_image(path: str | Path) -> None:
    problems = whole_image_problems(path)
    assert not problems, f"{path} is not a whole dashboard: " + "; ".join(problems)
