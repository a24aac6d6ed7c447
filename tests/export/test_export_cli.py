"""``resnetlab export-model`` on a real trained run: each format gives ``load_model``'s logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import resnetlab
from resnetlab.cli import main
from resnetlab.export import load_safetensors, read_metadata


@pytest.fixture(scope="module")
def trained(trained_run, test_images):
    result, db, _ = trained_run
    model = resnetlab.load_model(result.run_id, runs_db=db)
    with torch.no_grad():
        logits = model(model.normalise(test_images))
    return result, db, model, logits


def test_export_model_by_run_id_writes_each_format(trained, test_images, tmp_path, capsys):
    result, db, model, logits = trained
    batch = model.normalise(test_images)
    for fmt, name in [("onnx", "m.onnx"), ("torchscript", "m.pt"), ("safetensors", "m.st")]:
        args = ["export-model", str(result.run_id), "--runs-db", str(db), "--format", fmt]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"wrote {tmp_path / name} ({fmt}; input float32 (N, 1, 28, 28)")
        assert out.rstrip().endswith("; 10 classes)")
        meta = read_metadata(tmp_path / name) if fmt != "safetensors" else None
        if meta:
            assert meta["classes"] == model.classes
            assert meta["mean"] == pytest.approx(model.mean.flatten().tolist())
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"input": batch.numpy()})[0]
    assert np.abs(onnx_out - logits.numpy()).max() <= 1e-4
    with torch.no_grad():
        assert (torch.jit.load(str(tmp_path / "m.pt"))(batch) - logits).abs().max() <= 1e-4
    # safetensors with an unusual suffix: the JSON is beside it all the same
    assert (tmp_path / "m.json").exists()


def test_default_out_is_named_after_the_checkpoint(trained, tmp_path, monkeypatch, capsys):
    result, _, model, logits = trained
    monkeypatch.chdir(tmp_path)
    assert main(["export-model", str(result.best_checkpoint), "-f", "safetensors"]) == 0
    assert capsys.readouterr().out.startswith("wrote run-best.safetensors (safetensors;")
    loaded = load_safetensors(tmp_path / "run-best.safetensors")
    assert loaded.classes == model.classes
    assert torch.equal(loaded.std, model.std)


def test_errors_are_one_line(trained, tmp_path, capsys):
    _, db, _, _ = trained
    assert main(["export-model", "no-such-run", "--runs-db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no-such-run: no such checkpoint file or folder")
    assert err.count("\n") == 1
