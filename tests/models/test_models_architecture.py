"""The architecture is the published one: parameter counts, strides, shortcuts, layer order."""

from __future__ import annotations

import pytest
import torch
from models_helpers import RESNET_PRESETS, on_meta, trace, traced_on_meta
from torch import nn

from resnetlab.models import (
    PostActLayer,
    PreActLayer,
    Projection,
    ResidualStack,
    ResidualUnit,
    count_parameters,
    create_model,
    get_preset,
    list_presets,
    model_summary,
    resnet_v2,
)

# --- parameter counts of published networks --------------------------------------------


def norm_free_weights(model: nn.Module) -> int:
    """Conv and Linear parameters only (no BatchNorm scale/shift)."""
    return sum(
        p.numel()
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
        for p in m.parameters(recurse=False)
    )


def test_resnet164_has_the_papers_1_7m_parameters() -> None:
    # He et al. 2016 (Identity Mappings), Table 4: pre-act ResNet-164 on CIFAR-10, 1.7M.
    model = on_meta(create_model, "resnetv2-164", in_channels=3, num_classes=10)
    assert round(count_parameters(model) / 1e6, 1) == 1.7
    assert round(norm_free_weights(model) / 1e6, 1) == 1.7


def test_resnet1001_has_the_papers_10_2m_parameters() -> None:
    # Table 4: ResNet-1001 on CIFAR-10, 10.2M: that is the conv + fc weights; BatchNorm's
    # scale and shift add 1.5% on top.
    model = on_meta(create_model, "resnetv2-1001", in_channels=3, num_classes=10)
    assert round(norm_free_weights(model) / 1e6, 1) == 10.2
    assert abs(count_parameters(model) / 10.2e6 - 1) < 0.015


KERAS_V2 = {"resnetv2-50": 25_613_800, "resnetv2-101": 44_675_560, "resnetv2-152": 60_380_648}


@pytest.mark.parametrize("name", sorted(KERAS_V2))
def test_imagenet_v2_matches_keras_and_the_difference_is_explained(name: str) -> None:
    keras_total = KERAS_V2[name]  # keras.applications.ResNet50V2 etc., 1000 classes
    model = on_meta(resnet_v2, name)
    summary = model_summary(model)
    assert model.head.fc.out_features == 1000
    assert abs(summary.trainable / keras_total - 1) < 0.01
    # Keras counts BatchNorm moving statistics and gives a bias to the stem conv, every
    # unit's last 1x1 conv and every projection; with those, the layouts agree exactly.
    biases = model.stem.conv.out_channels + sum(
        u.layers[-1].conv.out_channels + (u.shortcut.conv.out_channels if u.has_projection else 0)
        for u in model.units()
    )
    assert summary.trainable + biases + summary.buffers == keras_total


TORCHVISION_V1 = {"resnetv2-18": 11_689_512, "resnetv2-34": 21_797_672, "resnetv2-50": 25_557_032}


@pytest.mark.parametrize("name", sorted(TORCHVISION_V1))
def test_imagenet_layout_with_post_activation_is_torchvisions_resnet(name: str) -> None:
    # torchvision.models.resnet18/34/50 (V1): same stem, stacks and widths as our presets.
    model = on_meta(resnet_v2, name, activation_order="post")
    assert count_parameters(model) == TORCHVISION_V1[name]


def test_half_ratio_makes_the_bottleneck_wider() -> None:
    for depth in (56, 164):
        quarter = count_parameters(on_meta(create_model, f"resnetv2-{depth}"))
        half = count_parameters(on_meta(create_model, f"resnetv2-{depth}-half"))
        assert 2.5 < half / quarter < 3.5


# --- stride placement and spatial sizes -------------------------------------------------

EXPECTED_SIDES = {
    "resnetv2-mini": (28, [14, 7, 4]),
    "resnetv2-micro": (28, [28, 14]),
    "resnetv2-164": (32, [32, 16, 8]),
    "resnetv2-1001": (32, [32, 16, 8]),
    "plain-56": (32, [32, 16, 8]),
    "resnetv1-110": (32, [32, 16, 8]),
    "resnetv2-18": (224, [56, 28, 14, 7]),
    "resnetv2-50": (224, [56, 28, 14, 7]),
    "resnetv2-152": (224, [56, 28, 14, 7]),
}


