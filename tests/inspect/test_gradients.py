"""Gradient norms per layer: the callback's records, and the deep-plain-net pathology.

About the pathology test: the plain preset is the ResNet's own layers without the
shortcuts, with batch normalisation and He initialisation, as He et al.'s plain baselines.
With BN in training mode the gradient of a deep plain stack does not vanish towards the
input: it *explodes* (Yang et al. 2019, "A Mean Field Theory of Batch Normalization").
So what the test asserts is the measured imbalance: in plain-56 at initialisation the
first conv layer's gradient norm is more than three orders of magnitude away from the
last layer's (it is larger), while in resnetv2-56 of the same depth and width the two stay
within two and a half orders, and the plain net's imbalance is at least 10x the residual
net's. Nothing is tuned to hide or create the effect: presets as they are, real images.
The textbook vanishing gradient is asserted separately, where it really happens: no norm
layer and a saturating activation (sigmoid).
"""

from __future__ import annotations

import math
import sqlite3

import pytest
import torch

from resnetlab.errors import ConfigError
from resnetlab.inspect.gradients import (
    GradientNormCallback,
    gradient_norms,
    main_path_ends,
    measure_gradient_norms,
    norm_ratio,
    norms_from_stream,
)
from resnetlab.inspect.layers import conv_layers
from resnetlab.models import create_model


def test_callback_records_one_value_per_conv_layer_per_interval(trained_run):
    trainer, callback, store_path = trained_run
    convs = [path for path, _ in conv_layers(trainer.model)]
    assert len(convs) == 6  # stem, 2 per unit, 1 projection (stack 1)
    seen: list[str] = trainer.stream.keys()
    keys = sorted(k for k in seen if k.startswith("grad_norm/"))
    assert keys == sorted(f"grad_norm/{p}" for p in convs)

    total = trainer.step
    assert total == 16  # 2 epochs x 8 batches
    expected_steps = list(range(0, total, 3))  # every 3 steps, from the first (at init)
    assert callback.records == len(expected_steps)
    for key in keys:
        steps, values = trainer.stream.series(key)
        assert steps.tolist() == expected_steps, key
        assert all(math.isfinite(v) and v > 0 for v in values), key

    # The same keys reached the run store (real SQLite file) through the trainer's logging.
    with sqlite3.connect(store_path) as db:
        rows = db.execute(
            "SELECT key, COUNT(*) FROM metrics WHERE key LIKE 'grad_norm/%' GROUP BY key"
        ).fetchall()
    assert sorted(rows) == [(k, len(expected_steps)) for k in keys]

    layers, steps, grid = norms_from_stream(trainer.stream)
    assert layers == convs and grid.shape == (6, len(expected_steps))
    assert steps.tolist() == expected_steps


def test_callback_by_unit_gives_one_value_per_unit():
    from resnetlab.metrics.stream import MetricStream

    model = create_model("resnetv2-micro", in_channels=1, image_size=28)
    loss = model(torch.randn(4, 1, 28, 28)).sum()
    loss.backward()

    class Trainer:  # only what the callback reads: model, step, stream
        def __init__(self):
            self.model, self.step, self.stream = model, 0, MetricStream()

    t = Trainer()
    GradientNormCallback(every=1, by="unit").on_after_backward(t, {})
    keys: list[str] = t.stream.keys()
    assert keys == ["grad_norm/stem", "grad_norm/stacks.0.units.0", "grad_norm/stacks.1.units.0"]
    per_layer = gradient_norms(model)
    unit1 = [v for k, v in per_layer.items() if k.startswith("stacks.1.units.0.")]
    assert t.stream.last("grad_norm/stacks.1.units.0") == pytest.approx(
        math.sqrt(sum(v * v for v in unit1)), rel=1e-5
    )
    with pytest.raises(ConfigError, match="every"):
        GradientNormCallback(every=0)


def _ratio(preset: str, batch, seed: int = 0) -> float:
    torch.manual_seed(seed)
    # The presets at depth 56, narrowed 4x so the test stays fast on a CPU.
    model = create_model(preset, in_channels=1, image_size=28, stack_channels=(16, 32, 64))
    norms = measure_gradient_norms(model, *batch)
    assert len(norms) == 55 + (2 if preset.startswith("resnet") else 0)  # + 2 projections
    return norm_ratio(norms)


