"""One live dashboard comparing several runs as they train: shared axes, a colour per arm.

    dash = comparison_dashboard(backend="agg", directory="snapshots")
    dash.add("plain-20 seed0", job_a.stream)     # a MetricStream still being appended to
    dash.add("plain-56 seed0", job_b.stream)
    dash.start()

Every run is a *compared source* of an ordinary :class:`~resnetlab.live.dashboard.Dashboard`
whose own stream stays empty, so the views, blitting and draw scheduling are the
dashboard's; a followed MetricStream's lines grow at every refresh. What this module adds:
panels for held-out curves (``val_``/``test_``), and one colour per *arm*: runs named
``"<arm> seed<k>"`` share their arm's colour (seeds of one arm are repeats, not rivals).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from resnetlab.live.dashboard import Dashboard
from resnetlab.live.panels import Panel
from resnetlab.live.views import LineView
from resnetlab.metrics.stream import MetricStream

# Training values (dotted) and held-out values (dash-dot, markers) of every arm.
COMPARISON_PANELS = (
    Panel("training loss", ("loss",), ylabel="loss"),
    Panel("training accuracy", ("accuracy",), ylabel="accuracy"),
    Panel("held-out accuracy", ("val_accuracy", "test_accuracy"), ylabel="accuracy"),
)
SEED_SEPARATOR = " seed"


def arm_of(label: str) -> str:
    """``"plain-20 seed1"`` -> ``"plain-20"`` (a label without a seed is its own arm)."""
    head, sep, _ = label.rpartition(SEED_SEPARATOR)
    return head if sep else label


class ComparisonDashboard(Dashboard):
    """A Dashboard of compared runs only, coloured by arm."""

    def compare_color(self, label: str) -> str:
        return super().compare_color(arm_of(label))

    def add(self, label: str, stream: Any) -> None:
        """Follow ``stream`` (a run's MetricStream) as run ``label``; a second call with the
        same label (a re-run) replaces the old stream."""
        self.compare(label, stream)

    def points(self) -> dict[str, int]:
        """Run label -> data points its lines hold now, over every panel (grows as they train)."""
        out: dict[str, int] = {}
        with self.lock:
            for view in self._views:
                if not isinstance(view, LineView):
                    continue
                for (label, _key), line in view.compare_lines.items():
                    out[label] = out.get(label, 0) + len(line.get_xdata())
        return out

    @property
    def labels(self) -> list[str]:
        """The runs shown, in the order they were added."""
        return list(self.compare_sources)

    def lines_per_panel(self) -> dict[str, set[str]]:
        """Panel title -> the run labels that have a line in it (what a reader sees)."""
        out: dict[str, set[str]] = {}
        with self.lock:
            for view in self._views:
                if isinstance(view, LineView):
                    out[view.panel.title] = {label for label, _ in view.compare_lines}
        return out


def comparison_dashboard(
    sources: Mapping[str, MetricStream] | None = None,
    *,
    panels: Any = None,
    backend: str = "auto",
    title: str | None = None,
    **options: Any,
) -> ComparisonDashboard:
    """A :class:`ComparisonDashboard` following ``sources`` (label -> stream); ``panels``
    default to :data:`COMPARISON_PANELS`; other options go to the Dashboard (``ncols``,
    ``directory=``/``interval=`` for Agg snapshots, ``port=`` for WebAgg, ...)."""
    return ComparisonDashboard(
        list(panels or COMPARISON_PANELS),
        stream=MetricStream(name=title or "comparison"),
        backend=backend,
        title=title,
        compare=dict(sources or {}),
        **options,
    )
