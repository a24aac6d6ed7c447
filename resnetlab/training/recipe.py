"""The training recipe: from a preset name to a trained, evaluated, recorded model.

    from resnetlab.training.args import RecipeArgs
    from resnetlab.training.recipe import run
    result = run(RecipeArgs("resnetv2-micro", epochs=2))   # what resnetlab.train() runs

Each step is a function of its own, in the order :func:`run` calls them: the job (one
process, or one rank of a torchrun job) and its run store; the config (fresh, or the
checkpoint's on resume); the CPU threads; the data and its loaders; the model; the
:class:`~resnetlab.training.trainer.Trainer` and its fit; the test split. The live
dashboard and background jobs are not part of it: ``resnetlab.api`` adds them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from resnetlab import data as rdata
from resnetlab import models as rmodels
from resnetlab.distributed import init_distributed
from resnetlab.errors import ConfigError, StoreError
from resnetlab.metrics.stream import MetricStream
from resnetlab.store import RunStore, default_store_path
from resnetlab.training.args import BEST_EPOCHS, DEFAULT_STORE, QUICK_EPOCHS, RecipeArgs, RecipeName
from resnetlab.training.callbacks import ProgressBar, RankSystemMonitor, SystemSamples
from resnetlab.training.checkpoint import load_checkpoint, model_from_checkpoint
from resnetlab.training.config import TrainConfig
from resnetlab.training.distributed import DistContext
from resnetlab.training.heap import keep_training_heap
from resnetlab.training.precision import resolve_precision
from resnetlab.training.result import TrainResult
from resnetlab.training.resume import (
    asked_epochs,
    check_resume,
    extend_epochs,
    resolve_resume,
    run_schedule,
)
from resnetlab.training.rng import RunGenerator, has_dropout, seeded_model
from resnetlab.training.trainer import Trainer

log = logging.getLogger(__name__)


class Watcher(Protocol):
    """Watches one run from just before its fit to the end of the recipe (``resnetlab.api``'s
    live dashboard). Started on the main process only; ``close`` must not raise."""

    def start(self, trainer: Trainer) -> Any:
        """Begin watching; returns what ``trainer.live`` shows callbacks (None: nothing)."""
        ...

    def close(self) -> None: ...


def default_config(**overrides: Any) -> TrainConfig:
    """The default recipe with some fields changed (``None`` values are ignored)."""
    return TrainConfig(**{k: v for k, v in overrides.items() if v is not None})


# -- the job and its store --------------------------------------------------------------
def open_store(store: Any) -> tuple[RunStore | None, bool]:
    """(RunStore or None, whether we opened it and must close it)."""
    if store is None or store is False:
        return None, False
    if store == DEFAULT_STORE or store is True:
        return RunStore(default_store_path()), True
    if isinstance(store, (str, os.PathLike)):
        return RunStore(store), True
    return store, False


def _open_into(cleanup: contextlib.ExitStack, store: Any) -> RunStore | None:
    """:func:`open_store`, closed by ``cleanup`` when we opened it."""
    opened, own = open_store(store)
    if own:
        cleanup.callback(opened.close)
    return opened


# -- configuration ----------------------------------------------------------------------
# The named recipes: the preset each trains, and its epochs (None: TrainConfig's).
RECIPE_MODELS: dict[RecipeName, str] = {
    "default": rmodels.DEFAULT_MODEL,
    "quick": rmodels.QUICK_MODEL,
    "best": rmodels.BEST_MODEL,
}
RECIPE_EPOCHS: dict[RecipeName, int | None] = {
    "default": None,
    "quick": QUICK_EPOCHS,
    "best": BEST_EPOCHS,
}


@dataclass
class Plan:
    """The run's config and the data it trains on, after fresh/resume resolution."""

    config: TrainConfig
    data: str  # the dataset name
    train_limit: int | None
    test_limit: int | None
    resume_state: dict[str, Any] | None = None  # the checkpoint continued (None: fresh)
    init_state: dict[str, Any] | None = None  # the checkpoint whose weights start the run


