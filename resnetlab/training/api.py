"""``resnetlab.train(...)``: one call from a preset name to a trained, evaluated, recorded model.

    import resnetlab
    result = resnetlab.train()                       # the default recipe on Fashion-MNIST
    result = resnetlab.train("resnetv2-micro", epochs=2, live="auto")
    print(result.test_accuracy, result.run_id, result.checkpoint)

It loads the data (``resnetlab.data``), carves a validation split, builds the model
(``resnetlab.models``), runs the :class:`~resnetlab.training.trainer.Trainer` with the
run recorded in the :class:`~resnetlab.store.RunStore`, and evaluates the test split.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError, StoreError
from resnetlab.training.config import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_DATA = "fashion-mnist"
# "store=DEFAULT_STORE" means: the RunStore at $RESNETLAB_RUNS or ./runs/resnetlab.db.
DEFAULT_STORE = "default"


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    history: list[dict[str, Any]]  # one logs dict per epoch (loss, val_accuracy, ...)
    test_metrics: dict[str, float]  # test_loss, test_accuracy (empty if not evaluated)
    run_id: int | None  # id in the run store (None without a store)
    checkpoint: Path | None  # the last checkpoint (resume from it)
    best_checkpoint: Path | None  # the best by config.monitor
    run_dir: Path | None
    status: str  # completed or stopped
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


def default_config(**overrides: Any) -> TrainConfig:
    """The default recipe with some fields changed (``None`` values are ignored)."""
    return TrainConfig(**{k: v for k, v in overrides.items() if v is not None})


def use_all_cores() -> int:
    """Let torch use every CPU core this process may run on; returns the thread count.

    ``OMP_NUM_THREADS``, when set, wins: on a machine shared with other busy processes
    one thread per process is faster than threads that wait for each other.
    """
    import torch

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


def open_store(store: Any) -> tuple[Any, bool]:
    """(RunStore or None, whether we opened it and must close it)."""
    from resnetlab.store import RunStore, default_store_path

    if store is None or store is False:
        return None, False
    if store == DEFAULT_STORE or store is True:
        return RunStore(default_store_path()), True
    if isinstance(store, (str, os.PathLike)):
        return RunStore(store), True
    return store, False


def records_grad_norms(callbacks: Iterable[Any]) -> bool:
    """Whether one of ``callbacks`` is a ``resnetlab.inspect.GradientNormCallback``."""
    callbacks = list(callbacks)
    if not callbacks:
        return False
    from resnetlab.inspect.gradients import GradientNormCallback

    return any(isinstance(cb, GradientNormCallback) for cb in callbacks)


def start_live(
    stream: Any, live: Any, run_dir: Path | None, *, callbacks: Iterable[Any] = ()
) -> Any:
    """Start ``resnetlab.live.live_dashboard`` if asked and available; None otherwise.

    The default panels, plus the gradient-norm heat map when one of the run's
    ``callbacks`` records gradient norms.
    """
    if live in (None, False, "none", "off", "no", ""):
        return None
    backend = "auto" if live is True else str(live)
    try:
        from resnetlab.live import live_dashboard
        from resnetlab.live.drivers import resolve_backend_name
        from resnetlab.live.panels import default_panel_names
    except (ImportError, AttributeError) as exc:
        log.warning("live dashboard unavailable (%s); training without it", exc)
        return None
    resolve_backend_name(backend)  # a misspelt name is an error (BackendError), not a warning
    panels = default_panel_names(with_grad_norms=True) if records_grad_norms(callbacks) else None
    try:
        return live_dashboard(
            stream, backend=backend, run_dir=run_dir, system_monitor=True, panels=panels
        )
    except Exception as exc:  # a missing display must not cost the training run
        log.warning("live dashboard %r could not start (%s); training without it", backend, exc)
        return None


def _check_limit(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        flag = "--" + name.replace("_", "-")
        raise ConfigError(
            f"{name}={value!r} ({flag}): must be a positive number of images; "
            "leave it out to use the whole split"
        )


# Settings that may differ on resume: where and how the job runs, not what it trains.
# (``compile`` only changes speed: asked for, it applies to the resumed run too.)
_RESUME_FREE = {"device", "rank", "world_size", "dist_timeout_s", "run_dir", "extra", "compile"}


def _resume_conflicts(saved: TrainConfig, asked: Mapping[str, Any]) -> list[str]:
    """``name=asked (checkpoint: saved)`` for every asked setting that differs from the
    checkpoint's (the ones in ``_RESUME_FREE`` may differ)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(asked) - known)
    if unknown:
        raise ConfigError(f"unknown TrainConfig fields {unknown}; known: {sorted(known)}")
    out = []
    for name, value in asked.items():
        if value is None or name in _RESUME_FREE:
            continue
        # The checkpoint's lr may be scaled for its world size; the asked one is the base.
        old = saved.extra.get("base_lr", saved.lr) if name == "lr" else getattr(saved, name)
        if isinstance(old, tuple) and isinstance(value, list):
            value = tuple(value)
        same = (
            math.isclose(float(value), float(old), rel_tol=1e-9)
            if isinstance(value, float) and isinstance(old, (int, float))
            else value == old
        )
        if not same:
            out.append(f"{name}={value!r} (checkpoint: {old!r})")
    return out


