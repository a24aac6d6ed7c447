"""Live dashboard benchmarks: redraw cost vs livelossplot, and training throughput with
the full dashboard on vs off.

    MPLBACKEND=Agg .venv/bin/python bench/bench_live.py [--quick] [--skip-train]

(the peer, livelossplot, is pip-installed into the running environment when missing)

1. Redraw cost: a loss panel (train + val lines) holding N points, then updates that each
   add one point and redraw (Agg render). resnetlab moves the existing lines
   (``refresh()``: set_data of a min/max-decimated copy) and renders; livelossplot's
   MatplotlibPlot builds a new figure from every point on every ``send()`` (we close it
   afterwards, which livelossplot itself does not). Printed: ms per update and the ratio.
2. Training throughput: a small CNN on real Fashion-MNIST for a fixed number of steps,
   without and with ``live_dashboard`` (all panels, 2 Hz, SystemMonitor at 1 Hz, Agg
   snapshots), alternating A/B runs; printed: images/s and the median ratio (target >= 0.97).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402


def _bench_resnetlab(n: int, updates: int) -> float:
    from resnetlab.live import Dashboard, MetricStream

    s = MetricStream()
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(n) / (n / 5)) + 0.05 * rng.random(n)
    for i in range(n):
        s.append(
            i,
            {"loss": float(loss[i])}
            if i % 10
            else {"loss": float(loss[i]), "val_loss": float(loss[i]) + 0.1},
        )
    dash = Dashboard(["loss"], stream=s, backend="agg")
    dash.refresh()
    dash.draw()  # first draw (layout) is not part of the steady state
    t = time.perf_counter()
    for k in range(updates):
        s.append(n + k, {"loss": 0.01, "val_loss": 0.1})
        dash.refresh()
        dash.draw()
    return (time.perf_counter() - t) / updates


def _bench_livelossplot(n: int, updates: int) -> float:
    import matplotlib.pyplot as plt
    from livelossplot import PlotLosses
    from livelossplot.main_logger import LogItem
    from livelossplot.outputs import MatplotlibPlot

    def after_plots(fig):  # render like a notebook would, then free the figure
        fig.tight_layout()
        fig.canvas.draw()
        plt.close(fig)

    plot = PlotLosses(outputs=[MatplotlibPlot(after_plots=after_plots)], mode="script")
    rng = np.random.default_rng(0)
    loss = np.exp(-np.arange(n) / (n / 5)) + 0.05 * rng.random(n)
    # Pre-fill the history directly (the same LogItems update() would create, faster).
    plot.logger.log_history["loss"] = [LogItem(step=i, value=float(v)) for i, v in enumerate(loss)]
    plot.logger.log_history["val_loss"] = [
        LogItem(step=i, value=float(loss[i]) + 0.1) for i in range(0, n, 10)
    ]
    # livelossplot clears the (terminal) output on every send(); keep the report readable.
    with contextlib.redirect_stdout(io.StringIO()):
        plot.send()
        t = time.perf_counter()
        for k in range(updates):
            plot.update({"loss": 0.01, "val_loss": 0.1}, current_step=n + k)
            plot.send()
        return (time.perf_counter() - t) / updates


def _ensure_peer() -> bool:
    """Import livelossplot, installing it into this interpreter's environment if missing
    (the benchmark's peer; resnetlab itself does not need it)."""
    try:
        import livelossplot  # noqa: F401

        return True
    except ImportError:
        pass
    print("livelossplot not installed: installing it (pip install 'livelossplot>=0.6')")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "livelossplot>=0.6"], check=False
    )
    if done.returncode != 0:
        print("could not install livelossplot (no package index?): the peer column stays empty")
        return False
    importlib.invalidate_caches()
    try:
        import livelossplot  # noqa: F401
    except ImportError:
        return False
    return True


def bench_redraw(sizes: list[int], updates: int) -> None:
    have_peer = _ensure_peer()
    print(f"\nredraw cost per update (one new point + Agg render), {updates} updates each")
    print(f"{'points':>9}  {'resnetlab ms':>12}  {'livelossplot ms':>15}  {'ratio (llp/ours)':>16}")
    for n in sizes:
        ours = _bench_resnetlab(n, updates)
        if have_peer:
            peer = _bench_livelossplot(n, updates)
            print(f"{n:>9}  {ours * 1e3:>12.1f}  {peer * 1e3:>15.1f}  {peer / ours:>16.1f}x")
        else:
            print(f"{n:>9}  {ours * 1e3:>12.1f}  {'-':>15}  {'-':>16}")


