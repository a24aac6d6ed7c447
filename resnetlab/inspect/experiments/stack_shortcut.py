"""``stack-shortcut``: does bridging a whole residual stack with one more shortcut help?

resnetv2-N (N: the deepest of ``--depths``, 56 by default) with and without
``stack_shortcut=True`` (an identity around each stack where its input and output shapes
match, a strided 1x1 projection where the stack halves the resolution and widens), equal
budget, several seeds. The report gives mean ± std of the final errors, Welch's t-test
between the two arms, the training curves, and says plainly what the difference supports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from resnetlab.inspect.experiments.degradation import cifar_overrides, seeds_of
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

NAME = "stack-shortcut"
TITLE = "Stack shortcuts: one more shortcut around each whole residual stack"
DEFAULT_SEEDS = 3


def depth_of(options: ExperimentOptions) -> int:
    return max(options.depths)


def specs(options: ExperimentOptions) -> list[RunSpec]:
    depth = depth_of(options)
    base = cifar_overrides(options, depth)
    return [
        RunSpec(
            f"resnetv2-{depth}{suffix}",
            "resnetv2-20",
            {**base, "stack_shortcut": flag},
            seed=seed,
            group=group,
        )
        for flag, suffix, group in ((False, "", "without"), (True, "+stack", "with"))
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
    """Write ``<out>/stack-shortcut.md`` from the completed runs; returns its path."""
    report = Report(NAME, TITLE, options, Path(out), how_line=how, hardware_line=hardware_line)
    report.seeds_line = f"{seeds_of(options, DEFAULT_SEEDS)} seeds per arm"
    depth = depth_of(options)
    without, with_ = f"resnetv2-{depth}", f"resnetv2-{depth}+stack"
    groups = by_arm(outcomes)
    report.text(f"""
The open question: a residual unit bridges two or three layers; why not also bridge a
whole stack of units? Here resnetv2-{depth} is trained with and without a shortcut around
each of its three stacks (identity where the shape stays, a 1x1 projection where the
stack halves the resolution and widens), same recipe and budget.
""")
    if missing:
        report.text(missing_line(missing))
    stats_table(report, groups, without)
    report.text(
        "## Result\n\n"
        + compare_line(groups, with_, without)
        + "\n\n"
        + compare_line(groups, with_, without, metric="train")
        + """

Why one might expect little: inside a ResNet V2 stack the identity path already runs
unbroken from the stack's input to its output (each unit adds to it), so a stack
shortcut adds a second copy of the input to a sum that already contains it; only the
projection shortcuts of the first unit differ. Its effect is mostly a rescaling of the
residual stream at each stack's end."""
    )
    report.figure(
        mean_std_bars(
            [(k, test_errors(v)) for k, v in groups.items()],
            ylabel="final test error",
            title="test error per seed",
        ),
        "test-error.png",
        "Final test error, mean ± std over seeds (dots: seeds)",
    )
    report.figure(
        error_curves(
            [(k, v) for k, v in groups.items()],
            title="training error (thin) and test error (dashed), every seed",
        ),
        "curves.png",
        "Error curves of every seed",
    )
    return report.write(seconds)


def run(options: ExperimentOptions, out: str | Path) -> Path:
    """Train every run in this process, then write ``<out>/stack-shortcut.md``."""
    with timed() as clock:
        outcomes, _ = run_all(NAME, specs(options), options)
    return write(outcomes, options, out, seconds=clock.seconds, how="runs one after another")
