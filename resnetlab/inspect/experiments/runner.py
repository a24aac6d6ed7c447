"""What every experiment shares: its options, the data, one training run, and its outcome.

Each run is a normal :class:`~resnetlab.training.Trainer` run recorded in the run store
(name ``<experiment>/<label>/seed<k>``), with the experiment's test subset as its
validation loader (so the curves show test error per epoch) and a
:class:`~resnetlab.inspect.gradients.GradientNormCallback` recording ``grad_norm/<layer>``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments.budget import Budget, tiny_subset
from resnetlab.inspect.gradients import GradientNormCallback, norms_from_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentOptions:
    """Knobs shared by the experiments; the defaults fit a few minutes on a small CPU."""

    # Epochs per run, or minutes for the whole experiment (see Budget).
    budget: Budget = field(default_factory=lambda: Budget(epochs=1))
    dataset: str = "fashion-mnist"
    # Where the dataset files are (None: the usual search, see resnetlab.data).
    data_root: str | None = None
    # Training images used (a fixed random subset): small on a CPU, 60000 on a GPU.
    subset: int = 4000
    # Test images the error curves are measured on after every epoch.
    test_subset: int = 2000
    # Bottleneck maps of the first stack (stack outputs are 4x, later stacks double):
    # 16 is He et al.'s CIFAR layout (stack outputs 64/128/256); 8 halves it for a CPU.
    width: int = 8
    # Seeds per configuration (mean ± std over them); None: the experiment's default.
    seeds: int | None = None
    # Network depths (9n + 2), used by experiments that compare depths.
    depths: tuple[int, ...] = (20, 56)
    batch_size: int = 128
    # Peak learning rate of the one-cycle schedule (same for every run: same recipe).
    lr: float = 0.1
    # "auto" (CUDA if present), "cpu", "cuda:0", ...
    device: str = "auto"
    # The SQLite run store the runs are recorded in (None: not recorded).
    store: str | None = "runs/resnetlab.db"
    # Record gradient norms every this many optimizer steps.
    grad_every: int = 5
    # Torch CPU threads (None: leave as is); 1 is steadier on a CPU shared with others.
    threads: int | None = None
    # The command line that produced the report (written at its top).
    command: str = ""
    # Seed of the data subsets (the same images for every run of an experiment).
    data_seed: int = 0

    def __post_init__(self) -> None:
        # option -> its CLI flag, so the message names what the user typed
        for name, flag in (
            ("subset", "--subset"),
            ("test_subset", "--test-subset"),
            ("width", "--width"),
            ("seeds", "--seeds"),
            ("batch_size", "--batch-size"),
            ("grad_every", "--grad-every"),
            ("threads", "--threads"),
        ):
            value = getattr(self, name)
            if value is None and name in ("seeds", "threads"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"ExperimentOptions.{name}={value!r} ({flag}) must be an integer >= 1"
                )
        if not self.depths:
            raise ConfigError(
                "ExperimentOptions.depths is empty (--depths); give at least "
                "one depth 9n + 2, e.g. --depths 20,56"
            )
        if not self.lr > 0:
            raise ConfigError(f"ExperimentOptions.lr={self.lr!r} (--lr) must be > 0")


@dataclass
class ExperimentData:
    """The training and test subsets as tensors, and their normalisation."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)


def load_data(options: ExperimentOptions) -> ExperimentData:
    """Fixed random subsets of the train and test splits (same for every run)."""
    from resnetlab.data import channel_stats, load

    train = load(options.dataset, "train", root=options.data_root, progress=False)
    test = load(options.dataset, "test", root=options.data_root, progress=False)
    if options.subset < options.batch_size:
        raise ConfigError(
            f"--subset {options.subset} is smaller than one batch "
            f"({options.batch_size}); use a larger subset or --batch-size"
        )
    gen = torch.Generator().manual_seed(options.data_seed)
    tr = torch.randperm(len(train), generator=gen)[: tiny_subset(options.subset)].sort().values
    te = torch.randperm(len(test), generator=gen)[: tiny_subset(options.test_subset)].sort().values
    train, test = train.subset(tr), test.subset(te)
    mean, std = channel_stats(train)
    return ExperimentData(
        train.images,
        train.labels,
        test.images,
        test.labels,
        mean,
        std,
        train.num_classes,
        train.name,
    )