def fresh_plan(args: RecipeArgs, ctx: DistContext) -> Plan:
    """A new run: the base config with the asked fields, its LR scaled for the world size."""
    fields = args.asked_config()
    epochs = RECIPE_EPOCHS[args.recipe]
    if epochs is not None:
        fields.setdefault("epochs", epochs)
    if args.device is not None:
        fields["device"] = args.device
    if args.compile:
        fields["compile"] = True
    base = args.config if args.config is not None else TrainConfig()
    cfg = dataclasses.replace(base, **fields)
    cfg.extra = {**cfg.extra, "dataset": args.data}
    if args.train_limit:
        cfg.extra["train_limit"] = int(args.train_limit)
    if args.test_limit:
        cfg.extra["test_limit"] = int(args.test_limit)
    cfg.rank, cfg.world_size = ctx.rank, ctx.world_size
    # The global batch and the scaled LR, explicit: once, not again on resume.
    plan = ctx.batch_plan(
        cfg.lr, per_rank_batch=cfg.batch_size, reference_batch=cfg.reference_batch or cfg.batch_size
    )
    cfg.extra = {
        **cfg.extra,
        "base_lr": cfg.lr,
        "global_batch": plan.global_batch,
        "batch_plan": plan.describe(),
    }
    cfg.lr = plan.lr
    return Plan(cfg, args.data, args.train_limit, args.test_limit)


def load_resume_state(args: RecipeArgs, ctx: DistContext, store: RunStore | None) -> dict:
    """The checkpoint ``args.resume`` names, the same on every rank."""
    state = None
    # Rank 0 finds and reads the checkpoint (the store and the run folder may be on its
    # machine only) and sends every rank the same state.
    if ctx.is_main:
        path = resolve_resume(args.resume, store)
        state = load_checkpoint(path)
        if "config" not in state:
            raise ConfigError(f"{path}: holds weights only; cannot resume training")
    return ctx.broadcast_object(state)


def resume_plan(args: RecipeArgs, ctx: DistContext, store: RunStore | None) -> Plan:
    """A resumed run: the checkpoint's config (other settings asked are refused); only
    where and how it runs (device, world size, timeout, compile) may change."""
    state = load_resume_state(args, ctx, store)
    cfg = TrainConfig.from_dict(state["config"])
    check_resume(cfg, args)
    extend_epochs(cfg, asked_epochs(args))  # more epochs than saved: a schedule restart
    cfg.device = args.device  # may change on resume, as may the world size
    cfg.compile = cfg.compile or bool(args.compile)
    cfg.rank, cfg.world_size = ctx.rank, ctx.world_size
    cfg.dist_timeout_s = ctx.timeout_s  # --dist-timeout of this launch, or the default
    ranks = "rank" if ctx.world_size == 1 else "ranks"
    cfg.extra = {
        **cfg.extra,
        "batch_plan": (
            f"global batch {cfg.batch_size * ctx.world_size} = {cfg.batch_size} per rank x "
            f"{ctx.world_size} {ranks}; lr {cfg.lr:g} (kept from the checkpoint, not "
            "rescaled)"
        ),
    }
    return Plan(
        cfg,
        data=cfg.extra.get("dataset", args.data),
        train_limit=cfg.extra.get("train_limit", args.train_limit),
        test_limit=args.test_limit or cfg.extra.get("test_limit"),
        resume_state=state,
    )


def load_init_state(args: RecipeArgs, ctx: DistContext, store: RunStore | None) -> dict:
    """The weights and architecture of the checkpoint ``args.init_from`` names (fine-tuning),
    the same on every rank; its optimiser, schedule position and config are not used."""
    state = None
    if ctx.is_main:
        path = resolve_resume(args.init_from, store, flag="--init-from")
        saved = load_checkpoint(path)
        if not saved.get("spec"):
            raise ConfigError(f"--init-from {path}: the checkpoint has no model spec to rebuild")
        state = {k: saved.get(k) for k in ("spec", "model", "ema")}
        state["source"] = str(path)
    return ctx.broadcast_object(state)


def resolve_config(args: RecipeArgs, ctx: DistContext, store: RunStore | None) -> Plan:
    """The run's plan: :func:`resume_plan` when ``args.resume`` is given, else :func:`fresh_plan`
    (with the weights to start from when ``args.init_from`` is given)."""
    if args.resume is not None:
        if args.init_from is not None:
            raise ConfigError(
                "resume continues a run, init_from starts a new run from a run's weights: "
                "give one of --resume and --init-from"
            )
        return resume_plan(args, ctx, store)
    plan = fresh_plan(args, ctx)
    if args.init_from is not None:
        plan.init_state = load_init_state(args, ctx, store)
        plan.config.extra["init_from"] = plan.init_state["source"]
    return plan


