"""``export_model``: a trained network as ONNX, TorchScript or safetensors.

Every format holds the network as ``TrainedModel.forward`` is: it maps a *normalised*
float32 batch ``(N, C, H, W)`` to logits ``(N, classes)``, with a free batch size. The
normalisation (``mean``/``std``), the class names, the input size and the ``model.spec``
that ``rebuild_model`` reads travel with it as JSON metadata (key ``"resnetlab"``): in the
ONNX ``metadata_props``, in a TorchScript extra file ``resnetlab.json``, in the safetensors
header and in a ``.json`` file beside the ``.safetensors`` one. ``normalise=True`` puts
the normalisation into an ONNX or TorchScript graph instead: it then takes the raw uint8
pixels.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.export.extras import require
from resnetlab.inference.model import TrainedModel, load_model
from resnetlab.models import rebuild_model
from resnetlab.training.checkpoint import load_model_state
from resnetlab.utils.atomic import atomic_write_bytes, atomic_write_text

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}
METADATA_KEY = "resnetlab"
TORCHSCRIPT_EXTRA_FILE = "resnetlab.json"
EXPORT_FORMAT = 1  # version of the metadata layout below

ModelSource = nn.Module | str | os.PathLike[str] | int


class _Exported(nn.Module):
    """What is exported: the network, with the normalisation in front when asked."""

    # A constant to TorchScript: the scripted graph holds only the branch taken.
    __constants__ = ["normalise"]

    def __init__(self, trained: TrainedModel, normalise: bool) -> None:
        super().__init__()
        self.net = trained.net
        self.normalise = normalise
        self.register_buffer("mean", trained.mean.detach().clone())
        self.register_buffer("std", trained.std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalise:
            x = (x.to(torch.float32) / 255.0 - self.mean) / self.std
        return self.net(x)


def as_trained_model(
    model: ModelSource, *, runs_db: str | os.PathLike[str] | None = None, use_ema: bool = True
) -> TrainedModel:
    """A ``TrainedModel`` from a loaded one, a network built here, or a checkpoint/run."""
    if isinstance(model, TrainedModel):
        return model
    if isinstance(model, nn.Module):
        spec = getattr(model, "spec", None)
        config = getattr(model, "config", None)
        if not isinstance(spec, dict) or config is None:
            raise ConfigError(
                f"{type(model).__name__} has no .spec/.config: export a network built by "
                "resnetlab.models (create_model, build_model) or a resnetlab.load_model result"
            )
        channels, size = int(config.in_channels), int(config.image_size)
        # A bare network knows no data: identity normalisation, class numbers as names.
        return TrainedModel(
            model,
            classes=[str(i) for i in range(int(config.latent_dim or config.num_classes))],
            input_size=(channels, size, size),
            mean=[0.0] * channels,
            std=[1.0] * channels,
        )
    return load_model(model, runs_db=runs_db, use_ema=use_ema)


def export_metadata(trained: TrainedModel, *, normalise: bool = False) -> dict[str, Any]:
    """The JSON stored with every export: spec, classes, input size, normalisation."""
    c, h, w = trained.input_size
    return {
        "export_format": EXPORT_FORMAT,
        "spec": getattr(trained.net, "spec", None),
        "classes": list(trained.classes),
        "input_size": [c, h, w],
        "mean": [float(v) for v in trained.mean.flatten().tolist()],
        "std": [float(v) for v in trained.std.flatten().tolist()],
        "normalised_in_graph": normalise,
        "input": (
            f"uint8 pixels (N, {c}, {h}, {w})"
            if normalise
            else f"float32 (N, {c}, {h}, {w}), (pixels/255 - mean) / std"
        ),
        "source": trained.source,
    }


def default_out(trained: TrainedModel, fmt: str) -> Path:
    """``run-3-best.onnx`` for ``runs/run-3/best.pt``; the preset name for a bare network."""
    if trained.source:
        src = Path(trained.source)
        stem = f"{src.parent.name}-{src.stem}" if src.parent.name else src.stem
    else:
        stem = (getattr(trained.net, "spec", None) or {}).get("preset") or "model"
    return Path(f"{stem}{SUFFIXES[fmt]}")


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    # The exporters log and warn about things that do not concern a user of the result
    # (torchvision ops that are absent, deprecations inside torch); errors still raise.
    registry = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry.level
    registry.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="The TorchScript type system")
            yield
    finally:
        registry.setLevel(level)


@contextlib.contextmanager
def _replacing(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out`` that replaces it when the block succeeds."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)  # a failed export leaves no half-written file


def _write_onnx(module: _Exported, example: torch.Tensor, out: Path, meta: str) -> None:
    require("onnx", "onnx", "ONNX export")
    require("onnxscript", "onnx", "ONNX export")  # the torch.export-based exporter's backend
    with _quiet_exporters():
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["input"],
            output_names=["logits"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    program.model.metadata_props[METADATA_KEY] = meta
    with _replacing(out) as tmp:
        program.save(str(tmp), external_data=False)  # one self-contained file: nets are small


def _write_torchscript(module: _Exported, out: Path, meta: str) -> None:
    # torch 2.13 deprecates TorchScript (it still saves and loads): no warnings for that
    with _quiet_exporters(), _replacing(out) as tmp:
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(tmp), _extra_files={TORCHSCRIPT_EXTRA_FILE: meta})


def _write_safetensors(trained: TrainedModel, out: Path, meta: str) -> None:
    st = require("safetensors.torch", "safetensors", "safetensors export")
    state = {k: v.detach().cpu().contiguous() for k, v in trained.net.state_dict().items()}
    atomic_write_bytes(out, st.save(state, metadata={METADATA_KEY: meta}))
    atomic_write_text(out.with_suffix(".json"), meta + "\n")


def export_model(
    model: ModelSource,
    format: str = "onnx",
    out: str | os.PathLike[str] | None = None,
    *,
    normalise: bool = False,
    runs_db: str | os.PathLike[str] | None = None,
    use_ema: bool = True,
) -> Path:
    """Write ``model`` in ``format`` (``onnx``, ``torchscript``, ``safetensors``); its path.

    ``model``: a ``resnetlab.load_model`` result, a network built by ``resnetlab.models``,
    or a checkpoint file / run folder / run id (looked up in ``runs_db``). ``out``: the
    file (default from the checkpoint's name, in the current directory). A CPU copy in
    eval mode is exported; the model passed in is left as it was.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format {format!r} is not one of {', '.join(FORMATS)}")
    if normalise and format == "safetensors":
        raise ConfigError(
            "normalise=True needs a graph (onnx or torchscript); safetensors holds only the "
            "weights, with mean/std in its metadata"
        )
    if isinstance(model, nn.Module):  # exported as a CPU copy in eval mode; theirs stays
        model = copy.deepcopy(model)
    trained = as_trained_model(model, runs_db=runs_db, use_ema=use_ema).cpu().eval()
    path = Path(out) if out is not None else default_out(trained, format)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps(export_metadata(trained, normalise=normalise), sort_keys=True)
    if format == "safetensors":
        _write_safetensors(trained, path, meta)
        return path
    module = _Exported(trained, normalise).eval()
    c, h, w = trained.input_size
    # Two samples: torch.export would fix a batch dimension of 1 as a constant.
    example = torch.zeros(2, c, h, w, dtype=torch.uint8) if normalise else torch.zeros(2, c, h, w)
    if format == "onnx":
        _write_onnx(module, example, path, meta)
    else:
        _write_torchscript(module, path, meta)
    return path


def _sniff(path: Path) -> str:
    # By content, not by suffix: `--out` may name the file anything.
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    if head.startswith(b"PK"):  # a zip archive: TorchScript
        return "torchscript"
    if head[8:9] == b"{":  # 8-byte header length, then the JSON header
        return "safetensors"
    return "onnx"


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``resnetlab`` metadata of an exported file (any of the three formats)."""
    p = Path(path)
    kind = _sniff(p)
    if kind == "onnx":
        onnx = require("onnx", "onnx", "reading an ONNX export")
        props = {m.key: m.value for m in onnx.load(str(p), load_external_data=False).metadata_props}
        text = props.get(METADATA_KEY)
    elif kind == "safetensors":
        safetensors = require("safetensors", "safetensors", "reading a safetensors export")
        with safetensors.safe_open(str(p), framework="pt") as f:
            text = (f.metadata() or {}).get(METADATA_KEY)
    else:
        files = {TORCHSCRIPT_EXTRA_FILE: ""}
        with _quiet_exporters():
            torch.jit.load(str(p), map_location="cpu", _extra_files=files)
        text = files[TORCHSCRIPT_EXTRA_FILE] or None
    if not text:
        raise ConfigError(f"{p}: no resnetlab metadata (not written by resnetlab export-model)")
    return json.loads(text)


def load_safetensors(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> TrainedModel:
    """The ``TrainedModel`` of a safetensors export: ``rebuild_model(spec)`` + its weights."""
    st = require("safetensors.torch", "safetensors", "loading a safetensors export")
    meta = read_metadata(path)
    if not meta.get("spec"):
        raise ConfigError(f"{path}: its metadata has no model spec to rebuild the network from")
    net = rebuild_model(meta["spec"])
    load_model_state(net, st.load_file(str(path)), str(path))
    model = TrainedModel(
        net,
        classes=meta["classes"],
        input_size=tuple(meta["input_size"]),
        mean=meta["mean"],
        std=meta["std"],
        source=str(path),
    )
    return model.to(device).eval()
