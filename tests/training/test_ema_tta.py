"""Flip test-time augmentation: the wrapper averages the logits of an image and its mirror."""

from __future__ import annotations

import torch
from torch import nn

from resnetlab.training.tta import FlipAverage


def test_flip_average_is_the_mean_of_both_views():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.LazyLinear(4))
    x = torch.randn(5, 1, 8, 8)
    model(x)  # materialise the lazy layer
    model.eval()
    expected = 0.5 * (model(x) + model(x.flip(3)))
    torch.testing.assert_close(FlipAverage(model).eval()(x), expected)


def test_flip_average_of_a_mirror_symmetric_model_changes_nothing():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())  # blind to left-right
    x = torch.randn(3, 2, 6, 6)
    torch.testing.assert_close(FlipAverage(model)(x), model(x))
