"""ONNX, TorchScript and safetensors exports give the PyTorch model's logits on real images.

Random-init weights are enough for equivalence (eval mode: BatchNorm uses its running
statistics). Each format is read back by its own runtime: onnxruntime, ``torch.jit.load``
in a fresh interpreter that cannot import resnetlab, and ``rebuild_model`` + safetensors.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from resnetlab.errors import ConfigError
from resnetlab.export import export_model, load_safetensors, read_metadata
from resnetlab.export.model import as_trained_model
from resnetlab.models import create_model, rebuild_model

PRESETS = ["resnetv2-mini", "resnetv2-56", "plain-20"]
TOLERANCE = 1e-4  # max abs logit difference, fp32
MEAN, STD = [0.2860], [0.3530]  # Fashion-MNIST's


@pytest.fixture(scope="module")
def models(test_images):
    """preset -> (a TrainedModel of it, the 64 normalised images, its logits)."""
    out = {}
    for preset in PRESETS:
        torch.manual_seed(0)
        trained = as_trained_model(create_model(preset, in_channels=1, image_size=28))
        trained.mean.fill_(MEAN[0])
        trained.std.fill_(STD[0])
        batch = trained.normalise(test_images)
        with torch.no_grad():
            out[preset] = trained, batch, trained(batch)
    return out


@pytest.fixture(params=PRESETS)
def model_and_batch(request, models):
    return models[request.param]


def test_onnx_runs_in_onnxruntime_with_any_batch_size(model_and_batch, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    trained, batch, logits = model_and_batch
    path = export_model(trained, "onnx", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "input" and inp.shape[1:] == [1, 28, 28] and isinstance(inp.shape[0], str)
    out = session.run(None, {"input": batch.numpy()})[0]
    assert out.shape == (64, 10)
    assert np.abs(out - logits.numpy()).max() <= TOLERANCE
    # the batch dimension is free: 1 and 7 images too
    for n in (1, 7):
        part = session.run(None, {"input": batch[:n].numpy()})[0]
        assert np.abs(part - logits[:n].numpy()).max() <= TOLERANCE
    meta = read_metadata(path)
    assert meta["mean"] == pytest.approx(MEAN) and meta["std"] == pytest.approx(STD)
    assert meta["normalised_in_graph"] is False
    assert rebuild_model(meta["spec"]).spec == trained.net.spec


# Run by a fresh interpreter: -I drops PYTHONPATH and the script folder; the editable
# install's finder and any path holding a resnetlab package are removed as well.
_TORCHSCRIPT_CHECK = """
import importlib.util, json, os, sys
sys.meta_path = [f for f in sys.meta_path if "resnetlab" not in repr(f)]
sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "resnetlab"))]
assert importlib.util.find_spec("resnetlab") is None, "resnetlab is importable"
import torch
batch = torch.load("batch.pt")
for name in sys.argv[1:]:
    files = {"resnetlab.json": ""}
    model = torch.jit.load(name + ".torchscript.pt", _extra_files=files)
    with torch.no_grad():
        torch.save(model(batch), name + ".out.pt")
    print(json.loads(files["resnetlab.json"])["input"])
