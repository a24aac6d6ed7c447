"""``bottleneck-ratio``: bottleneck ratio 1/4 (He) vs 1/2 (Atienza), at equal depth and
at roughly equal parameter count.

Three arms with the same units per stack: the 1/4 reference, 1/2 at the same stack widths
(equal depth and widths: about 1.6x the parameters), and 1/2 with narrower stacks chosen so
its parameter count comes as close to the reference as whole widths allow (the report
lists the counts). Mean ± std over seeds and Welch's t-test against the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from resnetlab.inspect.experiments.degradation import cifar_overrides, seeds_of, units_for
from resnetlab.inspect.experiments.report import (
    Report,
    by_arm,
    compare_line,
    error_curves,
    mean_std_bars,
    missing_line,
    stats_table,
    test_errors,
)
from resnetlab.inspect.experiments.runner import (
    ExperimentOptions,
    RunOutcome,
    RunSpec,
    run_all,
    timed,
)

NAME = "bottleneck-ratio"
TITLE = "Bottleneck ratio: 1/4 vs 1/2 at equal depth and at equal parameters"
DEFAULT_SEEDS = 3
REFERENCE = "ratio 1/4"
SAME_WIDTH = "ratio 1/2, same widths"
SAME_PARAMS = "ratio 1/2, equal params"


def _params(overrides: dict[str, Any]) -> int:
    from resnetlab.models import count_parameters, create_model

    with torch.device("meta"):
        return count_parameters(
            create_model("resnetv2-20", in_channels=1, image_size=28, **overrides)
        )


def _closest(make: Callable[[int], dict[str, Any]], target: int, hi: int) -> dict[str, Any]:
    """``make(b)`` for the whole width ``b`` whose parameter count is nearest ``target``."""
    # Parameters grow with the width: bisect for the first width at or above the target,
    # then take the nearer of it and the one below.
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _params(make(mid)) < target:
            lo = mid + 1
        else:
            hi = mid
    candidates = [make(b) for b in {max(lo - 1, 1), lo}]
    return min(candidates, key=lambda o: abs(_params(o) - target))


def variants(options: ExperimentOptions) -> list[tuple[str, dict[str, Any]]]:
    """(label, overrides) of the three arms."""
    ref = {**cifar_overrides(options, min(options.depths)), "bottleneck_ratio": 0.25}
    same_width = {**ref, "bottleneck_ratio": 0.5}
    equal = _closest(
        lambda b: {**same_width, "stack_channels": (b, 2 * b, 4 * b)},
        _params(ref),
        16 * options.width,
    )
    return [(REFERENCE, ref), (SAME_WIDTH, same_width), (SAME_PARAMS, equal)]


def specs(options: ExperimentOptions) -> list[RunSpec]:
    return [
        RunSpec(label, "resnetv2-20", overrides, seed=seed, group=label)
        for label, overrides in variants(options)
        for seed in range(seeds_of(options, DEFAULT_SEEDS))
    ]


def write(
    outcomes: Sequence[RunOutcome],
    options: ExperimentOptions,
    out: str | Path,
    *,
    seconds: float,
    missing: Sequence[str] = (),
    how: str = "",
    hardware_line: str = "",
) -> Path:
    """Write ``<out>/bottleneck-ratio.md`` from the completed runs; returns its path."""
    report = Report(NAME, TITLE, options, Path(out), how_line=how, hardware_line=hardware_line)
    report.seeds_line = f"{seeds_of(options, DEFAULT_SEEDS)} seeds per arm"
    groups = by_arm(outcomes)
    n, w = units_for(min(options.depths)), options.width
    report.text(f"""
A bottleneck unit squeezes nF maps to nF x ratio for its 3x3 conv: He et al. use 1/4,
Atienza's Keras ResNet V2 uses 1/2. Compared at **equal depth** (resnetv2 with {n} units
per stack, stack widths {4 * w}/{8 * w}/{16 * w} for both ratios: the 1/2 net has more
parameters) and at **roughly equal parameters** (the 1/2 net with narrower stacks).
""")
    if missing:
        report.text(missing_line(missing))
    widths = ["/".join(map(str, g[0].spec.overrides["stack_channels"])) for g in groups.values()]
    stats_table(report, groups, REFERENCE, extra={"stack widths": widths})
    lines = [
        compare_line(groups, SAME_WIDTH, REFERENCE),
        compare_line(groups, SAME_PARAMS, REFERENCE),
    ]
    report.text(
        "## Result\n\n"
        + "\n".join(f"- {x}" for x in lines)
        + "\n\nEqual parameters do not mean equal compute: see the seconds per run."
    )
    report.figure(
        mean_std_bars(
            [(k, test_errors(v)) for k, v in groups.items()],
            ylabel="final test error",
            title="test error per arm",
        ),
        "test-error.png",
        "Final test error per arm (dots: seeds)",
    )
    report.figure(
        error_curves(
            [(k, v) for k, v in groups.items()],
            title="training error (thin) and test error (dashed)",
        ),
        "curves.png",
        "Error curves per arm",
    )
    return report.write(seconds)


def run(options: ExperimentOptions, out: str | Path) -> Path:
    """Train every run in this process, then write ``<out>/bottleneck-ratio.md``."""
    with timed() as clock:
        outcomes, _ = run_all(NAME, specs(options), options)
    return write(outcomes, options, out, seconds=clock.seconds, how="runs one after another")
