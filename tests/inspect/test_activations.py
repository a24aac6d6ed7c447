"""Feature maps: one tile per channel of the chosen layer, the right values in each tile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnetlab.errors import ConfigError
from resnetlab.inspect.activations import feature_maps, plot_feature_maps, tile_at
from resnetlab.models import create_model

LAYER = "stacks.2.units.0.layers.1.conv"  # the innermost conv of resnetv2-mini: 128 maps of 4x4


@pytest.fixture(scope="module")
def mini():
    torch.manual_seed(0)
    return create_model("resnetv2-mini", in_channels=1, image_size=28).eval()


def test_feature_grid_has_one_tile_per_channel(mini, fmnist_batch):
    image = fmnist_batch[0][0]
    fm = feature_maps(mini, LAYER, image)
    assert fm.maps.shape == (128, 4, 4)

    fig = plot_feature_maps(fm)
    (grid_ax,) = [ax for ax in fig.axes if ax.get_label() == "feature-maps"]
    mosaic = grid_ax.get_images()[0].get_array().filled(np.nan)
    tiles = [tile_at(mosaic, i, (4, 4), max_cols=16, n=128) for i in range(128)]
    # every channel has its own tile showing that map (scaled to its own range) ...
    for i, tile in enumerate(tiles):
        m = fm.maps[i].numpy()
        expected = (m - m.min()) / (m.max() - m.min())
        np.testing.assert_allclose(tile, expected, atol=1e-6, err_msg=f"tile {i}")
    # ... and nothing else is drawn: the rest of the mosaic is background (NaN)
    painted = sum(np.isfinite(t).sum() for t in tiles)
    assert np.isfinite(mosaic).sum() == painted == 128 * 16

    (bar_ax,) = [ax for ax in fig.axes if ax.get_label() == "mean-activation"]
    heights = [p.get_height() for p in bar_ax.patches]
    assert len(heights) == 128
    np.testing.assert_allclose(heights, fm.maps.flatten(1).mean(1).numpy(), rtol=1e-5, atol=1e-7)


def test_feature_maps_match_the_forward_pass_and_leave_the_model_alone(mini, fmnist_batch):
    image = fmnist_batch[0][3]
    mini.train()
    fm = feature_maps(mini, "stem.act", image)
    assert mini.training, "feature_maps must restore training mode"
    assert not any(m._forward_hooks for m in mini.modules()), "hooks must be removed"
    mini.eval()
    with torch.no_grad():
        expected = mini.stem(image[None])[0]
    torch.testing.assert_close(fm.maps, expected)
    assert (fm.maps >= 0).all()  # after the ReLU


def test_unknown_layer_names_close_matches(mini, fmnist_batch):
    with pytest.raises(ConfigError, match=r"stacks\.2\.units\.0\.layers\.1\.conv"):
        feature_maps(mini, "stacks.2.units.0.layers.1.cnv", fmnist_batch[0][0])


def test_a_layer_whose_parts_are_called_one_by_one_points_to_them(mini, fmnist_batch):
    # the first layer of a unit with a projection: the unit calls its BN/ReLU and conv itself
    with pytest.raises(ConfigError, match=r"use one of .*stacks\.1\.units\.0\.layers\.0\.conv"):
        feature_maps(mini, "stacks.1.units.0.layers.0", fmnist_batch[0][0])
