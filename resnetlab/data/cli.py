"""``resnetlab data info NAME``: where a dataset's files are, and what is in them."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resnetlab.data.spec import DatasetSpec


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` (with subcommand ``info``) to the ``resnetlab`` command."""
    data = subparsers.add_parser("data", help="find, download and describe datasets")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    info = sub.add_parser("info", help="where a dataset was found, counts, shapes, mean/std")
    info.add_argument("name", help="fashion-mnist, mnist, cifar10, cifar100, celeba, image-folder")
    info.add_argument(
        "--data-dir",
        default=None,
        help="folder holding the files (default: search RESNETLAB_DATA, "
        "~/.cache/resnetlab/NAME, /usr/share/datasets/NAME)",
    )
    info.add_argument(
        "--split",
        action="append",
        default=None,
        help="split(s) to describe (default: train and test; for image-folder, "
        "test only when DIR/test exists)",
    )
    info.add_argument(
        "--no-download", action="store_true", help="fail instead of downloading missing files"
    )
    info.add_argument(
        "--attributes",
        default=None,
        help="celeba: comma-separated attribute names (default Smiling)",
    )
    info.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="celeba / image-folder: resize images to this size",
    )
    info.set_defaults(func=_info)
    data.set_defaults(func=lambda args: (data.print_help(), 1)[1])


def _info(args: argparse.Namespace) -> int:
    from resnetlab.data import channel_stats, load
    from resnetlab.data.api import get_spec

    spec = get_spec(args.name)
    options: dict = {}
    if args.attributes:
        options["attributes"] = [a.strip() for a in args.attributes.split(",") if a.strip()]
    if args.image_size:
        options["image_size"] = args.image_size
    splits = args.split or _default_splits(spec, args.data_dir)
    print(f"{spec.name}: {spec.title}")
    if spec.homepage:
        print(f"  homepage: {spec.homepage}")
    for split in splits:
        ds = load(args.name, split, root=args.data_dir, download=not args.no_download, **options)
        mean, std = channel_stats(ds)
        counts = ds.class_counts()
        c, h, w = ds.shape
        print(f"[{split}]")
        print(f"  found in:  {ds.source}")
        print(f"  samples:   {len(ds)}")
        print(f"  shape:     {c}x{h}x{w} (channels x height x width), uint8")
        print(f"  classes:   {ds.num_classes}: {_short(ds.classes)}")
        print(f"  per class: min {min(counts)}, max {max(counts)}")
        print(f"  mean:      {_fmt(mean)}")
        print(f"  std:       {_fmt(std)}")
    return 0


def _default_splits(spec: DatasetSpec, data_dir: str | None) -> list[str]:
    """train and test where the dataset has them; for an image folder, test only if present."""
    if spec.splits:
        return [s for s in ("train", "test") if s in spec.splits]
    if data_dir is None:
        return ["train"]  # load() explains that image-folder needs --data-dir
    from resnetlab.data.formats.image_folder import available_splits

    return available_splits(data_dir)


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"


def _short(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... (+{len(names) - limit})" if len(names) > limit else "")