assert not [m for m in sys.modules if m.startswith("resnetlab")]
"""


@pytest.fixture(scope="module")
def torchscript_outputs(models, tmp_path_factory):
    """preset -> the logits its TorchScript export gives in an interpreter without resnetlab."""
    tmp = tmp_path_factory.mktemp("torchscript")
    for preset, (trained, _, _) in models.items():
        export_model(trained, "torchscript", tmp / f"{preset}.torchscript.pt")
    # the same normalised images for every preset (one mean and std)
    torch.save(models[PRESETS[0]][1], tmp / "batch.pt")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _TORCHSCRIPT_CHECK, *models],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    inputs = proc.stdout.splitlines()
    assert inputs == ["float32 (N, 1, 28, 28), (pixels/255 - mean) / std"] * len(models)
    return {preset: torch.load(tmp / f"{preset}.out.pt") for preset in models}


@pytest.mark.parametrize("preset", PRESETS)
def test_torchscript_runs_without_resnetlab(preset, models, torchscript_outputs):
    _, _, logits = models[preset]
    assert (torchscript_outputs[preset] - logits).abs().max().item() <= TOLERANCE


def test_safetensors_rebuilds_with_rebuild_model(model_and_batch, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    trained, batch, logits = model_and_batch
    path = export_model(trained, "safetensors", tmp_path / "m.safetensors")
    spec = json.loads((tmp_path / "m.json").read_text())["spec"]
    net = rebuild_model(spec).eval()
    net.load_state_dict(st.load_file(str(path)))
    with torch.no_grad():
        assert (net(batch) - logits).abs().max().item() <= TOLERANCE
    loaded = load_safetensors(path)
    assert loaded.classes == trained.classes and loaded.input_size == (1, 28, 28)
    assert torch.equal(loaded.mean, trained.mean) and torch.equal(loaded.std, trained.std)
    with torch.no_grad():
        assert (loaded(batch) - logits).abs().max().item() <= TOLERANCE


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_normalise_puts_the_normalisation_in_the_graph(fmt, test_images, tmp_path):
    torch.manual_seed(0)
    trained = as_trained_model(create_model("resnetv2-micro", in_channels=1, image_size=28))
    trained.mean.fill_(MEAN[0])
    trained.std.fill_(STD[0])
    with torch.no_grad():
        logits = trained(trained.normalise(test_images))
    path = export_model(trained, fmt, tmp_path / f"m.{fmt}", normalise=True)
    assert read_metadata(path)["normalised_in_graph"] is True
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].type == "tensor(uint8)"
        out = torch.from_numpy(session.run(None, {"input": test_images.numpy()})[0])
    else:
        out = torch.jit.load(str(path))(test_images)
    assert (out - logits).abs().max().item() <= TOLERANCE


def test_exporting_leaves_the_model_as_it_was(tmp_path):
    net = create_model("resnetv2-micro", in_channels=1, image_size=28).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_model(net, "torchscript", tmp_path / "m.pt")
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_bad_requests_are_config_errors(tmp_path):
    net = create_model("resnetv2-micro", in_channels=1, image_size=28)
    with pytest.raises(ConfigError, match="export format 'keras' is not one of onnx, torchscript"):
        export_model(net, "keras", tmp_path / "m")
    with pytest.raises(ConfigError, match="normalise=True needs a graph"):
        export_model(net, "safetensors", tmp_path / "m.safetensors", normalise=True)
    with pytest.raises(ConfigError, match="has no .spec/.config"):
        export_model(torch.nn.Linear(2, 2), "onnx", tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="no resnetlab metadata"):
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "other.pt"))
        read_metadata(tmp_path / "other.pt")


def test_a_missing_package_names_the_extra(monkeypatch, tmp_path):
    # None in sys.modules makes `import onnxscript` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    net = create_model("resnetv2-micro", in_channels=1, image_size=28)
    with pytest.raises(ConfigError) as info:
        export_model(net, "onnx", tmp_path / "m.onnx")
    assert (
        str(info.value) == "ONNX export needs the onnxscript package: pip install 'resnetlab[onnx]'"
    )
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ConfigError, match=r"pip install 'resnetlab\[safetensors\]'$"):
        export_model(net, "safetensors", tmp_path / "m.safetensors")


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("resnetv2-micro", {}),  # V2, shared pre-activation before each projection
        ("resnetv2-micro", {"stack_shortcut": True, "stem_pool": "conv"}),
        ("resnetv1-20", {}),
        ("plain-20", {}),  # no shortcuts at all
        ("resnetv2-50", {}),  # bottleneck units, max-pool stem
        ("simple-cnn", {}),
    ],
)
def test_every_family_scripts_to_the_same_function(preset, overrides):
    torch.manual_seed(0)
    net = create_model(preset, in_channels=3, image_size=32, **overrides).eval()
    scripted = torch.jit.script(net)
    assert list(scripted.state_dict()) == list(net.state_dict())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(scripted(x), net(x))


def test_a_failed_export_leaves_no_file(tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        Path(args[1]).write_bytes(b"half")  # a partial write, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(torch.jit, "save", broken_save)
    net = create_model("resnetv2-micro", in_channels=1, image_size=28)
    with pytest.raises(OSError, match="disk full"):
        export_model(net, "torchscript", tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []
