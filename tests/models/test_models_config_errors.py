"""Invalid configurations fail early with a ConfigError that names the field and the fix."""

from __future__ import annotations

import pytest

from resnetlab.errors import ConfigError
from resnetlab.models import (
    ResNetV2Config,
    SimpleCNNConfig,
    build_model,
    count_parameters,
    create_model,
)


@pytest.mark.parametrize("units", [(2, 0, 2), (2, -1, 2)])
def test_zero_or_negative_units(units: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"stack_units\[1\].*at least 1 unit"):
        ResNetV2Config(stack_units=units)


def test_bottleneck_ratio_giving_zero_channels_names_the_stack_and_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"bottleneck_ratio=0\.01.*stack 0.*>= 0\.01562"):
        create_model("resnetv2-20", bottleneck_ratio=0.01)
    with pytest.raises(ConfigError, match="bottleneck_ratio"):
        ResNetV2Config(bottleneck_ratio=0)
    # a basic unit has no bottleneck: the ratio does not matter there
    ResNetV2Config(unit="basic", bottleneck_ratio=0.001, stack_channels=(16, 32, 64))


def test_image_too_small_says_which_stack_collapses() -> None:
    with pytest.raises(
        ConfigError,
        match=r"image_size=2 .*stack 2 \(stride 2\) gets a 1x1 map"
        r".*0x0.*image_size >= 3",
    ):
        create_model("resnetv2-20", image_size=2)
    with pytest.raises(ConfigError, match=r"stack 2 \(stride 2\).*image_size >= 17"):
        create_model("resnetv2-50", image_size=8)
    with pytest.raises(ConfigError, match="stem max-pool"):
        create_model("resnetv2-50", image_size=2)
    # the same image is fine once the stacks stop striding
    create_model("resnetv2-20", image_size=2, stack_strides=(1, 1, 1))


def test_simple_cnn_too_small_image() -> None:
    with pytest.raises(ConfigError, match=r"block 2's 2x2 max-pool gets a 1x1 map"):
        SimpleCNNConfig(image_size=4, channels=(8, 8, 8))


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("activation", "rellu", "relu"),
        ("norm", "batch_norm", "batchnorm"),
        ("unit", "bottlenek", "bottleneck"),
        ("stem_pool", "maxpool", "max"),
        ("activation_order", "pree", "pre"),
        ("stride_layer", "3X3", "3x3"),
    ],
)
def test_unknown_layer_names_suggest_the_right_one(field: str, value: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=rf"{field}='{value}'.*did you mean.*'{hint}'"):
        ResNetV2Config(**{field: value})


def test_mismatched_stack_lists() -> None:
    with pytest.raises(ConfigError, match="stack_channels has 2 entries but stack_units has 3"):
        ResNetV2Config(stack_units=(1, 1, 1), stack_channels=(16, 32))
    with pytest.raises(ConfigError, match="one entry per stack"):
        ResNetV2Config(stack_units=3)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("in_channels", 0),
        ("num_classes", -3),
        ("stem_channels", 0),
        ("latent_dim", 0),
        ("stem_kernel", 4),
        ("dropout", 1.0),
        ("stack_channels", (16, 0, 64)),
    ],
)
def test_bad_numbers_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        ResNetV2Config(**{field: value})


def test_zero_init_needs_shortcuts() -> None:
    with pytest.raises(ConfigError, match="zero_init_last.*residual"):
        create_model("plain-20", zero_init_last=True)


def test_config_errors_are_value_errors_and_valid_configs_build() -> None:
    with pytest.raises(ValueError):
        ResNetV2Config(stack_units=(0,), stack_channels=(8,))
    model = build_model(
        ResNetV2Config(
            stack_units=(1,), stack_channels=(8,), unit="basic", stem_channels=4, num_classes=3
        )
    )
    assert model.head.fc.out_features == 3


# --- wrong types: named, never a truthy string taken for True or a raw TypeError -----------

BOOL_FIELDS = ["residual", "stack_shortcut", "zero_init_last"]


@pytest.mark.parametrize("field", BOOL_FIELDS)
@pytest.mark.parametrize("value", ["no", "off", "false", "", 1, 0, None])
def test_yes_no_fields_take_only_real_booleans(field: str, value: object) -> None:
    # "no" is a truthy string: before the check, residual="no" built the residual net
    with pytest.raises(ConfigError, match=rf"ResNetV2Config\.{field}=.* must be True or False"):
        create_model("resnetv2-20", **{field: value})


def test_residual_false_builds_the_plain_net() -> None:
    plain = create_model("resnetv2-20", residual=False)
    assert count_parameters(plain) == count_parameters(create_model("plain-20"))
    assert count_parameters(plain) < count_parameters(create_model("resnetv2-20"))


