"""What differs between stored runs: their config fields, ``extra`` ones included.

``resnetlab compare`` shows each field that differs as a column of its own, so the model,
the train limit or the normalisation of a run are as visible as its learning rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

# Fields that differ between any two runs without telling them apart (the run folder),
# or that repeat another column (the model has its own; the batch plan's text repeats
# lr and batch size).
NOT_COMPARED = frozenset({"run_dir", "model", "batch_plan", "base_lr", "rank"})


def flat_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's fields with those of ``extra`` beside them (``extra.`` prefixed only
    where a top-level field has the same name)."""
    out = {k: v for k, v in config.items() if k != "extra"}
    for key, value in (config.get("extra") or {}).items():
        out[f"extra.{key}" if key in out else key] = value
    return out


def format_value(value: Any) -> str:
    """A config value in full, compactly: 0.2, [0.286, 0.353], {'dropout': 0.1}, -."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def differing_fields(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The flattened config fields whose values are not the same in every run, in order of
    the first run's fields then the others'."""
    flats = [flat_config(c) for c in configs]
    names: list[str] = []
    for flat in flats:
        names += [k for k in flat if k not in names and k not in NOT_COMPARED]

    def same(name: str) -> bool:
        return len({json.dumps(f.get(name), sort_keys=True, default=str) for f in flats}) == 1

    return [name for name in names if not same(name)]
