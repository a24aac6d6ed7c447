"""The Markdown report of an experiment and the plots in it.

A report is ``<out>/<name>.md`` with its figures in ``<out>/<name>/``; it starts with the
exact command, the budget and the hardware, so a reader can tell what the numbers mean
and reproduce them. Every file is written atomically.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from resnetlab.inspect.experiments.runner import ExperimentOptions, RunOutcome, hardware
from resnetlab.inspect.experiments.stats import summarize, test_cells, verdict, welch
from resnetlab.inspect.figures import save_figure
from resnetlab.utils.atomic import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Report:
    """Markdown text plus figures, written together by :meth:`write`."""

    name: str
    title: str
    options: ExperimentOptions
    out: Path
    parts: list[str] = field(default_factory=list)
    figures: dict[str, Figure] = field(default_factory=dict)
    started: float = 0.0
    # The machine as the runs found it (measured at their start; "" = now).
    hardware_line: str = ""
    # "3 seeds per arm", filled in by the experiment; how the arms ran (jobs, in process).
    seeds_line: str = "seeds as listed"
    how_line: str = ""

    def __post_init__(self) -> None:
        if not self.hardware_line:
            self.hardware_line = hardware(self.options.threads)

    def data_line(self) -> str:
        o = self.options
        train = "the whole training split" if o.subset is None else f"{o.subset} training images"
        held = f" (after holding out {o.val_size} of the split as validation)" if o.val_size else ""
        test = "the whole test split" if o.test_subset is None else f"{o.test_subset} test images"
        kind = " (fixed random subsets)" if o.subset or o.test_subset else ""
        return f"{train}{held} and {test} of {o.dataset}{kind}"

    @property
    def path(self) -> Path:
        return Path(self.out) / f"{self.name}.md"

    @property
    def figure_dir(self) -> Path:
        return Path(self.out) / self.name

    def text(self, markdown: str) -> None:
        self.parts.append(markdown.strip("\n"))

    def figure(self, fig: Figure, filename: str, caption: str) -> None:
        self.figures[filename] = fig
        self.parts.append(f"![{caption}]({self.name}/{filename})\n\n*{caption}*")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        lines = [
            "| " + " | ".join(headers) + " |",
            "| " + " | ".join("---" for _ in headers) + " |",
        ]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        self.parts.append("\n".join(lines))

    def header(self, seconds: float) -> str:
        o = self.options
        when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        cmd = o.command or f"resnetlab experiment {self.name} --budget ..."
        return "\n".join(
            [
                f"# {self.title}",
                "",
                "Produced by:",
                "",
                "```",
                cmd,
                "```",
                "",
                f"- **Budget**: {o.budget.describe()}; {self.data_line()}, batch "
                f"{o.batch_size}, SGD + Nesterov, one-cycle LR peaking at {o.lr}, weight decay "
                f"5e-4, {'random horizontal flips' if o.flip else 'no augmentation'}, no "
                f"label smoothing; stem stride {o.stem_stride}; {self.seeds_line}.",
                f"- **Hardware**: {self.hardware_line}.",
                f"- **Wall time**: {seconds / 60:.1f} minutes ({when})"
                + (f"; {self.how_line}." if self.how_line else "."),
                "- Runs are in the run store"
                + (
                    f" `{o.store}` (`resnetlab runs`)."
                    if o.store
                    else " (not recorded: --no-store)."
                ),
            ]
        )

    def write(self, seconds: float) -> Path:
        """Write the figures and the Markdown file; returns the Markdown file's path."""
        for filename, fig in self.figures.items():
            save_figure(fig, self.figure_dir / filename)
        body = "\n\n".join([self.header(seconds), *self.parts]) + "\n"
        atomic_write_text(self.path, body)
        return self.path


# -- numbers ---------------------------------------------------------------------------


def pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def by_arm(outcomes: Sequence[RunOutcome]) -> dict[str, list[RunOutcome]]:
    """Outcomes grouped by arm (``spec.label``), in the order the arms first appear."""
    groups: dict[str, list[RunOutcome]] = {}
    for r in outcomes:
        groups.setdefault(r.spec.label, []).append(r)
    return groups


def test_errors(runs: Sequence[RunOutcome]) -> list[float]:
    return [r.final_test_error for r in runs]


def train_errors(runs: Sequence[RunOutcome]) -> list[float]:
    return [r.final_train_error for r in runs]


def stats_table(
    report: Report,
    groups: dict[str, list[RunOutcome]],
    reference: str,
    *,
    metric: str = "test",
    extra: dict[str, Sequence[object]] | None = None,
) -> None:
    """One row per arm: params, depth, epochs, seeds, train and test error (mean ± std
    over seeds), and the difference to ``reference`` in ``metric`` error with Welch's
    t-test (t, dof, two-sided p)."""
    pick = test_errors if metric == "test" else train_errors
    ref = pick(groups.get(reference, []))
    extra = extra or {}
    headers = [
        "arm",
        *extra,
        "params",
        "depth",
        "epochs",
        "seeds",
        "train error (mean ± std)",
        "test error (mean ± std)",
        f"Δ {metric} error vs {reference} (± se, points)",
        "Welch t (dof)",
        "p",
        "seconds per run",
    ]
    rows = []
    for i, (label, runs) in enumerate(groups.items()):
        cells = ("reference", "", "") if label == reference else test_cells(welch(pick(runs), ref))
        rows.append(
            (
                label,
                *(str(v[i]) for v in extra.values()),
                f"{runs[0].params:,}",
                runs[0].depth,
                runs[0].epochs,
                len(runs),
                summarize(train_errors(runs)).text(),
                summarize(test_errors(runs)).text(),
                *cells,
                f"{sum(r.seconds for r in runs) / len(runs):.0f}",
            )
        )
    report.table(headers, rows)


