"""Atomic file writes: write to a temporary file beside the target, fsync, then rename.

A reader (or a crash) never sees a half-written checkpoint, snapshot or cache file: the
target either keeps its old content or gets the complete new one. A writer killed
mid-way leaves only its temporary file, ``.<target>.<pid>.<random>.tmp``; the pid in the
name lets :func:`remove_stale_temps` tell such leftovers from writes still in progress.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write needs a write mode, got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=target.parent)
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    mask = os.umask(0)
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if disk_full(exc) and not (isinstance(exc, OSError) and exc.filename):
            # torch.save reports a full disk as RuntimeError("unexpected pos ..."), with
            # the OSError only in its context: say what happened, and where.
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target)) from exc
        raise
    _fsync_dir(target.parent)


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from or during) is ENOSPC/EDQUOT."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def temp_prefix(target: Path) -> str:
    """The start of the name of a temporary file for ``target`` written by this process."""
    return f".{target.name}.{os.getpid()}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _is_leftover(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``.<target>.<pid>[.<random>].tmp`` is a temporary file of a target named
    like ``patterns`` whose writer is gone (no pid in the name: an older writer's)."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    parts = name[1:-4].split(".")
    for cut in range(len(parts) - 1, 0, -1):  # the longest target name first
        if any(fnmatch.fnmatchcase(".".join(parts[:cut]), p) for p in patterns):
            field = parts[cut]
            return not (field.isdigit() and _process_alive(int(field)))
    return False


def remove_stale_temps(directory: str | os.PathLike[str], patterns: Iterable[str]) -> list[Path]:
    """Delete the temporary files that killed writers left for targets named like ``patterns``.

    A temporary file whose writer (the pid in its name) still runs is a write in progress
    and is kept. Returns the removed paths.
    """
    folder = Path(directory)
    wanted = tuple(patterns)
    removed: list[Path] = []
    try:
        candidates = sorted(folder.glob(".*.tmp"))
    except OSError:
        return removed
    for path in candidates:
        if _is_leftover(path.name, wanted):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        log.info("removed %d leftover temporary file(s) in %s", len(removed), folder)
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as fh:
        fh.write(text)


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable; not every filesystem allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