@pytest.mark.parametrize("name", RESNET_PRESETS)
def test_spatial_size_per_stack(name: str) -> None:
    preset = get_preset(name)
    model, _, outputs = traced_on_meta(name)
    size = preset.config.image_size
    sides = [outputs[f"stacks.{i}"].shape[-1] for i in range(len(model.stacks))]
    channels = [outputs[f"stacks.{i}"].shape[1] for i in range(len(model.stacks))]
    assert channels == list(preset.config.stack_channels)
    if name in EXPECTED_SIDES:
        assert (size, sides) == EXPECTED_SIDES[name]
    # every stack after the first halves the side; all units of a stack share it
    assert all(a == 2 * b or a == 2 * b - 1 for a, b in zip(sides, sides[1:], strict=False))
    for i, stack in enumerate(model.stacks):
        for j in range(len(stack.units)):
            assert outputs[f"stacks.{i}.units.{j}"].shape[-2:] == (sides[i], sides[i])


def test_stride_goes_on_the_first_layer_by_default_or_on_the_3x3() -> None:
    paper = create_model("resnetv2-20")
    timm = create_model("resnetv2-20", stride_layer="3x3")
    for model, first, middle in ((paper, 2, 1), (timm, 1, 2)):
        unit = model.stacks[1].units[0]
        assert unit.layers[0].conv.stride == (first, first)
        assert unit.layers[1].conv.stride == (middle, middle)
        assert unit.shortcut.conv.stride == (2, 2)
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert count_parameters(model) == count_parameters(paper)


# --- shortcuts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n in RESNET_PRESETS if not n.startswith("plain")])
def test_first_unit_of_a_stack_projects_later_units_are_identity(name: str) -> None:
    preset = get_preset(name)
    model, inputs, outputs = traced_on_meta(name)
    for i, stack in enumerate(model.stacks):
        first = stack.units[0]
        changes = inputs[f"stacks.{i}.units.0"].shape != outputs[f"stacks.{i}.units.0"].shape
        assert isinstance(first.shortcut, Projection) == changes
        if changes:
            assert first.shortcut.conv.kernel_size == (1, 1)
            assert first.shortcut.conv.stride == (preset.config.strides[i],) * 2
        for unit in list(stack.units)[1:]:
            assert type(unit.shortcut) is nn.Identity
        assert stack.shortcut is None  # stack shortcut is off by default
    # only the network's first stack's first unit can keep the shape (resnetv2-18/34)
    assert isinstance(model.stacks[1].units[0].shortcut, Projection)


def test_unit_output_is_branch_plus_shortcut_with_no_activation_after() -> None:
    model = create_model("resnetv2-20").eval()
    with trace(model) as calls, torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    out = {c.path: c.output for c in calls}
    for path in ("stacks.0.units.0", "stacks.1.units.0", "stacks.1.units.1"):
        unit = model.get_submodule(path)
        branch = out[f"{path}.layers.2.conv"]
        shortcut = (
            out[f"{path}.shortcut"]
            if unit.has_projection
            else {c.path: c.inputs[0] for c in calls}[path]
        )
        torch.testing.assert_close(out[path], branch + shortcut)
        assert out[path].min() < 0  # no ReLU after the addition


def test_projection_shares_the_pre_activation_with_the_branch() -> None:
    model = create_model("resnetv2-20").eval()
    with trace(model) as calls, torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    ins = {c.path: c.inputs[0] for c in calls}
    out = {c.path: c.output for c in calls}
    unit = "stacks.1.units.0"
    assert ins[f"{unit}.shortcut"] is out[f"{unit}.layers.0.act"]
    assert ins[f"{unit}.layers.0.conv"] is out[f"{unit}.layers.0.act"]


