"""``bottleneck-ratio``: bottleneck ratio 0.25 (He) vs 0.5 (Atienza) vs basic units, equal params.

All three variants have the same number of units per stack; their widths are chosen so
the parameter counts match the 1/4-bottleneck reference as closely as whole widths allow
(the report lists the counts). The question is which unit spends a parameter budget best.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from resnetlab.inspect.experiments.degradation import units_for
from resnetlab.inspect.experiments.report import Report, error_curves, mean_std, mean_std_bars, pct
from resnetlab.inspect.experiments.runner import ExperimentOptions, RunSpec, run_all

NAME = "bottleneck-ratio"
TITLE = "Bottleneck ratio: 1/4 vs 1/2 vs basic units at similar parameter counts"


def _params(overrides: dict[str, Any]) -> int:
    from resnetlab.models import count_parameters, create_model

    with torch.device("meta"):
        return count_parameters(
            create_model("resnetv2-20", in_channels=1, image_size=28, **overrides)
        )


def variants(options: ExperimentOptions) -> list[tuple[str, dict[str, Any]]]:
    """(label, overrides) of the three variants with widths matched to the 1/4 reference."""
    n, w = units_for(min(options.depths)), options.width
    units = {"stack_units": (n, n, n)}
    ref = {
        **units,
        "stack_channels": (4 * w, 8 * w, 16 * w),
        "stem_channels": w,
        "bottleneck_ratio": 0.25,
    }
    target = _params(ref)

    def closest(make) -> dict[str, Any]:
        # Parameters grow with the width: bisect for the first width at or above the
        # target, then take the nearer of it and the one below.
        lo, hi = 1, 16 * w
        while lo < hi:
            mid = (lo + hi) // 2
            if _params(make(mid)) < target:
                lo = mid + 1
            else:
                hi = mid
        options = [make(b) for b in {max(lo - 1, 1), lo}]
        return min(options, key=lambda o: abs(_params(o) - target))

    half = closest(
        lambda b: {
            **units,
            "stack_channels": (2 * b, 4 * b, 8 * b),
            "stem_channels": w,
            "bottleneck_ratio": 0.5,
        }
    )
    basic = closest(
        lambda b: {
            **units,
            "stack_channels": (b, 2 * b, 4 * b),
            "stem_channels": w,
            "unit": "basic",
        }
    )
    return [("bottleneck 0.25", ref), ("bottleneck 0.5", half), ("basic", basic)]


def specs(options: ExperimentOptions) -> list[RunSpec]:
    seeds = 1 if options.seeds is None else options.seeds
    return [
        RunSpec(label, "resnetv2-20", overrides, seed=seed, group=label)
        for label, overrides in variants(options)
        for seed in range(seeds)
    ]


def run(options: ExperimentOptions, out: str | Path) -> Path:
    """Train, then write ``<out>/bottleneck-ratio.md``; returns its path."""
    t0 = time.perf_counter()
    report = Report(NAME, TITLE, options, Path(out))
    outcomes, _ = run_all(NAME, specs(options), options)
    labels = list(dict.fromkeys(r.spec.group for r in outcomes))
    groups = {g: [r for r in outcomes if r.spec.group == g] for g in labels}
    report.text(f"""
A bottleneck unit squeezes nF maps to nF x ratio for its 3x3 conv: He et al. use 1/4,
Atienza's Keras ResNet V2 uses 1/2; a basic unit has two full-width 3x3 convs. To compare
what each unit does with the same budget of parameters, the 1/2 and basic variants get
narrower stacks so that their parameter counts come close to the 1/4 reference
(resnetv2 with {units_for(min(options.depths))} units per stack, stack widths
{4 * options.width}/{8 * options.width}/{16 * options.width}).
""")
    rows = []
    for g, runs in groups.items():
        ov = runs[0].spec.overrides
        tm, ts = mean_std([r.final_test_error for r in runs])
        rm, _ = mean_std([r.final_train_error for r in runs])
        spread = f" ± {100 * ts:.2f}" if len(runs) > 1 else ""
        rows.append(
            (
                g,
                "/".join(map(str, ov["stack_channels"])),
                f"{runs[0].params:,}",
                runs[0].depth,
                len(runs),
                f"{100 * rm:.2f}%",
                f"{100 * tm:.2f}{spread}%",
                f"{sum(r.seconds for r in runs) / len(runs):.0f}",
            )
        )
    report.table(
        [
            "unit",
            "stack widths",
            "params",
            "depth",
            "seeds",
            "train error",
            "test error",
            "seconds per run",
        ],
        rows,
    )
    best = min(groups, key=lambda g: mean_std([r.final_test_error for r in groups[g]])[0])
    spreads = [mean_std([r.final_test_error for r in runs])[1] for runs in groups.values()]
    errors = sorted(mean_std([r.final_test_error for r in runs])[0] for runs in groups.values())
    margin = errors[1] - errors[0]
    note = ""
    if max(spreads) == 0:
        note = (
            " With one seed per variant there is no spread to judge that margin by; "
            "run with --seeds 3 before reading much into it."
        )
    elif margin <= 2 * max(spreads):
        note = (
            f" The margin ({100 * margin:.2f} points) is within twice the seed-to-seed "
            "spread: no clear winner at this budget."
        )
    report.text(
        f"## Result\n\nLowest test error: **{best}** "
        f"({pct(errors[0])}, {100 * margin:.2f} points ahead of the next).{note} "
        "Equal parameters do not mean equal compute or depth: see the seconds per "
        "run and the depth in the table."
    )
    report.figure(
        mean_std_bars(
            [(g, [r.final_test_error for r in runs]) for g, runs in groups.items()],
            ylabel="final test error",
            title="test error per variant",
        ),
        "test-error.png",
        "Final test error per variant (dots: seeds)",
    )
    report.figure(
        error_curves(
            [(g, runs) for g, runs in groups.items()],
            title="training error (solid) and test error (dashed)",
        ),
        "curves.png",
        "Error curves per variant",
    )
    return report.write(time.perf_counter() - t0)
