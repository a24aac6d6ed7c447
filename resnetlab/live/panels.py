"""Panel specifications: what one subplot of a dashboard shows, and the named presets.

A panel names stream keys (exact names or ``fnmatch`` patterns such as ``gpu/*/util``);
lines appear the first time a matching key shows up in the stream, so one dashboard fits
a CPU laptop and a GPU box. Options are the ones users ask for: log-scale y, EMA
smoothing (TensorBoard's debiased form), a sliding window of the last N steps.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from resnetlab.errors import ConfigError


@dataclass(frozen=True)
class Panel:
    """One subplot. Build with a preset name (``"loss"``) or directly for custom series."""

    title: str
    # Stream keys or fnmatch patterns drawn on this panel, in legend order.
    keys: tuple[str, ...]
    # "step" for training metrics; "time" (seconds since the dashboard started) for system metrics.
    x: str = "step"
    ylabel: str = ""
    # Log-scale y: losses spanning decades, gradient norms.
    logy: bool = False
    # EMA weight in [0, 1) like TensorBoard's slider; 0 = raw. Raw stays visible, faint.
    smoothing: float = 0.0
    # Show only the last ``window`` steps (or seconds when x="time"); None = everything.
    window: float | None = None
    # "line" (one Line2D per key) or "heatmap" (rows = keys, columns = steps).
    kind: str = "line"
    # Fixed y limits, e.g. (0, 100) for percentages; None = autoscale.
    ylim: tuple[float, float] | None = None
    # Keys matching these patterns are drawn thin and without a legend entry (per-core CPU).
    minor: tuple[str, ...] = ()
    # Prefix stripped from key names in the legend / heat-map rows.
    strip_prefix: str = ""
    # Runs to draw dashed behind the live lines: label -> MetricStream or {key: (x, y)}.
    compare: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.x not in ("step", "time"):
            raise ConfigError(f"panel {self.title!r}: x must be 'step' or 'time', got {self.x!r}")
        if self.kind not in ("line", "heatmap"):
            raise ConfigError(
                f"panel {self.title!r}: kind must be 'line' or 'heatmap', got {self.kind!r}"
            )
        if not 0.0 <= self.smoothing < 1.0:
            raise ConfigError(
                f"panel {self.title!r}: smoothing must be in [0, 1) (0.6 is TensorBoard's "
                f"default), got {self.smoothing!r}"
            )
        if self.window is not None and not self.window > 0:
            raise ConfigError(f"panel {self.title!r}: window must be > 0, got {self.window!r}")
        if isinstance(self.keys, str):
            object.__setattr__(self, "keys", (self.keys,))
        else:
            object.__setattr__(self, "keys", tuple(self.keys))

    def matches(self, key: str) -> bool:
        return any(k == key or fnmatch.fnmatchcase(key, k) for k in self.keys)

    def is_minor(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, k) for k in self.minor)

    def label(self, key: str) -> str:
        if self.strip_prefix and key.startswith(self.strip_prefix):
            return key[len(self.strip_prefix) :]
        return key

    def with_prefix(self, prefix: str) -> Panel:
        """The same panel for keys logged under ``prefix``, e.g. ``LiveCallback(prefix="keras/")``:
        ``PRESETS["loss"].with_prefix("keras/")`` draws ``keras/loss`` and ``keras/val_loss``."""
        return replace(
            self,
            keys=tuple(prefix + k for k in self.keys),
            minor=tuple(prefix + k for k in self.minor),
            strip_prefix=prefix + self.strip_prefix if self.strip_prefix else "",
        )

    def with_options(self, **options: object) -> Panel:
        """A copy with some options changed: ``PRESETS["loss"].with_options(logy=True)``."""
        return replace(self, **options)  # type: ignore[arg-type]


PRESETS: dict[str, Panel] = {
    "loss": Panel("loss", ("loss", "train_loss", "val_loss"), ylabel="loss"),
    "accuracy": Panel(
        "accuracy",
        ("accuracy", "acc", "train_accuracy", "val_accuracy", "val_acc"),
        ylabel="accuracy",
    ),
    "lr": Panel("learning rate", ("lr", "learning_rate"), ylabel="lr"),
    "throughput": Panel(
        "images/s", ("images_per_s", "images_per_sec", "throughput"), ylabel="images/s"
    ),
    "cpu": Panel(
        "CPU %",
        ("sys/cpu_percent", "sys/proc_cpu_percent", "sys/cpu_percent/*"),
        x="time",
        ylabel="%",
        minor=("sys/cpu_percent/*",),
        strip_prefix="sys/",
    ),
    "ram": Panel(
        "RAM (GiB)", ("sys/ram_used_gb", "sys/rss_gb"), x="time", ylabel="GiB", strip_prefix="sys/"
    ),
    "gpu": Panel(
        "GPU %",
        ("sys/gpu_util_percent/*",),
        x="time",
        ylabel="%",
        ylim=(0, 100),
        strip_prefix="sys/",
    ),
    "vram": Panel(
        "VRAM (GiB)",
        ("sys/gpu_mem_used_gb/*", "sys/gpu_alloc_gb/*", "sys/gpu_reserved_gb/*"),
        x="time",
        ylabel="GiB",
        strip_prefix="sys/",
    ),
    "grad_norms": Panel(
        "gradient norm per layer (log10)",
        ("grad_norm/*",),
        kind="heatmap",
        logy=True,
        strip_prefix="grad_norm/",
    ),
}
ALIASES = {
    "acc": "accuracy",
    "learning_rate": "lr",
    "images/s": "throughput",
    "gpu_mem": "vram",
    "grad_norm": "grad_norms",
    "gradients": "grad_norms",
    "memory": "ram",
}

TRAINING_PANELS = ("loss", "accuracy", "lr", "throughput")
SYSTEM_PANELS = ("cpu", "ram")
GPU_PANELS = ("gpu", "vram")


def default_panel_names(with_gpu: bool | None = None, with_grad_norms: bool = False) -> list[str]:
    """Training + system panels; GPU panels only where NVML or CUDA sees a GPU."""
    if with_gpu is None:
        from resnetlab.live.monitor import gpu_count

        with_gpu = gpu_count() > 0
    names = [*TRAINING_PANELS, *SYSTEM_PANELS]
    if with_gpu:
        names += GPU_PANELS
    if with_grad_norms:
        names.append("grad_norms")
    return names


def resolve_panel(spec: str | Panel) -> Panel:
    """A :class:`Panel` from a preset name, a custom stream key, or a Panel."""
    if isinstance(spec, Panel):
        return spec
    if not isinstance(spec, str):
        raise ConfigError(
            f"a panel is a preset name, a stream key or a Panel, got {type(spec).__name__}"
        )
    name = ALIASES.get(spec, spec)
    if name in PRESETS:
        return PRESETS[name]
    # Any other string is a custom user series: one panel showing that key (or pattern).
    return Panel(spec, (spec,))


def resolve_layout(
    panels: str | Panel | Sequence[str | Panel | Sequence[str | Panel]] | None,
) -> list[list[Panel]]:
    """Group panels into figures: a flat list is one figure; a list of lists is one
    figure per inner list; ``None`` is the default set; ``"all"`` adds GPU and gradients."""
    if panels is None:
        return [[resolve_panel(n) for n in default_panel_names()]]
    if panels == "all":
        return [[resolve_panel(n) for n in default_panel_names(True, True)]]
    if isinstance(panels, (str, Panel)):
        return [[resolve_panel(panels)]]
    items = list(panels)
    if not items:
        raise ConfigError("Dashboard(panels=[]) has nothing to show; pass None for the defaults")
    if all(isinstance(p, (list, tuple)) and not isinstance(p, Panel) for p in items):
        groups = [[resolve_panel(p) for p in group] for group in items]
        if any(not g for g in groups):
            raise ConfigError("a figure group in Dashboard(panels=[[...], ...]) is empty")
        return groups
    return [[resolve_panel(p) for p in items]]


def matching_keys(panel: Panel, keys: Iterable[str]) -> list[str]:
    """The stream keys a panel draws, in the panel's pattern order then first-seen order."""
    keys = list(keys)
    out: list[str] = []
    for pattern in panel.keys:
        for key in keys:
            if key not in out and (key == pattern or fnmatch.fnmatchcase(key, pattern)):
                out.append(key)
    return out


# -- panels across the process boundary ------------------------------------------------
def encode_panels(panels: Any) -> Any:
    """Panels (names, Panel objects, nested lists) as JSON-able data for another process
    (the viewer, the render process)."""
    if panels is None or isinstance(panels, str):
        return panels
    if dataclasses.is_dataclass(panels) and not isinstance(panels, type):
        fields = {
            f.name: getattr(panels, f.name)
            for f in dataclasses.fields(panels)
            if f.name != "compare"
        }  # streams of other runs do not cross processes
        return {"panel": fields}
    if isinstance(panels, (list, tuple)):
        return [encode_panels(p) for p in panels]
    raise ConfigError(
        f"cannot send a panel of type {type(panels).__name__}; "
        "use preset names, stream keys or Panel objects"
    )


def decode_panels(data: Any) -> Any:
    """The inverse of :func:`encode_panels`."""
    if isinstance(data, dict) and "panel" in data:
        fields = dict(data["panel"])
        for name in ("keys", "minor"):
            if name in fields:
                fields[name] = tuple(fields[name])
        if fields.get("ylim") is not None:
            fields["ylim"] = tuple(fields["ylim"])
        return Panel(**fields)
    if isinstance(data, list):
        return [decode_panels(p) for p in data]
    return data
