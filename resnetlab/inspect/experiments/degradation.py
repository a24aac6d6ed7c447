"""``degradation``: a deeper plain net trains worse; a deeper residual net does not.

plain-N, resnetv1-N and resnetv2-N (the same bottleneck layers, with no shortcuts, with
post-activation units, with pre-activation units) at two depths (three with 110), trained
with one recipe and one budget, several seeds each. The report shows training/test error
curves per epoch side by side (He et al. 2016, Fig. 1), mean ± std with Welch's t-test
between the depths of each family, and the gradient norm of every conv layer at
initialisation and over training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments.report import (
    Report,
    by_arm,
    compare_line,
    depth_profile,
    error_curves,
    gradient_heatmaps,
    missing_line,
    stats_table,
)
from resnetlab.inspect.experiments.runner import (
    ExperimentOptions,
    RunOutcome,
    RunSpec,
    run_all,
    timed,
)
from resnetlab.inspect.gradients import norm_ratio

NAME = "degradation"
TITLE = "Degradation: deeper plain nets train worse, deeper ResNets do not"
DEFAULT_SEEDS = 3
FAMILIES = ("plain", "resnetv1", "resnetv2")


def units_for(depth: int) -> int:
    """Bottleneck units per stack for a CIFAR-layout depth 9n + 2."""
    n, rest = divmod(depth - 2, 9)
    if rest or n < 1:
        raise ConfigError(
            f"depth {depth} is not 9n + 2 (three stacks of n bottleneck units "
            "plus stem and classifier); use e.g. 11, 20, 29, 38, 56, 110"
        )
    return n


def cifar_overrides(options: ExperimentOptions, depth: int) -> dict[str, Any]:
    """The model fields every experiment sets: n units per stack, widths, stem stride."""
    n, w = units_for(depth), options.width
    out: dict[str, Any] = {
        "stack_units": (n, n, n),
        "stack_channels": (4 * w, 8 * w, 16 * w),
        "stem_channels": w,
    }
    if options.stem_stride != 1:
        out["stem_stride"] = options.stem_stride
    return out


def seeds_of(options: ExperimentOptions, default: int = DEFAULT_SEEDS) -> int:
    return default if options.seeds is None else options.seeds


def specs(options: ExperimentOptions) -> list[RunSpec]:
    if len(options.depths) < 2:
        raise ConfigError("degradation compares depths: give two, e.g. --depths 20,56")
    return [
        RunSpec(
            f"{family}-{depth}",
            f"{family}-20",
            cifar_overrides(options, depth),
            seed=seed,
            group=f"{family}-{depth}",
        )
        for depth in sorted(options.depths)
        for family in FAMILIES
        for seed in range(seeds_of(options))
    ]


def _seed0(groups: dict[str, list[RunOutcome]], label: str) -> RunOutcome | None:
    runs = groups.get(label) or []
    return min(runs, key=lambda r: r.spec.seed) if runs else None


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
    """Write ``<out>/degradation.md`` from the completed runs; returns its path."""
    report = Report(NAME, TITLE, options, Path(out), how_line=how, hardware_line=hardware_line)
    report.seeds_line = f"{seeds_of(options)} seeds per arm"
    groups = by_arm(outcomes)
    depths = sorted(options.depths)
    shallow, deep = depths[0], depths[-1]
    w = options.width
    report.text(f"""
