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


def test_bottleneck_arms_compare_at_equal_depth_and_at_equal_parameters():
    specs = bottleneck_ratio.specs(ExperimentOptions(depths=(20,), width=8, seeds=1))
    assert [s.label for s in specs] == [
        "ratio 1/4",
        "ratio 1/2, same widths",
        "ratio 1/2, equal params",
    ]
    ref, same_width, equal = specs
    counts = [_params(s) for s in specs]
    assert [s.overrides["bottleneck_ratio"] for s in specs] == [0.25, 0.5, 0.5]
    # equal depth: same units and widths, so the 1/2 net has clearly more parameters
    assert same_width.overrides["stack_channels"] == ref.overrides["stack_channels"]
    assert counts[1] > 1.3 * counts[0]
    # equal parameters: narrower stacks bring the count within a few percent
    assert abs(counts[2] - counts[0]) / counts[0] < 0.06, counts
    assert {s.overrides["stack_units"] for s in specs} == {(2, 2, 2)}


def test_degradation_pairs_differ_only_by_the_shortcuts():
    specs = degradation.specs(ExperimentOptions(depths=(11, 38), width=4, seeds=1))
    assert [s.label for s in specs] == [
        "plain-11",
        "resnetv1-11",
        "resnetv2-11",
        "plain-38",
        "resnetv1-38",
        "resnetv2-38",
    ]
    plain, v1, res = (
        create_model(s.preset, in_channels=1, image_size=28, **dict(s.overrides)) for s in specs[3:]
    )
    assert v1.config.activation_order == "post" and res.config.activation_order == "pre"
    assert v1.config.depth == 38
    assert plain.config.depth == res.config.depth == 38
    assert not plain.config.residual and res.config.residual
    # the only extra parameters of the ResNet are its projection shortcuts
    projections = sum(p.numel() for n, p in res.named_parameters() if ".shortcut." in n)
    assert count_parameters(res) - count_parameters(plain) == projections > 0
    with pytest.raises(ConfigError, match="9n"):
        degradation.specs(ExperimentOptions(depths=(20, 50)))


def test_stack_shortcut_runs_every_seed_with_and_without():
    specs = stack_shortcut.specs(ExperimentOptions(depths=(20, 56), seeds=2))
    # the deepest depth: resnetv2-56, as the question is asked
    assert {s.label for s in specs} == {"resnetv2-56", "resnetv2-56+stack"}
    assert [(s.group, s.seed, s.overrides["stack_shortcut"]) for s in specs] == [
        ("without", 0, False),
        ("without", 1, False),
        ("with", 0, True),
        ("with", 1, True),
    ]


@pytest.mark.parametrize("flip", [True, False])
def test_flip_option_mirrors_training_images_and_keeps_evaluation_plain(flip):
    """``--flip`` reaches the training batches (some images arrive mirrored, none without
    it), and the error curves are plain: no test-time flips, whatever ``--flip`` says."""
    import torch

    from resnetlab.inspect.experiments.runner import _loaders, load_data, train_config

    options = ExperimentOptions(subset=256, test_subset=64, flip=flip, batch_size=64)
    data = load_data(options)
    cpu = torch.device("cpu")
    train, _, _ = _loaders(data, options, seed=0, device=cpu)
    seen = torch.cat([x.float().reshape(len(x), -1) for x, _ in train])
    images = (data.train_images.float() / 255 - data.mean[0]) / data.std[0]
    # (the loader normalises in its own order: close, not bit-equal; images differ by >> 1)
    as_is = torch.cdist(seen, images.reshape(len(images), -1)).min(1).values < 0.5
    mirror = torch.cdist(seen, images.flip(3).reshape(len(images), -1)).min(1).values < 0.5
    assert bool((as_is | mirror).all())  # nothing but the images and their mirrors
    flipped = int((mirror & ~as_is).sum())
    assert (flipped > len(seen) // 4) if flip else flipped == 0, (flipped, len(seen))
    config = train_config(
        degradation.specs(options)[0],
        data,
        options,
        experiment="degradation",
        epochs=1,
        steps_per_epoch=len(train),
        device=cpu,
    )
    assert config.flip is flip and not config.eval_flips


def test_error_curves_show_the_end_of_training():
    """The error axis stops at 2.5x the highest final error (He et al.'s Fig. 1 view): the
    first epoch's ~80% leaves the top instead of squashing the last epochs into a line."""
    import numpy as np

    from resnetlab.inspect.experiments.report import error_curves
    from resnetlab.inspect.experiments.runner import RunOutcome, RunSpec

    def outcome(label: str, final: float) -> RunOutcome:
        epochs = np.arange(1, 7, dtype=float)
        errors = np.linspace(0.8, final, 6)
        return RunOutcome(
            RunSpec(label, "plain-20", {}),
            params=1,
            depth=20,
            epochs=6,
            steps_per_epoch=1,
            seconds=1.0,
            run_id=None,
            history=[],
            train_curve=(epochs, errors),
            test_curve=(epochs, errors + 0.01),
            grad_layers=[],
            grad_steps=np.zeros(0),
            grad_norms=np.zeros((0, 0)),
        )

    fig = error_curves([("plain", [outcome("plain-20", 0.09), outcome("plain-56", 0.12)])])
    bottom, top = fig.axes[0].get_ylim()
    assert bottom == 0.0 and top == pytest.approx(2.5 * 0.13)
