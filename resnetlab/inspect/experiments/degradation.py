"""``degradation``: a deeper plain net trains worse; a deeper residual net does not.

plain-N and resnetv2-N (the same net with its shortcuts) at two depths, trained with one
recipe and one budget. The report shows training/test error curves side by side and
the gradient norm of every conv layer over training as heat maps.
"""

from __future__ import annotations

import time
from pathlib import Path

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments.report import (
    Report,
    depth_profile,
    error_curves,
    gradient_heatmaps,
    pct,
)
from resnetlab.inspect.experiments.runner import ExperimentOptions, RunOutcome, RunSpec, run_all
from resnetlab.inspect.gradients import norm_ratio

NAME = "degradation"
TITLE = "Degradation: deeper plain nets train worse, deeper ResNets do not"


def units_for(depth: int) -> int:
    """Bottleneck units per stack for a CIFAR-layout depth 9n + 2."""
    n, rest = divmod(depth - 2, 9)
    if rest or n < 1:
        raise ConfigError(
            f"depth {depth} is not 9n + 2 (three stacks of n bottleneck units "
            "plus stem and classifier); use e.g. 11, 20, 29, 38, 56, 110"
        )
    return n


def specs(options: ExperimentOptions) -> list[RunSpec]:
    if len(options.depths) < 2:
        raise ConfigError("degradation compares depths: give two, e.g. --depths 20,56")
    w = options.width
    out = []
    for depth in sorted(options.depths):
        n = units_for(depth)
        for family in ("plain", "resnetv2"):
            for seed in range(1 if options.seeds is None else options.seeds):
                out.append(
                    RunSpec(
                        f"{family}-{depth}",
                        f"{family}-20",
                        {
                            "stack_units": (n, n, n),
                            "stack_channels": (4 * w, 8 * w, 16 * w),
                            "stem_channels": w,
                        },
                        seed=seed,
                        group=f"{family}-{depth}",
                    )
                )
    return out


def _first(runs: list[RunOutcome], label: str) -> RunOutcome:
    return next(r for r in runs if r.spec.label == label and r.spec.seed == 0)


def run(options: ExperimentOptions, out: str | Path) -> Path:
    """Train, then write ``<out>/degradation.md``; returns its path."""
    t0 = time.perf_counter()
    report = Report(NAME, TITLE, options, Path(out))
    outcomes, _ = run_all(NAME, specs(options), options)
    shallow, deep = sorted(options.depths)[0], sorted(options.depths)[-1]
    p_s, p_d = _first(outcomes, f"plain-{shallow}"), _first(outcomes, f"plain-{deep}")
    r_s, r_d = _first(outcomes, f"resnetv2-{shallow}"), _first(outcomes, f"resnetv2-{deep}")

    report.text(f"""
The question (He et al. 2016): if a deeper network can always copy a shallower one and
add identity layers, why does a deeper *plain* network end with a **higher training
error**? Residual units make the identity the easy default. Here plain-N and
resnetv2-N (the same bottleneck layers, with or without shortcuts) are trained at depths
{shallow} and {deep} with the same recipe and budget. Widths are {options.width}/{2 * options.width}/{4 * options.width}
bottleneck maps ({4 * options.width}/{8 * options.width}/{16 * options.width} stack outputs).
""")
    rows = [
        (
            r.spec.label,
            r.depth,
            f"{r.params:,}",
            r.epochs,
            pct(r.final_train_error),
            pct(r.final_test_error),
            f"{r.seconds:.0f}",
        )
        for r in outcomes
    ]
    report.table(
        ["model", "depth", "params", "epochs", "train error (last epoch)", "test error", "seconds"],
        rows,
    )

    gap_plain = p_d.final_train_error - p_s.final_train_error
    gap_res = r_d.final_train_error - r_s.final_train_error
    verdict = []
    if gap_plain > 0.005:
        verdict.append(
            f"The deeper plain net trained **worse**: {pct(p_d.final_train_error)} "
            f"training error at depth {deep} against {pct(p_s.final_train_error)} at "
            f"depth {shallow} (+{100 * gap_plain:.1f} points): degradation shows."
        )
    else:
        verdict.append(
            f"At this budget the deeper plain net did not train worse "
            f"({pct(p_d.final_train_error)} vs {pct(p_s.final_train_error)}): no "
            "degradation visible; a larger budget or depth is needed to see it."
        )
    if gap_res <= 0.005:
        verdict.append(
            f"The deeper ResNet did **not** degrade: {pct(r_d.final_train_error)} "
            f"at depth {deep} against {pct(r_s.final_train_error)} at depth {shallow}."
        )
    else:
        verdict.append(
            f"The deeper ResNet also ended higher ({pct(r_d.final_train_error)} vs "
            f"{pct(r_s.final_train_error)}, +{100 * gap_res:.1f} points) at this "
            "budget; compare with the plain gap above."
        )
    report.text("## Result\n\n" + " ".join(verdict))

    report.figure(
        error_curves(
            [
                (f"plain: {p_s.spec.label} vs {p_d.spec.label}", [p_s, p_d]),
                (f"residual: {r_s.spec.label} vs {r_d.spec.label}", [r_s, r_d]),
            ],
            title="training error (solid) and test error (dashed)",
        ),
        "curves.png",
        "Training and test error per epoch, plain (left) and residual (right)",
    )
    report.figure(
        gradient_heatmaps([p_d, r_d], title=f"gradient norms per conv layer, depth {deep}"),
        "grad-heatmaps.png",
        f"log10 gradient norm of every conv layer during training, plain-{deep} vs "
        f"resnetv2-{deep} (same colour scale)",
    )
    report.figure(
        depth_profile([p_s, p_d, r_s, r_d], title="gradient norm per layer at step 0"),
        "grad-at-init.png",
        "Gradient norm of each conv layer at initialisation",
    )

    ratios = {
        r.spec.label: norm_ratio(dict(zip(r.grad_layers, r.grad_norms[:, 0], strict=True)))
        for r in (p_s, p_d, r_s, r_d)
        if r.grad_norms.size
    }
    report.text(
        "## Gradient norms\n\nFirst conv layer's gradient norm over the last conv "
        "layer's, at initialisation (step 0):\n\n"
        + "\n".join(f"- {k}: {v:.3g}" for k, v in ratios.items())
    )
    report.text(explain_ratios(ratios.get(p_d.spec.label), ratios.get(r_d.spec.label), deep))
    return report.write(time.perf_counter() - t0)


def explain_ratios(plain: float | None, residual: float | None, depth: int) -> str:
    """What the measured first/last gradient-norm ratios say, in words."""
    if plain is None or residual is None:
        return "No gradient norms were recorded."
    import math

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
