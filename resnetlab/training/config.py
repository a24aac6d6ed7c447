"""TrainConfig: every knob of a training run, with the reason for its default.

The defaults are the tuned recipe for the default model on Fashion-MNIST on a small CPU
(see docs/training.md, "The default recipe"); the same object is stored as JSON with the
run and inside every checkpoint, so a run can be resumed and compared.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from resnetlab.errors import ConfigError

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")


@dataclass
class TrainConfig:
    """How to train; model and data are given separately."""

    # 25 passes over Fashion-MNIST: one-cycle needs the whole budget up front; the
    # default model (48 maps) crosses 94% test accuracy at 25 epochs, ~7 minutes on a
    # 2-core CPU (docs/bench/training.md); ``--quick`` trains the 32-map network for 20.
    epochs: int = 25
    # Big enough to keep the CPU's matrix units busy, small enough for ~200 steps/epoch
    # (one-cycle likes many steps).
    batch_size: int = 256
    # SGD with Nesterov momentum generalises best on small image sets; "adamw" is the
    # forgiving choice for new architectures.
    optimizer: str = "sgd"
    # Peak learning rate (one-cycle / cosine) or the initial one (step).
    lr: float = 0.2
    # Heavy-ball momentum (SGD) / beta1 (AdamW).
    momentum: float = 0.9
    # Nesterov look-ahead: a small, free improvement for SGD.
    nesterov: bool = True
    # Applied to conv/linear weights only: decaying BN scales and biases only hurts.
    weight_decay: float = 5e-4
    # "onecycle" (warm up, then anneal: fastest to a good accuracy), "cosine" (with linear
    # warm-up), "step" (the ResNet papers: /10 at 50% and 75% of training), "constant".
    schedule: str = "onecycle"
    # Fraction of training spent warming up; None: the schedule's own default (one-cycle
    # 0.25, cosine 0.05, step 0: the paper's constant LR from the first step).
    warmup: float | None = None
    # Step schedule: fractions of training where the LR is divided by ``step_gamma``.
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    # Step schedule: the factor at each milestone.
    step_gamma: float = 0.1
    # Soft targets: a cheap regulariser worth a few tenths of a percent here.
    label_smoothing: float = 0.1
    # Keep an exponential moving average of the weights (e.g. 0.999); evaluation and the
    # best checkpoint then use it. None: off (one-cycle already ends on a low LR).
    ema_decay: float | None = None
    # Clip the global gradient norm to this value (None: off); a safety net for deep plain nets.
    grad_clip: float | None = None
    # "fp32", "bf16" (autocast on CPU and CUDA), "fp16" (CUDA only, with a GradScaler),
    # "auto": bf16 where the hardware computes it natively (recent GPUs; CPUs with
    # AVX512-BF16 or AMX, ~2x faster than fp32 there), else fp32.
    precision: str = "auto"
    # NHWC memory layout: faster convolutions on CPUs and tensor-core GPUs.
    channels_last: bool = True
    # torch.compile the model (opt-in: compiling takes a minute and needs a C++ compiler).
    compile: bool = False
    # Seeds torch, numpy and random, the data order and augmentation: same seed, same run.
    seed: int = 0
    # "auto": CUDA if present, else the CPU with all its cores; or "cpu", "cuda", "cuda:1".
    device: str = "auto"
    # Metrics are read from the device (a sync, ``.item()``) only every this many steps.
    log_every: int = 20
    # Checkpoints to keep besides the best one (oldest removed first).
    keep_last: int = 2
    # The metric that picks the best checkpoint; higher is better unless it ends in "loss".
    monitor: str = "val_accuracy"
    # Where checkpoints go; None: a folder per run beside the run store (or none at all
    # when there is no store).
    run_dir: str | None = None
    # Validation images held out of the training set (0: no validation pass).
    val_size: int = 5000
    # Batched augmentation: random crop with this zero padding (0: off) and horizontal flips.
    crop_padding: int = 2
    flip: bool = True
    # Test-time flips: evaluate (validation, test, ``resnetlab eval``, ``predict``) on the
    # mean of the logits of each image and its mirror. +0.2-0.4 points for one extra
    # forward pass (ablation, docs/bench/training.md), but worse for a network that never
    # saw a mirrored image, and wrong for digits and text. None: on
    # exactly when the training batches are mirrored (``flip`` with a TensorLoader, as
    # ``train()`` builds it); True: your own loader mirrors them; False: off. The trainer
    # records the resolved value with the run. Never on without ``flip``.
    tta_flip: bool | None = None
    # Distributed training (torchrun sets these); rank 0 alone writes store and checkpoints.
    rank: int = 0
    world_size: int = 1
    # Seconds a collective (DDP's gradient all-reduce, a metric reduction) waits for a
    # peer before this rank gives up with a RankLostError naming it: long enough for a
    # slow epoch-end validation on a loaded machine, short enough that a dead rank does
    # not leave the others hanging (PyTorch's own default is 10-30 minutes).
    dist_timeout_s: float = 60.0
    # SyncBatchNorm: BatchNorm statistics over the global batch instead of each rank's
    # share (CUDA only in PyTorch; worth it when the per-rank batch is small, < ~32).
    sync_batchnorm: bool = False
    # The batch size ``lr`` was tuned for; under torchrun the LR is scaled linearly by
    # global batch / reference_batch. None: the per-rank batch size, so a recipe tuned on
    # one process keeps its per-sample update on N processes (its LR is multiplied by N).
    reference_batch: int | None = None
    # Free-form extras recorded with the run (model overrides, notes).
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the field and the fix for any invalid value."""
        for name, invalid, why in _CHECKS:
            if invalid(getattr(self, name)):
                raise self._bad(name, why)
        if not 0 <= self.rank < self.world_size:
            raise self._bad("rank", f"must be in [0, world_size={self.world_size})")

    def _bad(self, name: str, why: str) -> ConfigError:
        return ConfigError(f"TrainConfig.{name}={getattr(self, name)!r}: {why}")

    @property
    def eval_flips(self) -> bool:
        """Whether evaluation averages each image with its mirror (``tta_flip`` and ``flip``;
        an unresolved ``tta_flip=None`` counts as off until a Trainer resolves it)."""
        return bool(self.tta_flip) and self.flip

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (tuples become lists)."""
        data = dataclasses.asdict(self)
        data["step_milestones"] = list(self.step_milestones)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown TrainConfig fields {unknown}; known: {sorted(names)}")
        data = dict(data)
        # Saved before test-time flips existed: such a run was evaluated without them.
        data.setdefault("tta_flip", False)
        if "step_milestones" in data:
            data["step_milestones"] = tuple(data["step_milestones"])
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


# What TrainConfig.validate checks, in this order: (field, "is it invalid?", the fix).
_CHECKS: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("epochs", lambda v: v < 1, "must be at least 1"),
    ("batch_size", lambda v: v < 1, "must be at least 1"),
    ("optimizer", lambda v: v not in OPTIMIZERS, f"choose one of {', '.join(OPTIMIZERS)}"),
    ("schedule", lambda v: v not in SCHEDULES, f"choose one of {', '.join(SCHEDULES)}"),
    ("precision", lambda v: v not in PRECISIONS, f"choose one of {', '.join(PRECISIONS)}"),
    ("lr", lambda v: not (math.isfinite(v) and v > 0), "must be a positive number"),
    (
        "weight_decay",
        lambda v: not (math.isfinite(v) and v >= 0),
        "must be a finite number >= 0 (0: no decay)",
    ),
    ("warmup", lambda v: v is not None and not 0 <= v < 1, "is a fraction of training in [0, 1)"),
    ("label_smoothing", lambda v: not 0 <= v < 1, "must be in [0, 1)"),
    (
        "ema_decay",
        lambda v: v is not None and not 0 < v < 1,
        "must be in (0, 1), e.g. 0.999, or None",
    ),
    ("grad_clip", lambda v: v is not None and not v > 0, "must be positive or None"),
    ("log_every", lambda v: v < 1, "must be at least 1"),
    (
        "crop_padding",
        lambda v: v < 0,
        "must be 0 (no random crops) or a positive number of pixels",
    ),
    ("keep_last", lambda v: v < 1, "must be at least 1"),
    (
        "step_milestones",
        lambda v: any(not 0 < m < 1 for m in v),
        "are fractions of training in (0, 1)",
    ),
    (
        "dist_timeout_s",
        lambda v: not v > 0,
        "must be a positive number of seconds, e.g. 60",
    ),
    (
        "reference_batch",
        lambda v: v is not None and v < 1,
        "must be at least 1, or None (the per-rank batch)",
    ),
)
