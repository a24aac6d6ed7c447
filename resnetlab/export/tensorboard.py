"""Runs as TensorBoard event files: a stored run after the fact, or live while training.

Both write with ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` package's
event format) into ``LOGDIR/run-ID`` (``run-ID-NAME`` for a named run), so the live
callback and a later ``resnetlab export ID --tensorboard LOGDIR`` fill the same TensorBoard
run: one scalar series per metric key by optimiser step, with the wall times the values
were logged at, and the run's config as hparams and as a text table. The system monitor's
``sys/*`` samples count their own steps and stay out, as in the run store.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from resnetlab.export.extras import require
from resnetlab.metrics.stream import StreamReader
from resnetlab.store.frames import flatten_config
from resnetlab.store.runstore import RunStore

EVENT_FILE_PREFIX = "events.out.tfevents."


_UNSAFE = re.compile(r"[^\w.-]+")  # what a folder name should not hold


def run_folder_name(run_id: int | None, name: str | None) -> str:
    """``run-3`` for a run named after its id, ``run-3-baseline`` otherwise."""
    if run_id is None:
        return _UNSAFE.sub("_", name or "run")
    default = f"run-{run_id}"
    if not name or name == default:
        return default
    return f"{default}-{_UNSAFE.sub('_', name)}"


def _writer(logdir: Path, flush_secs: int = 30) -> Any:
    require("tensorboard", "tensorboard", "writing TensorBoard event files")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(logdir), flush_secs=flush_secs)


def _hparam(value: Any) -> int | float | str | bool:
    # The hparams plugin takes numbers, text and booleans; lists and None become JSON text.
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str)


def write_config(
    writer: Any,
    config: Mapping[str, Any],
    final_metrics: Mapping[str, float] | None = None,
    *,
    walltime: float | None = None,
) -> None:
    """The config as a text table (tag ``config``) and as hparams with the final metrics."""
    from torch.utils.tensorboard.summary import hparams

    flat = flatten_config(config, prefix="")
    table = "| field | value |\n|---|---|\n" + "\n".join(
        f"| {k} | `{json.dumps(v, default=str)}` |" for k, v in sorted(flat.items())
    )
    writer.add_text("config", table, global_step=0, walltime=walltime)
    metrics = {
        f"final/{k}": float(v)
        for k, v in (final_metrics or {}).items()
        if v is not None and math.isfinite(v)
    }
    # Into this run, not a sub-run as SummaryWriter.add_hparams does: one run per run.
    for summary in hparams({k: _hparam(v) for k, v in flat.items()}, metrics):
        writer.file_writer.add_summary(summary, 0, walltime)


def write_tensorboard(
    store: RunStore, run: int | str, logdir: str | os.PathLike[str], *, flush_secs: int = 30
) -> Path:
    """Write a stored run's metrics and config under ``logdir``; the run's event folder.

    An earlier export of the same run in that folder is replaced, not appended to.
    """
    info = store.get_run(run)
    folder = Path(logdir) / run_folder_name(info.id, info.name)
    if folder.is_dir():
        for old in folder.glob(f"{EVENT_FILE_PREFIX}*"):
            old.unlink()
    rows = store.metrics(info.id)
    writer = _writer(folder, flush_secs)
    try:
        # Each key's values by step (stable: logging order within a step), because
        # TensorBoard drops the points of a series that are followed by a smaller step.
        for m in sorted(rows, key=lambda r: r.step):
            writer.add_scalar(m.key, m.value, global_step=m.step, walltime=m.time)
        last_step = max((m.step for m in rows), default=0)
        end = info.ended_at or (rows[-1].time if rows else info.started_at)
        for key, value in sorted(info.final_metrics.items()):
            if value is not None:
                writer.add_scalar(f"final/{key}", value, global_step=last_step, walltime=end)
        write_config(writer, info.config, info.final_metrics, walltime=info.started_at)
    finally:
        writer.close()
    return folder


class TensorBoardCallback:
    """Trainer callback writing the run's stream to TensorBoard event files as it trains.

    >>> resnetlab.train("resnetv2-mini", callbacks=[TensorBoardCallback("tb")])

    Then ``tensorboard --logdir tb``. A stream consumer like the run store's recorder: each
    batch it takes the records new in ``trainer.stream``; the writer flushes at every
    epoch end, every ``flush_secs`` and at the end.
    """

    def __init__(
        self,
        logdir: str | os.PathLike[str],
        *,
        include_system: bool = False,
        flush_secs: int = 10,
    ) -> None:
        require("tensorboard", "tensorboard", "TensorBoardCallback")
        self.logdir = Path(logdir)
        self.exclude_prefixes: tuple[str, ...] = () if include_system else ("sys/",)
        self.flush_secs = flush_secs
        self.folder: Path | None = None
        self._writer: Any = None
        self._reader: StreamReader | None = None

    def _pull(self) -> None:
        if self._reader is None or self._writer is None:
            return
        skip = self.exclude_prefixes
        for rec in self._reader.read():
            for key, value in rec.metrics.items():
                if not (skip and key.startswith(skip)):
                    self._writer.add_scalar(key, value, global_step=rec.step, walltime=rec.time)

    # -- trainer events ----------------------------------------------------------------
    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._reader = trainer.stream.reader(from_start=False)
        name = run_folder_name(getattr(trainer, "run_id", None), getattr(trainer, "run_name", None))
        self.folder = self.logdir / name
        self._writer = _writer(self.folder, self.flush_secs)
        config = getattr(trainer, "config", None)
        if config is not None:
            write_config(self._writer, config.to_dict())

    def on_batch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._pull()

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._pull()
        if self._writer is not None:
            self._writer.flush()

    def on_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self._pull()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
