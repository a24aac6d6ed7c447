"""Where dataset files are looked for, in one documented order.

1. an explicit ``root`` (``load(..., root=...)`` / ``--data-dir``): ``root`` itself and
   ``root/<name>``;
2. ``$RESNETLAB_DATA/<name>`` (``RESNETLAB_DATA`` may list several folders, separated by
   ``os.pathsep``);
3. the user cache ``$XDG_CACHE_HOME/resnetlab/<name>`` (default ``~/.cache/resnetlab/<name>``),
   which is also where downloads go;
4. system folders ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist``
   installs there) and ``/usr/local/share/datasets/<name>``.

With an explicit ``root`` only step 1 is searched, and downloads go into ``root``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from resnetlab.data.spec import DatasetSpec, RemoteFile

ENV_VAR = "RESNETLAB_DATA"
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/resnetlab`` (default ``~/.cache/resnetlab``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "resnetlab"


def user_cache_dir(name: str) -> Path:
    """The per-dataset user cache folder, where downloads and parsed caches go."""
    return cache_home() / name


@dataclass(frozen=True)
class Candidate:
    """One folder that is searched, and why it is on the list."""

    path: Path
    why: str


def candidate_dirs(name: str, root: str | os.PathLike[str] | None = None) -> list[Candidate]:
    """The folders searched for dataset ``name``, in order."""
    if root is not None:
        root = Path(root).expanduser()
        return [Candidate(root, "explicit root"), Candidate(root / name, "explicit root")]
    found: list[Candidate] = []
    for entry in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        found.append(Candidate(Path(entry).expanduser() / name, f"${ENV_VAR}"))
    found.append(Candidate(user_cache_dir(name), "user cache"))
    found.extend(Candidate(d / name, "system") for d in SYSTEM_DIRS)
    return found


def download_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where a download of dataset ``name`` is stored."""
    return Path(root).expanduser() if root is not None else user_cache_dir(name)


def find_in(folder: Path, wanted: RemoteFile) -> Path | None:
    """The first acceptable copy of ``wanted`` in ``folder``, if any."""
    for name in wanted.names:
        path = folder / name
        if path.exists():
            return path
    return None


@dataclass(frozen=True)
class Located:
    """The folder holding every file of a split, and the path of each file."""

    folder: Path
    files: dict[str, Path]  # official file name -> path found (maybe an alias)


def locate(
    spec: DatasetSpec, split: str, root: str | os.PathLike[str] | None = None
) -> Located | None:
    """The first candidate folder that holds all files ``split`` needs, or None."""
    wanted = spec.split_files(split)
    for cand in candidate_dirs(spec.name, root):
        if not cand.path.is_dir():
            continue
        paths = {f.name: find_in(cand.path, f) for f in wanted}
        if all(p is not None for p in paths.values()):
            return Located(cand.path, paths)  # type: ignore[arg-type]
    return None


def not_found_message(
    spec: DatasetSpec, split: str, root: str | os.PathLike[str] | None, download_problem: str
) -> str:
    """A message listing exactly which files were looked for where and how to provide them."""
    wanted = spec.split_files(split)
    lines = [f"{spec.name} ({split} split) not found.", "Looked for:"]
    for f in wanted:
        alts = f" (or {', '.join(f.aliases)})" if f.aliases else ""
        lines.append(f"  {f.name}{alts}")
    lines.append("in:")
    for cand in candidate_dirs(spec.name, root):
        state = "" if cand.path.is_dir() else " [no such folder]"
        lines.append(f"  {cand.path}  ({cand.why}){state}")
    if root is None and not os.environ.get(ENV_VAR):
        lines.append(f"  (${ENV_VAR} is not set)")
    lines.append(download_problem)
    target = download_dir(spec.name, root)
    lines.append("How to fix, any one of:")
    if spec.apt_package:
        lines.append(
            f"  - sudo apt-get install {spec.apt_package}   "
            f"(installs {SYSTEM_DIRS[0] / spec.name}/)"
        )
    if spec.downloadable:
        lines.append(f"  - download these files into {target}/ :")
        lines.extend(f"      {f.url}" for f in wanted)
    if spec.manual_hint:
        lines.append(f"  - {spec.manual_hint}, into {target}/")
    lines.append(
        f"  - pass root=/path/to/folder (CLI: --data-dir), or set {ENV_VAR}=/data so "
        f"that /data/{spec.name}/ holds the files"
    )
    return "\n".join(lines)
