"""IDX files (MNIST, Fashion-MNIST), gzip-compressed or raw.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions,
then one big-endian uint32 per dimension, then the data. Images are ``idx3`` (N, H, W),
labels ``idx1`` (N,).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from resnetlab.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
IMAGES_MAGIC = 0x00000803  # ubyte, 3 dimensions
LABELS_MAGIC = 0x00000801  # ubyte, 1 dimension

_FIX = "delete it so that it is downloaded again, or replace it with the official file"


def read_bytes(path: Path) -> bytearray:
    """The content of ``path`` (writable), gunzipped when it starts with the gzip magic."""
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return bytearray(raw)
    try:
        return bytearray(gzip.decompress(raw))
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip data ({exc}); expected a "
            f"complete gzip file of {len(raw)}+ bytes; {_FIX}"
        ) from None


def read_idx(path: str | Path, expected_magic: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes; returns an array of its declared shape."""
    path = Path(path)
    data = read_bytes(path)
    what = "images (idx3)" if expected_magic == IMAGES_MAGIC else "labels (idx1)"
    if len(data) < 4:
        raise DataError(
            f"{path}: {len(data)} bytes, too short for an IDX header; expected IDX {what}; {_FIX}"
        )
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise DataError(
            f"{path}: bad magic 0x{magic:08x} (expected 0x{expected_magic:08x} "
            f"for {what}); the file is truncated, of the wrong kind or not IDX; "
            f"{_FIX}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: header cut short ({len(data)} bytes, expected {header}); {_FIX}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    found = len(data) - header
    if found != expected:
        raise DataError(
            f"{path}: header declares shape {dims} = {expected} bytes of data but "
            f"the file holds {found}; the file is truncated or damaged; {_FIX}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_pair(
    images_path: Path,
    labels_path: Path,
    num_classes: int,
    shape: tuple[int, int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, H, W) and labels (N,) from a matching pair of IDX files.

    With ``shape`` = (1, H, W), the dataset's known image shape, images of another size
    are rejected (they belong to another dataset).
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    if shape is not None and tuple(images.shape[1:]) != tuple(shape[1:]):
        h, w = images.shape[1:]
        raise DataError(
            f"{images_path}: images are {h}x{w} pixels, expected {shape[1]}x"
            f"{shape[2]} for this dataset; the file belongs to another dataset; "
            "replace it (and its labels file) with the official file"
        )
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{labels_path}: {labels.shape[0]} labels but {images_path} holds "
            f"{images.shape[0]} images; expected one label per image; the two "
            "files come from different splits or one is damaged; replace both "
            "with the official pair"
        )
    if images.shape[0] == 0:
        raise DataError(
            f"{images_path}: holds 0 images (and {labels_path.name} 0 labels); "
            f"expected at least one image; the file is a stub or damaged; {_FIX}"
        )
    if int(labels.max()) >= num_classes:
        raise DataError(
            f"{labels_path}: label {int(labels.max())} found, expected labels "
            f"0..{num_classes - 1}; the file belongs to another dataset"
        )
    return images[:, None, :, :], labels