@dataclass(frozen=True)
class RunSpec:
    """One training run of an experiment."""

    label: str  # what the report calls it, e.g. "plain-56"
    preset: str  # model preset it starts from
    overrides: Mapping[str, Any]  # model config fields changed from the preset
    seed: int = 0
    group: str = ""  # runs of one group differ only by seed


@dataclass
class RunOutcome:
    """What one run produced: curves, gradient norms and final numbers."""

    spec: RunSpec
    params: int
    depth: int
    epochs: int
    steps_per_epoch: int
    seconds: float
    run_id: int | None
    history: list[dict[str, Any]]
    train_curve: tuple[np.ndarray, np.ndarray]  # (epoch, training error) at logging steps
    test_curve: tuple[np.ndarray, np.ndarray]  # (epoch, test error) after each epoch
    grad_layers: list[str]
    grad_steps: np.ndarray
    grad_norms: np.ndarray  # (layers, records)

    @property
    def final_train_error(self) -> float:
        """Training error of the last epoch (running average over that epoch)."""
        return 1.0 - float(self.history[-1]["accuracy"]) if self.history else float("nan")

    @property
    def final_test_error(self) -> float:
        return 1.0 - float(self.history[-1]["val_accuracy"]) if self.history else float("nan")


def build(spec: RunSpec, data: ExperimentData) -> torch.nn.Module:
    """The run's model, seeded, for the experiment's data."""
    from resnetlab.models import create_model

    torch.manual_seed(spec.seed)
    c, h, _ = data.input_shape
    return create_model(
        spec.preset,
        in_channels=c,
        num_classes=data.num_classes,
        image_size=h,
        **dict(spec.overrides),
    )


def _loaders(data: ExperimentData, options: ExperimentOptions, seed: int, device: torch.device):
    from resnetlab.data import TensorLoader

    common = dict(mean=data.mean, std=data.std, device=device)
    train = TensorLoader(
        data.train_images,
        data.train_labels,
        options.batch_size,
        shuffle=True,
        drop_last=True,
        seed=seed,
        **common,
    )
    test = TensorLoader(data.test_images, data.test_labels, 512, shuffle=False, **common)
    return train, test


def seconds_per_epoch(
    spec: RunSpec,
    data: ExperimentData,
    options: ExperimentOptions,
    device: torch.device,
    probe_steps: int = 3,
) -> float:
    """Measured training time of one epoch of this model (a few steps, extrapolated)."""
    model = build(spec, data).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    train, _ = _loaders(data, options, spec.seed, device)
    batches = iter(train)
    times = []
    for _ in range(probe_steps + 1):
        x, y = next(batches)
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    step = float(np.median(times[1:]))  # the first step pays for warm-up
    test_steps = len(data.test_labels) / options.batch_size
    return step * (len(train) + test_steps / 3)  # a forward pass is ~1/3 of a step


