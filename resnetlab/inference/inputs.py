"""Turning what a user has (image files, PIL images, arrays, tensors) into a model's input.

Every input is converted as the training data was: to the model's channels ("L" for one,
"RGB" for three), centre-cropped to its aspect ratio and resized to its height x width,
then kept as uint8 (C, H, W); :func:`to_batch` stacks them. Normalisation is the model's
business (:class:`~resnetlab.inference.model.TrainedModel`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetlab.data.formats.images import decode
from resnetlab.errors import ConfigError

# What predict() takes, one image each: a path, a PIL image, an array or a tensor.
ImageLike = Any


def _mode(channels: int) -> str:
    if channels not in (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images; only 1 or 3 are supported")
    return "L" if channels == 1 else "RGB"


def _from_pil(image: Any, size: tuple[int, int], mode: str, where: str) -> np.ndarray:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return decode(buf.getvalue(), where, size, mode)


def _from_array(array: np.ndarray, size: tuple[int, int], mode: str, where: str) -> np.ndarray:
    """An (H, W), (H, W, C) or (C, H, W) array; floats in [0, 1] or uint8."""
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ConfigError(
            f"{where}: an image array must be (H, W), (H, W, C) or (C, H, W) with 1, 3 or 4 "
            f"channels, got shape {tuple(array.shape)}"
        )
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number):
            raise ConfigError(f"{where}: image values must be numbers, got {array.dtype}")
        scale = 255.0 if float(np.nanmax(array)) <= 1.0 else 1.0
        array = np.clip(np.nan_to_num(array) * scale, 0, 255).astype(np.uint8)
    from PIL import Image

    return _from_pil(Image.fromarray(np.ascontiguousarray(array)), size, mode, where)


def to_image(item: ImageLike, channels: int, size: tuple[int, int], where: str) -> torch.Tensor:
    """One input as a (channels, H, W) uint8 tensor of the model's size."""
    mode = _mode(channels)
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.is_file():
            raise ConfigError(f"{path}: no such image file")
        array = decode(path, str(path), size, mode)
    elif isinstance(item, torch.Tensor):
        array = _from_array(item.detach().cpu().numpy(), size, mode, where)
    elif isinstance(item, np.ndarray):
        array = _from_array(item, size, mode, where)
    elif hasattr(item, "save") and hasattr(item, "mode"):  # a PIL image
        array = _from_pil(item, size, mode, where)
    else:
        raise ConfigError(
            f"{where}: cannot read a {type(item).__name__} as an image; give a file path, a "
            "PIL image, a numpy array or a tensor"
        )
    return torch.from_numpy(np.array(array, dtype=np.uint8, copy=True))


def to_batch(
    images: ImageLike | Iterable[ImageLike], channels: int, size: tuple[int, int]
) -> torch.Tensor:
    """``images`` (one or many) as a (N, channels, H, W) uint8 batch.

    A 4-d uint8 tensor of the right shape is taken as a ready batch.
    """
    if isinstance(images, torch.Tensor) and images.ndim == 4:
        if images.dtype == torch.uint8 and tuple(images.shape[1:]) == (channels, *size):
            return images
        images = list(images)
    elif isinstance(images, (str, os.PathLike, np.ndarray, torch.Tensor)) or hasattr(
        images, "mode"
    ):
        images = [images]
    items: Sequence[ImageLike] = list(images)
    if not items:
        raise ConfigError("predict: no images given")
    return torch.stack(
        [to_image(item, channels, size, f"image {i}") for i, item in enumerate(items)]
    )
