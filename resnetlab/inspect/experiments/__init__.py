"""Experiments that show why residual networks are built the way they are.

``run_experiment("degradation", budget="2ep", out="docs/experiments")`` trains the runs
(recorded in the run store) and writes a Markdown report with plots; the CLI is
``resnetlab experiment NAME --budget ...``.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments.budget import Budget

# name -> (module, one-line description)
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "degradation": (
        "resnetlab.inspect.experiments.degradation",
        "plain-N vs resnetv1-N vs resnetv2-N at two depths: error curves, gradient norms",
    ),
    "stack-shortcut": (
        "resnetlab.inspect.experiments.stack_shortcut",
        "resnetv2-56 with/without a shortcut around each stack, several seeds",
    ),
    "bottleneck-ratio": (
        "resnetlab.inspect.experiments.bottleneck_ratio",
        "bottleneck 1/4 vs 1/2 at equal depth and at equal parameters",
    ),
}

__all__ = ["EXPERIMENTS", "Budget", "ExperimentOptions", "experiment_options", "run_experiment"]


def __getattr__(name: str) -> Any:
    # ExperimentOptions lives beside the torch-using runner: imported on first use only.
    if name == "ExperimentOptions":
        from resnetlab.inspect.experiments.runner import ExperimentOptions

        return ExperimentOptions
    raise AttributeError(f"module 'resnetlab.inspect.experiments' has no attribute {name!r}")


def experiment_options(budget: str | int | Budget, options: dict[str, Any]) -> Any:
    """:class:`ExperimentOptions` from a budget and keyword fields; unknown fields are a
    ConfigError that lists the known ones."""
    from resnetlab.inspect.experiments.runner import ExperimentOptions

    known = {f.name for f in dataclasses.fields(ExperimentOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown experiment options {unknown}; known: {sorted(known)}")
    options = dict(options)
    if "depths" in options:
        options["depths"] = tuple(int(d) for d in options["depths"])
    return ExperimentOptions(budget=Budget.parse(budget), **options)


def run_experiment(
    name: str,
    *,
    budget: str | int | Budget = "1ep",
    out: str | Path = "experiments",
    **options: Any,
) -> Path:
    """Run experiment ``name`` in this process, one run after another, and write its
    report into ``out``; returns the report path. (``resnetlab.experiment`` runs the arms
    as background process jobs instead.)

    ``options`` are :class:`ExperimentOptions` fields (``subset``, ``depths``, ``seeds``,
    ``width``, ``store``, ...).
    """
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    opts = experiment_options(budget, options)
    if opts.threads:  # before anything runs, so the report's hardware line is right
        import torch

        torch.set_num_threads(opts.threads)
    module = importlib.import_module(EXPERIMENTS[name][0])
    return module.run(opts, out)