def _train_steps(x, y, steps: int, batch: int) -> float:
    import torch
    from torch import nn

    from resnetlab.metrics.stream import default_stream

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    stream = default_stream()
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (batch,), generator=g)
        out = model(x[idx])
        loss = nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 0:  # .item() syncs; log every 10 steps like the trainer
            stream.log(
                step,
                loss=loss.item(),
                lr=0.05,
                accuracy=(out.argmax(1) == y[idx]).float().mean().item(),
            )
            for i in range(12):  # the gradient-norm panel gets fed too
                stream.append(step, {f"grad_norm/layer{i}": 0.1 * (i + 1)})
    return steps * batch / (time.perf_counter() - t0)


def bench_training(steps: int, rounds: int, batch: int = 128) -> None:
    import torch

    from resnetlab.data import load
    from resnetlab.live import live_dashboard
    from resnetlab.metrics.stream import default_stream

    torch.set_num_threads(1)
    ds = load("fashion-mnist", "train")
    x = ds.images[:10_000].float().div(255)
    y = ds.labels[:10_000]
    _train_steps(x, y, 20, batch)  # warm-up
    modes = ("off", "render process", "in process")
    speed: dict[str, list[float]] = {m: [] for m in modes}
    rates: list[float] = []
    for r in range(rounds):
        order = modes if r % 2 == 0 else modes[::-1]
        for mode in order:
            if mode == "off":
                speed[mode].append(_train_steps(x, y, steps, batch))
                continue
            with tempfile.TemporaryDirectory() as run_dir:
                session = live_dashboard(
                    default_stream(),
                    backend="agg",
                    run_dir=run_dir,
                    panels="all",
                    rate_hz=2.0,
                    monitor_interval=1.0,
                    in_process=(mode == "in process"),
                    interval=1.0,
                )
                t0 = time.perf_counter()
                try:
                    speed[mode].append(_train_steps(x, y, steps, batch))
                finally:
                    if session.dashboard is not None:  # renders made, not draws asked for
                        made = sum(f.full_draws + f.blit_draws for f in session.dashboard.figures)
                        rates.append(made / (time.perf_counter() - t0))
                    session.close()
        print(
            f"  round {r + 1}: " + ", ".join(f"{m} {speed[m][-1]:.0f}" for m in modes) + " images/s"
        )
    print(
        f"\ntraining throughput, {steps} steps x batch {batch}, {rounds} rounds in alternating "
        f"order, torch threads 1; full dashboard = all 9 panels at 2 Hz, SystemMonitor 1 Hz, "
        f"Agg snapshot every 1 s"
    )
    base = speed["off"]
    print(f"  without dashboard: median {statistics.median(base):.0f} images/s")
    for mode in modes[1:]:
        ratios = [a / b for a, b in zip(speed[mode], base, strict=True)]
        print(
            f"  with dashboard, {mode:>14}: median {statistics.median(speed[mode]):.0f} images/s,"
            f" ratio {statistics.median(ratios):.3f} (rounds: "
            f"{', '.join(f'{v:.3f}' for v in ratios)})"
        )
    if rates:
        print(
            f"  in-process draws actually made: median {statistics.median(rates):.2f} per s "
            f"(2 Hz asked; draw_budget=0.1 lowers it when a draw is slow)"
        )
    print("  target: ratio >= 0.97 (live_dashboard's default for agg/webagg is the render process)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-redraw", action="store_true")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per round (default 300; longer rounds reach steady state)",
    )
    p.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 4)")
    args = p.parse_args(argv)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (other jobs share this machine)"
    )
    if not args.skip_redraw:
        sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
        bench_redraw(sizes, updates=3 if args.quick else 5)
    if not args.skip_train:
        bench_training(
            steps=args.steps or (100 if args.quick else 300),
            rounds=args.rounds or (2 if args.quick else 4),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
