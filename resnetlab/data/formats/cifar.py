"""CIFAR-10 / CIFAR-100 binary version (never the pickled "python version").

Records are fixed-size: CIFAR-10 has 1 label byte + 3072 pixel bytes (3073); CIFAR-100
has a coarse and a fine label byte + 3072 (3074). Pixels are stored channel-major
(1024 red, 1024 green, 1024 blue), row-major within a channel: exactly (3, 32, 32).
The files are read straight out of ``cifar-10-binary.tar.gz`` (nothing is extracted to
disk) or from an already extracted ``cifar-10-batches-bin/`` folder.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetlab.errors import DataError

PIXELS = 3 * 32 * 32
_FIX = "delete it so that it is downloaded again, or replace it with the official archive"

# member file names (inside the archive's top folder) per dataset and split
MEMBERS = {
    False: {
        "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
        "test": ["test_batch.bin"],
        "meta": "batches.meta.txt",
        "top": "cifar-10-batches-bin",
    },
    True: {
        "train": ["train.bin"],
        "test": ["test.bin"],
        "meta": "fine_label_names.txt",
        "top": "cifar-100-binary",
    },
}


def parse_records(data: bytes, where: str, fine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) and labels (N,) from the bytes of one CIFAR .bin file."""
    record = PIXELS + (2 if fine else 1)
    if len(data) == 0 or len(data) % record:
        other = PIXELS + (1 if fine else 2)
        hint = (
            f"; its size is a multiple of {other}, so it looks like "
            f"{'CIFAR-10' if fine else 'CIFAR-100'} data"
            if data and len(data) % other == 0
            else ""
        )
        raise DataError(
            f"{where}: {len(data)} bytes is not a whole number of "
            f"{record}-byte records (expected for {'CIFAR-100' if fine else 'CIFAR-10'}"
            f" binary){hint}; the file is truncated or of the wrong kind; {_FIX}"
        )
    rows = np.frombuffer(bytearray(data), dtype=np.uint8).reshape(-1, record)
    labels = rows[:, record - PIXELS - 1].astype(np.int64)  # CIFAR-100: the fine label
    images = rows[:, record - PIXELS :].reshape(-1, 3, 32, 32)
    return images, labels


def _read_members(source: Path, names: list[str], top: str) -> dict[str, bytes]:
    """The bytes of the named files, from the tar.gz archive or an extracted folder."""
    if source.is_dir():
        folder = source if not (source / top).is_dir() else source / top
        out = {}
        for name in names:
            path = folder / name
            if not path.exists():
                raise DataError(
                    f"{path}: missing; expected the {top}/ folder of the official "
                    "archive to hold it; extract the archive again"
                )
            out[name] = path.read_bytes()
        return out
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(source, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names and base not in out:
                    fh = tar.extractfile(member)
                    assert fh is not None
                    out[base] = fh.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{source}: not a readable tar.gz archive ({exc}); expected the "
            f"official {source.name}; {_FIX}"
        ) from None
    missing = [n for n in names if n not in out]
    if missing:
        raise DataError(
            f"{source}: archive lacks {', '.join(missing)}; expected the members "
            f"of {top}/; found only {', '.join(sorted(out)) or 'none of them'}; "
            f"{_FIX}"
        )
    return out


def read_cifar(source: Path, split: str, fine: bool) -> dict[str, Any]:
    """Parse one split of CIFAR-10 (``fine=False``) or CIFAR-100 (fine labels)."""
    layout = MEMBERS[fine]
    names = [*layout[split], layout["meta"]]
    blobs = _read_members(Path(source), names, layout["top"])
    parts = [parse_records(blobs[n], f"{source}:{n}", fine) for n in layout[split]]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    classes = [line.strip() for line in blobs[layout["meta"]].decode().splitlines() if line.strip()]
    expected = 100 if fine else 10
    if len(classes) != expected:
        raise DataError(
            f"{source}:{layout['meta']}: {len(classes)} class names, expected {expected}; {_FIX}"
        )
    if labels.size and int(labels.max()) >= expected:
        raise DataError(
            f"{source}: label {int(labels.max())} found, expected 0..{expected - 1}; {_FIX}"
        )
    return {
        "images": torch.from_numpy(np.ascontiguousarray(images)),
        "labels": torch.from_numpy(labels),
        "classes": classes,
    }
