"""``resnetlab export-model CKPT --format onnx|torchscript|safetensors [--out PATH]``."""

from __future__ import annotations

import argparse
from typing import Any

# Kept here, not imported from export.model: building the parser must not import torch.
FORMAT_CHOICES = ("onnx", "torchscript", "safetensors")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export-model",
        help="a trained model as ONNX, TorchScript or safetensors",
        description="Write a checkpoint or stored run's model for other tools: ONNX (dynamic "
        "batch), TorchScript (runs with torch alone) or safetensors weights + JSON spec. The "
        "input is the normalised float batch the network was trained on, unless --normalise; "
        "mean, std, class names and the spec travel as metadata (see docs/export.md).",
    )
    p.add_argument("checkpoint", help="a checkpoint .pt file, a run folder, or a run id/name")
    p.add_argument("--format", "-f", choices=FORMAT_CHOICES, default="onnx", help="default onnx")
    p.add_argument(
        "--out", "-o", default=None, help="file to write (default RUNDIR-CKPT.<format suffix>)"
    )
    p.add_argument(
        "--normalise",
        action="store_true",
        help="put the normalisation in the graph: it takes uint8 pixels (onnx, torchscript)",
    )
    p.add_argument("--runs-db", default=None, help="run store to look a run id/name up in")
    p.add_argument("--no-ema", action="store_true", help="export the live weights, not the EMA")
    p.set_defaults(func=cmd_export_model)


def cmd_export_model(args: argparse.Namespace) -> int:
    from resnetlab.export.model import export_model, read_metadata

    path = export_model(
        args.checkpoint,
        args.format,
        args.out,
        normalise=args.normalise,
        runs_db=args.runs_db,
        use_ema=not args.no_ema,
    )
    meta = read_metadata(path)
    print(f"wrote {path} ({args.format}; input {meta['input']}; {len(meta['classes'])} classes)")
    return 0
