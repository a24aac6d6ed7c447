"""``resnetlab train`` and ``resnetlab eval``."""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.states import RunStatus

DEFAULT_MODEL_NAME = (
    "resnetv2-mini-w48"  # resnetlab.models.DEFAULT_MODEL (not imported: no torch here)
)


def parse_model_option(text: str) -> tuple[str, Any]:
    """One ``-O FIELD=VALUE``: ``"stack_channels=(48,96,192)"`` -> ``("stack_channels", (48, 96, 192))``
    (Python literals; yes/no words as booleans; a bare word stays a string)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. dropout=0.1")
    from resnetlab.models.cli import BOOL_WORDS

    key, raw = text.split("=", 1)
    if raw.strip().lower() in BOOL_WORDS:  # -O residual=no, as `summary --set` reads it
        return key.strip(), BOOL_WORDS[raw.strip().lower()]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word: keep it as a string
    return key.strip(), value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (default: the CPU ResNet V2 on Fashion-MNIST)",
        description="Train a model with the tuned default recipe; every run is recorded in "
        "the run store and checkpointed each epoch. Prints the test accuracy, "
        "wall time, run id and checkpoint at the end.",
    )
    # The model as in `resnetlab summary MODEL` (positional) or as --model.
    p.add_argument(
        "model_name",
        nargs="?",
        default=None,
        metavar="MODEL",
        help=f"preset name (default {DEFAULT_MODEL_NAME}; `resnetlab models` lists them)",
    )
    p.add_argument("--model", default=None, help="the same as MODEL")
    named = p.add_mutually_exclusive_group()
    named.add_argument(
        "--quick",
        action="store_true",
        help="the ~3-minute recipe: resnetv2-mini (32 maps) for 20 epochs, ~93%% on "
        "Fashion-MNIST (MODEL and --epochs still override it)",
    )
    named.add_argument(
        "--best",
        action="store_true",
        help="the best-accuracy recipe: resnetv2-mini-w96 (96 maps) for 40 epochs, 94.7%% "
        "on Fashion-MNIST in ~46 minutes on 2 CPU cores (MODEL and --epochs override it)",
    )
    p.add_argument(
        "--set",
        "-O",
        "--model-option",
        dest="model_option",
        action="append",
        type=parse_model_option,
        default=[],
        metavar="FIELD=VALUE",
        help="model config override, e.g. --set dropout=0.1 (repeatable; -O is the same)",
    )
    p.add_argument("--data", default="fashion-mnist", help="dataset name (default fashion-mnist)")
    p.add_argument("--data-dir", default=None, help="where the dataset files are (default: search)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--schedule", choices=("onecycle", "cosine", "step", "constant"))
    p.add_argument(
        "--lr", type=float, help="peak (one-cycle, cosine) or initial (step) learning rate"
    )
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument(
        "--ema",
        type=float,
        dest="ema_decay",
        metavar="DECAY",
        help="keep an EMA of the weights, e.g. 0.999",
    )
    p.add_argument("--grad-clip", type=float, metavar="NORM")
    p.add_argument("--val-size", type=int, help="validation images held out (0: none)")
    p.add_argument(
        "--crop-padding",
        type=int,
        metavar="PIXELS",
        help="random-crop zero padding of the batched augmentation (default 2; 0: no random crops)",
    )
    p.add_argument(
        "--no-flip",
        action="store_false",
        dest="flip",
        default=None,
        help="no random horizontal flips",
    )
    p.add_argument(
        "--log-every",
        type=int,
        metavar="STEPS",
        help="log loss/accuracy every STEPS steps (default 20)",
    )
    p.add_argument(
        "--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N"
    )
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"))
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--run-name", default=None)
    p.add_argument(
        "--resume",
        metavar="RUN_OR_PATH",
        help="continue a run exactly: run id/name, run folder or checkpoint file; with "
        "--epochs above the saved ones, extend it (a new schedule over the added epochs)",
    )
    p.add_argument(
        "--init-from",
        metavar="RUN_OR_PATH",
        help="start a new run from these weights (fine-tuning): run id/name, run folder or "
        "checkpoint file; the architecture is the checkpoint's, optimiser and schedule fresh",
    )
    p.add_argument(
        "--live",
        default="auto",
        metavar="BACKEND",
        help="live dashboard backend: auto (default), ipympl, webagg, qt, tk, gtk, "
        "agg; none/off to disable",
    )
    p.add_argument(
        "--runs-db",
        default=None,
        help="run store file (default $RESNETLAB_RUNS or ./runs/resnetlab.db)",
    )
    p.add_argument("--no-store", action="store_true", help="do not record the run (no checkpoints)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--train-limit",
        type=int,
        metavar="N",
        help="train on N images only, counted after the --val-size validation images were "
        "held out (quick experiments)",
    )
    p.add_argument(
        "--test-limit", type=int, metavar="N", help="evaluate on the first N test images only"
    )
    p.add_argument(
        "--grad-norms",
        type=int,
        metavar="EVERY",
        dest="grad_norms",
        help="record every conv layer's gradient norm every EVERY steps (stream "
        "keys grad_norm/<layer>, kept in the run store) and show them as a "
        "heat map panel of the live dashboard",
    )
    d = p.add_argument_group(
        "distributed (resnetlab train --nproc-per-node N ..., or under torchrun)"
    )
    d.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        help="run N processes (ranks) of this job on this machine; nothing listens "
        "beyond loopback (unlike torchrun's agent, which listens on every interface)",
    )
    d.add_argument(
        "--sync-bn",
        action="store_true",
        dest="sync_batchnorm",
        help="SyncBatchNorm: BatchNorm statistics over the global batch (CUDA only)",
    )
    d.add_argument(
        "--dist-timeout",
        type=float,
        dest="dist_timeout_s",
        metavar="SECONDS",
        help="how long a rank waits for a lost peer before exiting (default 60)",
    )
    d.add_argument(
        "--reference-batch",
        type=int,
        metavar="N",
        help="the batch size --lr was tuned for; the LR is scaled by global batch "
        "/ N (default: the per-rank --batch-size)",
    )
    p.set_defaults(func=cmd_train)

    e = subparsers.add_parser(
        "eval",
        help="test loss, accuracy and confusion matrix of a checkpoint",
        description="Evaluate a checkpoint (file, run folder, or run id/name) on a test split.",
    )
    e.add_argument("checkpoint", help="checkpoint file, run folder, or run id/name")
    e.add_argument("--data", default=None, help="dataset (default: the one it was trained on)")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--split", default="test")
    e.add_argument("--out", default=None, help="also write the confusion matrix as a PNG")
    e.add_argument("--device", default="auto")
    e.add_argument("--batch-size", type=int, default=1024)
    e.add_argument("--limit", type=int, metavar="N", help="only the first N images of the split")
    e.add_argument(
        "--no-ema", action="store_true", help="use the raw weights even if an EMA was kept"
    )
    e.add_argument(
        "--no-tta",
        action="store_true",
        help="no test-time flips (by default the run's own setting, tta_flip, decides)",
    )
    e.add_argument("--runs-db", default=None)
    e.set_defaults(func=cmd_eval)


def _print(line: str) -> None:
    print(line, flush=True)


def _store_arg(args: argparse.Namespace) -> Any:
    if getattr(args, "no_store", False):
        return None
    return args.runs_db or "default"


def _model_arg(args: argparse.Namespace) -> str | None:
    """MODEL or --model (both: they must agree)."""
    if args.model_name and args.model and args.model_name != args.model:
        raise ConfigError(
            f"two models given: {args.model_name!r} and --model {args.model!r}; give one"
        )
    return args.model_name or args.model


def _without_nproc(argv: list[str]) -> list[str]:
    """``argv`` minus ``--nproc-per-node N`` / ``--nproc-per-node=N``."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc-per-node":
            skip = True
        elif not item.startswith("--nproc-per-node="):
            out.append(item)
    return out


