"""Any config that validates builds a network whose shapes agree with the config."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models_helpers import trace

from resnetlab.errors import ConfigError
from resnetlab.models import Projection, ResNetV2Config, build_model, rebuild_model


@st.composite
def configs(draw: st.DrawFn) -> dict:
    stacks = draw(st.integers(1, 4))
    return dict(
        in_channels=draw(st.integers(1, 3)),
        num_classes=draw(st.integers(1, 5)),
        image_size=draw(st.integers(1, 20)),
        stem_channels=draw(st.integers(1, 8)),
        stem_kernel=draw(st.sampled_from([1, 3, 5, 7])),
        stem_stride=draw(st.integers(1, 2)),
        stem_pool=draw(st.sampled_from(["none", "max", "conv"])),
        stack_units=tuple(draw(st.integers(1, 2)) for _ in range(stacks)),
        stack_channels=tuple(draw(st.integers(1, 12)) for _ in range(stacks)),
        stack_strides=tuple(draw(st.integers(1, 3)) for _ in range(stacks)),
        unit=draw(st.sampled_from(["bottleneck", "basic"])),
        bottleneck_ratio=draw(st.sampled_from([0.25, 0.5, 1.0])),
        stride_layer=draw(st.sampled_from(["first", "3x3"])),
        activation_order=draw(st.sampled_from(["pre", "post"])),
        residual=draw(st.booleans()),
        stack_shortcut=draw(st.booleans()),
        norm=draw(st.sampled_from(["batchnorm", "groupnorm", "none"])),
        latent_dim=draw(st.none() | st.integers(1, 4)),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_valid_configs_build_and_match_their_stage_sizes(fields: dict) -> None:
    try:
        config = ResNetV2Config(**fields)
    except ConfigError as exc:
        # only the documented reasons: a ratio that leaves no channel, or a too-small image
        assert "bottleneck_ratio" in str(exc) or "image_size" in str(exc), exc
        return
    model = build_model(config).eval()
    x = torch.randn(2, config.in_channels, config.image_size, config.image_size)
    with trace(model, max_parts=2) as calls, torch.no_grad():
        out = model(x)
    assert out.shape == (2, config.latent_dim or config.num_classes)
    sides = {c.path: c.output.shape[-1] for c in calls if c.path.startswith("stacks.")}
    expected = dict(config.stage_sizes())
    for i in range(len(config.stack_units)):
        assert sides[f"stacks.{i}"] == expected[f"stack {i}"]
    has_projection = any(isinstance(m, Projection) for m in model.modules())
    if not config.residual and not config.stack_shortcut:
        assert not has_projection
    assert rebuild_model(model.spec).spec == model.spec


def test_a_too_small_image_is_caught_before_any_stage_collapses() -> None:
    with pytest.raises(ConfigError, match="stem \\(stride 2\\)"):
        ResNetV2Config(image_size=1, stem_stride=2)
