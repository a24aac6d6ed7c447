"""Filter patterns: gradient ascent raises the chosen map's mean activation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnetlab.errors import ConfigError
from resnetlab.inspect.filters import FilterPatternConfig, filter_patterns, map_means
from resnetlab.models import create_model


@pytest.mark.parametrize(
    ("preset", "layer", "jitter"),
    [
        ("simple-cnn", "blocks.1.conv", 1),  # a plain CNN, with jitter
        ("resnetv2-micro", "stacks.1.units.0.layers.1.conv", 0),  # a layer inside a residual unit
        ("resnetv2-mini", "stacks.2.units.0.layers.1.conv", 0),  # the innermost layer
    ],
)
def test_gradient_ascent_increases_the_chosen_maps_activation(preset, layer, jitter, fmnist_batch):
    torch.manual_seed(0)
    model = create_model(preset, in_channels=1, image_size=28).eval()
    channels = [0, 3, 5, 7]
    # blur and decay on (the defaults), normalised gradient steps
    fp = filter_patterns(
        model, layer, channels, (1, 28, 28), FilterPatternConfig(steps=32, seed=1, jitter=jitter)
    )
    assert fp.images.shape == (4, 1, 28, 28)
    # The chosen map's mean activation rose from the starting noise's, and the pattern
    # excites it more than any of 64 real Fashion-MNIST images does.
    with torch.no_grad():
        real = torch.stack([map_means(model, layer, fmnist_batch[0], [c] * 64) for c in channels])
    real_max = real.max(1).values.numpy()
    assert (fp.final_activation > fp.start_activation).all(), (
        fp.start_activation,
        fp.final_activation,
    )
    assert (fp.final_activation > real_max).all(), (fp.final_activation, real_max)

    # The recorded numbers are what the model really gives for the returned patterns ...
    with torch.no_grad():
        again = map_means(model, layer, fp.images, channels).numpy()
    np.testing.assert_allclose(again, fp.final_activation, rtol=1e-4, atol=1e-5)
    # ... and each pattern excites its own map more than the other maps' patterns do.
    with torch.no_grad():
        cross = np.array(
            [
                [map_means(model, layer, fp.images[j : j + 1], [c]).item() for j in range(4)]
                for c in channels
            ]
        )  # (map, pattern)
    assert (cross.argmax(1) == np.arange(4)).all(), cross


def test_model_is_left_as_it_was():
    model = create_model("resnetv2-micro", in_channels=1, image_size=28).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    filter_patterns(
        model, "stacks.0.units.0.layers.1.conv", 2, (1, 28, 28), FilterPatternConfig(steps=3)
    )
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=k)  # BN statistics untouched too


def test_bad_channels_are_named():
    model = create_model("resnetv2-micro", in_channels=1, image_size=28)
    with pytest.raises(ConfigError, match="maps 0..7"):
        filter_patterns(model, "stacks.0.units.0.layers.1.conv", [2, 99], (1, 28, 28))
    with pytest.raises(ConfigError, match="steps"):
        FilterPatternConfig(steps=0)
