"""`resnetlab models` and `resnetlab summary` as a user runs them."""

from __future__ import annotations

import re

import pytest

from resnetlab.cli import main
from resnetlab.models import count_parameters, create_model, list_presets, model_summary


def test_summary_of_resnet164_prints_the_table_and_totals(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "resnetv2-164", "--in-channels", "3", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    expected = count_parameters(create_model("resnetv2-164", in_channels=3, num_classes=10))
    assert f"Total params: {expected:,}" in out
    assert f"Trainable params: {expected:,}" in out
    assert "Non-trainable params: 0" in out
    assert "Layer (path)" in out and "Output shape" in out and "Param #" in out
    row = next(
        line for line in out.splitlines() if line.startswith("stacks.2.units.17.layers.2.conv ")
    )
    assert row.split()[1:] == ["Conv2d", "(256,", "8,", "8)", "16,384"]  # 64 x 256 x 1x1
    assert re.search(r"^head\.fc\s+Linear\s+\(10\)\s+2,570$", out, re.M)
    assert "depth 164" in out


def test_summary_of_resnet1001_states_the_papers_count(capsys: pytest.CaptureFixture) -> None:
    # He et al. 2016, Table 4: "10.2M" for ResNet-1001 counts conv and fc weights only; the
    # table's total also holds BatchNorm's scale and shift.
    assert main(["summary", "resnetv2-1001", "--in-channels", "3", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    total = int(re.search(r"^Total params: ([\d,]+)$", out, re.M)[1].replace(",", ""))
    papers = int(
        re.search(
            r"^Conv \+ linear weights \(the papers' count, no BatchNorm\): "
            r"([\d,]+)$",
            out,
            re.M,
        )[1].replace(",", "")
    )
    assert round(papers / 1e6, 1) == 10.2 and round(total / 1e6, 1) == 10.3


def test_summary_options(capsys: pytest.CaptureFixture) -> None:
    assert (
        main(
            [
                "summary",
                "resnetv2-mini",
                "--depth",
                "4",
                "--image-size",
                "32",
                "--set",
                "stack_shortcut=true",
                "--set",
                "dropout=0.2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"^stacks\.2\.units\.0\s+BasicUnit\s+\(128, 4, 4\)", out, re.M)
    assert re.search(r"^stacks\.1\.shortcut\.conv\s+Conv2d\s+\(64, 8, 8\)", out, re.M)
    assert "layers.0.conv" not in out  # folded into the unit rows
    assert re.search(r"^head\.dropout\s+Dropout", out, re.M)


def test_summary_bad_input_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "resnetv2-165"]) == 2
    assert "did you mean resnetv2-164" in capsys.readouterr().err
    assert main(["summary", "resnetv2-50", "--image-size", "8"]) == 2
    assert "stack 2 (stride 2)" in capsys.readouterr().err
    assert main(["summary", "resnetv2-20", "--set", "ratio=0.5"]) == 2
    assert "bottleneck_ratio" in capsys.readouterr().err


def test_models_lists_every_preset(capsys: pytest.CaptureFixture) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["name", "family", "depth", "params", "input", "classes"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {p.name for p in list_presets()}
    assert rows["resnetv2-164"][1:6] == ["resnet_v2", "164", "1,703,258", "3x32x32", "10"]
    assert rows["resnetv2-50"][4:6] == ["3x224x224", "1000"]
    assert rows["resnetv2-mini"][4] == "1x28x28"


def test_models_family_filter(capsys: pytest.CaptureFixture) -> None:
    assert main(["models", "--family", "plain"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert names and all(n.startswith("plain-") for n in names)


def test_model_summary_api() -> None:
    model = create_model("resnetv2-20", in_channels=1, image_size=28)
    model.train()
    summary = model_summary(model, (1, 28, 28))
    assert model.training  # mode restored
    assert summary.total == count_parameters(model)
    assert summary.row("stacks.1.units.0.layers.0.conv").output_shape == (32, 14, 14)
    assert summary.row("stacks.1.units.0.shortcut.conv").output_shape == (128, 14, 14)
    assert summary.row("head.fc").params == 256 * 10 + 10
    assert summary.buffers == 2 * sum(
        m.num_features for m in model.modules() if type(m).__name__ == "BatchNorm2d"
    )
    folded = model_summary(model, (1, 28, 28), depth=6)
    assert folded.row("stacks.1.units.0.layers.0").output_shape == (32, 14, 14)
    assert sum(r.params for r in folded.rows) == summary.total
    text = str(summary)
    assert text.splitlines()[0].startswith("Model: resnetv2-20")
    assert "Total params" in text


@pytest.mark.parametrize(
    ("model", "setting", "field"),
    [
        ("resnetv2-20", "bottleneck_ratio=abc", "bottleneck_ratio"),
        ("resnetv2-20", "dropout=abc", "dropout"),
        ("resnetv2-20", "activation=5", "activation"),
        ("resnetv2-20", "residual=maybe", "residual"),
        ("resnetv2-20", "stack_shortcut=2", "stack_shortcut"),
        ("resnetv2-20", "stack_units=3", "stack_units"),
        ("simple-cnn", "channels=5", "channels"),
        ("simple-cnn", "dropout=x", "dropout"),
    ],
)
def test_summary_bad_set_values_exit_2_naming_the_field(
    model: str, setting: str, field: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(["summary", model, "--set", setting]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and f".{field}=" in captured.err
    assert "Traceback" not in captured.err and "Total params" not in captured.out


@pytest.mark.parametrize(
    ("word", "residual"),
    [
        ("no", False),
        ("off", False),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("yes", True),
        ("on", True),
        ("True", True),
        ("1", True),
    ],
)
def test_summary_yes_no_words(word: str, residual: bool, capsys: pytest.CaptureFixture) -> None:
    assert main(["summary", "resnetv2-20", "--depth", "2", "--set", f"residual={word}"]) == 0
    out = capsys.readouterr().out
    expected = count_parameters(create_model("resnetv2-20" if residual else "plain-20"))
    assert f"Total params: {expected:,}" in out


def test_parse_override_keeps_numbers_numbers() -> None:
    from resnetlab.models.cli import parse_override

    assert parse_override("stem_stride=1") == ("stem_stride", 1)
    assert parse_override("stack_units=[1, 2]") == ("stack_units", [1, 2])
    assert parse_override("latent_dim=null") == ("latent_dim", None)
    assert parse_override("activation=tanh") == ("activation", "tanh")
    assert parse_override(" residual = Off ") == ("residual", False)


def test_model_summary_input_errors_name_the_fix() -> None:
    from torch import nn

    from resnetlab.errors import ConfigError

    model = create_model("resnetv2-micro", in_channels=1, image_size=28)
    with pytest.raises(ConfigError, match=r"^input_size=\(1, 28\) must be \(C, H, W\)"):
        model_summary(model, (1, 28))
    with pytest.raises(ConfigError, match=r"^input_size=\(0, 28, 28\) must be .* positive sizes"):
        model_summary(model, [0, 28, 28])
    with pytest.raises(ConfigError, match=r"^depth=0 must be >= 1"):
        model_summary(model, depth=0)
    with pytest.raises(ConfigError, match=r"needs input_size=\(C, H, W\) for a model without"):
        model_summary(nn.Conv2d(1, 2, 3))
    conv = nn.Conv2d(3, 2, 3)
    conv.train()
    with pytest.raises(ConfigError, match=r"does not accept an input of size \(1, 8, 8\)"):
        model_summary(conv, (1, 8, 8))
    assert conv.training  # mode restored after the failed pass
    assert not any(conv._forward_hooks.values())  # hooks removed

    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    summary = model_summary(plain, (1, 8, 8))
    assert summary.title == "Sequential" and summary.input_size == (1, 8, 8)
    assert [r.output_shape for r in summary.rows] == [(2, 6, 6), (2, 6, 6)]
    assert summary.conv_fc_weights == summary.total == 20
    assert model_summary(plain, (1, 8, 8), title="mine").title == "mine"
    # the default title names the preset and the depth
    assert model_summary(model).title == "resnetv2-micro (ResNet, depth 6)"
