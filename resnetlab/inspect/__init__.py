"""Inspect what a network learned and why residual shortcuts matter.

>>> from resnetlab.inspect import feature_maps, plot_feature_maps
>>> fm = feature_maps(model, "stacks.2.units.0.layers.1.conv", image)   # (C, H, W) maps
>>> plot_feature_maps(fm)                                               # grid + mean bars

* feature maps (:mod:`.activations`), filter patterns by gradient ascent (:mod:`.filters`),
* gradient norms per conv layer / unit / stack and the training callback (:mod:`.gradients`),
* the stack / unit / layer graph with shapes and shortcuts (:mod:`.graph`),
* experiments with Markdown reports (:mod:`.experiments`).

Names are imported lazily: ``import resnetlab.inspect`` does not import torch.
"""

from __future__ import annotations

from resnetlab.utils.lazy import lazy_exports

_LAZY = {
    "find_layer": "resnetlab.inspect.layers",
    "conv_layers": "resnetlab.inspect.layers",
    "capture": "resnetlab.inspect.activations",
    "FeatureMaps": "resnetlab.inspect.activations",
    "feature_maps": "resnetlab.inspect.activations",
    "plot_feature_maps": "resnetlab.inspect.activations",
    "FilterPatternConfig": "resnetlab.inspect.filters",
    "FilterPatterns": "resnetlab.inspect.filters",
    "filter_patterns": "resnetlab.inspect.filters",
    "plot_filter_patterns": "resnetlab.inspect.filters",
    "GradientNormCallback": "resnetlab.inspect.gradients",
    "gradient_norms": "resnetlab.inspect.gradients",
    "measure_gradient_norms": "resnetlab.inspect.gradients",
    "norms_from_stream": "resnetlab.inspect.gradients",
    "plot_gradient_norms": "resnetlab.inspect.gradients",
    "norm_ratio": "resnetlab.inspect.gradients",
    "main_path_ends": "resnetlab.inspect.gradients",
    "GraphNode": "resnetlab.inspect.graph",
    "model_graph": "resnetlab.inspect.graph",
    "format_graph": "resnetlab.inspect.graph",
    "plot_graph": "resnetlab.inspect.graph",
    "save_figure": "resnetlab.inspect.figures",
    "dataset_sample": "resnetlab.inspect.sources",
    "load_model": "resnetlab.inspect.sources",
    "run_experiment": "resnetlab.inspect.experiments",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
