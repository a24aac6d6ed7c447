"""Live dashboard benchmarks: redraw cost vs livelossplot, and training with the full
dashboard on vs off: throughput ratio, new frames per second, append-to-frame latency.

    MPLBACKEND=Agg .venv/bin/python bench/bench_live.py [--quick] [--skip-train] [--lab]

(the peer, livelossplot, is pip-installed into the running environment when missing)

1. Redraw cost: a loss panel (train + val lines) holding N points, then updates that each
   add one point and redraw (Agg render). resnetlab moves the existing lines
   (``refresh()``: set_data of a min/max-decimated copy) and renders; livelossplot's
   MatplotlibPlot builds a new figure from every point on every ``send()`` (we close it
   afterwards, which livelossplot itself does not). Printed: ms per update and the ratio.
2. Training: a small CNN on real Fashion-MNIST for a fixed number of steps, without and
   with ``live_dashboard`` (all panels, 2 Hz, SystemMonitor at 1 Hz), alternating rounds,
   for each torch thread count of ``--threads`` (default 1 and torch's default). Modes
   (``--modes``): ``in process agg`` (renders in the training process), ``in process qt``
   (an offscreen Qt window of the training process, Xvfb started if there is no display),
   ``render process`` (Agg snapshots drawn by a child). Printed beside each throughput
   ratio: new frames per second (frames showing records the previous one did not) and the
   p95 latency from a record's append to the first frame that shows it (``Dashboard.frames``).
3. ``--lab``: the same training in a real JupyterLab kernel with the ipympl widget in
   Chromium (``bench/lab_live.py``), with the kernel's ``1+1`` round trip.
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


def frame_figures(frames, records, t0: float, t1: float) -> tuple[float, float]:
    """(distinct frames per second, p95 latency in s) of figure 0 over [t0, t1].

    ``frames``: the dashboard's :class:`Frame` list; ``records``: (index, time) of the
    stream's records appended in the window. A distinct frame shows more records than the
    one before it; a record's latency is from its append to the first frame showing it.
    """
    shown = [f for f in frames if f.figure == 0 and t0 <= f.produced <= t1 + 1.0]
    distinct = sum(
        1 for a, b in zip([None, *shown], shown, strict=False) if a is None or b.records > a.records
    )
    counts = np.array([f.records for f in shown])
    produced = np.array([f.produced for f in shown])
    lat = []
    for index, t in records:
        k = int(np.searchsorted(counts, index, side="right"))  # first frame with records > index
        if k < len(shown):
            lat.append(produced[k] - t)
    p95 = float(np.percentile(lat, 95)) if lat else float("nan")
    return distinct / max(t1 - t0, 1e-9), p95


# The modes of the throughput benchmark: (name, backend, in_process).
MODES = {
    "off": (None, False),
    "render process": ("agg", False),
    "in process agg": ("agg", True),
    "in process qt": ("qt", True),
}


def _session(mode: str, run_dir: str):
    from resnetlab.live import live_dashboard
    from resnetlab.metrics.stream import default_stream

    backend, in_process = MODES[mode]
    # Agg in process: no snapshot files, every draw renders (the dashboard's own cost, as
    # a canvas of this process pays it); the render process writes a snapshot every 1 s
    # as in the earlier rows. Qt: an offscreen window of this process, refreshed by its
    # main-thread timer, pumped from the training loop's appends.
    options = {"interval": 1.0} if backend == "agg" else {"mode": "window"}
    return live_dashboard(
        default_stream(),
        backend=backend,
        run_dir=None if in_process and backend == "agg" else run_dir,
        panels="all",
        rate_hz=2.0,
        monitor_interval=1.0,
        in_process=in_process,
        **options,
    )


def _one_round(mode: str, x, y, steps: int, batch: int) -> tuple[float, float, float]:
    """(images/s, distinct frames/s, p95 latency s) of one training round in ``mode``."""
    from resnetlab.metrics.stream import default_stream

    if MODES[mode][0] is None:
        return _train_steps(x, y, steps, batch), float("nan"), float("nan")
    stream = default_stream()
    with tempfile.TemporaryDirectory() as run_dir:
        session = _session(mode, run_dir)
        try:
            n0, t0 = len(stream), time.time()
            speed = _train_steps(x, y, steps, batch)
            t1 = time.time()
            if session.dashboard is None:
                return speed, float("nan"), float("nan")
            recs, _ = stream.read_since(n0)
            records = [(n0 + i, r.time) for i, r in enumerate(recs) if r.time <= t1]
            rate, p95 = frame_figures(list(session.dashboard.frames), records, t0, t1)
            return speed, rate, p95
        finally:
            session.close()


def bench_training(steps: int, rounds: int, modes: list[str], threads: int, batch: int = 128):
    import torch

    from resnetlab.data import load

    torch.set_num_threads(threads)
    ds = load("fashion-mnist", "train")
    x = ds.images[:10_000].float().div(255)
    y = ds.labels[:10_000]
    _train_steps(x, y, 20, batch)  # warm-up
    modes = ["off", *[m for m in modes if m != "off"]]
    speed: dict[str, list[float]] = {m: [] for m in modes}
    rate: dict[str, list[float]] = {m: [] for m in modes}
    late: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(rounds):
        order = modes if r % 2 == 0 else modes[::-1]
        for mode in order:
            v, f, p = _one_round(mode, x, y, steps, batch)
            speed[mode].append(v)
            rate[mode].append(f)
            late[mode].append(p)
        print(
            f"  round {r + 1}: " + ", ".join(f"{m} {speed[m][-1]:.0f}" for m in modes) + " images/s"
        )
    print(
        f"\ntraining throughput, {steps} steps x batch {batch}, {rounds} rounds in alternating "
        f"order, torch threads {threads}; full dashboard = all 9 panels at 2 Hz, "
        f"SystemMonitor 1 Hz; load average {os.getloadavg()[0]:.1f}"
    )
    base = speed["off"]
    print(f"  without dashboard: median {statistics.median(base):.0f} images/s")
    for mode in modes[1:]:
        ratios = [a / b for a, b in zip(speed[mode], base, strict=True)]
        line = (
            f"  {mode:>15}: ratio {statistics.median(ratios):.3f} "
            f"(rounds {', '.join(f'{v:.3f}' for v in ratios)})"
        )
        if not np.isnan(rate[mode]).all():
            line += (
                f", new frames {statistics.median(rate[mode]):.2f}/s, "
                f"latency p95 {statistics.median(late[mode]):.2f} s"
            )
        print(line)
    print("  targets: ratio >= 0.97, >= 1 new frame/s (2 Hz asked), latency p95 <= 1.0 s")


def _start_xvfb() -> str:
    """Start a virtual X display for the rest of this process; its DISPLAY value."""
    import atexit
    import select

    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-noreset", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    atexit.register(proc.terminate)
    with os.fdopen(read_fd, "rb") as pipe:
        select.select([pipe], [], [], 30)
        return ":" + pipe.readline().strip().decode()


def _default_threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-redraw", action="store_true")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training steps per round (default 300, ~10 s; longer rounds reach steady state)",
    )
    p.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 2)")
    p.add_argument(
        "--threads",
        default="1,all",
        help="torch thread counts, comma-separated ('all' = torch's default); default 1,all",
    )
    p.add_argument(
        "--modes",
        default="in process agg,in process qt",
        help="dashboard modes beside 'off', comma-separated: " + ", ".join(list(MODES)[1:]),
    )
    p.add_argument(
        "--lab",
        action="store_true",
        help="also ipympl in a real JupyterLab + Chromium (bench/lab_live.py)",
    )
    p.add_argument(
        "--lab-modes",
        default="ipympl",
        help="lab modes beside 'off': ipympl (frames from a render process, the default), "
        "'ipympl in kernel' (in_process=True)",
    )
    args = p.parse_args(argv)
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (other jobs share this machine)"
    )
    if not args.skip_redraw:
        sizes = [1_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
        bench_redraw(sizes, updates=3 if args.quick else 5)
    if "in process qt" in args.modes:
        # The offscreen platform draws into memory (what a window would show, without a
        # screen); a display (Xvfb if none) only satisfies resnetlab's toolkit check.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        if not os.environ.get("DISPLAY"):
            os.environ["DISPLAY"] = _start_xvfb()
    default_threads = _default_threads()
    steps = args.steps or (100 if args.quick else 300)
    rounds = args.rounds or 2
    for spec in args.threads.split(","):
        threads = default_threads if spec.strip() == "all" else int(spec)
        if not args.skip_train:
            bench_training(steps, rounds, [m.strip() for m in args.modes.split(",")], threads)
        if args.lab:
            from lab_live import bench_lab

            bench_lab(steps, rounds, threads, [m.strip() for m in args.lab_modes.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
