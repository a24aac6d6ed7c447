"""A user's own images: ``root/<class name>/*.png|jpg`` (optionally under train/ and test/).

Class names are the sub-folder names of the training folder (``root/train`` if it
exists, else ``root``) in sorted order, empty ones included, and every split uses that one
list, so a class has the same label number in train and test. Hidden folders (such as
Jupyter's ``.ipynb_checkpoints``) are not classes. If ``root/train`` and ``root/test``
exist they are the two splits; otherwise the whole folder is the training split (carve a
validation set with ``split_validation``). Every image is decoded once and resized to
``image_size`` (required when the images differ in size); the result is cached.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from resnetlab.data import cache
from resnetlab.data.dataset import ImageDataset
from resnetlab.data.formats.images import IMAGE_SUFFIXES, as_size, decode
from resnetlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)
NAME = "image-folder"


def split_folder(root: Path, split: str) -> Path:
    """The folder that holds the class folders of ``split``."""
    if (root / split).is_dir():
        return root / split
    if split == "train":
        return root
    raise DataError(
        f"{root}: no '{split}' folder; expected {root}/{split}/<class name>/*.png "
        f"for the {split} split; found {_describe(root)}. Create it, or use the "
        "whole folder as the training split and carve a validation set with "
        "split_validation(ds, size)"
    )


def available_splits(root: str | os.PathLike[str]) -> list[str]:
    """The splits ``root`` holds: always "train", and "test" when ``root/test`` exists."""
    return ["train", "test"] if (Path(root).expanduser() / "test").is_dir() else ["train"]


def class_folders(folder: Path) -> list[Path]:
    """The class sub-folders of ``folder`` in sorted order (hidden and split folders skipped)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and p.name not in ("train", "test") and not p.name.startswith(".")
    )


def class_names(root: Path) -> list[str]:
    """The class list shared by every split: the sub-folders of the training folder."""
    return [p.name for p in class_folders(split_folder(root, "train"))]


def scan(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """Image paths of ``folder`` and their labels (indices into ``classes``), in a stable order."""
    files: list[Path] = []
    labels: list[int] = []
    for sub in class_folders(folder):
        images = sorted(
            p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        if sub.name not in classes:
            raise DataError(
                f"{sub}: class {sub.name!r} is not a class of the training split; "
                f"expected one of {', '.join(classes) or '(none)'} (the sub-folders "
                f"of the training folder); found {len(images)} image(s) in it. Add "
                f"a '{sub.name}' folder to the training split too (it may be "
                "empty), or rename or remove this one"
            )
        files.extend(images)
        labels.extend([classes.index(sub.name)] * len(images))
    if not files:
        raise DataError(
            f"{folder}: no images found; expected {folder}/<class name>/*.png (or "
            f".jpg, .jpeg, .bmp, .gif, .webp, .tif) with one sub-folder per class; "
            f"found {_describe(folder)}. Put each class's images in its own "
            "sub-folder"
        )
    return files, labels


def _describe(folder: Path) -> str:
    entries = list(folder.iterdir())
    dirs = sum(1 for e in entries if e.is_dir())
    return f"{dirs} sub-folder(s) and {len(entries) - dirs} other file(s)"


def _choose_mode(files: list[Path], grayscale: bool | None) -> str:
    if grayscale is not None:
        return "L" if grayscale else "RGB"
    from PIL import Image

    for path in files:  # colour if any image is colour (cheap: reads headers only)
        try:
            with Image.open(path) as img:
                if img.mode not in ("1", "L", "I;16", "I", "LA"):
                    return "RGB"
        except OSError:
            continue  # reported with its name when decoded
    return "L"


def load_image_folder(
    root: str | os.PathLike[str] | None,
    split: str = "train",
    *,
    image_size: int | tuple[int, int] | None = None,
    grayscale: bool | None = None,
    cache_parsed: bool = True,
) -> ImageDataset:
    """Load ``root`` (see the module docstring) as an :class:`ImageDataset`."""
    if root is None:
        raise ConfigError(
            "image-folder needs root=... (CLI: --data-dir) pointing at a folder "
            "with one sub-folder of images per class"
        )
    if grayscale is not None and not isinstance(grayscale, bool):
        raise ConfigError(
            f"image-folder: grayscale must be True, False or None (decide from "
            f"the images), got {grayscale!r}"
        )
    size = as_size(image_size)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"{root}: not a folder; expected a folder with one sub-folder of "
            "images per class; check the path"
        )
    folder = split_folder(root, split)
    classes = class_names(root)
    files, labels = scan(folder, classes)
    mode = _choose_mode(files, grayscale)
    payload = None
    if cache_parsed:
        key = cache.fingerprint(files, root=str(folder), size=size, mode=mode, classes=classes)
        path = cache.cache_path(NAME, split, key)
        payload = cache.load_cached(path)
    if payload is None:
        log.info("decoding %d images from %s", len(files), folder)
        arrays = []
        for file in files:
            array = decode(file, str(file), size, mode)  # resized only when size is given
            first = arrays[0].shape[1:] if arrays else array.shape[1:]
            if array.shape[1:] != first:
                raise DataError(
                    f"{file}: image is {array.shape[2]}x{array.shape[1]} but "
                    f"{files[0]} is {first[1]}x{first[0]}; images of one folder "
                    "must share a size unless you pass image_size=N to resize "
                    "them all"
                )
            arrays.append(array)
        payload = {
            "images": torch.from_numpy(np.stack(arrays)),
            "labels": torch.tensor(labels, dtype=torch.int64),
            "classes": classes,
        }
        if cache_parsed:
            cache.save_cached(path, payload)
    return ImageDataset(
        images=payload["images"],
        labels=payload["labels"],
        classes=list(payload["classes"]),
        name=NAME,
        source=folder,
        split=split,
    )
