"""``resnetlab inspect features|filters|graph|gradients`` and ``resnetlab experiment NAME``.

Every inspect subcommand takes a checkpoint file, a run folder or a preset name (fresh
weights) and writes a PNG (``graph`` also prints or writes the text view).

Building the parser must not import torch (``resnetlab --help`` stays quick), so the
modules that do (models, data, sources and the inspections) are imported by the handler
that runs them.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments import EXPERIMENTS, run_experiment
from resnetlab.inspect.figures import save_figure
from resnetlab.utils.atomic import atomic_write_text
from resnetlab.utils.cli_args import add_override_option

if TYPE_CHECKING:
    from torch import nn

MODEL_HELP = (
    "checkpoint file (.pt), run folder, or preset name such as resnetv2-mini "
    "(fresh, untrained weights)"
)


def _model_args(p: argparse.ArgumentParser, *, preset_input: bool = False) -> None:
    """MODEL and the input a preset is built for: by default the dataset's (Fashion-MNIST,
    1x28x28, 10 classes), or with ``preset_input`` the preset's own published input, as
    ``resnetlab summary`` and ``resnetlab models`` show it (``inspect graph``: no image)."""
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    if preset_input:
        p.add_argument("--in-channels", type=int, help="input channels (default: the preset's)")
        p.add_argument("--image-size", type=int, help="input side (default: the preset's)")
        p.add_argument("--num-classes", type=int, help="classes (default: the preset's)")
        return
    p.add_argument(
        "--in-channels",
        type=int,
        default=1,
        help="input channels for a preset (default 1: Fashion-MNIST)",
    )
    p.add_argument(
        "--image-size", type=int, default=28, help="input side for a preset (default 28)"
    )
    p.add_argument("--num-classes", type=int, default=10, help="classes for a preset (default 10)")


def _preset_input(args: argparse.Namespace) -> None:
    """Fill the input flags left out with the preset's own input (a checkpoint ignores them)."""
    if Path(args.model).exists():
        return
    from resnetlab.models.presets import get_preset

    try:
        preset = get_preset(args.model)
    except ConfigError:
        return  # _load names the model that is neither a file nor a preset
    c, h, _ = preset.input_size
    for name, value in (("in_channels", c), ("image_size", h), ("num_classes", preset.num_classes)):
        if getattr(args, name) is None:
            setattr(args, name, int(value))


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="fashion-mnist", help="dataset of the input image")
    p.add_argument("--data-dir", default=None, help="folder with the dataset files")
    p.add_argument("--split", default="test", help="split of the input image (default test)")
    p.add_argument("--index", type=int, default=0, help="index of the image in the split")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` (with its subcommands) and ``experiment`` subcommands."""
    ins = subparsers.add_parser(
        "inspect",
        help="feature maps, filter patterns, gradient norms, model graph (PNG)",
        description="Look inside a network: write a PNG of what a layer shows or reacts to.",
    )
    sub = ins.add_subparsers(dest="inspect_command", metavar="WHAT")
    ins.set_defaults(func=lambda args: (ins.print_help(), 1)[1])

    f = sub.add_parser(
        "features",
        help="activation maps of one layer for one dataset image",
        description="Grid of every channel's activation map of LAYER for one "
        "image, with the mean activation per map as a bar chart.",
    )
    _model_args(f)
    f.add_argument(
        "--layer",
        required=True,
        help="module path as printed by `resnetlab summary`, e.g. stacks.2.units.0.layers.1.conv",
    )
    _data_args(f)
    f.add_argument("--cols", type=int, default=16, help="tiles per row (default 16)")
    f.add_argument("-o", "--out", default="features.png", help="PNG to write")
    f.set_defaults(func=cmd_features)

    fl = sub.add_parser(
        "filters",
        help="input patterns that excite maps most (gradient ascent)",
        description="Gradient ascent on the input from noise (normalised "
        "gradients, jitter, blur, decay) for N maps of LAYER.",
    )
    _model_args(fl)
    fl.add_argument(
        "--layer", required=True, help="module path, e.g. stacks.1.units.0.layers.1.conv"
    )
    fl.add_argument("--maps", type=int, default=16, help="first N maps of the layer (default 16)")
    fl.add_argument(
        "--channels", default=None, help="comma-separated maps instead of --maps, e.g. 0,5,9"
    )
    fl.add_argument("--steps", type=int, default=64, help="ascent steps (default 64)")
    fl.add_argument("--step-size", type=float, default=0.1, help="step size (default 0.1)")
    fl.add_argument(
        "--jitter",
        type=int,
        default=0,
        help="random shift in pixels before each step (default 0: off; try 2 "
        "for trained nets on larger images)",
    )
    fl.add_argument("--blur-every", type=int, default=4, help="blur every N steps (0: off)")
    fl.add_argument("--decay", type=float, default=0.01, help="shrink towards 0 per step")
    fl.add_argument("--seed", type=int, default=0, help="seed of the noise and the jitter")
    fl.add_argument("-o", "--out", default="filters.png", help="PNG to write")
    fl.set_defaults(func=cmd_filters)

    g = sub.add_parser(
        "graph",
        help="stack/unit/layer hierarchy with shapes and shortcuts",
        description="The model as a tree (text) and a block diagram (PNG): "
        "shapes, shortcut kind and parameters of every part.",
    )
    _model_args(g, preset_input=True)
    add_override_option(g, "override a config field of a preset, e.g. --set stack_shortcut=true")
    g.add_argument(
        "--depth",
        type=int,
        default=None,
        help="text tree depth: 1 stacks, 2 units, default every layer",
    )
    g.add_argument(
        "--max-units",
        type=int,
        default=6,
        help="units drawn per stack before the middle ones are folded (default 6)",
    )
    g.add_argument("-o", "--out", default="graph.png", help="PNG to write")
    g.add_argument(
        "--text", default=None, help="also write the text tree to this file (default: print it)"
    )
    g.set_defaults(func=cmd_graph)

    gr = sub.add_parser(
        "gradients",
        help="gradient norm of every conv layer on one batch",
        description="One forward/backward on a batch of the dataset (train "
        "mode) and a log-scale plot of each conv layer's "
        "gradient norm: the vanishing/exploding-gradient view.",
    )
    _model_args(gr)
    add_override_option(gr, "override a config field of a preset")
    gr.add_argument("--batch", type=int, default=64, help="images in the batch (default 64)")
    gr.add_argument("--by", choices=("layer", "unit", "stack"), default="layer")
    gr.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of a preset's initial weights (default 0: the same plot every time)",
    )
    gr.add_argument("--dataset", default="fashion-mnist")
    gr.add_argument("--data-dir", default=None)
    gr.add_argument("-o", "--out", default="gradients.png", help="PNG to write")
    gr.set_defaults(func=cmd_gradients)

    e = subparsers.add_parser(
        "experiment",
        help="run an experiment and write its Markdown report",
        description="Experiments: " + "; ".join(f"{k}: {v[1]}" for k, v in EXPERIMENTS.items()),
    )
    e.add_argument("name", metavar="NAME", choices=sorted(EXPERIMENTS), help=", ".join(EXPERIMENTS))
    e.add_argument(
        "--budget",
        default="1ep",
        help="epochs per run ('2', '2ep') or minutes for the whole experiment "
        "('5min', '90s', '1h'); default 1ep",
    )
    e.add_argument(
        "--subset",
        type=_count_or_full,
        default=4000,
        help="training images, or 'full' for the whole split (default 4000)",
    )
    e.add_argument(
        "--test-subset",
        type=_count_or_full,
        default=2000,
        help="test images, or 'full' for the whole split (default 2000)",
    )
    e.add_argument(
        "--val-size",
        type=int,
        default=0,
        help="training images held out as validation (default 0: the test subset validates)",
    )
    e.add_argument(
        "--stem-stride",
        type=int,
        default=1,
        help="stem conv stride; 2 makes epochs ~4x cheaper on 28x28 images (default 1)",
    )
    e.add_argument("--flip", action="store_true", help="random horizontal flips when training")
    e.add_argument("--depths", default="20,56", help="depths 9n+2, comma-separated (default 20,56)")
    e.add_argument(
        "--width",
        type=int,
        default=8,
        help="bottleneck maps of the first stack (stack outputs 4x, later stacks "
        "double); 16 is the published CIFAR layout, 8 (default) suits a CPU",
    )
    e.add_argument(
        "--seeds", type=int, default=None, help="seeds per variant (default per experiment)"
    )
    e.add_argument("--batch-size", type=int, default=128)
    e.add_argument("--lr", type=float, default=0.1, help="peak learning rate (one-cycle)")
    e.add_argument("--device", default="auto")
    e.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    e.add_argument("--grad-every", type=int, default=5, help="gradient norms every N steps")
    e.add_argument("--dataset", default="fashion-mnist")
    e.add_argument("--data-dir", default=None)
    e.add_argument("--store", default="runs/resnetlab.db", help="run store (SQLite file)")
    e.add_argument("--no-store", action="store_true", help="do not record the runs")
    e.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="runs at a time, each a background process job with its share of the cores "
        "(default: the usable cores); 0 runs them one after another in this process",
    )
    e.add_argument(
        "--live",
        choices=("none", "agg", "webagg"),
        default="none",
        help="live comparison of every run: agg writes PNG snapshots beside the report, "
        "webagg serves a page (printed); default none",
    )
    e.add_argument(
        "--resume",
        action="store_true",
        help="skip runs the store holds as completed with the same settings; continue "
        "stopped ones from their checkpoint",
    )
    e.add_argument(
        "-o",
        "--out",
        default="experiments",
        help="folder for NAME.md and its figures (default ./experiments)",
    )
    e.set_defaults(func=cmd_experiment)


# -- handlers --------------------------------------------------------------------------


def _load(
    args: argparse.Namespace, overrides: list[str] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    from resnetlab.inspect.sources import load_model

    if overrides:
        if Path(args.model).exists():
            raise ConfigError(
                "--set/-O changes a preset; it cannot change a checkpoint's architecture"
            )
        from resnetlab.models import create_model
        from resnetlab.models.cli import parse_overrides

        model = create_model(
            args.model,
            in_channels=args.in_channels,
            image_size=args.image_size,
            num_classes=args.num_classes,
            **parse_overrides(overrides, args.model),
        )
        return model.eval(), {}
    return load_model(
        args.model,
        in_channels=args.in_channels,
        image_size=args.image_size,
        num_classes=args.num_classes,
    )


def _at_least_one(option: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{option} {value} must be at least 1")


def _describe(args: argparse.Namespace, checkpoint: dict[str, Any]) -> str:
    return args.model if checkpoint else f"{args.model} (untrained)"


def cmd_features(args: argparse.Namespace) -> int:
    from resnetlab.inspect.activations import feature_maps, plot_feature_maps
    from resnetlab.inspect.sources import dataset_sample

    model, ckpt = _load(args)
    sample = dataset_sample(
        args.dataset, args.index, split=args.split, root=args.data_dir, checkpoint=ckpt
    )
    fm = feature_maps(model, args.layer, sample.image)
    fig = plot_feature_maps(
        fm,
        max_cols=args.cols,
        title=(
            f"{_describe(args, ckpt)}: {sample.dataset} {args.split}[{sample.index}] "
            f"({sample.class_name})"
        ),
    )
    path = save_figure(fig, args.out)
    print(f"{len(fm)} feature maps of {args.layer} -> {path}")
    return 0


def cmd_filters(args: argparse.Namespace) -> int:
    from resnetlab.inspect.filters import FilterPatternConfig, filter_patterns, plot_filter_patterns
    from resnetlab.inspect.sources import input_shape_of

    model, ckpt = _load(args)
    channels: int | list[int] = args.maps
    if args.channels:
        try:
            channels = [int(c) for c in args.channels.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(f"--channels {args.channels!r} must be integers like 0,5,9") from None
    cfg = FilterPatternConfig(
        steps=args.steps,
        step_size=args.step_size,
        jitter=args.jitter,
        blur_every=args.blur_every,
        decay=args.decay,
        seed=args.seed,
    )
    fp = filter_patterns(
        model,
        args.layer,
        channels,
        input_shape_of(model, (args.in_channels, args.image_size, args.image_size)),
        cfg,
    )
    fig = plot_filter_patterns(
        fp, title=f"{_describe(args, ckpt)}: filter patterns of {args.layer}"
    )
    path = save_figure(fig, args.out)
    gained = sum(f > s for s, f in zip(fp.start_activation, fp.final_activation, strict=True))
    print(
        f"{len(fp.channels)} patterns of {args.layer} ({gained} maps more active than on "
        f"the starting noise) -> {path}"
    )
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from resnetlab.inspect.graph import format_graph, model_graph, plot_graph
    from resnetlab.inspect.sources import input_shape_of

    _preset_input(args)
    model, _ = _load(args, args.overrides)
    root = model_graph(
        model, input_shape_of(model, (args.in_channels, args.image_size, args.image_size))
    )
    text = format_graph(root, depth=args.depth)
    if args.text:
        atomic_write_text(args.text, text + "\n")
    else:
        print(text)
    path = save_figure(plot_graph(root, max_units_per_stack=args.max_units), args.out)
    print(f"graph picture -> {path}" + (f", text -> {args.text}" if args.text else ""))
    return 0


def cmd_gradients(args: argparse.Namespace) -> int:
    import torch

    from resnetlab.data import channel_stats, load
    from resnetlab.inspect.gradients import (
        main_path_ends,
        measure_gradient_norms,
        norm_ratio,
        plot_gradient_norms,
    )

    _at_least_one("--batch", args.batch)
    torch.manual_seed(args.seed)  # a preset's initial weights; a checkpoint has its own
    model, ckpt = _load(args, args.overrides)
    ds = load(args.dataset, "train", root=args.data_dir, progress=False)
    extra = (ckpt.get("config") or {}).get("extra") or {}
    mean, std = (extra["mean"], extra["std"]) if extra.get("mean") else channel_stats(ds)
    x = ds.images[: args.batch].float() / 255.0
    x = (x - torch.tensor(mean).view(-1, 1, 1)) / torch.tensor(std).view(-1, 1, 1)
    norms = measure_gradient_norms(model, x, ds.labels[: args.batch], by=args.by)
    if not norms:
        raise ConfigError(f"{args.model} has no conv layer with a gradient")
    title = f"{_describe(args, ckpt)}: gradient norm per {args.by}, one batch of {len(x)}"
    path = save_figure(plot_gradient_norms(norms, title=title), args.out)
    if len(norms) > 1:
        first, last = main_path_ends(norms)
        ends = f"first ({first}) / last ({last}) = {norm_ratio(norms):.3g}"
    else:
        ends = "one value, no ratio"
    print(f"{len(norms)} {args.by}s; {ends} -> {path}")
    return 0


def _count_or_full(text: str) -> int | None:
    """An image count, or ``full``/``all`` for the whole split (None)."""
    if text.strip().lower() in ("full", "all"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count or 'full'") from None


def _experiment_options(args: argparse.Namespace) -> dict[str, Any]:
    try:
        depths = tuple(int(d) for d in args.depths.split(",") if d.strip())
    except ValueError:
        raise ConfigError(f"--depths {args.depths!r} must be integers like 20,56") from None
    return dict(
        subset=args.subset,
        test_subset=args.test_subset,
        val_size=args.val_size,
        stem_stride=args.stem_stride,
        flip=args.flip,
        depths=depths,
        width=args.width,
        seeds=args.seeds,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        threads=args.threads,
        grad_every=args.grad_every,
        dataset=args.dataset,
        data_root=args.data_dir,
        store=None if args.no_store else args.store,
        command=experiment_command(args),
    )


def cmd_experiment(args: argparse.Namespace) -> int:
    options = _experiment_options(args)
    if args.parallel == 0 or args.no_store:
        path = run_experiment(args.name, budget=args.budget, out=args.out, **options)
        print(f"report -> {path}")
        return 0
    from resnetlab.inspect.experiments import experiment_options
    from resnetlab.lab.experiment import ExperimentJob

    opts = experiment_options(args.budget, options)  # bad options fail before any job
    live_options = {"directory": str(Path(args.out) / f"{args.name}-live")}
    exp = ExperimentJob(
        args.name,
        opts,
        args.out,
        parallel=args.parallel,
        live=False if args.live == "none" else args.live,
        live_options=live_options if args.live == "agg" else {},
    )
    exp.start(resume=args.resume)
    if exp.dashboard is not None and exp.dashboard.url:
        print(f"live comparison: {exp.dashboard.url}")
    elif args.live == "agg":
        print(f"live comparison: snapshots in {live_options['directory']}")
    try:
        path = exp.wait()
    except KeyboardInterrupt:
        print("stopping every run (checkpoints kept; --resume continues them)")
        exp.stop()
        path = exp.report
    if exp.dashboard is not None:
        exp.dashboard.close()  # the last Agg snapshot, the WebAgg server closed
    print(exp.status())
    print(f"report -> {path}")
    return 0 if not exp.failed() else 1


def experiment_command(args: argparse.Namespace) -> str:
    """The full command line of an experiment run, every option spelled out."""
    parts = [
        "resnetlab",
        "experiment",
        args.name,
        "--budget",
        args.budget,
        "--subset",
        "full" if args.subset is None else args.subset,
        "--test-subset",
        "full" if args.test_subset is None else args.test_subset,
        "--depths",
        args.depths,
        "--width",
        args.width,
        "--batch-size",
        args.batch_size,
        "--lr",
        args.lr,
        "--grad-every",
        args.grad_every,
    ]
    optional = (
        ("--val-size", args.val_size or None),
        ("--stem-stride", None if args.stem_stride == 1 else args.stem_stride),
        ("--flip", "" if args.flip else None),
        ("--parallel", args.parallel),
        ("--seeds", args.seeds),
        ("--threads", args.threads),
        ("--device", None if args.device == "auto" else args.device),
        ("--dataset", None if args.dataset == "fashion-mnist" else args.dataset),
        ("--data-dir", args.data_dir),
        ("--out", args.out),
    )
    for flag, value in optional:
        if value is not None:
            parts += [flag] if value == "" else [flag, value]
    parts += ["--no-store"] if args.no_store else ["--store", args.store]
    return " ".join(shlex.quote(str(p)) for p in parts)
