"""Combining the metrics of several ranks into what one process would have logged.

Pure functions over the per-rank values (already gathered); the collectives live in
:mod:`resnetlab.distributed.context`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Rates and counts add up over ranks (2 ranks at 500 images/s each: 1000 images/s).
SUM_KEYS: frozenset[str] = frozenset(
    {
        "images_per_s",
        "samples_per_s",
        "val_images_per_s",
        "samples",
        "num_samples",
        "images",
    }
)


def _number(value: Any) -> float | None:
    """A plain float for numbers and 0-d tensors/arrays; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        out = item()
        return float(out) if isinstance(out, numbers.Real) and not isinstance(out, bool) else None
    return None


def plain_value(value: Any) -> Any:
    """Python numbers and strings as they are; 0-d tensors/arrays as a float (picklable)."""
    if isinstance(value, (numbers.Real, str)):
        return value
    number = _number(value)
    return value if number is None else number


def combine_metrics(
    per_rank: Sequence[tuple[Mapping[str, Any], float]], sum_keys: Iterable[str] = SUM_KEYS
) -> dict[str, Any]:
    """Merge ``[(metrics, weight), ...]`` (one pair per rank, rank order) into one dict.

    * keys in ``sum_keys`` (throughput, counts) are summed;
    * every other number is the mean weighted by ``weight`` (the samples behind it), so a
      rank with a short last batch counts less;
    * a value that is the same on every rank (step, epoch, lr, a string) is kept as is,
      type included;
    * a key missing on some ranks is combined over the ranks that have it.
    """
    sums = frozenset(sum_keys)
    keys: list[str] = []
    for metrics, _ in per_rank:
        keys.extend(k for k in metrics if k not in keys)
    out: dict[str, Any] = {}
    for key in keys:
        present = [(m[key], float(w)) for m, w in per_rank if key in m]
        values = [v for v, _ in present]
        first = values[0]
        numbers_ = [_number(v) for v in values]
        if any(n is None for n in numbers_):
            out[key] = first  # not a number: the first rank's (rank 0's) value
            continue
        floats = [n for n in numbers_ if n is not None]
        if key in sums:
            out[key] = math.fsum(floats)
        elif all(f == floats[0] for f in floats):
            out[key] = first if isinstance(first, numbers.Real) else floats[0]
        else:
            total = math.fsum(w for _, w in present)
            if total <= 0:
                out[key] = math.fsum(floats) / len(floats)
            else:
                out[key] = (
                    math.fsum(f * w for f, (_, w) in zip(floats, present, strict=True)) / total
                )
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def format_rank_lines(samples: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per rank for the system panel: ``rank 0 host cuda:0  cpu_percent=41.0 ...``."""
    lines = []
    for sample in samples:
        head = (
            f"rank {sample.get('rank', '?')} {sample.get('host', '?')} {sample.get('device', '')}"
        )
        rest = "  ".join(
            f"{k}={_fmt(v)}"
            for k, v in sample.items()
            if k not in ("rank", "host", "device", "local_rank")
        )
        lines.append(f"{head.rstrip()}  {rest}".rstrip())
    return lines


# Fields of a tagged system sample that say whose it is rather than measure something.
_SAMPLE_TAGS = frozenset({"rank", "local_rank", "host", "device"})


def rank_system_logs(samples: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The gathered per-rank system samples as flat metrics for the run's stream.

    ``[{"rank": 1, "host": "b", "cpu_percent": 40.0, "gpu_mem_gb": 3.2}, ...]`` becomes
    ``{"rank1/cpu_percent": 40.0, "rank1/gpu_mem_gb": 3.2, ...}``: one series per rank
    and measure, stored with the run and plotted like any metric. Tags and values that
    are not numbers are left out.
    """
    out: dict[str, float] = {}
    for index, sample in enumerate(samples):
        rank = sample.get("rank", index)
        for key, value in sample.items():
            number = _number(value)
            if key not in _SAMPLE_TAGS and number is not None:
                out[f"rank{rank}/{key}"] = number
    return out
