"""Parsed-data cache: the tensors of a split saved once, so the next run skips parsing.

Cache files live in ``$XDG_CACHE_HOME/resnetlab/<name>/parsed/`` and are keyed by a
fingerprint of the source files (path, size, modification time), the options and the
parser version, so a changed source file is parsed again. They are written atomically
and read with ``torch.load(weights_only=True)``; an unreadable cache is ignored and
rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from resnetlab.data.locate import user_cache_dir
from resnetlab.utils.atomic import atomic_write

log = logging.getLogger(__name__)

# Bump when a parser changes what it produces, so old caches are not reused.
# 2: IDX images checked against the dataset's shape, image-folder classes from train/.
PARSER_VERSION = 2


def fingerprint(paths: Iterable[Path], **options: Any) -> str:
    """Short hash of the source files' identity and the parse options."""
    h = hashlib.sha256(f"v{PARSER_VERSION}".encode())
    for path in sorted(Path(p).resolve() for p in paths):
        st = path.stat()
        h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode())
    h.update(json.dumps(options, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def cache_path(name: str, label: str, key: str) -> Path:
    return user_cache_dir(name) / "parsed" / f"{label}-{key}.pt"


def load_cached(path: Path) -> dict[str, Any] | None:
    """The cached dict at ``path``, or None if absent or unreadable."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged cache is rebuilt, never fatal
        log.warning("ignoring unreadable cache %s (%s); parsing again", path, exc)
        return None


def save_cached(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically; a read-only cache folder only costs a warning."""
    try:
        with atomic_write(path, "wb") as fh:
            torch.save(payload, fh)
    except OSError as exc:
        log.warning("could not write cache %s (%s); continuing without it", path, exc)
