"""Evaluation passes: loss, accuracy and a confusion matrix over a loader."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EvalResult:
    """Mean cross-entropy (no label smoothing), accuracy, how many images, the confusion matrix."""

    loss: float
    accuracy: float
    count: int
    # (num_classes, num_classes): rows are true classes, columns predictions; None if not asked.
    confusion: torch.Tensor | None = None

    def as_logs(self, prefix: str = "val_") -> dict[str, float]:
        return {f"{prefix}loss": self.loss, f"{prefix}accuracy": self.accuracy}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    num_classes: int | None = None,
    all_reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    channels_last: bool = False,
) -> EvalResult:
    """Run ``model`` in eval mode over ``loader``; sums stay on the device until the end."""
    was_training = model.training
    model.eval()
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, count
    confusion = (
        torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
        if num_classes
        else None
    )
    try:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits = model(x)
            logits = logits.float()
            pred = logits.argmax(1)
            sums[0] += F.cross_entropy(logits, y, reduction="sum")
            sums[1] += (pred == y).sum()
            sums[2] += y.shape[0]
            if confusion is not None:
                confusion += torch.bincount(
                    y * num_classes + pred, minlength=num_classes * num_classes
                ).view(num_classes, num_classes)
    finally:
        model.train(was_training)
    if all_reduce_sum is not None:
        sums = all_reduce_sum(sums)
        if confusion is not None:
            confusion = all_reduce_sum(confusion)
    loss_sum, correct, count = sums.tolist()  # the one device sync of the pass
    count = int(count)
    return EvalResult(
        loss=loss_sum / max(count, 1),
        accuracy=correct / max(count, 1),
        count=count,
        confusion=confusion.cpu() if confusion is not None else None,
    )


def format_confusion(confusion: torch.Tensor, classes: list[str] | None = None) -> str:
    """A text confusion matrix: rows true class, columns predicted, per-class recall."""
    n = confusion.shape[0]
    names = [str(c) for c in (classes or range(n))]
    # Row labels in full ("T-shirt/top", "Ankle boot"): the column is as wide as the
    # longest name; the columns are numbered, with the legend below.
    width = max(5, *(len(s) for s in names), len(str(int(confusion.max())) if n else 1))
    head = " " * (width + 1) + " ".join(f"{i:>{5}}" for i in range(n)) + "  recall"
    lines = ["true \\ predicted", head]
    for i in range(n):
        row = confusion[i]
        total = int(row.sum())
        recall = int(row[i]) / total if total else float("nan")
        cells = " ".join(f"{int(v):>5}" for v in row)
        lines.append(f"{names[i]:>{width}} {cells}  {recall:.3f}")
    lines.append("columns: " + ", ".join(f"{i}={name}" for i, name in enumerate(names)))
    return "\n".join(lines)