def test_stack_shortcut_bridges_each_whole_stack() -> None:
    plain = create_model("resnetv2-20")
    bridged = create_model("resnetv2-20", stack_shortcut=True).eval()
    for i, stack in enumerate(bridged.stacks):
        assert isinstance(stack.shortcut, Projection)  # every stack changes shape here
        assert stack.shortcut.conv.stride == ((1, 1) if i == 0 else (2, 2))
    extra = sum(count_parameters(s.shortcut) for s in bridged.stacks)
    assert count_parameters(bridged) == count_parameters(plain) + extra
    with trace(bridged) as calls, torch.no_grad():
        bridged(torch.randn(2, 3, 16, 16))
    out = {c.path: c.output for c in calls}
    torch.testing.assert_close(out["stacks.1"], out["stacks.1.units.1"] + out["stacks.1.shortcut"])
    same = create_model(
        "resnetv2-micro", stack_units=(2, 1), stack_channels=(8, 8), stack_shortcut=True
    )
    assert type(same.stacks[0].shortcut) is nn.Identity


# --- layer order ---------------------------------------------------------------------------


PRE_ACTIVATION_PRESETS = [
    p.name
    for p in list_presets()
    if p.family != "simple_cnn" and p.config.activation_order == "pre"
]


@pytest.mark.parametrize("name", PRE_ACTIVATION_PRESETS)
def test_pre_activation_order_is_bn_relu_conv(name: str) -> None:
    # Every V2 and plain preset at its published input, on the meta device (no compute, so
    # even resnetv2-1001 and the ImageNet nets cost milliseconds per layer).
    model = on_meta(resnet_v2, name).eval()
    with trace(model) as calls, torch.no_grad():
        model(torch.zeros(1, *get_preset(name).input_size, device="meta"))
    index = {}
    for n, c in enumerate(calls):
        index.setdefault(c.path, n)
    ins = {c.path: c.inputs[0] for c in calls}
    out = {c.path: c.output for c in calls}
    layers = [(p, m) for p, m in model.named_modules() if isinstance(m, PreActLayer)]
    assert len(layers) == sum(len(u.layers) for u in model.units())
    skipped = 0
    for path, layer in layers:
        if isinstance(layer.bn, nn.Identity):
            skipped += 1
            # only the first layer of the first unit: the stem has just applied BN → ReLU
            assert path == "stacks.0.units.0.layers.0"
            assert isinstance(model.stem.bn, nn.BatchNorm2d)
            assert isinstance(model.stem.act, nn.ReLU)
            continue
        assert isinstance(layer.bn, nn.BatchNorm2d) and isinstance(layer.act, nn.ReLU)
        assert index[f"{path}.bn"] < index[f"{path}.act"] < index[f"{path}.conv"]
        # the data really flows BN → ReLU → Conv
        assert ins[f"{path}.act"] is out[f"{path}.bn"]
        assert ins[f"{path}.conv"] is out[f"{path}.act"]
    assert skipped == 1
    assert index["head.bn"] < index["head.act"] < index["head.pool"] < index["head.fc"]


def test_resnet_v1_is_post_activation_with_relu_after_the_sum() -> None:
    model = create_model("resnetv1-20").eval()
    with trace(model) as calls, torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    ins = {c.path: c.inputs[0] for c in calls}
    out = {c.path: c.output for c in calls}
    layers = [(p, m) for p, m in model.named_modules() if isinstance(m, PostActLayer)]
    assert layers and not any(isinstance(m, PreActLayer) for m in model.modules())
    for path, layer in layers:
        assert ins[f"{path}.bn"] is out[f"{path}.conv"]
        if layer.act is not None:
            assert ins[f"{path}.act"] is out[f"{path}.bn"]
    for unit_path in ("stacks.0.units.0", "stacks.1.units.1"):
        unit = model.get_submodule(unit_path)
        assert unit.layers[-1].act is None and isinstance(unit.act, nn.ReLU)
        assert out[unit_path].min() >= 0  # ReLU after the addition
        assert isinstance(unit.shortcut, Projection | nn.Identity)
    assert isinstance(model.stacks[1].units[0].shortcut.bn, nn.BatchNorm2d)  # option B


