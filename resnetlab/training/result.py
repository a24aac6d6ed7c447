"""TrainResult: what one run of the training recipe returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetlab.states import RunStatus
from resnetlab.training.config import TrainConfig


@dataclass
class TrainResult:
    """What :func:`resnetlab.train` returns."""

    history: list[dict[str, Any]]  # one logs dict per epoch (loss, val_accuracy, ...)
    test_metrics: dict[str, float]  # test_loss, test_accuracy (empty if not evaluated)
    run_id: int | None  # id in the run store (None without a store)
    checkpoint: Path | None  # the last checkpoint (resume from it)
    best_checkpoint: Path | None  # the best by config.monitor
    run_dir: Path | None
    status: RunStatus  # completed or stopped
    wall_time: float  # seconds, data loading to test evaluation
    config: TrainConfig
    model: Any = None  # the trained nn.Module (EMA weights if kept)
    classes: list[str] = field(default_factory=list)
    confusion: Any = None  # (K, K) int64 tensor on the test set
    stream: Any = field(default=None, repr=False)  # the MetricStream of the run
    dashboard: Any = field(default=None, repr=False)

    @property
    def test_accuracy(self) -> float | None:
        return self.test_metrics.get("test_accuracy")

    def __getstate__(self) -> dict[str, Any]:
        # Streams and dashboards hold locks and threads: they stay in their process.
        state = dict(self.__dict__)
        state["stream"] = state["dashboard"] = None
        return state

    def __repr__(self) -> str:
        # The dataclass repr would print the whole model, the history and the confusion
        # matrix; a short line names the run instead (issue 13.14).
        parts = [f"run_id={self.run_id!r}", f"status={str(self.status)!r}"]
        if self.test_accuracy is not None:
            parts.append(f"test_accuracy={self.test_accuracy:.4f}")
        parts.append(f"epochs={len(self.history)}")
        parts.append(f"wall_time={self.wall_time:.1f}s")
        if self.checkpoint is not None:
            parts.append(f"checkpoint={str(self.checkpoint)!r}")
        return f"TrainResult({', '.join(parts)})"

    def summary(self) -> str:
        """The lines ``resnetlab train`` prints at the end."""
        lines = []
        if self.test_metrics:
            lines.append(
                f"test accuracy {self.test_metrics['test_accuracy']:.4f}  "
                f"(test loss {self.test_metrics['test_loss']:.4f})"
            )
        lines.append(f"wall time {_fmt_seconds(self.wall_time)}  status {self.status}")
        if self.run_id is not None:
            lines.append(f"run id {self.run_id}")
        if self.checkpoint is not None:
            lines.append(f"checkpoint {self.checkpoint}")
        return "\n".join(lines)


def _fmt_seconds(s: float) -> str:
    m, s = divmod(int(round(s)), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"
