"""Zero-byte and wrong-architecture checkpoints: one line naming the file, from every CLI
command that loads one (torch raises ``EOFError('')`` on an empty file, which used to
become an ``IndexError`` traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from resnetlab.cli import main
from resnetlab.models import create_model
from resnetlab.training.checkpoint import FORMAT

pytestmark = pytest.mark.timeout(240)


def _argv(kind: str, ckpt: Path, tmp_path: Path) -> list[str]:
    image = tmp_path / "x.png"
    if not image.exists():
        from PIL import Image

        Image.new("L", (28, 28), 128).save(image)
    out = str(tmp_path / "out.png")
    return {
        "eval file": ["eval", str(ckpt)],
        "eval folder": ["eval", str(ckpt.parent)],
        "predict": ["predict", str(ckpt), str(image)],
        "train --resume": ["train", "--resume", str(ckpt), "--live", "none", "--no-progress"],
        "inspect features": ["inspect", "features", str(ckpt), "--layer", "stem", "-o", out],
        "inspect graph": ["inspect", "graph", str(ckpt), "-o", out],
        "inspect gradients": ["inspect", "gradients", str(ckpt), "-o", out],
        "inspect filters": ["inspect", "filters", str(ckpt), "--layer", "stem", "-o", out],
    }[kind]


KINDS = [
    "eval file",
    "eval folder",
    "predict",
    "train --resume",
    "inspect features",
    "inspect graph",
    "inspect gradients",
    "inspect filters",
]


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_checkpoint_is_one_line_naming_the_file(tmp_path, capsys, kind) -> None:
    run = tmp_path / "run-1"
    run.mkdir()
    ckpt = run / "last.pt"
    ckpt.write_bytes(b"")  # a write killed before its first byte, on a filesystem without rename
    rc = main(_argv(kind, ckpt, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith(
        f"error: {ckpt}: cannot read the checkpoint (EOFError: the file is empty)"
    )
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_the_wrong_architecture_error_names_the_file(tmp_path, capsys) -> None:
    model = create_model("resnetv2-micro", in_channels=1, num_classes=10, image_size=28)
    spec = dict(model.spec)
    state = model.state_dict()
    state.pop(next(iter(state)))  # a checkpoint whose weights do not fit its own spec
    ckpt = tmp_path / "odd.pt"
    torch.save({"format": FORMAT, "spec": spec, "model": state, "config": {}}, ckpt)
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (28, 28), 128).save(image)
    for argv in (
        ["eval", str(ckpt), "--data", "fashion-mnist"],
        ["predict", str(ckpt), str(image)],
    ):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"error: {ckpt}: checkpoint does not fit"), err