def test_deep_plain_net_gradient_collapses_but_resnet_does_not(fmnist_batch):
    x, y = fmnist_batch
    batch = (x[:32], y[:32])
    plain = _ratio("plain-56", batch)
    residual = _ratio("resnetv2-56", batch)
    imbalance_plain, imbalance_res = abs(math.log10(plain)), abs(math.log10(residual))
    msg = f"first/last conv gradient norm: plain-56 {plain:.3g}, resnetv2-56 {residual:.3g}"
    # Measured on this CPU (seeds 0, 1): plain-56 1.3e4 and 2.1e4 (4.1-4.3 orders),
    # resnetv2-56 100 and 130 (about 2 orders, most of it the stem conv alone).
    assert imbalance_plain >= 3.0, msg  # orders of magnitude apart ...
    assert plain > 1, msg  # ... and with BN it explodes towards the input
    assert imbalance_res <= 2.5, msg  # the residual net stays much closer to balance
    assert imbalance_plain - imbalance_res >= 1.0, msg  # at least 10x less imbalance


def test_measuring_leaves_existing_gradients_alone(fmnist_batch):
    model = create_model("resnetv2-micro", in_channels=1, image_size=28).eval()
    model(fmnist_batch[0][:4]).sum().backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    norms = measure_gradient_norms(model, fmnist_batch[0][:8], fmnist_batch[1][:8])
    assert len(norms) == 6 and not model.training
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, before[n], msg=n)


def test_live_dashboard_heat_map_shows_the_callback_records(trained_run, tmp_path):
    dashboard = pytest.importorskip("resnetlab.live.dashboard", reason="live dashboard not built")
    trainer, callback, _ = trained_run
    dash = dashboard.Dashboard(
        ["grad_norms"], stream=trainer.stream, backend="agg", directory=str(tmp_path)
    )
    assert dash.refresh()
    images = [im for fig in dash.figures for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 1
    # one row per conv layer (the columns are the dashboard's own step binning)
    assert images[0].get_array().shape[0] == 6 and callback.records == 6


def test_ratio_ends_skip_projection_shortcuts():
    model = create_model("resnetv2-micro", in_channels=1, image_size=28, stack_shortcut=True)
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    norms = gradient_norms(model)
    assert list(norms)[-1].endswith("shortcut.conv")  # model order ends beside the path
    first, last = main_path_ends(norms)
    assert (first, last) == ("stem.conv", "stacks.1.units.0.layers.1.conv")
    assert norm_ratio(norms) == pytest.approx(norms[first] / norms[last])
    with pytest.raises(ConfigError, match="main path"):
        norm_ratio({"stem.conv": 1.0, "stacks.0.units.0.shortcut.conv": 2.0})


def _saturating_ratio(preset: str, batch, activation: str = "sigmoid") -> float:
    torch.manual_seed(0)
    model = create_model(
        preset,
        in_channels=1,
        image_size=28,
        stack_channels=(16, 32, 64),
        norm="none",
        activation=activation,
    )
    return norm_ratio(measure_gradient_norms(model, *batch))


def test_without_bn_a_deep_plain_sigmoid_net_loses_its_gradient(fmnist_batch):
    # The textbook vanishing gradient: no norm layer, a saturating activation (sigmoid'
    # is at most 1/4), 55 conv layers. Measured (seeds 0, 1): plain-56 first/last 4.6e-30
    # and 8.2e-30; resnetv2-56 7.4e-3 and 9.6e-3 (the identity path carries the gradient).
    x, y = fmnist_batch
    batch = (x[:32], y[:32])
    plain = _saturating_ratio("plain-56", batch)
    residual = _saturating_ratio("resnetv2-56", batch)
    msg = f"first/last conv gradient norm: plain-56 {plain:.3g}, resnetv2-56 {residual:.3g}"
    assert 0 < plain < 1e-6, msg  # vanished (and still measurable: not rounded to 0)
    assert residual > 1e-3, msg  # within three orders of the last layer
    assert residual / plain > 1e6, msg  # the shortcuts keep it alive
