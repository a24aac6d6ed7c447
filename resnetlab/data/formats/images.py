"""Decoding image files with Pillow into uint8 arrays of one fixed size."""

from __future__ import annotations

import io
import numbers
from pathlib import Path

import numpy as np

from resnetlab.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def decode(data: bytes | Path, where: str, size: tuple[int, int] | None, mode: str) -> np.ndarray:
    """One image as (C, H, W) uint8, converted to ``mode`` ("L" or "RGB").

    With ``size`` = (height, width) the image is centre-cropped to that aspect ratio and
    resized, so faces and objects are not squashed.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
            if size is not None and img.format == "JPEG":
                img.draft(mode, (2 * size[1], 2 * size[0]))  # decode at a reduced scale
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize(
                    (size[1], size[0]),
                    Image.Resampling.BILINEAR,
                    box=centre_box(img.size, size),
                    reducing_gap=2.0,
                )
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"{where}: cannot read this image ({exc}); expected a PNG, JPEG, BMP, "
            "GIF, WebP or TIFF file; delete or replace it"
        ) from None
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def centre_box(source: tuple[int, int], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """The largest centred box of ``source`` (W, H) with the aspect of ``size`` (H, W)."""
    width, height = source
    aspect = size[1] / size[0]
    if width / height > aspect:
        crop = height * aspect
        return ((width - crop) / 2, 0.0, (width + crop) / 2, float(height))
    crop = width / aspect
    return (0.0, (height - crop) / 2, float(width), (height + crop) / 2)


def as_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """Normalise an ``image_size`` option (N or (height, width)) to (height, width)."""
    if image_size is None:
        return None
    if _is_int(image_size):
        pair: tuple[object, ...] = (image_size, image_size)
    elif isinstance(image_size, (tuple, list)):
        pair = tuple(image_size)
    else:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and int(v) >= 1 for v in pair):
        raise ConfigError(
            f"image_size must be a positive int N (for N x N) or a pair "
            f"(height, width) of positive ints, got {image_size!r}"
        )
    return int(pair[0]), int(pair[1])


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
