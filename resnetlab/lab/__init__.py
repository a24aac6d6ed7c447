"""Experiments as background work: arms as process jobs under one live comparison.

``resnetlab.experiment("stack-shortcut", budget="1ep")`` (:func:`start_experiment`)
returns an :class:`ExperimentJob` at once; see :mod:`resnetlab.lab.experiment`. This
layer sits above ``jobs/`` (which runs the processes) and ``inspect/experiments`` (what
an experiment trains and how its report reads), and joins them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExperimentJob", "start_experiment"]


def __getattr__(name: str) -> Any:
    # torch and the job machinery load on first use, as the package's lazy exports do.
    if name in __all__:
        from resnetlab.lab import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'resnetlab.lab' has no attribute {name!r}")