# -- CPU threads ------------------------------------------------------------------------
def use_all_cores() -> int:
    """Let torch use every CPU core this process may run on; returns the thread count.

    ``OMP_NUM_THREADS``, when set, wins: on a machine shared with other busy processes
    one thread per process is faster than threads that wait for each other.
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        cores = int(env)
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    return cores


def set_cpu_threads(ctx: DistContext) -> None:
    """On a CPU: all cores for one process, a fair share for each of N local ranks, and
    a heap that keeps activation memory between steps (:mod:`.heap`)."""
    if ctx.device.type != "cpu":
        return
    keep_training_heap()
    if ctx.is_distributed and not os.environ.get("OMP_NUM_THREADS", "").strip():
        # N ranks on one machine share its cores: all cores each would oversubscribe.
        torch.set_num_threads(ctx.cpu_threads())
    else:
        use_all_cores()


# -- data -------------------------------------------------------------------------------
@dataclass
class Splits:
    """The run's datasets: training, validation (carved from training) and test."""

    train: Any
    val: Any | None
    test: Any | None


def load_splits(args: RecipeArgs, plan: Plan, ctx: DistContext) -> Splits:
    """Load the plan's dataset, cut it to the limits and hold out the validation images."""
    cfg = plan.config
    with ctx.local_main_first():  # local rank 0 unpacks/caches first, then the others
        train = rdata.load(plan.data, "train", root=args.data_dir)
        test = rdata.load(plan.data, "test", root=args.data_dir) if args.evaluate_test else None
    if plan.test_limit and test is not None:
        test = test.subset(torch.arange(min(int(plan.test_limit), len(test))))
    val = None
    if cfg.val_size:
        train, val = rdata.split_validation(train, cfg.val_size, seed=cfg.seed)
    if plan.train_limit:
        train = limit_training(train, int(plan.train_limit), cfg.val_size)
    return Splits(train, val, test)


def limit_training(train: Any, limit: int, val_size: int | float) -> Any:
    """The first ``limit`` training images, counted after the validation split: the
    validation images come from the rest (``--train-limit 12000`` trains on 12 000)."""
    if limit > len(train):
        held = f" after holding out val_size={val_size} for validation" if val_size else ""
        raise ConfigError(
            f"train_limit={limit} (--train-limit): only {len(train)} training images are "
            f"left{held}; lower --train-limit" + (" or --val-size" if val_size else "")
        )
    return train.subset(torch.arange(limit))


@dataclass(frozen=True)
class LoaderSettings:
    """How every loader of the run normalises and places its batches."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    channels_last: bool

    def as_kwargs(self) -> dict[str, Any]:
        return dict(
            mean=self.mean, std=self.std, device=self.device, channels_last=self.channels_last
        )


def loader_settings(train_ds: Any, cfg: TrainConfig, ctx: DistContext) -> LoaderSettings:
    """The training set's channel statistics (recorded in ``cfg.extra``) and the device."""
    mean, std = rdata.channel_stats(train_ds)
    # Recorded so that `resnetlab eval` normalises exactly as training did.
    cfg.extra = {**cfg.extra, "mean": list(mean), "std": list(std)}
    # Recorded so that `resnetlab.load_model` names the classes of folder/CIFAR datasets too.
    cfg.extra["classes"] = list(train_ds.classes)
    return LoaderSettings(tuple(mean), tuple(std), ctx.device, cfg.channels_last)


def train_loader(ds: Any, cfg: TrainConfig, feed: LoaderSettings) -> rdata.TensorLoader:
    """Shuffled, augmented batches of this rank's share of ``ds``."""
    return rdata.TensorLoader(
        ds.images,
        ds.labels,
        cfg.batch_size,
        shuffle=True,
        augment=rdata.Augment(crop_padding=cfg.crop_padding, flip=cfg.flip),
        drop_last=len(ds) >= cfg.batch_size * cfg.world_size,
        seed=cfg.seed,
        rank=cfg.rank,
        world_size=cfg.world_size,
        **feed.as_kwargs(),
    )


def eval_loader(ds: Any, cfg: TrainConfig, feed: LoaderSettings, ctx: DistContext) -> Any:
    """Ordered batches of ``ds`` (this rank's share under torchrun) for an evaluation."""
    if ctx.is_distributed:
        # Exact evaluation: each rank its own unpadded share, every image counted once
        # (only the sums are all-reduced, so shards may differ by one).
        ds = ds.subset(ctx.eval_indices(len(ds)))
        if len(ds) == 0:
            return []  # fewer images than ranks: this rank adds zeros
    eval_bs = max(cfg.batch_size, 512)
    return rdata.TensorLoader(ds.images, ds.labels, eval_bs, shuffle=False, **feed.as_kwargs())


# -- model ------------------------------------------------------------------------------
def build_model(args: RecipeArgs, plan: Plan, train_ds: Any) -> nn.Module:
    """The model, seeded and built under the RNG lock (another thread's run cannot draw in
    between): see :func:`new_model`."""
    return seeded_model(plan.config.seed, lambda: new_model(args, plan, train_ds))


