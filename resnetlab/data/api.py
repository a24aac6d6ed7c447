"""``load(name, split)``: find (or download) a dataset, parse it once, return tensors."""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetlab.data import cache
from resnetlab.data.dataset import ImageDataset
from resnetlab.data.download import DownloadFailed, download_file
from resnetlab.data.locate import Located, download_dir, locate, not_found_message
from resnetlab.data.spec import DATASETS, DatasetSpec
from resnetlab.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` registered under ``name``."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}"
        ) from None


def find(
    spec: DatasetSpec,
    split: str,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    progress: bool = True,
) -> Located:
    """Locate the files of ``split``, downloading them when allowed and needed."""
    found = locate(spec, split, root)
    if found is not None:
        return found
    if not download:
        problem = "Download not attempted (download=False)."
    elif not spec.downloadable:
        problem = "This dataset cannot be downloaded automatically."
    else:
        target = download_dir(spec.name, root)
        try:
            for remote in spec.split_files(split):
                if not any((target / n).exists() for n in remote.names):
                    download_file(remote, target, dataset=spec.name, progress=progress)
        except DownloadFailed as exc:
            problem = f"Download failed: {exc}"
        else:
            found = locate(spec, split, root)
            if found is not None:
                return found
            problem = f"Downloaded into {target}, but the files are still incomplete."
    raise DataError(not_found_message(spec, split, root, problem))


def _parse(
    spec: DatasetSpec, split: str, found: Located, options: dict[str, Any]
) -> dict[str, Any]:
    if spec.format == "idx":
        from resnetlab.data.formats.idx import read_idx_pair

        images_file, labels_file = (found.files[f.name] for f in spec.split_files(split))
        images, labels = read_idx_pair(images_file, labels_file, len(spec.classes), spec.shape)
        return {
            "images": torch.from_numpy(np.ascontiguousarray(images)),
            "labels": torch.from_numpy(labels.astype(np.int64)),
            "classes": list(spec.classes),
        }
    if spec.format == "cifar":
        from resnetlab.data.formats.cifar import read_cifar

        (archive,) = found.files.values()
        return read_cifar(archive, split, fine=spec.name == "cifar100")
    raise ConfigError(f"{spec.name}: no parser for format {spec.format!r}")


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    cache_parsed: bool = True,
    progress: bool = True,
    **options: Any,
) -> ImageDataset:
    """Load one split of a dataset as uint8 tensors.

    ``name`` is one of ``DATASETS`` ("fashion-mnist", "mnist", "cifar10", "cifar100",
    "celeba", "image-folder"). Files are looked for in ``root``, ``$RESNETLAB_DATA/<name>``,
    the user cache and system folders (see :mod:`resnetlab.data.locate`), and downloaded
    from the official source (checksum-verified) when missing and ``download`` is true.
    The parsed tensors are cached in the user cache, so the next load is fast.

    CelebA takes ``attributes=["Smiling"]`` and ``image_size=64``; image-folder takes
    ``image_size`` and ``grayscale`` and needs ``root``.
    """
    spec = get_spec(name)
    check_options(spec, options)
    if spec.format == "celeba":
        from resnetlab.data.formats.celeba import load_celeba

        found = find(spec, _check_split(spec, split), root, download=download, progress=progress)
        return load_celeba(
            spec, split, found, cache_parsed=cache_parsed, progress=progress, **options
        )
    if spec.format == "image-folder":
        from resnetlab.data.formats.image_folder import load_image_folder

        return load_image_folder(root, split, cache_parsed=cache_parsed, **options)
    split = _check_split(spec, split)
    found = find(spec, split, root, download=download, progress=progress)
    sources = list(found.files.values())
    payload = None
    if cache_parsed:
        key = cache.fingerprint(sources, split=split)
        path = cache.cache_path(spec.name, split, key)
        payload = cache.load_cached(path)
    if payload is None:
        log.info("parsing %s %s from %s", name, split, found.folder)
        payload = _parse(spec, split, found, options)
        if cache_parsed:
            cache.save_cached(path, payload)
    return ImageDataset(
        images=payload["images"],
        labels=payload["labels"],
        classes=list(payload["classes"]),
        name=spec.name,
        source=Path(found.folder),
        split=split,
    )


def check_options(spec: DatasetSpec, options: dict[str, Any]) -> None:
    """Raise ConfigError for an option ``spec`` does not take, suggesting close names."""
    unknown = sorted(set(options) - set(spec.options))
    if not unknown:
        return
    hints = []
    for option in unknown:
        close = difflib.get_close_matches(option, spec.options, n=1)
        hints.append(f"{option!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    takes = f"it takes {', '.join(spec.options)}" if spec.options else "it takes no options"
    raise ConfigError(f"{spec.name}: unknown option(s) {', '.join(hints)}; {takes}")


def _check_split(spec: DatasetSpec, split: str) -> str:
    if split not in spec.splits:
        raise ConfigError(
            f"{spec.name} has no split {split!r}; choose one of "
            f"{', '.join(spec.splits)} (carve a validation set from 'train' "
            "with split_validation)"
        )
    return split
