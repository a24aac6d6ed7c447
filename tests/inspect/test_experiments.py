"""Experiment set-ups: what is compared really differs only where it should."""

from __future__ import annotations

import pytest

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments import bottleneck_ratio, degradation, stack_shortcut
from resnetlab.inspect.experiments.runner import ExperimentOptions
from resnetlab.models import count_parameters, create_model


def _params(spec) -> int:
    return count_parameters(
        create_model(spec.preset, in_channels=1, image_size=28, **dict(spec.overrides))
    )


def test_bottleneck_variants_have_similar_parameter_counts():
    specs = bottleneck_ratio.specs(ExperimentOptions(depths=(20,), width=8))
    assert [s.label for s in specs] == ["bottleneck 0.25", "bottleneck 0.5", "basic"]
    counts = [_params(s) for s in specs]
    assert all(abs(c - counts[0]) / counts[0] < 0.06 for c in counts), counts
    assert [s.overrides.get("bottleneck_ratio") for s in specs[:2]] == [0.25, 0.5]
    assert specs[2].overrides["unit"] == "basic"


def test_degradation_pairs_differ_only_by_the_shortcuts():
    specs = degradation.specs(ExperimentOptions(depths=(11, 38), width=4))
    assert [s.label for s in specs] == ["plain-11", "resnetv2-11", "plain-38", "resnetv2-38"]
    plain, res = (
        create_model(s.preset, in_channels=1, image_size=28, **dict(s.overrides)) for s in specs[2:]
    )
    assert plain.config.depth == res.config.depth == 38
    assert not plain.config.residual and res.config.residual
    # the only extra parameters of the ResNet are its projection shortcuts
    projections = sum(p.numel() for n, p in res.named_parameters() if ".shortcut." in n)
    assert count_parameters(res) - count_parameters(plain) == projections > 0
    with pytest.raises(ConfigError, match="9n"):
        degradation.specs(ExperimentOptions(depths=(20, 50)))


def test_stack_shortcut_runs_every_seed_with_and_without():
    specs = stack_shortcut.specs(ExperimentOptions(depths=(20, 56), seeds=2))
    assert [(s.group, s.seed, s.overrides["stack_shortcut"]) for s in specs] == [
        ("without", 0, False),
        ("without", 1, False),
        ("with", 0, True),
        ("with", 1, True),
    ]