def _resolve_resume(resume: str | os.PathLike[str], store: Any) -> Path:
    """A checkpoint path from a file/folder path, or a run id/name in the store."""
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
                raise ConfigError(f"run {run.id} ({run.name}) has no checkpoint to resume from")
            return Path(run.checkpoint_last)
    raise ConfigError(
        f"--resume {resume}: neither a checkpoint file/folder nor a run id or "
        "name in the run store; `resnetlab runs` lists runs"
    )


def train(
    model_or_preset: Any = None,
    data: str = DEFAULT_DATA,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    optimizer: str | None = None,
    schedule: str | None = None,
    lr: float | None = None,
    device: str = "auto",
    precision: str | None = None,
    compile: bool = False,
    seed: int | None = None,
    run_name: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    callbacks: Iterable[Any] = (),
    stream: Any = None,
    store: Any = DEFAULT_STORE,
    live: Any = None,
    background: bool | str = False,
    progress: bool = False,
    resume: str | os.PathLike[str] | None = None,
    config: TrainConfig | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    train_limit: int | None = None,
    test_limit: int | None = None,
    evaluate_test: bool = True,
    **config_fields: Any,
) -> Any:
    """Train a model on a dataset with the tuned defaults; returns a :class:`TrainResult`.

    ``model_or_preset``: a preset name (default ``resnetlab.models.DEFAULT_MODEL``) or an
    ``nn.Module``. Other :class:`TrainConfig` fields (``label_smoothing=0.05``,
    ``ema_decay=0.999``, ...) may be passed as keywords or as ``config``. ``store``: the
    default run store, a path, a RunStore, or None. ``live``: a dashboard backend name
    ("auto", "webagg", "ipympl", ...) or None. ``background=True`` (or "thread" /
    "process") starts the run as a job and returns its ``TrainingJob`` at once.
    ``resume``: a checkpoint, run folder, or run id/name to continue exactly.
    ``train_limit`` / ``test_limit``: use only the first N training / test images (quick
    experiments and tests). On resume, settings that differ from the checkpoint's
    (``epochs``, ``lr``, ...) are a ConfigError: a resumed run continues as saved.
    """
    _check_limit("train_limit", train_limit)
    _check_limit("test_limit", test_limit)
    if background:
        from resnetlab.jobs.training import start_training

        kind = background if isinstance(background, str) else "thread"
        kwargs = {
            k: v
            for k, v in locals().items()
            if k not in ("background", "kind", "start_training", "config_fields")
        }
        kwargs.update(config_fields)
        model = kwargs.pop("model_or_preset")
        return start_training(model, kind=kind, **kwargs)

    import torch

    from resnetlab import data as rdata
    from resnetlab import models as rmodels
    from resnetlab.distributed import init_distributed
    from resnetlab.metrics.stream import MetricStream
    from resnetlab.training.callbacks import ProgressBar, RankSystemMonitor
    from resnetlab.training.checkpoint import load_checkpoint
    from resnetlab.training.precision import resolve_precision
    from resnetlab.training.seed import seed_everything
    from resnetlab.training.trainer import Trainer

    t0 = time.perf_counter()
    # -- the job: one process, or one rank of a torchrun job ------------------------------
    timeout_s = config_fields.get("dist_timeout_s") or (
        config.dist_timeout_s if config is not None else TrainConfig.dist_timeout_s
    )
    ctx = init_distributed(device, timeout_s=float(timeout_s))
    # Rank 0 alone records the run: the other ranks never open the store.
    run_store, own_store = open_store(store) if ctx.is_main else (None, False)
    dashboard = None
    try:
        # -- configuration -------------------------------------------------------------
        resume_state = None
        if resume is not None:
            # Rank 0 finds and reads the checkpoint (the store and the run folder may be
            # on its machine only) and sends every rank the same state.
            if ctx.is_main:
                ckpt_path = _resolve_resume(resume, run_store)
                resume_state = load_checkpoint(ckpt_path)
                if "config" not in resume_state:
                    raise ConfigError(f"{ckpt_path}: holds weights only; cannot resume training")
            resume_state = ctx.broadcast_object(resume_state)
            cfg = TrainConfig.from_dict(resume_state["config"])
            asked = (
                {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)}
                if config is not None
                else {}
            )
            asked.update(
                {
                    k: v
                    for k, v in dict(
                        epochs=epochs,
                        batch_size=batch_size,
                        optimizer=optimizer,
                        schedule=schedule,
                        lr=lr,
                        precision=precision,
                        seed=seed,
                        **config_fields,
                    ).items()
                    if v is not None
                }
            )
            conflicts = _resume_conflicts(cfg, asked)
            saved_extra = cfg.extra
            if isinstance(model_or_preset, str) and model_or_preset != saved_extra.get("model"):
                conflicts.append(
                    f"model={model_or_preset!r} (checkpoint: {saved_extra.get('model')!r})"
                )
            if model_overrides and dict(model_overrides) != saved_extra.get("model_overrides"):
                conflicts.append(
                    f"model_overrides={dict(model_overrides)!r} (checkpoint: "
                    f"{saved_extra.get('model_overrides')!r})"
                )
            if data != DEFAULT_DATA and data != saved_extra.get("dataset", data):
                conflicts.append(f"data={data!r} (checkpoint: {saved_extra.get('dataset')!r})")
            if train_limit is not None and train_limit != saved_extra.get("train_limit"):
                conflicts.append(
                    f"train_limit={train_limit!r} (checkpoint: {saved_extra.get('train_limit')!r})"
                )
            if conflicts:
                raise ConfigError(
                    f"resume {resume}: a resumed run continues with its checkpoint's settings, "
                    f"but these were given with other values: {', '.join(conflicts)}. Leave "
                    "them out to continue the run as saved, or start a new run (without "
                    "--resume) to train with new settings."
                )
            cfg.device = device  # may change on resume, as may the world size
            cfg.compile = cfg.compile or bool(compile)
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
            data = cfg.extra.get("dataset", data)
            train_limit = cfg.extra.get("train_limit", train_limit)
            test_limit = test_limit or cfg.extra.get("test_limit")
        else:
            fields = dict(
                epochs=epochs,
                batch_size=batch_size,
                optimizer=optimizer,
                schedule=schedule,
                lr=lr,
                precision=precision,
                seed=seed,
                device=device,
                **config_fields,
            )
            if compile:
                fields["compile"] = True
            base = config if config is not None else TrainConfig()
            cfg = dataclasses.replace(base, **{k: v for k, v in fields.items() if v is not None})
            cfg.extra = {**cfg.extra, "dataset": data}
            if train_limit:
                cfg.extra["train_limit"] = int(train_limit)
            if test_limit:
                cfg.extra["test_limit"] = int(test_limit)
            cfg.rank, cfg.world_size = ctx.rank, ctx.world_size
            # The global batch and the scaled LR, explicit: once, not again on resume.
            plan = ctx.batch_plan(
                cfg.lr,
                per_rank_batch=cfg.batch_size,
                reference_batch=cfg.reference_batch or cfg.batch_size,
            )
            cfg.extra = {
                **cfg.extra,
                "base_lr": cfg.lr,
                "global_batch": plan.global_batch,
                "batch_plan": plan.describe(),
            }
            cfg.lr = plan.lr
        dev = ctx.device
        resolve_precision(cfg.precision, dev)  # fail before loading any data
        if dev.type == "cpu":
            if ctx.is_distributed and not os.environ.get("OMP_NUM_THREADS", "").strip():
                # N ranks on one machine share its cores: all cores each would oversubscribe.
                torch.set_num_threads(ctx.cpu_threads())
            else:
                use_all_cores()

        # -- data ----------------------------------------------------------------------
        with ctx.local_main_first():  # local rank 0 unpacks/caches first, then the others
            train_ds = rdata.load(data, "train", root=data_dir)
            test_ds = rdata.load(data, "test", root=data_dir) if evaluate_test else None
        if train_limit:
            train_ds = train_ds.subset(torch.arange(min(int(train_limit), len(train_ds))))
        if test_limit and test_ds is not None:
            test_ds = test_ds.subset(torch.arange(min(int(test_limit), len(test_ds))))
        val_ds = None
        if cfg.val_size:
            train_ds, val_ds = rdata.split_validation(train_ds, cfg.val_size, seed=cfg.seed)
        mean, std = rdata.channel_stats(train_ds)
        # Recorded so that `resnetlab eval` normalises exactly as training did.
        cfg.extra = {**cfg.extra, "mean": list(mean), "std": list(std)}
        augment = rdata.Augment(crop_padding=cfg.crop_padding, flip=cfg.flip)
        common = dict(mean=mean, std=std, device=dev, channels_last=cfg.channels_last)
        train_loader = rdata.TensorLoader(
            train_ds.images,
            train_ds.labels,
            cfg.batch_size,
            shuffle=True,
            augment=augment,
            drop_last=len(train_ds) >= cfg.batch_size * cfg.world_size,
            seed=cfg.seed,
            rank=cfg.rank,
            world_size=cfg.world_size,
            **common,
        )
        eval_bs = max(cfg.batch_size, 512)

        def eval_loader(ds: Any) -> Any:
            if ctx.is_distributed:
                # Exact evaluation: each rank its own unpadded share, every image counted
                # once (only the sums are all-reduced, so shards may differ by one).
                ds = ds.subset(ctx.eval_indices(len(ds)))
                if len(ds) == 0:
                    return []  # fewer images than ranks: this rank adds zeros
            return rdata.TensorLoader(ds.images, ds.labels, eval_bs, shuffle=False, **common)

        val_loader = eval_loader(val_ds) if val_ds is not None else None

        # -- model ---------------------------------------------------------------------
        seed_everything(cfg.seed)
        c, h, _ = train_ds.images.shape[1:]
        if resume_state is not None:
            if not resume_state.get("spec"):
                raise ConfigError("the checkpoint has no model spec; resume it with a Trainer")
            model = rmodels.rebuild_model(resume_state["spec"])
        elif model_or_preset is None or isinstance(model_or_preset, str):
            name = model_or_preset or rmodels.DEFAULT_MODEL
            overrides = dict(model_overrides or {})
            model = rmodels.create_model(
                name,
                in_channels=int(c),
                num_classes=train_ds.num_classes,
                image_size=int(h),
                **overrides,
            )
            cfg.extra = {**cfg.extra, "model": name, "model_overrides": overrides}
        else:
            model = model_or_preset

        # -- the run -------------------------------------------------------------------
        stream = stream if stream is not None else MetricStream(name=run_name or "train")
        cbs: list[Any] = []
        if ctx.is_distributed:
            # First: its epoch-end sample is what later callbacks (the CLI's rank lines)
            # show for that same epoch.
            cbs.append(RankSystemMonitor())
        if progress and ctx.is_main:  # other ranks stay quiet
            cbs.append(ProgressBar())
        cbs += list(callbacks)
        run_id = None
        if resume_state is not None and run_store is not None and resume_state.get("run_id"):
            try:
                run_id = run_store.get_run(resume_state["run_id"]).id
            except StoreError:
                run_id = None  # resumed from a checkpoint of another store: a new run
        with ctx.guard("set-up"):
            trainer = Trainer(
                model,
                train_loader,
                val_loader,
                config=cfg,
                callbacks=cbs,
                stream=stream,
                store=run_store,
                run_id=run_id,
                run_name=run_name,
                dist=ctx,
            )
        if resume_state is not None:
            trainer.load_state_dict(resume_state, source=str(resume))
        if ctx.is_main:
            dashboard = start_live(
                stream, live, trainer.run_dir, callbacks=trainer.callbacks.callbacks
            )
            # A desktop window in this process needs its events pumped at batch ends.
            for cb in getattr(dashboard, "callbacks", list)():
                trainer.callbacks.append(cb)
        trainer.live = dashboard  # callbacks (the CLI's) may show its address
        trainer.fit()  # guarded inside: a lost rank -> RankLostError, recorded on the run

        # -- test ----------------------------------------------------------------------
        test_metrics: dict[str, float] = {}
        confusion = None
        if test_ds is not None:
            with ctx.guard("test evaluation"):
                res = trainer.validate(eval_loader(test_ds), num_classes=test_ds.num_classes)
            test_metrics = {"test_loss": res.loss, "test_accuracy": res.accuracy}
            confusion = res.confusion
            # The 0-based epoch of the last step, as the training rows of that step have.
            last_epoch = trainer.epoch if trainer.batch_in_epoch else max(trainer.epoch - 1, 0)
            stream.append(trainer.step, test_metrics, epoch=last_epoch)
            if run_store is not None and trainer.run_id is not None:
                run_store.log_metrics(trainer.run_id, trainer.step, test_metrics, epoch=last_epoch)
                run_store.flush()
                run_store.add_final_metrics(trainer.run_id, test_metrics)
        wall = time.perf_counter() - t0
        if run_store is not None:
            run_store.add_final_metrics(trainer.run_id, {"wall_time": wall})
        return TrainResult(
            history=trainer.history,
            test_metrics=test_metrics,
            run_id=trainer.run_id,
            checkpoint=trainer.last_checkpoint,
            best_checkpoint=trainer.best_checkpoint,
            run_dir=trainer.run_dir,
            status=trainer.status,
            wall_time=wall,
            config=cfg,
            model=trainer.eval_model,
            classes=list(train_ds.classes),
            confusion=confusion,
            stream=stream,
            dashboard=dashboard,
        )
    finally:
        if dashboard is not None:
            try:
                dashboard.close()
            except Exception:
                log.exception("closing the live dashboard failed")
        if own_store and run_store is not None:
            run_store.close()
        ctx.shutdown()
