"""Download one file from its official source, verify it, then move it into place.

The bytes go to ``<name>.part`` beside the target; only after the SHA-256 (or, where no
SHA-256 is published, the MD5) matches is the file fsynced and renamed to its final
name, so a failed or interrupted download never leaves a partial file under the final
name. An interrupted download keeps its ``.part`` and the next attempt resumes it with an
HTTP ``Range`` request when the server allows; a checksum mismatch deletes it. A response
longer than the file's known size is cut off at that size and rejected, never read in
full. ``$RESNETLAB_MIRROR`` (or ``$RESNETLAB_MIRROR_<DATASET>``) points downloads at a
mirror or a local copy instead of the official source; the checksums still decide.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from resnetlab.data.spec import RemoteFile
from resnetlab.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
USER_AGENT = "resnetlab-data/0.1 (+python urllib)"


class DownloadFailed(DataError):
    """The transfer itself failed (no network, HTTP error, connection dropped)."""


MIRROR_ENV = "RESNETLAB_MIRROR"


def mirror_env(dataset: str) -> str:
    """The per-dataset mirror variable: ``RESNETLAB_MIRROR_FASHION_MNIST`` for fashion-mnist."""
    return f"{MIRROR_ENV}_" + "".join(c if c.isalnum() else "_" for c in dataset.upper())


def source_url(remote: RemoteFile, dataset: str | None = None) -> str:
    """Where to fetch ``remote``: a mirror named by the environment, else its official URL.

    ``$RESNETLAB_MIRROR_<DATASET>`` is a base URL holding that dataset's files under their
    official names (``<base>/<file>``); ``$RESNETLAB_MIRROR`` a base URL with one folder
    per dataset (``<base>/<dataset>/<file>``, the layout of the user cache). Any URL
    urllib opens works, ``file:///srv/datasets`` included.
    """
    if dataset:
        base = os.environ.get(mirror_env(dataset), "").strip()
        if base:
            return f"{base.rstrip('/')}/{remote.name}"
        base = os.environ.get(MIRROR_ENV, "").strip()
        if base:
            return f"{base.rstrip('/')}/{dataset}/{remote.name}"
    return remote.url


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, remote: RemoteFile, url: str) -> None:
    """Raise :class:`DataError` unless ``path`` has the checksum of ``remote``."""
    if remote.sha256:
        algorithm, expected = "sha256", remote.sha256
    elif remote.md5:
        algorithm, expected = "md5", remote.md5
    else:
        log.warning("no checksum known for %s; not verified", remote.name)
        return
    found = file_digest(path, algorithm)
    if found != expected.lower():
        size = path.stat().st_size
        raise DataError(
            f"{remote.name}: checksum mismatch after download from {url}: expected "
            f"{algorithm} {expected}{f' ({remote.size} bytes)' if remote.size else ''}, "
            f"found {found} ({size} bytes). The download was deleted. The server sent a "
            "different or damaged file (a proxy or captive-portal page?); try again later or "
            "download it by hand and check it with "
            f"`{algorithm}sum {remote.name}`"
        )


def _progress(total: int | None, initial: int, name: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return contextlib.nullcontext(None)
    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=name,
        disable=None if enabled else True,
        leave=False,
    )


def _too_long(remote: RemoteFile, url: str, part: Path, what: str) -> DataError:
    part.unlink(missing_ok=True)
    return DataError(
        f"{remote.name}: the server at {url} {what}, more than the {remote.size} bytes of "
        "this file; the download was stopped and deleted. It is not this file (an error "
        "page, a proxy's answer, a wrong mirror?); check the URL or download it by hand"
    )


def _receive(
    response: Any, part: Path, offset: int, remote: RemoteFile, url: str, progress: bool
) -> int:
    """Append the body to ``part`` (from ``offset``), never past the file's known size."""
    length = response.headers.get("Content-Length")
    expected = int(length) if length is not None else None
    limit = remote.size or None  # the most bytes the finished file may have
    if limit is not None and expected is not None and offset + expected > limit:
        raise _too_long(remote, url, part, f"announced {offset + expected} bytes")
    total = offset + expected if expected is not None else limit
    received = 0
    with (
        open(part, "ab" if offset else "wb") as fh,
        _progress(total, offset, remote.name, progress) as bar,
    ):
        # Read one byte past the limit at most: enough to know the answer is too long.
        while block := response.read(
            CHUNK if limit is None else min(CHUNK, limit - offset - received + 1)
        ):
            if limit is not None and offset + received + len(block) > limit:
                fh.close()
                raise _too_long(remote, url, part, f"sent over {limit} bytes")
            fh.write(block)
            received += len(block)
            if bar is not None:
                bar.update(len(block))
        fh.flush()
        os.fsync(fh.fileno())
    if expected is not None and received != expected:
        raise http.client.IncompleteRead(b"", expected - received)
    return received


def download_file(
    remote: RemoteFile,
    folder: Path,
    *,
    url: str | None = None,
    dataset: str | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Fetch ``remote`` into ``folder`` (verified, atomic, resumable); returns its path.

    ``url`` overrides the source; otherwise a mirror set for ``dataset`` in the
    environment (see :func:`source_url`) or the official URL is used.
    """
    url = url or source_url(remote, dataset)
    if not url:
        raise DownloadFailed(f"{remote.name}: no download URL is known for this file")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.name
    part = folder / f"{remote.name}.part"
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    log.info("downloading %s -> %s%s", url, target, f" (resuming at {offset})" if offset else "")
    try:
        try:
            response = urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=timeout
            )
        except urllib.error.HTTPError as exc:
            if exc.code != 416 or not offset:  # 416: the .part is already complete
                raise
            response = None
        if response is not None:
            with response:
                if offset and response.status != 206:
                    offset = 0  # the server ignored the Range header: start over
                _receive(response, part, offset, remote, url, progress)
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        kept = part.stat().st_size if part.exists() else 0
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        resume = (
            f"; {kept} bytes are kept in {part} and the next attempt resumes them" if kept else ""
        )
        raise DownloadFailed(f"download of {url} failed ({reason}){resume}") from exc
    try:
        verify(part, remote, url)
    except DataError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    log.info("verified %s", target)
    return target
