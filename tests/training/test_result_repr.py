"""Printing a TrainResult names the run in one line instead of dumping the model."""

from __future__ import annotations

from pathlib import Path

import torch

from resnetlab.states import RunStatus
from resnetlab.training.config import TrainConfig
from resnetlab.training.result import TrainResult


def test_repr_is_one_short_line_without_the_model() -> None:
    result = TrainResult(
        history=[{"loss": 1.0, "epoch": e} for e in range(50)],
        test_metrics={"test_loss": 0.3, "test_accuracy": 0.9123},
        run_id=7,
        checkpoint=Path("runs/run-7/last.pt"),
        best_checkpoint=Path("runs/run-7/best.pt"),
        run_dir=Path("runs/run-7"),
        status=RunStatus.COMPLETED,
        wall_time=192.4,
        config=TrainConfig(),
        model=torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(20)]),
        confusion=torch.zeros(10, 10, dtype=torch.int64),
    )
    text = repr(result)
    assert text == (
        "TrainResult(run_id=7, status='completed', test_accuracy=0.9123, epochs=50, "
        "wall_time=192.4s, checkpoint='runs/run-7/last.pt')"
    )
    assert str(result) == text and "Linear" not in text


def test_repr_without_store_or_test_metrics() -> None:
    result = TrainResult([], {}, None, None, None, None, RunStatus.STOPPED, 1.0, TrainConfig())
    assert repr(result) == "TrainResult(run_id=None, status='stopped', epochs=0, wall_time=1.0s)"
