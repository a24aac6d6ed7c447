"""Every preset builds, runs forward and backward, and rebuilds from its spec."""

from __future__ import annotations

import json

import pytest
import torch
from models_helpers import PRESET_NAMES, runtime_overrides, small_image_size

from resnetlab.errors import ConfigError
from resnetlab.models import (
    DEFAULT_MODEL,
    ResidualUnit,
    count_parameters,
    create_model,
    get_preset,
    list_presets,
    rebuild_model,
    resnet_v2,
)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_forward_shape_and_backward(name: str) -> None:
    preset = get_preset(name)
    size = small_image_size(preset)
    torch.manual_seed(0)
    model = create_model(
        name, in_channels=2, num_classes=7, image_size=size, **runtime_overrides(preset)
    )
    if preset.family != "simple_cnn":  # the shrunken heavy nets keep their depth
        assert len(model.units()) == sum(preset.config.stack_units)
    x = torch.randn(2, 2, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads), "some parameter got no gradient"
    # the very first conv receives a gradient through the whole depth
    first_conv = model.stem.conv if hasattr(model, "stem") else model.blocks[0].conv
    assert first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_spec_is_json_and_rebuilds_the_same_network(name: str) -> None:
    preset = get_preset(name)
    size = small_image_size(preset)
    model = create_model(
        name, in_channels=1, num_classes=3, image_size=size, **runtime_overrides(preset)
    )
    spec = json.loads(json.dumps(model.spec))  # survives a checkpoint's JSON
    again = rebuild_model(spec)
    assert again.spec == model.spec
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    again.load_state_dict(model.state_dict())
    model.eval()
    again.eval()
    x = torch.randn(2, 1, size, size)
    torch.testing.assert_close(again(x), model(x))


@pytest.mark.parametrize(
    "name", ["resnetv2-micro", "resnetv2-mini", "resnetv1-20", "plain-20", "simple-cnn"]
)
def test_features_then_head_is_the_forward(name: str) -> None:
    model = create_model(name, in_channels=1, num_classes=4, image_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    feats = model.forward_features(x)
    assert feats.dim() == 4 and feats.shape[1] == model.num_features  # (B, C, h, w)
    torch.testing.assert_close(model.forward_head(feats), model(x))


def test_resnet_v2_gives_the_published_input_and_create_model_the_asked_one() -> None:
    with torch.device("meta"):
        published = resnet_v2("resnetv2-50")
        for_cifar = create_model("resnetv2-50")
    assert published.head.fc.out_features == 1000
    assert published.config.image_size == 224
    assert for_cifar.head.fc.out_features == 10
    assert for_cifar.stem.conv.in_channels == 3


def test_default_model_is_small_and_for_grayscale_28px() -> None:
    preset = get_preset(DEFAULT_MODEL)
    assert preset.input_size == (1, 28, 28)
    model = create_model(DEFAULT_MODEL, in_channels=1, image_size=28)
    assert 200_000 <= count_parameters(model) <= 1_000_000
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_micro_is_tiny() -> None:
    model = create_model("resnetv2-micro", in_channels=1, image_size=28)
    assert count_parameters(model) < 20_000
    assert any(isinstance(m, ResidualUnit) for m in model.modules())


def test_list_presets_covers_the_issue() -> None:
    names = {p.name for p in list_presets()}
    for depth in (20, 29, 56, 110, 164, 1001):
        assert f"resnetv2-{depth}" in names and f"resnetv2-{depth}-half" in names
    for depth in (20, 56, 110):
        assert f"plain-{depth}" in names and f"resnetv1-{depth}" in names
    assert {
        "resnetv2-18",
        "resnetv2-34",
        "resnetv2-50",
        "simple-cnn",
        DEFAULT_MODEL,
        "resnetv2-micro",
    } <= names
    for p in list_presets():
        assert p.depth == p.config.depth and p.description and p.family


def test_half_variant_only_changes_the_bottleneck_ratio() -> None:
    full, half = get_preset("resnetv2-56").config, get_preset("resnetv2-56-half").config
    assert full.bottleneck_ratio == 0.25 and half.bottleneck_ratio == 0.5
    assert {k: v for k, v in full.to_dict().items() if k != "bottleneck_ratio"} == {
        k: v for k, v in half.to_dict().items() if k != "bottleneck_ratio"
    }
    model = create_model("resnetv2-56-half")
    assert model.stacks[1].units[1].layers[1].conv.out_channels == 64  # 128 / 2


def test_unknown_model_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match="resnetv2-164") as info:
        create_model("resnetv2-165")
    assert "resnetlab models" in str(info.value)


def test_unknown_override_lists_close_matches() -> None:
    with pytest.raises(ConfigError, match="bottleneck_ratio"):
        create_model("resnetv2-20", bottlenek_ratio=0.5)


def test_overrides_reach_the_network() -> None:
    model = create_model("resnetv2-20", bottleneck_ratio=0.5, dropout=0.1, latent_dim=16)
    assert model.stacks[0].units[0].layers[0].conv.out_channels == 32
    assert model.head.dropout.p == 0.1
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 16)  # encoder head
    assert model.spec["config"]["latent_dim"] == 16


def test_rebuild_model_rejects_bad_specs() -> None:
    with pytest.raises(ConfigError, match="family"):
        rebuild_model({"config": {}})
    with pytest.raises(ConfigError, match="unknown"):
        rebuild_model({"family": "transformer", "config": {}})
    spec = create_model("resnetv2-micro").spec
    with pytest.raises(ConfigError, match="upgrade resnetlab"):
        rebuild_model({**spec, "format": 99})
    spec["config"]["stack_unit"] = [1, 1]
    with pytest.raises(ConfigError, match="stack_units"):
        rebuild_model(spec)
