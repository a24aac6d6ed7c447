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
from collections.abc import Mapping, Sequence
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
    # Training images used (a fixed random subset); None: the whole training split (less
    # the validation images), the real budget.
    subset: int | None = 4000
    # Test images the error curves are measured on after every epoch; None: the whole
    # test split.
    test_subset: int | None = 2000
    # Training images held out as validation (never trained on): their error is the
    # ``val_`` curve; 0 keeps the old layout where the test subset is the validation set.
    val_size: int = 0
    # Stride of the stem conv: 2 halves the resolution before the stacks (28 -> 14), ~4x
    # cheaper epochs for a few tenths of a percent of accuracy; what fits the real budget
    # on a 2-core CPU. 1 is He et al.'s CIFAR layout.
    stem_stride: int = 1
    # Random horizontal flips of the training images (clothes are left/right symmetric).
    flip: bool = False
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
            ("stem_stride", "--stem-stride"),
            ("width", "--width"),
            ("seeds", "--seeds"),
            ("batch_size", "--batch-size"),
            ("grad_every", "--grad-every"),
            ("threads", "--threads"),
        ):
            value = getattr(self, name)
            if value is None and name in ("seeds", "threads", "subset", "test_subset"):
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
        if (
            isinstance(self.val_size, bool)
            or not isinstance(self.val_size, int)
            or self.val_size < 0
        ):
            raise ConfigError(
                f"ExperimentOptions.val_size={self.val_size!r} (--val-size) must be an integer >= 0"
            )
        if not self.lr > 0:
            raise ConfigError(f"ExperimentOptions.lr={self.lr!r} (--lr) must be > 0")


@dataclass
class ExperimentData:
    """The training, validation and test images as tensors, and their normalisation."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    name: str
    # Held-out validation images (empty when ``val_size`` is 0: the test set validates).
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def held_out(self) -> bool:
        """Whether a validation set separate from the test set exists."""
        return self.val_labels is not None and len(self.val_labels) > 0


def _pick(n: int, want: int | None, gen: torch.Generator) -> torch.Tensor:
    """``want`` sorted random indices of ``n`` (all of them for None), tiny-capped."""
    order = torch.randperm(n, generator=gen)
    take = n if want is None else min(want, n)
    return order[: tiny_subset(take)].sort().values


def load_data(options: ExperimentOptions) -> ExperimentData:
    """Fixed random subsets of the train and test splits (same for every run); with
    ``val_size`` the validation images are drawn from the training split first."""
    from resnetlab.data import channel_stats, load

    train = load(options.dataset, "train", root=options.data_root, progress=False)
    test = load(options.dataset, "test", root=options.data_root, progress=False)
    if options.subset is not None and options.subset < options.batch_size:
        raise ConfigError(
            f"--subset {options.subset} is smaller than one batch "
            f"({options.batch_size}); use a larger subset or --batch-size"
        )
    gen = torch.Generator().manual_seed(options.data_seed)
    val = None
    if options.val_size:
        order = torch.randperm(len(train), generator=gen)
        n_val = tiny_subset(options.val_size)
        val = train.subset(order[:n_val].sort().values)
        train = train.subset(order[n_val:].sort().values)
    tr = _pick(len(train), options.subset, gen)
    te = _pick(len(test), options.test_subset, gen)
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
        val.images if val is not None else None,
        val.labels if val is not None else None,
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
        """Test error after the last epoch (``test_accuracy``, or ``val_accuracy`` where
        the test set was the validation set)."""
        if not self.history:
            return float("nan")
        last = self.history[-1]
        return 1.0 - float(last.get("test_accuracy", last.get("val_accuracy", float("nan"))))


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
    """(train, validation, test) loaders; validation is the test loader without held-out
    images."""
    from resnetlab.data import Augment, TensorLoader

    common = dict(mean=data.mean, std=data.std, device=device)
    train = TensorLoader(
        data.train_images,
        data.train_labels,
        options.batch_size,
        shuffle=True,
        drop_last=True,
        seed=seed,
        augment=Augment(flip=options.flip),
        **common,
    )
    test = TensorLoader(data.test_images, data.test_labels, 512, shuffle=False, **common)
    val = (
        TensorLoader(data.val_images, data.val_labels, 512, shuffle=False, **common)
        if data.held_out
        else test
    )
    return train, val, test


class TestEveryEpoch:
    """Logs ``test_loss``/``test_accuracy`` after every epoch (the He et al. test curve),
    beside the held-out validation's ``val_`` keys."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        result = trainer.validate(self.loader).as_logs("test_")
        logs.update(result)
        trainer.stream.append(trainer.step, result, epoch=trainer.epoch - 1)


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
    train, _, _ = _loaders(data, options, spec.seed, device)
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
    evaluated = len(data.test_labels) + (len(data.val_labels) if data.held_out else 0)
    return step * (len(train) + evaluated / options.batch_size / 3)  # forward ~1/3 of a step


