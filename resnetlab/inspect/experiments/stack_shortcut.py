"""``stack-shortcut``: does bridging a whole residual stack with one more shortcut help?

resnetv2-N with and without ``stack_shortcut=True`` (an identity, or a 1x1 projection
where the stack changes shape, around every stack), equal budget, several seeds. The
report gives mean ± std of the final errors and the training curves, and says plainly
whether the difference is larger than the spread between seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

from resnetlab.inspect.experiments.degradation import units_for
from resnetlab.inspect.experiments.report import Report, error_curves, mean_std, mean_std_bars, pct
from resnetlab.inspect.experiments.runner import ExperimentOptions, RunSpec, run_all

NAME = "stack-shortcut"
TITLE = "Stack shortcuts: one more shortcut around each whole residual stack"
DEFAULT_SEEDS = 3


def specs(options: ExperimentOptions) -> list[RunSpec]:
    depth = min(options.depths)
    n, w = units_for(depth), options.width
    base = {"stack_units": (n, n, n), "stack_channels": (4 * w, 8 * w, 16 * w), "stem_channels": w}
    seeds = DEFAULT_SEEDS if options.seeds is None else options.seeds
    return [
        RunSpec(
            f"resnetv2-{depth}{suffix}",
            "resnetv2-20",
            {**base, "stack_shortcut": flag},
            seed=seed,
            group=group,
        )
        for flag, suffix, group in ((False, "", "without"), (True, "+stack", "with"))
        for seed in range(seeds)
    ]


def run(options: ExperimentOptions, out: str | Path) -> Path:
    """Train, then write ``<out>/stack-shortcut.md``; returns its path."""
    t0 = time.perf_counter()
    report = Report(NAME, TITLE, options, Path(out))
    outcomes, _ = run_all(NAME, specs(options), options)
    groups = {g: [r for r in outcomes if r.spec.group == g] for g in ("without", "with")}
    depth = min(options.depths)
    report.text(f"""
The open question: a residual unit bridges two or three layers; why not also bridge a
whole stack of units? Here resnetv2-{depth} is trained with and without a shortcut around
each of its three stacks (identity where the shape stays, a 1x1 projection where the
stack halves the resolution and widens), {len(groups["with"])} seeds each, same recipe and
budget.
""")
    rows = []
    stats = {}
    for g, runs in groups.items():
        test = [r.final_test_error for r in runs]
        train = [r.final_train_error for r in runs]
        stats[g] = (mean_std(test), mean_std(train))
        (tm, ts), (rm, rs) = stats[g]
        rows.append(
            (
                f"{g} stack shortcut",
                f"{runs[0].params:,}",
                len(runs),
                f"{100 * rm:.2f} ± {100 * rs:.2f}%",
                f"{100 * tm:.2f} ± {100 * ts:.2f}%",
                f"{sum(r.seconds for r in runs) / len(runs):.0f}",
            )
        )
    report.table(
        [
            "variant",
            "params",
            "seeds",
            "train error (mean ± std)",
            "test error (mean ± std)",
            "seconds per run",
        ],
        rows,
    )
    (m0, s0), _ = stats["without"]
    (m1, s1), _ = stats["with"]
    diff = m1 - m0
    spread = max(s0, s1, 1e-9)
    if len(groups["with"]) < 2:
        verdict = (
            "With one seed per variant there is no spread to compare the difference "
            f"with ({pct(m1)} with vs {pct(m0)} without); run with --seeds 3 or more."
        )
    elif abs(diff) <= 2 * spread:
        verdict = (
            f"**No clear effect.** The mean test error differs by {100 * diff:+.2f} points "
            f"({pct(m1)} with, {pct(m0)} without), within twice the seed-to-seed spread "
            f"(std up to {100 * spread:.2f} points). At this budget a stack shortcut "
            "neither helps nor hurts measurably."
        )
    elif diff < 0:
        verdict = (
            f"**Stack shortcuts helped** at this budget: {pct(m1)} test error with, "
            f"{pct(m0)} without ({100 * diff:+.2f} points, more than twice the seed std "
            f"of {100 * spread:.2f})."
        )
    else:
        verdict = (
            f"**Stack shortcuts hurt** at this budget: {pct(m1)} test error with, "
            f"{pct(m0)} without ({100 * diff:+.2f} points, more than twice the seed std "
            f"of {100 * spread:.2f})."
        )
    report.text(
        "## Result\n\n"
        + verdict
        + """

Why one might expect little: inside a ResNet V2 stack the identity path already runs
unbroken from the stack's input to its output (each unit adds to it), so a stack
shortcut adds a second copy of the input to a sum that already contains it; only the
projection shortcuts of the first unit differ. Its effect is mostly a rescaling of the
residual stream at each stack's end."""
    )
    report.figure(
        mean_std_bars(
            [
                ("without", [r.final_test_error for r in groups["without"]]),
                ("with", [r.final_test_error for r in groups["with"]]),
            ],
            ylabel="final test error",
            title="test error per seed",
        ),
        "test-error.png",
        "Final test error, mean ± std over seeds (dots: seeds)",
    )
    report.figure(
        error_curves(
            [
                ("without stack shortcut", groups["without"]),
                ("with stack shortcut", groups["with"]),
            ],
            title="training error (solid) and test error (dashed), every seed",
        ),
        "curves.png",
        "Error curves of every seed",
    )
    return report.write(time.perf_counter() - t0)