The question (He et al. 2016): if a deeper network can always copy a shallower one and
add identity layers, why does a deeper *plain* network end with a **higher training
error**? Residual units make the identity the easy default. Here plain-N, resnetv1-N and
resnetv2-N (the same bottleneck layers: without shortcuts, with post-activation units, with
pre-activation units) are trained at depths {", ".join(map(str, depths))} with the same
recipe and budget. Widths are {w}/{2 * w}/{4 * w} bottleneck maps ({4 * w}/{8 * w}/{16 * w}
stack outputs).
""")
    if missing:
        report.text(missing_line(missing))
    order = [f"{f}-{d}" for d in depths for f in FAMILIES if f"{f}-{d}" in groups]
    stats_table(report, {k: groups[k] for k in order}, f"plain-{shallow}", metric="train")
    lines = [
        compare_line(groups, f"{f}-{deep}", f"{f}-{shallow}", metric="train") for f in FAMILIES
    ]
    lines += [
        compare_line(groups, f"resnetv2-{deep}", f"plain-{deep}", metric="train"),
        compare_line(groups, f"resnetv2-{deep}", f"resnetv1-{deep}", metric="test"),
    ]
    report.text(
        "## Result\n\nDegradation is a *training* error that grows with depth; each line "
        "tests the final training error (last epoch's running mean) of one arm against "
        "another, Welch's t over the seeds:\n\n" + "\n".join(f"- {x}" for x in lines)
    )
    report.figure(
        error_curves(
            [(f, [r for d in depths for r in groups.get(f"{f}-{d}", [])]) for f in FAMILIES],
            title="training error (thin) and test error (dashed), every seed",
        ),
        "curves.png",
        "Training and test error per epoch: plain (left), ResNet V1, ResNet V2 (right)",
    )
    first = {k: r for k in order if (r := _seed0(groups, k)) is not None}
    heat = [r for k, r in first.items() if k.endswith(f"-{deep}")]
    if heat:
        report.figure(
            gradient_heatmaps(heat, title=f"gradient norms per conv layer, depth {deep}"),
            "grad-heatmaps.png",
            f"log10 gradient norm of every conv layer during training, depth {deep}, seed 0 "
            "(same colour scale)",
        )
    report.figure(
        depth_profile(list(first.values()), title="gradient norm per layer at step 0"),
        "grad-at-init.png",
        "Gradient norm of each conv layer at initialisation (seed 0)",
    )
    ratios = {
        k: norm_ratio(dict(zip(r.grad_layers, r.grad_norms[:, 0], strict=True)))
        for k, r in first.items()
        if r.grad_norms.size
    }
    report.text(
        "## Gradient norms\n\nFirst conv layer's gradient norm over the last conv "
        "layer's, at initialisation (step 0, seed 0):\n\n"
        + "\n".join(f"- {k}: {v:.3g}" for k, v in ratios.items())
    )
    report.text(explain_ratios(ratios.get(f"plain-{deep}"), ratios.get(f"resnetv2-{deep}"), deep))
    return report.write(seconds)


def run(options: ExperimentOptions, out: str | Path) -> Path:
    """Train every run in this process, then write ``<out>/degradation.md``."""
    with timed() as clock:
        outcomes, _ = run_all(NAME, specs(options), options)
    return write(outcomes, options, out, seconds=clock.seconds, how="runs one after another")


def explain_ratios(plain: float | None, residual: float | None, depth: int) -> str:
    """What the measured first/last gradient-norm ratios say, in words."""
    if plain is None or residual is None or not (plain > 0 and residual > 0):
        return "No gradient norms were recorded."
    lp, lr = math.log10(plain), math.log10(residual)
    if lp > 1:
        what = (
            f"In plain-{depth} the first layer's gradient is {plain:.2g} times the last "
            "layer's: with batch normalisation the gradient of a deep plain stack does not "
            "vanish towards the input, it **grows** layer by layer (Yang et al. 2019, "
            '"A Mean Field Theory of Batch Normalization").'
        )
    elif lp < -1:
        what = (
            f"In plain-{depth} the first layer's gradient is {plain:.2g} of the last "
            "layer's: the gradient **vanishes** on its way to the input."
        )
    else:
        what = f"In plain-{depth} first and last layer get gradients of similar size ({plain:.2g})."
    return (
        f"{what} In resnetv2-{depth} the ratio is {residual:.2g} "
        f"({abs(abs(lp) - abs(lr)):.1f} orders of magnitude "
        f"{'closer to' if abs(lr) < abs(lp) else 'further from'} balance than the plain net). "
        "These nets use batch normalisation, as He et al.'s plain baselines did; the "
        "imbalance between the layers' gradients, not their absolute size, is what makes a "
        "deep plain net hard to optimise with one learning rate for all layers. The heat "
        "maps show how it evolves during training."
    )
