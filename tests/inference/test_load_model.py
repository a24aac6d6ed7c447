"""``resnetlab.load_model`` / ``model.predict`` / ``resnetlab predict``: a trained model used in
one call, on image files of any size and mode, giving what the test evaluation gave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import resnetlab
from resnetlab.data import TensorLoader, load
from resnetlab.data.formats.images import decode
from resnetlab.errors import ConfigError
from resnetlab.inference import to_batch
from resnetlab.training.evaluate import evaluate
from resnetlab.training.tta import FlipAverage

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fashion_mnist_dir):
    """One real (tiny) training run: its result, store and the first 64 test images."""
    tmp = tmp_path_factory.mktemp("trained")
    torch.set_num_threads(1)
    result = resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        epochs=2,
        batch_size=64,
        val_size=256,
        train_limit=4096,  # training images, after the 256 validation ones
        test_limit=64,
        store=tmp / "runs.db",
        run_dir=str(tmp / "run"),
        live=None,
    )
    test = load("fashion-mnist", "test", root=fashion_mnist_dir)
    return result, tmp / "runs.db", test.images[:64], test.labels[:64]


def write_png(
    images: torch.Tensor, folder: Path, *, scale: int = 1, rgb: bool = False
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        array = img[0].numpy()
        if scale > 1:
            array = np.kron(array, np.ones((scale, scale), dtype=np.uint8))
        pil = Image.fromarray(array, mode="L")
        if rgb:
            pil = pil.convert("RGB")
        path = folder / f"img{i:03d}.png"
        pil.save(path)
        paths.append(path)
    return paths


def test_load_model_from_a_run_id_a_folder_or_a_file_is_the_same_model(trained):
    result, db, _, _ = trained
    by_id = resnetlab.load_model(result.run_id, runs_db=db)
    by_file = resnetlab.load_model(result.best_checkpoint or result.checkpoint)
    by_folder = resnetlab.load_model(result.run_dir)
    assert not by_id.training
    assert by_id.classes[: len(FASHION_CLASSES)] == FASHION_CLASSES
    assert by_id.input_size == (1, 28, 28)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(by_id(x), by_file(x))
        assert by_folder(x).shape == (4, 10)


def test_predictions_from_png_files_are_the_evaluation_of_the_same_images(trained, tmp_path):
    result, db, images, labels = trained
    model = resnetlab.load_model(result.run_id, runs_db=db)
    paths = write_png(images, tmp_path / "png")
    preds = model.predict(paths)
    assert all(p.label == model.classes[p.index] for p in preds)
    # What `resnetlab eval` computes: the run's mean/std through a TensorLoader, fp32, the
    # image and its mirror averaged as the run was evaluated (TrainConfig.tta_flip).
    assert model.flips
    net = FlipAverage(model.net)
    extra = result.config.extra
    loader = TensorLoader(images, labels, 64, shuffle=False, mean=extra["mean"], std=extra["std"])
    expected = evaluate(net, loader, num_classes=10)
    accuracy = float(np.mean([p.index == int(y) for p, y in zip(preds, labels, strict=True)]))
    assert accuracy == pytest.approx(expected.accuracy, abs=1e-9)
    x, _ = next(iter(loader))
    with torch.no_grad():
        direct = torch.softmax(net(x), dim=1)
    assert torch.allclose(model.probabilities(paths), direct, atol=1e-5)


def test_any_size_and_mode_is_converted_as_in_training(trained, tmp_path):
    result, db, images, _ = trained
    model = resnetlab.load_model(result.run_id, runs_db=db)
    rgb_big = write_png(images[:8], tmp_path / "rgb", scale=3, rgb=True)  # RGB, 84x84
    jpeg = tmp_path / "shoe.jpg"
    Image.open(rgb_big[0]).save(jpeg, quality=95)
    seen = to_batch([*rgb_big, jpeg], 1, (28, 28))  # what the network is given
    assert seen.shape == (9, 1, 28, 28) and seen.dtype == torch.uint8
    originals = torch.cat([images[:8], images[:1]]).int()
    diff = (seen.int() - originals).abs().float().mean(dim=(1, 2, 3))
    # The same picture (a resize blurs it a little) ...
    assert diff.max() < 16, f"mean pixel difference to the 28x28 originals: {diff.tolist()}"
    # ... converted exactly as an image-folder dataset converts its files for training.
    assert torch.equal(seen[0], torch.tensor(decode(rgb_big[0], "x", (28, 28), "L")))
    preds = model.predict([*rgb_big, jpeg, Image.open(rgb_big[1]), images[2].numpy()[0]])
    assert len(preds) == 11
    top3 = model.predict(images[0], top_k=3)[0]
    assert len(top3.top) == 3 and top3.top[0][1] >= top3.top[1][1] >= top3.top[2][1]
    assert 0.0 < sum(p for _, p in top3.top) <= 1.0 + 1e-6


def test_bad_input_says_what_and_how(trained, tmp_path):
    result, db, images, _ = trained
    model = resnetlab.load_model(result.run_id, runs_db=db)
    with pytest.raises(ConfigError, match="no such image file"):
        model.predict(tmp_path / "missing.png")
    with pytest.raises(ConfigError, match="top_k"):
        model.predict(images[0], top_k=0)
    with pytest.raises(ConfigError, match="no such checkpoint file"):
        resnetlab.load_model(tmp_path / "nothing.pt", runs_db=db)


def test_predict_command_prints_labels_with_probabilities(trained, tmp_path):
    result, db, images, _ = trained
    paths = write_png(images[:2], tmp_path / "cli", scale=2, rgb=True)
    cmd = [sys.executable, "-m", "resnetlab", "predict", str(result.run_dir)]
    cmd += [*map(str, paths), "--top-k", "3"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(str(path))
        names = [c for c in resnetlab.load_model(result.run_dir).classes if c in line]
        assert len(names) >= 2  # three names (two may share words), each with p
        assert line.count("0.") + line.count("1.0") >= 3
    bad = subprocess.run(cmd[:5] + [str(tmp_path / "none.png")], capture_output=True, text=True)
    assert bad.returncode == 2 and "no such image file" in bad.stderr