@pytest.mark.parametrize(
    ("preset", "field", "value", "kind"),
    [
        ("resnetv2-20", "bottleneck_ratio", "abc", "a finite number"),
        ("resnetv2-20", "bottleneck_ratio", float("inf"), "a finite number"),
        ("resnetv2-20", "dropout", "abc", "a finite number"),
        ("resnetv2-20", "dropout", True, "a finite number"),
        ("resnetv2-20", "activation", 5, "a name"),
        ("resnetv2-20", "norm", None, "a name"),
        ("resnetv2-20", "stem_channels", 8.0, "an integer"),
        ("resnetv2-20", "latent_dim", "16", "an integer"),
        ("resnetv2-20", "stack_units", [2, "2", 2], "a sequence of integers"),
        ("resnetv1-20", "residual", "yes", "True or False"),
        ("plain-20", "stack_shortcut", "on", "True or False"),
        ("simple-cnn", "channels", 5, "a sequence of integers"),
        ("simple-cnn", "channels", ["a"], "a sequence of integers"),
        ("simple-cnn", "dropout", "x", "a finite number"),
        ("simple-cnn", "hidden", 1.5, "an integer"),
        ("simple-cnn", "activation", 3, "a name"),
    ],
)
def test_wrong_types_name_the_field(preset: str, field: str, value: object, kind: str) -> None:
    with pytest.raises(ConfigError, match=rf"Config\.{field}=.* must be {kind}"):
        create_model(preset, **{field: value})


def test_numpy_numbers_and_lists_are_accepted_as_python_values() -> None:
    np = pytest.importorskip("numpy")
    config = ResNetV2Config(
        stem_channels=np.int64(8),
        dropout=np.float32(0.5),
        stack_units=[1, np.int64(2)],
        stack_channels=[8, 16],
    )
    assert type(config.stem_channels) is int and config.stem_channels == 8
    assert type(config.dropout) is float
    assert config.stack_units == (1, 2) and all(type(u) is int for u in config.stack_units)
    assert SimpleCNNConfig(channels=[8, 16]).channels == (8, 16)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_saturating_activations_are_available(name: str) -> None:
    model = create_model("plain-20", activation=name, norm="none")
    acts = {type(m).__name__.lower() for m in model.modules()}
    assert name in acts and "relu" not in acts


# --- one message per validation rule, and the order in which the rules are checked ---------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stem_stride": 0}, "ResNetV2Config.stem_stride=0 must be a positive integer"),
        ({"latent_dim": -2}, "ResNetV2Config.latent_dim=-2 must be a positive integer"),
        (
            {"stem_kernel": 4},
            "ResNetV2Config.stem_kernel=4 must be odd (3 or 7) so that 'same' padding keeps "
            "the map centred",
        ),
        (
            {"stack_units": (), "stack_channels": ()},
            "ResNetV2Config.stack_units is empty; give at least one stack, "
            "e.g. stack_units=(2, 2, 2)",
        ),
        (
            {"stack_strides": (1, 2)},
            "ResNetV2Config.stack_strides has 2 entries but stack_units has 3; "
            "give one entry per stack",
        ),
        (
            {"stack_channels": (16, 0, 64)},
            "ResNetV2Config.stack_channels[1]=0 must be a positive integer",
        ),
        (
            {"stack_strides": (1, 0, 2)},
            "ResNetV2Config.stack_strides[1]=0 must be a positive integer",
        ),
        (
            {"bottleneck_ratio": -0.5},
            "ResNetV2Config.bottleneck_ratio=-0.5 must be > 0 (1/4 as He et al., 1/2 as Atienza)",
        ),
        (
            {"bottleneck_ratio": 0.01},
            "ResNetV2Config.bottleneck_ratio=0.01 gives int(64 * 0.01) = 0 bottleneck channels "
            "in stack 0 (stack_channels[0]=64); use bottleneck_ratio >= 0.01562 or wider stacks",
        ),
        ({"dropout": -0.1}, "ResNetV2Config.dropout=-0.1 must be in [0, 1)"),
        (
            {"zero_init_last": True, "residual": False},
            "ResNetV2Config.zero_init_last=True needs residual=True: in a plain network it "
            "would zero the signal itself; set one of them to False",
        ),
    ],
)
def test_each_rule_has_its_whole_message(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ResNetV2Config(**fields)
    assert str(info.value) == message


def test_the_first_broken_rule_is_the_one_reported() -> None:
    # The rules run in a fixed order: sizes, layer names, stacks, bottleneck, dropout,
    # zero-init, image size. Each config below breaks every rule from one point on.
    broken = {
        "image_size": 1,
        "zero_init_last": True,
        "residual": False,
        "dropout": 2.0,
        "bottleneck_ratio": 0.0,
        "stack_strides": (1, 0, 2),
        "unit": "bottle",
        "stem_kernel": 2,
    }
    expected = [
        ("stem_kernel", "must be odd"),
        ("unit", "is not allowed"),
        ("stack_strides", "must be a positive integer"),
        ("bottleneck_ratio", "must be > 0"),
        ("dropout", "must be in [0, 1)"),
        ("zero_init_last", "needs residual=True"),
        ("image_size", "is too small"),
    ]
    for field, words in expected:
        with pytest.raises(ConfigError) as info:
            ResNetV2Config(**broken)
        assert str(info.value).startswith(f"ResNetV2Config.{field}"), str(info.value)
        assert words in str(info.value)
        del broken[field]
        if field == "zero_init_last":
            del broken["residual"]
    assert not broken  # every rule was reached
    # A basic unit has no bottleneck: the ratio rule is skipped, the next one reports.
    with pytest.raises(ConfigError, match=r"^ResNetV2Config\.dropout="):
        ResNetV2Config(unit="basic", bottleneck_ratio=0.0, dropout=1.0)
