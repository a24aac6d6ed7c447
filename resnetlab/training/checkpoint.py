"""Checkpoints: atomic writes, safe loads, a keep-last-N-and-best policy.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values, so
it loads with ``torch.load(weights_only=True)`` (no arbitrary unpickling):

    format, version     "resnetlab-checkpoint", 1
    model, spec         state dict and ``model.spec`` (rebuild the architecture anywhere)
    optimizer, scaler, ema
    epoch, batch_in_epoch, step   where training stands (completed epochs, batches done
                        in the current epoch, optimiser steps)
    config              the TrainConfig as a dict
    rng                 torch (CPU, CUDA), numpy and random states
    metrics, best       the latest logs and the best monitored value
    run_id

Files are written with :func:`resnetlab.utils.atomic.atomic_write`, so a crash leaves
the previous checkpoint intact. ``last.pt`` and ``best.pt`` are hard links (copies where
links are impossible) to ``ckpt-step########.pt`` files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnetlab.errors import CheckpointError
from resnetlab.utils.atomic import atomic_write, remove_stale_temps

log = logging.getLogger(__name__)

FORMAT = "resnetlab-checkpoint"
VERSION = 1
LAST, BEST = "last.pt", "best.pt"
_PATTERN = "ckpt-step*.pt"


# -- random number generators ----------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG a training step may touch, as weights_only-loadable values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached"],
        )
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs now than at save time
            torch.cuda.set_rng_state_all(state["cuda"])


# -- files -----------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically (temp file, fsync, rename) and return the path."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "saved_at": time.time(), **state}
    with atomic_write(path, "wb") as fh:
        torch.save(payload, fh)
    return path


def resolve_checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """A checkpoint file, or a run folder (its ``last.pt``)."""
    p = Path(path)
    if p.is_dir():
        if (p / LAST).exists():
            return p / LAST
        found = sorted(p.glob(_PATTERN))
        if not found:
            raise CheckpointError(f"{p}: folder holds no checkpoint ({LAST} or {_PATTERN})")
        return found[-1]
    if not p.exists():
        raise CheckpointError(
            f"{p}: no such checkpoint file; give a .pt file, a run folder, "
            "or a run id/name from `resnetlab runs`"
        )
    return p


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a resnetlab checkpoint safely (``weights_only=True``) with clear errors."""
    p = resolve_checkpoint_path(path)
    try:
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # zip/pickle errors have many types; all mean "unreadable"
        size = p.stat().st_size if p.exists() else 0
        # An empty file raises EOFError(''): a message without a first line.
        first = (str(exc).splitlines() or ["the file is empty" if not size else "no detail"])[0]
        raise CheckpointError(
            f"{p}: cannot read the checkpoint ({type(exc).__name__}: {first}); "
            f"the file ({size} bytes) is truncated, damaged or not a torch checkpoint. "
            f"Use another checkpoint of the run (e.g. an older ckpt-step*.pt in {p.parent})."
        ) from exc
    if isinstance(data, dict) and data.get("format") == FORMAT:
        return data
    if isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        # A bare state dict (e.g. torch.save(model.state_dict())): weights only.
        return {"format": "state_dict", "model": data}
    raise CheckpointError(
        f"{p}: not a resnetlab checkpoint (no '{FORMAT}' marker); "
        "save one with the Trainer or give a model state dict"
    )


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError listing missing, unexpected and shape-mismatching keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return

    def head(items: list[str]) -> str:
        more = f" ... (+{len(items) - 8} more)" if len(items) > 8 else ""
        return ", ".join(items[:8]) + more

    parts = []
    if missing:
        parts.append(f"missing in checkpoint: {head(missing)}")
    if unexpected:
        parts.append(f"not in model: {head(unexpected)}")
    if shapes:
        parts.append(f"shape (checkpoint vs model): {head(shapes)}")
    raise CheckpointError(
        f"{source}: checkpoint does not fit this model's architecture; "
        + "; ".join(parts)
        + ". Build the model from the checkpoint's spec (resnetlab.training.model_from_checkpoint)"
        " or load a checkpoint of the same architecture."
    )


def load_model_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Check then load a state dict (strict)."""
    check_state_dict(model, state, source)
    model.load_state_dict(state)


def model_from_checkpoint(
    path_or_data: str | os.PathLike[str] | Mapping[str, Any],
    *,
    use_ema: bool = True,
    map_location: Any = "cpu",
    source: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """Rebuild the saved architecture from ``spec`` and load its weights (EMA ones if kept).

    ``source``: the file the loaded ``path_or_data`` came from, named in errors.
    """
    data = (
        path_or_data
        if isinstance(path_or_data, Mapping)
        else load_checkpoint(path_or_data, map_location)
    )
    if source is None:
        source = str(path_or_data) if not isinstance(path_or_data, Mapping) else "checkpoint"
    source = str(source)
    spec = data.get("spec")
    if not spec:
        raise CheckpointError(
            f"{source}: checkpoint has no model spec; build the model yourself "
            "and load the 'model' state dict into it"
        )
    from resnetlab.models import rebuild_model

    model = rebuild_model(spec)
    state = data["ema"] if use_ema and data.get("ema") else data["model"]
    load_model_state(model, state, source)
    return model.eval()


# -- keep-last-N-and-best policy -------------------------------------------------------
def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)  # atomic: readers see the old or the new file


class CheckpointManager:
    """Writes ``ckpt-step########.pt`` files in ``directory``, keeps the last N and the best."""

    def __init__(self, directory: str | os.PathLike[str], keep_last: int = 2) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.last: Path | None = None
        self.best: Path | None = None
        # A run killed while writing a checkpoint leaves its temporary file: clear those
        # on every start and resume (writes of live processes are kept).
        remove_stale_temps(self.directory, (_PATTERN, LAST, BEST))
        if (self.directory / BEST).exists():
            self.best = self.directory / BEST

    def save(self, state: Mapping[str, Any], step: int, *, is_best: bool = False) -> Path:
        path = save_checkpoint(self.directory / f"ckpt-step{step:08d}.pt", state)
        _link_or_copy(path, self.directory / LAST)
        self.last = self.directory / LAST
        if is_best:
            _link_or_copy(path, self.directory / BEST)
            self.best = self.directory / BEST
        self._prune()
        log.debug("checkpoint %s (best=%s)", path, is_best)
        return path

    def _prune(self) -> None:
        files = sorted(self.directory.glob(_PATTERN))
        for old in files[: max(0, len(files) - self.keep_last)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()  # last.pt / best.pt are links: their data survives