def train_run(
    spec: RunSpec,
    data: ExperimentData,
    options: ExperimentOptions,
    *,
    experiment: str,
    epochs: int,
    store: Any = None,
) -> RunOutcome:
    """Train one run with the experiment's shared recipe; returns its outcome."""
    from resnetlab.metrics.stream import MetricStream
    from resnetlab.models import count_parameters
    from resnetlab.training import TrainConfig, Trainer, resolve_device

    device = resolve_device(options.device)
    model = build(spec, data)
    train, test = _loaders(data, options, spec.seed, device)
    log_every = max(1, len(train) // 8)
    config = TrainConfig(
        epochs=epochs,
        batch_size=options.batch_size,
        optimizer="sgd",
        lr=options.lr,
        schedule="onecycle",
        weight_decay=5e-4,
        # No label smoothing: the curves show the plain classification error.
        label_smoothing=0.0,
        seed=spec.seed,
        device=str(device),
        log_every=log_every,
        keep_last=1,
        val_size=0,
        crop_padding=0,
        flip=False,
        channels_last=device.type == "cuda",
        monitor="val_accuracy",
        extra={
            "experiment": experiment,
            "label": spec.label,
            "group": spec.group,
            "model": spec.preset,
            "model_overrides": dict(spec.overrides),
            "dataset": data.name,
            "subset": len(data.train_labels),
            "test_subset": len(data.test_labels),
            "mean": list(data.mean),
            "std": list(data.std),
        },
    )
    grads = GradientNormCallback(every=options.grad_every)
    stream = MetricStream(name=spec.label)
    run_name = f"{experiment}/{spec.label}/seed{spec.seed}"
    trainer = Trainer(
        model,
        train,
        test,
        config=config,
        callbacks=[grads],
        stream=stream,
        store=store,
        run_name=run_name,
    )
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    steps_per_epoch = len(train)
    s, acc = stream.series("accuracy")
    vs, vacc = stream.series("val_accuracy")
    layers, gsteps, grid = norms_from_stream(stream)
    depth = getattr(getattr(model, "config", None), "depth", 0)
    log.info(
        "%s: %d epochs in %.0f s, test error %.3f",
        run_name,
        epochs,
        seconds,
        1 - (vacc[-1] if vacc.size else float("nan")),
    )
    return RunOutcome(
        spec,
        count_parameters(model),
        int(depth),
        epochs,
        steps_per_epoch,
        seconds,
        trainer.run_id,
        trainer.history,
        (s / steps_per_epoch, 1.0 - acc),
        (vs / steps_per_epoch, 1.0 - vacc),
        layers,
        gsteps,
        grid,
    )


def open_store(options: ExperimentOptions) -> Any:
    """The run store the options name, or None."""
    if not options.store:
        return None
    from resnetlab.store import RunStore

    return RunStore(Path(options.store))


def run_all(
    experiment: str,
    specs: list[RunSpec],
    options: ExperimentOptions,
    data: ExperimentData | None = None,
) -> tuple[list[RunOutcome], ExperimentData]:
    """Train every spec with the shared budget; returns the outcomes in spec order."""
    if options.threads:
        torch.set_num_threads(options.threads)
    data = data if data is not None else load_data(options)
    from resnetlab.training import resolve_device

    device = resolve_device(options.device)
    store = open_store(options)
    outcomes = []
    probed: dict[str, int] = {}  # label -> epochs: every seed of a variant gets the same
    try:
        for spec in specs:
            if options.budget.epochs is not None:
                epochs = options.budget.epochs
            elif spec.label in probed:
                epochs = probed[spec.label]
            else:
                per_epoch = seconds_per_epoch(spec, data, options, device)
                epochs = probed[spec.label] = options.budget.epochs_for(per_epoch, len(specs))
                log.info("%s: ~%.1f s per epoch -> %d epochs", spec.label, per_epoch, epochs)
            outcomes.append(
                train_run(spec, data, options, experiment=experiment, epochs=epochs, store=store)
            )
    finally:
        if store is not None:
            store.close()
    return outcomes, data


def hardware() -> str:
    """One line about the machine: CPU model and cores or the GPU, torch version, load."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    parts = [
        f"CPU {cpu} ({cores} cores usable, torch using {threads} "
        f"thread{'s' if threads != 1 else ''})"
    ]
    if torch.cuda.is_available():
        parts.append(f"GPU {torch.cuda.get_device_name(0)}")
    else:
        parts.append("no GPU")
    parts.append(f"torch {torch.__version__}")
    try:
        parts.append("load average at start {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg()))
    except OSError:
        pass
    return "; ".join(parts)