def new_model(args: RecipeArgs, plan: Plan, train_ds: Any) -> nn.Module:
    """The checkpoint's model on resume, the preset sized to the data, or the user's module."""
    cfg = plan.config
    if plan.resume_state is not None:
        if not plan.resume_state.get("spec"):
            raise ConfigError("the checkpoint has no model spec; resume it with a Trainer")
        return rmodels.rebuild_model(plan.resume_state["spec"])
    if plan.init_state is not None:
        return init_model(args, plan, train_ds)
    if args.model_or_preset is not None and not isinstance(args.model_or_preset, str):
        return args.model_or_preset
    name = args.model_or_preset or RECIPE_MODELS[args.recipe]
    overrides = dict(args.model_overrides or {})
    c, h, _ = train_ds.images.shape[1:]
    sized = {"in_channels": int(c), "num_classes": train_ds.num_classes, "image_size": int(h)}
    clash = sorted(set(overrides) & set(sized))
    if clash:
        given = ", ".join(f"{k}={overrides[k]!r}" for k in clash)
        data = ", ".join(f"{k}={sized[k]}" for k in clash)
        raise ConfigError(
            f"model option {given}: set by the dataset {args.data!r} ({data}); leave it "
            "out (-O sets the model's other fields, e.g. -O dropout=0.1)"
        )
    model = rmodels.create_model(name, **sized, **overrides)
    cfg.extra = {**cfg.extra, "model": name, "model_overrides": overrides}
    return model


def init_model(args: RecipeArgs, plan: Plan, train_ds: Any) -> nn.Module:
    """Fine-tuning: the architecture and weights (EMA ones if kept) of ``plan.init_state``,
    in training mode; it must take the data's channels and classes."""
    state, source = plan.init_state or {}, (plan.init_state or {}).get("source")
    if args.model_or_preset is not None or args.model_overrides:
        raise ConfigError(
            f"--init-from {source}: the architecture comes from the checkpoint; leave out "
            "the model and its overrides (-O/--set)"
        )
    model = model_from_checkpoint(state, use_ema=True).train()
    saved = state["spec"].get("config") or {}
    want = {"in_channels": int(train_ds.images.shape[1]), "num_classes": train_ds.num_classes}
    for name, value in want.items():
        if name in saved and int(saved[name]) != value:
            raise ConfigError(
                f"--init-from {source}: the model has {name}={saved[name]}, the data {value}"
            )
    name = state["spec"].get("preset") or state["spec"].get("name")
    plan.config.extra = {**plan.config.extra, "model": name, "model_overrides": {}}
    return model


def run_generator(model: nn.Module, plan: Plan) -> RunGenerator | None:
    """The run's own dropout stream (:class:`~resnetlab.training.rng.RunGenerator`), from
    the seed's state (as ``Trainer.fit`` seeds it), or the checkpoint's on resume; None
    without dropout (nothing else of the fit draws from the global generator) or with
    torch.compile."""
    if plan.config.compile or not has_dropout(model):
        return None
    rng = plan.resume_state.get("rng") if plan.resume_state is not None else None
    return RunGenerator.for_run(plan.config.seed, rng).attach(model)


# -- the trainer ------------------------------------------------------------------------
def run_callbacks(args: RecipeArgs, ctx: DistContext) -> list[Any]:
    """The recipe's own callbacks, then the user's."""
    callbacks: list[Any] = []
    if ctx.is_distributed:
        # First: its epoch-end sample is what later callbacks (the CLI's rank lines) show
        # for that same epoch.
        callbacks.append(RankSystemMonitor())
    if ctx.is_main:  # this machine's CPU/RAM/GPU with the run: the store, watch, dashboards
        callbacks.append(SystemSamples())
    if args.progress and ctx.is_main:  # other ranks stay quiet
        callbacks.append(ProgressBar())
    return callbacks + list(args.callbacks)


def stored_run_id(plan: Plan, store: RunStore | None) -> int | None:
    """The store's run that the resumed checkpoint belongs to (None: record a new run)."""
    state = plan.resume_state
    if state is None or store is None or not state.get("run_id"):
        return None
    try:
        return store.get_run(state["run_id"]).id
    except StoreError:
        return None  # resumed from a checkpoint of another store: a new run