def launch_ranks(args: argparse.Namespace) -> int:
    """``train --nproc-per-node N``: the same command as N ranks of a local job."""
    from resnetlab.distributed.launch import launch_local

    if os.environ.get("RANK") is not None:
        raise ConfigError(
            "--nproc-per-node starts the ranks itself; leave it out under torchrun "
            "(or another launcher that sets RANK)"
        )
    argv = getattr(args, "argv", None)
    if argv is None:
        argv = sys.argv[1:]
    # The ranks run this very command line without the flag (the store is opened by
    # rank 0 only; this process hosts the job's store on 127.0.0.1 and waits).
    command = [sys.executable, "-m", "resnetlab", *_without_nproc(list(argv))]
    return launch_local(command, args.nproc_per_node)


@contextlib.contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (``kill PID``, a scheduler's preemption) -> SystemExit(143) while training,
    so the run is recorded ``interrupted`` and the store closed before the process ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _one_line_faults(args: argparse.Namespace) -> Iterator[None]:
    """A full disk and a damaged store end the command with one line saying so and where
    (the run records what it still can first), not with a traceback."""
    import sqlite3

    from resnetlab.errors import ResnetlabError
    from resnetlab.store.runstore import default_store_path, store_error
    from resnetlab.utils.atomic import disk_full

    try:
        yield
    except sqlite3.Error as exc:
        db = Path(os.path.abspath(args.runs_db or default_store_path()))
        raise store_error(db, exc) from exc
    except OSError as exc:
        if not disk_full(exc):
            raise
        where = Path(exc.filename) if exc.filename else None
        place = f"{where.parent} (writing {where})" if where else "the disk"
        raise ResnetlabError(
            f"no space left on {place}; free some space, then `resnetlab train --resume "
            "RUN` continues from the last checkpoint"
        ) from exc


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc_per_node is not None:
        return launch_ranks(args)
    with _sigterm_as_exit(), _one_line_faults(args):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from resnetlab.api import closing_summary, train

    fields = {
        k: getattr(args, k)
        for k in (
            "weight_decay",
            "label_smoothing",
            "ema_decay",
            "grad_clip",
            "val_size",
            "dist_timeout_s",
            "reference_batch",
            "crop_padding",
            "flip",
            "log_every",
        )
        if getattr(args, k) is not None
    }
    if args.sync_batchnorm:
        fields["sync_batchnorm"] = True
    from resnetlab.training.callbacks import Announce

    # Printed: the run id, batch plan and dashboard address are this command's output.
    callbacks: list[Any] = [Announce(emit=_print)]
    if args.grad_norms is not None:
        from resnetlab.inspect.gradients import GradientNormCallback

        callbacks.append(GradientNormCallback(every=args.grad_norms))  # checks EVERY >= 1
    result = train(
        _model_arg(args),
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        schedule=args.schedule,
        lr=args.lr,
        device=args.device,
        precision=args.precision,
        compile=args.compile,
        seed=args.seed,
        run_name=args.run_name,
        data_dir=args.data_dir,
        store=_store_arg(args),
        live=args.live,
        progress=not args.no_progress,
        verbose=False,  # this command prints its own lines (Announce, the summary below)
        resume=args.resume,
        init_from=args.init_from,
        model_overrides=dict(args.model_option) or None,
        callbacks=callbacks,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        quick=args.quick,
        best=args.best,
        **fields,
    )
    if result.config.rank == 0:  # under torchrun the other ranks stay quiet
        print(closing_summary(result))
    return 0 if result.status == RunStatus.COMPLETED else 1


def _eval_checkpoint_path(spec: str, runs_db: str | None) -> Path:
    p = Path(spec)
    if p.exists():
        return p
    from resnetlab.errors import StoreError
    from resnetlab.store import RunStore, default_store_path

    db = Path(runs_db) if runs_db else default_store_path()
    if not db.is_file():  # nothing to look the name up in; and nothing is created
        raise ConfigError(
            f"{spec}: no such checkpoint file or folder (and no run store at {db} to look "
            "it up as a run id/name)"
        )
    try:
        with RunStore(db, read_only=True) as store:
            run = store.get_run(spec)
    except StoreError as exc:
        raise ConfigError(f"{spec}: no such checkpoint file or folder, and {exc}") from None
    if not (run.checkpoint_best or run.checkpoint_last):
        raise ConfigError(f"run {run.id} ({run.name}) has no checkpoint")
    return Path(run.checkpoint_best or run.checkpoint_last)


def confusion_png(
    confusion: Any, classes: list[str], out: str | os.PathLike[str], title: str = ""
) -> None:
    """Write a confusion-matrix heat map (rows true, columns predicted) atomically."""
    import io

    from matplotlib.figure import Figure

    from resnetlab.utils.atomic import atomic_write_bytes

    cm = confusion.numpy()
    n = cm.shape[0]
    fig = Figure(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    labels = [str(c)[:12] for c in classes] if classes else [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(cm[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if cm[i, j] > threshold else "black",
            )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(out, buf.getvalue())


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from resnetlab import data as rdata
    from resnetlab.training.checkpoint import load_checkpoint, model_from_checkpoint
    from resnetlab.training.evaluate import evaluate, format_confusion
    from resnetlab.training.recipe import use_all_cores
    from resnetlab.training.tta import FlipAverage, uses_flips
    from resnetlab.utils.device import resolve_device

    if args.limit is not None and args.limit < 1:
        raise ConfigError(
            f"--limit {args.limit}: must be a positive number of images; leave "
            "it out to evaluate the whole split"
        )
    path = _eval_checkpoint_path(args.checkpoint, args.runs_db)
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, use_ema=not args.no_ema, source=path)
    cfg = ckpt.get("config") or {}
    flips = uses_flips(cfg) and not args.no_tta
    if flips:
        model = FlipAverage(model)
    extra = cfg.get("extra") or {}
    name = args.data or extra.get("dataset")
    if not name:
        raise ConfigError(f"{path}: the checkpoint does not say its dataset; pass --data NAME")
    device = resolve_device(args.device)
    if device.type == "cpu":
        use_all_cores()
    ds = rdata.load(name, args.split, root=args.data_dir)
    if args.limit:
        ds = ds.subset(torch.arange(min(args.limit, len(ds))))
    mean, std = extra.get("mean"), extra.get("std")
    if mean is None or std is None:
        mean, std = rdata.channel_stats(rdata.load(name, "train", root=args.data_dir))
    loader = rdata.TensorLoader(
        ds.images, ds.labels, args.batch_size, shuffle=False, mean=mean, std=std, device=device
    )
    model = model.to(device)
    with torch.no_grad():
        res = evaluate(model, loader, device=device, num_classes=ds.num_classes)
    print(
        f"checkpoint {path}" + ("  (test-time flips: image and mirror averaged)" if flips else "")
    )
    print(
        f"{name} {args.split}: {res.count} images  loss {res.loss:.4f}  accuracy {res.accuracy:.4f}"
    )
    print(format_confusion(res.confusion, list(ds.classes)))
    if args.out:
        confusion_png(
            res.confusion,
            list(ds.classes),
            args.out,
            title=f"{name} {args.split}: accuracy {res.accuracy:.4f}",
        )
        print(f"confusion matrix written to {args.out}")
    sys.stdout.flush()
    return 0
