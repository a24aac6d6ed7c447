"""Resuming a run: find its checkpoint, and refuse settings that differ from the saved ones.

A resumed run continues exactly as saved: asking for another ``lr``, batch size, model or
data on resume is a ConfigError that names each difference and the saved value. The one
change allowed is more ``epochs``: the run is extended (:func:`extend_epochs`), its first
epochs keep their schedule and the added ones get a new one of the same kind
(:func:`run_schedule`), as SGDR restarts its schedule.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError, StoreError
from resnetlab.training.args import DEFAULT_DATA, RecipeArgs
from resnetlab.training.config import TrainConfig
from resnetlab.training.schedules import Schedule, build_schedule, with_restarts

# Settings that may differ on resume: where and how the job runs, not what it trains.
# (``compile`` only changes speed: asked for, it applies to the resumed run too.)
RESUME_FREE = {"device", "rank", "world_size", "dist_timeout_s", "run_dir", "extra", "compile"}


def resolve_resume(resume: str | os.PathLike[str], store: Any, flag: str = "--resume") -> Path:
    """A checkpoint path from a file/folder path, or a run id/name in the store (for the
    option ``flag``: ``--resume`` or ``--init-from``)."""
    p = Path(resume)
    if p.exists():
        return p
    if store is not None:
        try:
            run = store.get_run(str(resume))
        except StoreError:
            run = None
        if run is not None:
            if not run.checkpoint_last:
                raise ConfigError(f"run {run.id} ({run.name}) has no checkpoint ({flag})")
            return Path(run.checkpoint_last)
    raise ConfigError(
        f"{flag} {resume}: neither a checkpoint file/folder nor a run id or "
        "name in the run store; `resnetlab runs` lists runs"
    )


def _same(value: Any, old: Any) -> bool:
    if isinstance(old, tuple) and isinstance(value, list):
        value = tuple(value)
    if isinstance(value, float) and isinstance(old, (int, float)):
        return math.isclose(float(value), float(old), rel_tol=1e-9)
    return value == old


def config_conflicts(saved: TrainConfig, asked: Mapping[str, Any]) -> list[str]:
    """``name=asked (checkpoint: saved)`` for every asked setting that differs from the
    checkpoint's (the ones in ``RESUME_FREE`` may differ)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(asked) - known)
    if unknown:
        raise ConfigError(f"unknown TrainConfig fields {unknown}; known: {sorted(known)}")
    out = []
    for name, value in asked.items():
        if value is None or name in RESUME_FREE:
            continue
        # The checkpoint's lr may be scaled for its world size; the asked one is the base.
        old = saved.extra.get("base_lr", saved.lr) if name == "lr" else getattr(saved, name)
        if name == "epochs" and isinstance(value, int) and value > old:
            continue  # an extension (extend_epochs)
        if name == "epochs" and not _same(value, old):
            out.append(
                f"epochs={value!r} (checkpoint: {old!r}; a run can be extended, not shortened)"
            )
        elif not _same(value, old):
            out.append(f"{name}={value!r} (checkpoint: {old!r})")
    return out


def recipe_conflicts(saved_extra: Mapping[str, Any], args: RecipeArgs) -> list[str]:
    """The model, model overrides, data and train limit asked, where they differ from
    what the checkpoint's run recorded in ``config.extra``."""
    out = []
    model = args.model_or_preset
    if isinstance(model, str) and model != saved_extra.get("model"):
        out.append(f"model={model!r} (checkpoint: {saved_extra.get('model')!r})")
    overrides = args.model_overrides
    if overrides and dict(overrides) != saved_extra.get("model_overrides"):
        out.append(
            f"model_overrides={dict(overrides)!r} (checkpoint: "
            f"{saved_extra.get('model_overrides')!r})"
        )
    if args.data != DEFAULT_DATA and args.data != saved_extra.get("dataset", args.data):
        out.append(f"data={args.data!r} (checkpoint: {saved_extra.get('dataset')!r})")
    limit = args.train_limit
    if limit is not None and limit != saved_extra.get("train_limit"):
        out.append(f"train_limit={limit!r} (checkpoint: {saved_extra.get('train_limit')!r})")
    return out


def check_resume(saved: TrainConfig, args: RecipeArgs) -> None:
    """Raise a ConfigError listing every setting of ``args`` that the checkpoint's
    config ``saved`` has with another value."""
    asked = (
        {f.name: getattr(args.config, f.name) for f in dataclasses.fields(TrainConfig)}
        if args.config is not None
        else {}
    )
    asked.update(args.asked_config())
    conflicts = config_conflicts(saved, asked) + recipe_conflicts(saved.extra, args)
    if conflicts:
        raise ConfigError(
            f"resume {args.resume}: a resumed run continues with its checkpoint's settings, "
            f"but these were given with other values: {', '.join(conflicts)}. Leave "
            "them out to continue the run as saved, or start a new run (without "
            "--resume) to train with new settings."
        )


def asked_epochs(args: RecipeArgs) -> int | None:
    """The ``epochs`` asked for (keyword, TrainConfig field, or the base config's); None: not asked."""
    asked = args.asked_config().get("epochs")
    if asked is None and args.config is not None:
        asked = args.config.epochs
    return asked


def extend_epochs(cfg: TrainConfig, epochs: int | None) -> None:
    """Extend the resumed run ``cfg`` to ``epochs`` (more than saved; :func:`check_resume`
    refused fewer): the schedule restarts at the old last epoch (``extra["schedule_restarts"]``,
    in epochs, so it holds on another world size too)."""
    if epochs is None or epochs <= cfg.epochs:
        return
    restarts = [*cfg.extra.get("schedule_restarts", []), cfg.epochs]
    cfg.extra = {**cfg.extra, "schedule_restarts": restarts}
    cfg.epochs = int(epochs)


def run_schedule(cfg: TrainConfig, steps_per_epoch: int) -> Schedule | None:
    """The LR schedule of an extended run: ``cfg.schedule`` over the first epochs and again
    over each extension; None for a run never extended (the Trainer's own schedule)."""
    restarts = cfg.extra.get("schedule_restarts")
    if not restarts:
        return None

    def make(total_steps: int) -> Schedule:
        return build_schedule(
            cfg.schedule,
            total_steps,
            warmup=cfg.warmup,
            milestones=cfg.step_milestones,
            gamma=cfg.step_gamma,
        )

    bounds = [int(e) * steps_per_epoch for e in restarts]
    return with_restarts(make, bounds, cfg.epochs * steps_per_epoch)