def build_trainer(
    args: RecipeArgs,
    plan: Plan,
    model: nn.Module,
    loaders: tuple[Any, Any],
    store: RunStore | None,
    ctx: DistContext,
) -> Trainer:
    """The Trainer on ``loaders`` (train, val), recording into ``store``; at the
    checkpoint's position on resume."""
    stream = args.stream if args.stream is not None else MetricStream(name=args.run_name or "train")
    with ctx.guard("set-up"):
        trainer = Trainer(
            model,
            loaders[0],
            loaders[1],
            config=plan.config,
            callbacks=run_callbacks(args, ctx),
            stream=stream,
            store=store,
            run_id=stored_run_id(plan, store),
            run_name=args.run_name,
            dist=ctx,
        )
    if plan.resume_state is not None:
        trainer.load_state_dict(plan.resume_state, source=str(args.resume))
        extended = run_schedule(plan.config, trainer.steps_per_epoch)
        if extended is not None:  # an extended run: the added epochs' own schedule
            trainer.schedule = extended
            if trainer.store is not None:
                trainer.store.update_run(trainer.run_id, config=trainer.config.to_dict())
    return trainer


# -- test -------------------------------------------------------------------------------
def evaluate_test(
    trainer: Trainer, test_ds: Any, feed: LoaderSettings, ctx: DistContext
) -> tuple[dict[str, float], Any]:
    """(test_loss and test_accuracy, the confusion matrix) of the evaluation weights on
    ``test_ds``, logged once, after fit; ``({}, None)`` without a test split."""
    if test_ds is None:
        return {}, None
    with ctx.guard("test evaluation"):
        loader = eval_loader(test_ds, trainer.config, feed, ctx)
        res = trainer.validate(loader, num_classes=test_ds.num_classes)
    metrics = {"test_loss": res.loss, "test_accuracy": res.accuracy}
    trainer.log_after_fit(metrics)
    return metrics, res.confusion


# -- the whole recipe -------------------------------------------------------------------
def run(args: RecipeArgs, watcher: Watcher | None = None) -> TrainResult:
    """Train ``args`` in this process (one rank under torchrun); returns a TrainResult.

    ``watcher`` (the live dashboard) is started on the main process just before the fit
    and closed at the end, before the store.
    """
    t0 = time.perf_counter()
    ctx = init_distributed(args.device, timeout_s=args.dist_timeout_s())
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(ctx.shutdown)
        # Rank 0 alone records the run: the other ranks never open the store. A resume
        # (or init_from, a run id to start from) looks its run up there first; a new run
        # opens it only once the config, data and model are built, so a mistake in any
        # of them leaves no file behind.
        looks_up = args.resume is not None or args.init_from is not None
        store = _open_into(cleanup, args.store) if ctx.is_main and looks_up else None
        plan = resolve_config(args, ctx, store)
        resolve_precision(plan.config.precision, ctx.device)  # fail before loading any data
        set_cpu_threads(ctx)

        splits = load_splits(args, plan, ctx)
        feed = loader_settings(splits.train, plan.config, ctx)
        loaders = (
            train_loader(splits.train, plan.config, feed),
            eval_loader(splits.val, plan.config, feed, ctx) if splits.val is not None else None,
        )
        model = build_model(args, plan, splits.train)
        if ctx.is_main and store is None:
            store = _open_into(cleanup, args.store)

        trainer = build_trainer(args, plan, model, loaders, store, ctx)
        # After the trainer: its EMA copy of the model must not carry the run's hooks.
        rng = run_generator(trainer.model, plan)
        if rng is not None:
            cleanup.callback(rng.detach)
        if watcher is not None and ctx.is_main:
            cleanup.callback(watcher.close)
            trainer.live = watcher.start(trainer)
        start_step = trainer.step
        # "completed" is recorded once the test metrics and the wall time are in.
        trainer.defer_completion = True
        trainer.fit()  # guarded inside: a lost rank -> RankLostError, recorded on the run
        try:
            test_metrics, confusion = evaluate_test(trainer, splits.test, feed, ctx)
            wall = time.perf_counter() - t0
            # Resuming a finished run trains nothing: its wall time stays the real one.
            if store is not None and (plan.resume_state is None or trainer.step > start_step):
                store.add_final_metrics(trainer.run_id, {"wall_time": wall})
        except BaseException as exc:
            trainer.finish_run(exc)
            raise
        trainer.finish_run()
        return TrainResult(
            history=trainer.history,
            test_metrics=test_metrics,
            run_id=trainer.run_id,
            checkpoint=trainer.last_checkpoint,
            best_checkpoint=trainer.best_checkpoint,
            run_dir=trainer.run_dir,
            status=trainer.status,
            wall_time=wall,
            config=trainer.config,  # as the run used it (run_dir, test-time flips resolved)
            model=trainer.eval_model,
            classes=list(splits.train.classes),
            confusion=confusion,
            stream=trainer.stream,
            dashboard=trainer.live,
        )