def run_name(experiment: str, spec: RunSpec) -> str:
    """The run store name of ``spec``'s run: ``<experiment>/<label>/seed<k>``."""
    return f"{experiment}/{spec.label}/seed{spec.seed}"


def data_request(options: ExperimentOptions) -> dict[str, Any]:
    """The data a run asked for (before the tiny cap): what makes two runs comparable."""
    from resnetlab.inspect.experiments.budget import tiny_budget

    return {
        "dataset": options.dataset,
        "subset": options.subset,
        "test_subset": options.test_subset,
        "val_size": options.val_size,
        "data_seed": options.data_seed,
        "stem_stride": options.stem_stride,
        "tiny": tiny_budget(),
    }


def train_config(
    spec: RunSpec,
    data: ExperimentData,
    options: ExperimentOptions,
    *,
    experiment: str,
    epochs: int,
    steps_per_epoch: int,
    device: torch.device,
) -> Any:
    """The shared recipe of every run (a TrainConfig); ``extra`` says what the run is."""
    from resnetlab.training import TrainConfig

    return TrainConfig(
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
        log_every=max(1, steps_per_epoch // 8),
        keep_last=1,
        val_size=0,
        crop_padding=0,
        flip=options.flip,
        # Plain error curves: no test-time flips (they would also mix two effects).
        tta_flip=False,
        # NHWC, as the trainer's default: oneDNN's faster convolution layout on CPUs too.
        channels_last=True,
        monitor="val_accuracy",
        extra={
            "experiment": experiment,
            "label": spec.label,
            "group": spec.group,
            "model": spec.preset,
            "model_overrides": dict(spec.overrides),
            "dataset": data.name,
            "subset": len(data.train_labels),
            "val_images": len(data.val_labels) if data.held_out else 0,
            "test_subset": len(data.test_labels),
            "steps_per_epoch": steps_per_epoch,
            "input_shape": list(data.input_shape),
            "data_request": data_request(options),
            "num_classes": data.num_classes,
            "mean": list(data.mean),
            "std": list(data.std),
        },
    )


def train_run(
    spec: RunSpec,
    data: ExperimentData,
    options: ExperimentOptions,
    *,
    experiment: str,
    epochs: int,
    store: Any = None,
    callbacks: Sequence[Any] = (),
    stream: Any = None,
    resume: str | None = None,
    run_id: int | None = None,
) -> RunOutcome:
    """Train one run with the experiment's shared recipe; returns its outcome.

    ``callbacks``/``stream``: extra callbacks and the stream to log into (a background
    job's control callback and forwarding stream); ``resume``/``run_id``: continue a
    stopped run from its checkpoint, in its own stored run.
    """
    from resnetlab.metrics.stream import MetricStream
    from resnetlab.models import count_parameters
    from resnetlab.training import Trainer, resolve_device

    device = resolve_device(options.device)
    model = build(spec, data)
    train, val, test = _loaders(data, options, spec.seed, device)
    config = train_config(
        spec,
        data,
        options,
        experiment=experiment,
        epochs=epochs,
        steps_per_epoch=len(train),
        device=device,
    )
    grads = GradientNormCallback(every=options.grad_every)
    extra = [TestEveryEpoch(test)] if data.held_out else []
    stream = stream if stream is not None else MetricStream(name=spec.label)
    name = run_name(experiment, spec)
    trainer = Trainer(
        model,
        train,
        val,
        config=config,
        callbacks=[grads, *extra, *callbacks],
        stream=stream,
        store=store,
        run_id=run_id,
        run_name=name,
    )
    if resume:
        trainer.resume(resume)
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    outcome = outcome_from_series(
        spec,
        stream,
        trainer.history,
        params=count_parameters(model),
        epochs=epochs,
        steps_per_epoch=len(train),
        seconds=seconds,
        run_id=trainer.run_id,
        depth=int(getattr(getattr(model, "config", None), "depth", 0)),
    )
    log.info(
        "%s: %d epochs in %.0f s, test error %.3f", name, epochs, seconds, outcome.final_test_error
    )
    return outcome


def outcome_from_series(
    spec: RunSpec,
    source: Any,
    history: list[dict[str, Any]],
    *,
    params: int,
    epochs: int,
    steps_per_epoch: int,
    seconds: float,
    run_id: int | None,
    depth: int,
) -> RunOutcome:
    """A RunOutcome from anything with ``keys()``/``series(key)`` (a MetricStream, a
    stored run's RunSeries)."""
    s, acc = source.series("accuracy")
    keys = list(source.keys())  # a MetricStream has no __contains__
    test_key = "test_accuracy" if "test_accuracy" in keys else "val_accuracy"
    vs, vacc = source.series(test_key)
    layers, gsteps, grid = norms_from_stream(source)
    spe = max(steps_per_epoch, 1)
    return RunOutcome(
        spec,
        params,
        depth,
        epochs,
        steps_per_epoch,
        seconds,
        run_id,
        history,
        (np.asarray(s) / spe, 1.0 - np.asarray(acc)),
        (np.asarray(vs) / spe, 1.0 - np.asarray(vacc)),
        layers,
        gsteps,
        grid,
    )


def spec_depth_params(
    spec: RunSpec, input_shape: tuple[int, int, int], classes: int
) -> tuple[int, int]:
    """(depth, parameter count) of ``spec``'s model, built on the meta device (no memory)."""
    from resnetlab.models import count_parameters, create_model

    c, h, _ = input_shape
    with torch.device("meta"):
        model = create_model(
            spec.preset, in_channels=c, num_classes=classes, image_size=h, **dict(spec.overrides)
        )
    return int(getattr(getattr(model, "config", None), "depth", 0)), count_parameters(model)


def outcome_from_store(store: Any, experiment: str, spec: RunSpec) -> RunOutcome | None:
    """The outcome of ``spec``'s newest *completed* run in ``store``, or None.

    The report is built from these, so its numbers are the store's: the final metrics
    row (the last epoch's training/validation/test accuracy) and the logged series.
    """
    from resnetlab.errors import StoreError
    from resnetlab.states import RunStatus
    from resnetlab.store.series import read_run_series

    try:
        info = store.get_run(run_name(experiment, spec))
    except StoreError:
        return None
    if info.status != RunStatus.COMPLETED:
        return None
    extra = info.config.get("extra") or {}
    shape = tuple(extra.get("input_shape") or (1, 28, 28))
    depth, params = spec_depth_params(spec, shape, int(extra.get("num_classes") or 10))
    final = dict(info.final_metrics)
    return outcome_from_series(
        spec,
        read_run_series(store, info.id),
        [final],
        params=params,
        epochs=int(info.config.get("epochs") or 0),
        steps_per_epoch=int(extra.get("steps_per_epoch") or 1),
        seconds=float(final.get("fit_seconds") or info.duration),
        run_id=info.id,
        depth=depth,
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


def hardware(threads: int | None = None) -> str:
    """One line about the machine: CPU model and cores or the GPU, torch version, load;
    ``threads``: the torch threads each run used (default: this process's)."""
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
    threads = threads or torch.get_num_threads()
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


class timed:
    """``with timed() as clock: ...`` then ``clock.seconds`` (wall time of the block)."""

    def __enter__(self) -> timed:
        self._t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
