"""CelebA: aligned-and-cropped faces, 40 binary attributes, the official 3-way partition.

Files: ``img_align_celeba.zip`` (or the extracted ``img_align_celeba/`` folder),
``list_attr_celeba.txt`` (a count line, a line of 40 attribute names, then one line per
image: file name and 40 values of 1 / -1) and ``list_eval_partition.txt`` (file name and
0 = train, 1 = valid, 2 = test).

The target is one or more attributes chosen by the user: with attributes ``[A, B]`` the
label is ``A + 2 * B`` (bits), so ``["Smiling"]`` gives the classes
``["not Smiling", "Smiling"]``. The full 0/1 attribute matrix is kept in
``ds.extra["attributes"]`` with names in ``ds.extra["attribute_names"]``. Images are
decoded and resized once per ``image_size`` (centre crop to square, then resize) and
cached as a tensor file; changing the attributes reuses that cache.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetlab.data import cache
from resnetlab.data.dataset import ImageDataset
from resnetlab.data.formats.images import as_size, decode
from resnetlab.data.locate import Located
from resnetlab.data.spec import DatasetSpec
from resnetlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PARTITIONS = {"train": 0, "valid": 1, "test": 2}
IMAGES, ATTRS, PARTITION = "img_align_celeba.zip", "list_attr_celeba.txt", "list_eval_partition.txt"
_FIX = "replace it with the official file from the CelebA Google Drive"


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """(attribute names, file names, (N, 40) uint8 0/1 matrix) from list_attr_celeba.txt."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(
            f"{path}: line 1 should be the number of images, found "
            f"{lines[0][:40] if lines else 'an empty file'!r}; {_FIX}"
        )
    count = int(lines[0])
    names = lines[1].split()
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise DataError(
            f"{path}: header says {count} images but {len(rows)} lines follow; "
            f"the file is truncated; {_FIX}"
        )
    files: list[str] = []
    values = np.empty((count, len(names)), dtype=np.int8)
    for i, row in enumerate(rows):
        if len(row) != len(names) + 1:
            raise DataError(
                f"{path}: line {i + 3} has {len(row) - 1} values, expected "
                f"{len(names)} (one per attribute); {_FIX}"
            )
        files.append(row[0])
        try:
            values[i] = [int(v) for v in row[1:]]
        except ValueError:
            raise DataError(
                f"{path}: line {i + 3} holds a value that is not 1 or -1; {_FIX}"
            ) from None
    if not np.isin(values, (-1, 1)).all():
        raise DataError(f"{path}: attribute values must be 1 or -1; {_FIX}")
    return names, files, (values > 0).astype(np.uint8)


def read_partition(path: Path) -> dict[str, int]:
    """File name -> 0 (train) / 1 (valid) / 2 (test) from list_eval_partition.txt."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a text file (byte {exc.start} is not UTF-8); expected "
            f"lines '<file name> 0|1|2'; {_FIX}"
        ) from None
    out: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(
                f"{path}: line {number} is {line[:60]!r}, expected '<file name> 0|1|2'; {_FIX}"
            )
        out[parts[0]] = int(parts[1])
    return out


class _ImageSource:
    """Reads image files from the official zip or from the extracted folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.members: dict[str, str] = {}
        if path.is_file():
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(
                    f"{path}: not a readable zip archive ({exc}); expected the "
                    f"official {IMAGES}; {_FIX}"
                ) from None
            self.members = {
                n.rsplit("/", 1)[-1]: n for n in self.zip.namelist() if not n.endswith("/")
            }

    def read(self, name: str) -> tuple[bytes | Path, str]:
        if self.zip is None:
            path = self.path / name
            if not path.exists():
                raise DataError(
                    f"{path}: missing; {ATTRS} lists it, expected it in "
                    f"{self.path}/; extract {IMAGES} again"
                )
            return path, str(path)
        member = self.members.get(name)
        if member is None:
            raise DataError(
                f"{self.path}: archive lacks {name}, which {ATTRS} lists; the "
                f"archive is incomplete; {_FIX}"
            )
        try:
            return self.zip.read(member), f"{self.path}:{member}"
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(
                f"{self.path}:{member}: cannot be read from the archive ({exc}); {_FIX}"
            ) from None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def attribute_list(attributes: Sequence[str] | str) -> list[str]:
    """The ``attributes`` option as a list of names; ConfigError when it is not one."""
    if isinstance(attributes, str):
        return [attributes]
    if isinstance(attributes, (list, tuple)) and all(isinstance(a, str) for a in attributes):
        return list(attributes)
    raise ConfigError(
        f"celeba: attributes must be an attribute name or a list of names, "
        f"e.g. ['Smiling'] or ['Smiling', 'Male'], got {attributes!r}"
    )