# --- plain networks ------------------------------------------------------------------------


def main_path_convs(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if isinstance(m, PreActLayer | PostActLayer)) + sum(
        1 for m in model.stem.modules() if isinstance(m, nn.Conv2d)
    )


@pytest.mark.parametrize("depth", [20, 29, 56, 110, 164])
def test_plain_net_has_no_shortcut_and_the_same_layers_as_the_resnet(depth: int) -> None:
    plain = on_meta(create_model, f"plain-{depth}")
    resnet = on_meta(create_model, f"resnetv2-{depth}")
    v1 = on_meta(create_model, f"resnetv1-{depth}")
    assert not any(isinstance(m, Projection) for m in plain.modules())
    units = [m for m in plain.modules() if isinstance(m, ResidualUnit)]
    assert units and all(u.shortcut is None for u in units)
    assert all(s.shortcut is None for s in plain.modules() if isinstance(s, ResidualStack))
    for model in (plain, resnet, v1):
        assert main_path_convs(model) + 1 == depth  # + the classifier
    # identical weights on the main path: only the projections' parameters differ
    projections = sum(count_parameters(m) for m in resnet.modules() if isinstance(m, Projection))
    assert count_parameters(plain) + projections == count_parameters(resnet)
    layer_shapes = [tuple(m.weight.shape) for m in plain.modules() if isinstance(m, nn.Conv2d)]
    resnet_shapes = [
        tuple(m.conv.weight.shape) for m in resnet.modules() if isinstance(m, PreActLayer)
    ]
    assert layer_shapes[1:] == resnet_shapes


def test_plain_net_output_is_just_the_chain_of_layers() -> None:
    model = create_model("plain-20").eval()
    with trace(model) as calls, torch.no_grad():
        model(torch.randn(2, 3, 16, 16))
    out = {c.path: c.output for c in calls}
    for unit in model.units():
        path = next(p for p, m in model.named_modules() if m is unit)
        assert out[path] is out[f"{path}.layers.2"] or out[path] is out[f"{path}.layers.2.conv"]


# --- initialisation ------------------------------------------------------------------------


def test_he_initialisation() -> None:
    torch.manual_seed(0)
    model = create_model("resnetv2-56")
    conv = model.stacks[2].units[3].layers[1].conv  # 3x3, 64 -> 64
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
    bn = model.stacks[2].units[3].layers[1].bn
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_zero_init_makes_each_unit_start_as_its_shortcut_and_still_learns() -> None:
    torch.manual_seed(0)
    model = create_model("resnetv2-20", zero_init_last=True).train()
    x = torch.randn(4, 3, 16, 16)
    with trace(model) as calls:
        model(x).logsumexp(1).sum().backward()
    out = {c.path: c.output for c in calls}
    ins = {c.path: c.inputs[0] for c in calls}
    for path in ("stacks.0.units.1", "stacks.2.units.1"):
        torch.testing.assert_close(out[path], ins[path])  # identity units pass x through
        last = model.get_submodule(path).layers[-1]
        assert torch.all(last.conv.weight == 0)
        assert last.conv.weight.grad.abs().sum() > 0  # not a dead branch
    v1 = create_model("resnetv1-20", zero_init_last=True)
    assert torch.all(v1.stacks[0].units[1].layers[-1].bn.weight == 0)


# --- runtime formats -----------------------------------------------------------------------


def test_channels_last_gives_the_same_output() -> None:
    torch.manual_seed(0)
    model = create_model("resnetv2-20", in_channels=1, image_size=28).eval()
    x = torch.randn(2, 1, 28, 28)
    expected = model(x)
    model = model.to(memory_format=torch.channels_last)
    got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_compiles_to_one_graph() -> None:
    # backend="eager" checks TorchDynamo captures the whole model (no graph breaks) without
    # paying for a C++ compile on a shared CPU.
    torch.manual_seed(0)
    torch._dynamo.reset()
    model = create_model("resnetv2-micro", in_channels=1, image_size=28, stack_shortcut=True)
    model.eval()
    x = torch.randn(2, 1, 28, 28)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(x), model(x))