def compare_line(
    groups: dict[str, list[RunOutcome]], a: str, b: str, *, metric: str = "test"
) -> str:
    """The plain-language verdict on arm ``a`` vs arm ``b`` (test or train error)."""
    pick = test_errors if metric == "test" else train_errors
    if a not in groups or b not in groups:
        missing = [x for x in (a, b) if x not in groups]
        return f"{a} vs {b}: no completed runs of {', '.join(missing)}; nothing to compare."
    return verdict(a, b, welch(pick(groups[a]), pick(groups[b])), metric=f"{metric} error")


def missing_line(missing: Sequence[str]) -> str:
    """What the report lacks: runs that failed, were killed or stopped (re-run them with
    ``resume``)."""
    if not missing:
        return ""
    return (
        f"**Incomplete**: {len(missing)} run{'s' if len(missing) != 1 else ''} did not "
        f"complete and {'are' if len(missing) != 1 else 'is'} left out of every number "
        f"below: {', '.join(missing)}. Resuming the experiment re-runs only these."
    )


# -- plots -----------------------------------------------------------------------------

_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")


def error_curves(groups: Sequence[tuple[str, Sequence[RunOutcome]]], *, title: str = "") -> Figure:
    """One panel per group: training error (solid) and test error (dashed) vs epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(groups), 3.8), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False, sharey=True)[0]
    for ax, (name, runs) in zip(axes, groups, strict=True):
        arms = list(dict.fromkeys(r.spec.label for r in runs))
        for run in runs:
            # One colour per arm; every seed drawn, the legend names each arm once.
            i = arms.index(run.spec.label)
            colour = _COLOURS[i % len(_COLOURS)]
            first = run is next(r for r in runs if r.spec.label == run.spec.label)
            label = run.spec.label if first else "_nolegend_"
            ax.plot(
                *run.train_curve,
                color=colour,
                lw=0.9,
                alpha=0.8,
                label=f"{label} train" if first else label,
            )
            ax.plot(
                *run.test_curve,
                color=colour,
                lw=1.6,
                ls="--",
                marker="o",
                ms=3,
                label=f"{label} test" if first else label,
            )
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    # The end of training is what the arms differ in (as in He et al.'s Fig. 1): the axis
    # stops at 2.5x the highest final error, so the first epochs' errors leave the top.
    finals = [
        float(curve[1][-1])
        for _, runs in groups
        for run in runs
        for curve in (run.train_curve, run.test_curve)
        if len(curve[1])
    ]
    if finals:
        axes[0].set_ylim(0.0, min(1.0, 2.5 * max(finals)))
    axes[0].set_ylabel("error")
    if title:
        fig.suptitle(title)
    return fig


def gradient_heatmaps(runs: Sequence[RunOutcome], *, title: str = "") -> Figure:
    """log10 gradient norm per conv layer (rows, input at the top) vs step, one panel per run.

    All panels share one colour scale, so a darker plain net is directly comparable.
    """
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    logs = [np.log10(np.clip(r.grad_norms, 1e-12, None)) for r in runs]
    finite = (
        np.concatenate([g[np.isfinite(g)].ravel() for g in logs if g.size]) if logs else np.empty(0)
    )
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-3.0, 1.0)
    norm = Normalize(vmin=lo, vmax=hi)
    fig = Figure(figsize=(4.2 * len(runs) + 1.0, 4.4), layout="constrained")
    axes = fig.subplots(1, len(runs), squeeze=False)[0]
    image = None
    for ax, run, grid in zip(axes, runs, logs, strict=True):
        if grid.size == 0:
            ax.text(0.5, 0.5, "no gradient norms recorded", ha="center", transform=ax.transAxes)
            continue
        steps = run.grad_steps
        x1 = steps[-1] + (steps[1] - steps[0] if steps.size > 1 else 1)
        image = ax.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            cmap="magma",
            norm=norm,
            extent=(steps[0], x1, grid.shape[0] - 0.5, -0.5),
        )
        ax.set_title(f"{run.spec.label} ({grid.shape[0]} conv layers)", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("conv layer (input at top)")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="log10 ‖grad‖ of the layer's weights", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def depth_profile(runs: Sequence[RunOutcome], *, title: str = "") -> Figure:
    """Gradient norm per conv layer at the first recorded step (initialisation), log scale."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        if run.grad_norms.size == 0:
            continue
        first = run.grad_norms[:, 0]
        rel = np.linspace(0, 1, first.size)
        ax.semilogy(
            rel, first, color=_COLOURS[i % len(_COLOURS)], lw=1.2, marker=".", label=run.spec.label
        )
    ax.set_xlabel("relative depth of the conv layer (0 = first, 1 = last)")
    ax.set_ylabel("‖grad‖ at step 0")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def mean_std_bars(
    groups: Sequence[tuple[str, Sequence[float]]], *, ylabel: str, title: str = ""
) -> Figure:
    """Bar per group at the mean, error bar ±1 std, and every seed as a dot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.8 + 1.6 * len(groups), 3.6), layout="constrained")
    ax = fig.add_subplot()
    for i, (_name, values) in enumerate(groups):
        m, s = mean_std(values)
        ax.bar(i, m, yerr=s, capsize=6, color=_COLOURS[i % len(_COLOURS)], alpha=0.55)
        ax.scatter(np.full(len(values), i), values, color="black", s=12, zorder=3)
    ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    return fig