def _targets(
    names: list[str], attributes: Sequence[str] | str, matrix: torch.Tensor
) -> tuple[torch.Tensor, list[str]]:
    chosen = attribute_list(attributes)
    if not chosen:
        raise ConfigError("celeba: attributes must name at least one attribute, e.g. ['Smiling']")
    unknown = [a for a in chosen if a not in names]
    if unknown:
        raise ConfigError(
            f"celeba: unknown attribute(s) {', '.join(unknown)}; choose from {', '.join(names)}"
        )
    if len(chosen) > 10:
        raise ConfigError(
            f"celeba: {len(chosen)} attributes make 2**{len(chosen)} classes; choose at most 10"
        )
    labels = torch.zeros(matrix.shape[0], dtype=torch.int64)
    for bit, name in enumerate(chosen):
        labels |= matrix[:, names.index(name)].to(torch.int64) << bit
    classes = [
        ", ".join(n if (k >> b) & 1 else f"not {n}" for b, n in enumerate(chosen))
        for k in range(2 ** len(chosen))
    ]
    return labels, classes


def load_celeba(
    spec: DatasetSpec,
    split: str,
    found: Located,
    *,
    attributes: Sequence[str] | str = ("Smiling",),
    image_size: int = 64,
    cache_parsed: bool = True,
    progress: bool = True,
) -> ImageDataset:
    """Load one CelebA split with the chosen attribute(s) as the target."""
    attribute_list(attributes)  # a wrong type fails now, not after decoding every image
    size = as_size(image_size)
    if size is None:
        raise ConfigError(
            "celeba: image_size is required (e.g. 64); every image is resized to it once and cached"
        )
    images_path, attrs_path, part_path = (found.files[n] for n in (IMAGES, ATTRS, PARTITION))
    payload = None
    if cache_parsed:
        key = cache.fingerprint([images_path, attrs_path, part_path], size=size)
        path = cache.cache_path(spec.name, f"{split}-{size[0]}x{size[1]}", key)
        payload = cache.load_cached(path)
    if payload is None:
        payload = _parse(images_path, attrs_path, part_path, split, size, progress)
        if cache_parsed:
            cache.save_cached(path, payload)
    matrix = payload["attributes"]
    names = list(payload["attribute_names"])
    labels, classes = _targets(names, attributes, matrix)
    return ImageDataset(
        images=payload["images"],
        labels=labels,
        classes=classes,
        name=spec.name,
        source=found.folder,
        split=split,
        extra={"attributes": matrix, "attribute_names": names},
    )


def _parse(
    images_path: Path,
    attrs_path: Path,
    part_path: Path,
    split: str,
    size: tuple[int, int],
    progress: bool,
) -> dict[str, Any]:
    names, files, matrix = read_attributes(attrs_path)
    partition = read_partition(part_path)
    missing = [f for f in files if f not in partition]
    if missing:
        raise DataError(
            f"{part_path}: no partition for {len(missing)} image(s) listed in "
            f"{attrs_path.name} (first: {missing[0]}); expected one line per "
            f"image; {_FIX}"
        )
    wanted = PARTITIONS[split]
    keep = [i for i, f in enumerate(files) if partition[f] == wanted]
    if not keep:
        raise DataError(
            f"{part_path}: no image is in partition {wanted} ({split}); expected "
            f"the official partition; {_FIX}"
        )
    source = _ImageSource(images_path)
    images = np.empty((len(keep), 3, *size), dtype=np.uint8)
    try:
        from tqdm.auto import tqdm

        log.info("decoding and resizing %d CelebA images (once per image size)", len(keep))
        for row, i in enumerate(
            tqdm(
                keep,
                desc=f"celeba {split} -> {size[0]}x{size[1]}",
                disable=None if progress else True,
                leave=False,
            )
        ):
            data, where = source.read(files[i])
            images[row] = decode(data, where, size, "RGB")
    finally:
        source.close()
    return {
        "images": torch.from_numpy(images),
        "attributes": torch.from_numpy(matrix[keep]),
        "attribute_names": names,
    }
