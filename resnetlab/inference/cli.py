"""``resnetlab predict CKPT IMAGE... [--top-k 3]``: classify image files with a trained model."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict",
        help="classify image files with a trained model",
        description="Classify PNG/JPEG/... files of any size with a checkpoint or stored run; "
        "each image is converted as the training data was (channels, centre crop, size).",
    )
    p.add_argument("checkpoint", help="a checkpoint .pt file, a run folder, or a run id/name")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--top-k", type=int, default=1, help="print the K most likely classes")
    p.add_argument("--runs-db", default=None, help="run store to look a run id/name up in")
    p.add_argument("--no-ema", action="store_true", help="use the live weights, not the EMA")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from resnetlab.inference.model import load_model

    model = load_model(args.checkpoint, runs_db=args.runs_db, use_ema=not args.no_ema)
    predictions = model.predict(args.images, top_k=args.top_k)
    width = max(len(str(p)) for p in args.images)
    for path, pred in zip(args.images, predictions, strict=True):
        print(f"{str(path):<{width}}  {pred}")
    return 0
