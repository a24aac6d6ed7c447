"""Fault campaign: SIGKILL a tiny real training run at random moments, check what it left.

    .venv/bin/python bench/chaos.py --kills 50
    .venv/bin/python bench/chaos.py --kills 3 --data-dir /usr/share/datasets/fashion-mnist

First one uninterrupted run of ``python -m resnetlab train --model resnetv2-micro`` (a few
hundred Fashion-MNIST images, 3 epochs, CPU) gives the reference weights and the moments
at which the run appears in its store and ends. Then, ``--kills`` times, the same command
in a fresh folder is SIGKILLed at a random moment: a fifth of the kills during start-up,
before the run is recorded; the rest a random delay (up to about one epoch's time)
after a random anchor of that run: its row appearing in the store, or the checkpoint of
epoch k (the last one is followed by the final test and the last store writes). So the
kills land in data loading, training steps, checkpoint writes, validation, the test, the
store's last writes and the process's exit;
and each kill is followed by (a failing check is reported, and the campaign goes on):

1. ``PRAGMA integrity_check`` of the store (when it exists);
2. the status check: read-only (what ``resnetlab runs`` shows) and then opened by a
   writer (which records it), the run must not be ``running``, and may be ``completed``
   only with its test metrics;
3. loading every checkpoint file of the run folder with ``weights_only=True`` (no
   half-written file under a final name);
4. ``--resume <run id>`` with the same arguments (a run killed before its first
   checkpoint is started again instead, as a user would), which must complete with test
   metrics, leave no ``.tmp`` file and an intact store;
5. the bitwise comparison of the final weights (``last.pt``) with the reference's.

A kill is *consistent* when 1-3 hold, *resumed identical* when 4-5 do too. The last line
is ``N kills, N consistent, N resumed identical``; the exit status is 0 only when all
kills are both. ``--json`` writes one record per kill. Folders of failed kills are kept
(``--keep`` keeps all) under ``--workdir``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = "chaos"


@dataclass
class Kill:
    """What one kill hit and what it left."""

    index: int
    startup: bool  # killed during start-up (at delay_s from the start), before the run row
    delay_s: float  # else: delay_s after its anchor:
    anchor_step: int = 0  # the run row (0), or the checkpoint of this step (an epoch's end)
    at_s: float = 0.0  # when the SIGKILL went out, seconds from the start
    phase: str = ""  # what the store said at the kill, before anyone looked at it
    status: str = ""  # the status once the store was opened (dead owner detected)
    problems: list[str] = field(default_factory=list)
    consistent: bool = False
    resume: str = ""  # "resumed", "restarted", "already completed"
    identical: bool = False


def train_command(args: argparse.Namespace, db: Path, *extra: str) -> list[str]:
    cmd = [
        *args.python,
        "-m",
        "resnetlab",
        "train",
        "--model",
        "resnetv2-micro",
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--train-limit",
        str(args.train_limit),
        "--val-size",
        str(args.val_size),
        "--test-limit",
        str(args.test_limit),
        "--device",
        "cpu",
        "--seed",
        "0",
        "--runs-db",
        str(db),
        "--run-name",
        RUN_NAME,
        "--live",
        "none",
        "--no-progress",
    ]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    return cmd + list(extra)


def child_env(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    # The parsed-data cache is shared by all runs of the campaign, not the user's.
    env["XDG_CACHE_HOME"] = str(workdir / "cache")
    env.pop("RESNETLAB_RUNS", None)
    return env


def read_run(db: Path) -> dict | None:
    """The run's row as it is on disk, read-only: what the kill left, before any detection."""
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            # The newest: a run killed before its first checkpoint is started again as
            # a new run of the same name.
            row = con.execute(
                "SELECT * FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1", (RUN_NAME,)
            ).fetchone()
            if row is None:
                return None
            run = dict(row)
            run["epochs_logged"] = con.execute(
                "SELECT COUNT(*) FROM metrics WHERE run_id = ? AND key = 'epoch_time'",
                (run["id"],),
            ).fetchone()[0]
            return run
        finally:
            con.close()
    except sqlite3.Error:
        return None  # no schema yet (killed while creating it) or locked


def integrity(db: Path) -> str:
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


def final_weights(path: Path) -> dict[str, torch.Tensor]:
    data = torch.load(path, map_location="cpu", weights_only=True)
    return data["model"]


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a
    )


def reference(args: argparse.Namespace, workdir: Path) -> tuple[float, float, dict, dict, int]:
    """One uninterrupted run: (s until its run row appears, s until it ends, final weights,
    test metrics, final step)."""
    folder = workdir / "reference"
    folder.mkdir(parents=True)
    db = folder / "runs.db"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        train_command(args, db),
        cwd=folder,
        env=child_env(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    t_row = None
    while proc.poll() is None:
        if t_row is None and read_run(db) is not None:
            t_row = time.monotonic() - t0
        time.sleep(0.02)
    t_end = time.monotonic() - t0
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise SystemExit(f"the reference run failed (exit {proc.returncode}):\n{out}")
    run = read_run(db)
    assert run is not None and run["checkpoint_last"], out
    test = {k: v for k, v in json.loads(run["final_metrics"]).items() if k.startswith("test_")}
    last = torch.load(Path(run["checkpoint_last"]), map_location="cpu", weights_only=True)
    return t_row or t_end / 2, t_end, last["model"], test, int(last["step"])


def phase_of(run: dict | None, folder: Path, epochs: int, steps_per_epoch: int) -> str:
    if run is None:
        return "start-up (no run recorded yet)"
    metrics = json.loads(run["final_metrics"] or "{}")
    if run["status"] != "running":
        test = "with" if "test_accuracy" in metrics else "without"
        return f"after fit, status {run['status']} {test} test metrics"
    done = max(checkpoint_step(folder), 0) // steps_per_epoch
    if done >= epochs:
        return "final test / last writes"
    return f"epoch {done + 1}/{epochs}"


def check_after_kill(kill: Kill, db: Path, folder: Path) -> dict | None:
    """Checks 1-3; fills ``kill.problems``; returns the run as detected (or None)."""
    from resnetlab.store import RunStore  # this checkout's, like the runs it checks

    if not db.exists():
        return None
    ok = integrity(db)
    if ok != "ok":
        kill.problems.append(f"integrity_check: {ok}")
        return None
    try:
        with RunStore(db, read_only=True) as store:  # what `resnetlab runs` shows
            seen = [r.status for r in store.list_runs() if r.name == RUN_NAME]
        if "running" in seen:
            kill.problems.append("read-only, the killed run still shows as 'running'")
        with RunStore(db) as store:  # a writer's open records the dead owner
            runs = [r for r in store.list_runs() if r.name == RUN_NAME]
    except Exception as exc:  # a store the next process cannot open is a failure too
        kill.problems.append(f"opening the store: {type(exc).__name__}: {exc}")
        return None
    if not runs:
        return None
    run = runs[0]
    kill.status = run.status
    if run.status == "running":
        kill.problems.append("the killed run is still 'running' after the store was opened")
    if run.status == "completed" and "test_accuracy" not in run.final_metrics:
        kill.problems.append("'completed' without test metrics")
    for ckpt in sorted(Path(run.run_dir or folder).glob("*.pt")):
        try:
            torch.load(ckpt, map_location="cpu", weights_only=True)
        except Exception as exc:
            kill.problems.append(f"{ckpt.name} does not load: {type(exc).__name__}: {exc}")
    return {"id": run.id, "status": run.status, "metrics": run.final_metrics, "dir": run.run_dir}


def resume_and_compare(
    args: argparse.Namespace, kill: Kill, db: Path, folder: Path, run: dict | None, ref: dict
) -> None:
    """Checks 4-5."""
    if run is not None and run["status"] == "completed" and "test_accuracy" in run["metrics"]:
        kill.resume = "already completed"
    else:
        resumable = run is not None and any(Path(run["dir"] or folder).glob("ckpt-step*.pt"))
        extra = ("--resume", str(run["id"])) if resumable else ()
        kill.resume = "resumed" if resumable else "restarted"
        proc = subprocess.run(
            train_command(args, db, *extra),
            cwd=folder,
            env=child_env(folder.parent),
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            kill.problems.append(f"{kill.resume} run exited {proc.returncode}: {' | '.join(tail)}")
            return
    if integrity(db) != "ok":
        kill.problems.append("integrity_check failed after the resume")
        return
    after = read_run(db)
    if after is None or after["status"] != "completed":
        kill.problems.append(f"after the resume: {after and after['status']}")
        return
    metrics = json.loads(after["final_metrics"])
    if "test_accuracy" not in metrics:
        kill.problems.append("resumed run completed without test metrics")
    leftovers = sorted(p.name for p in Path(after["run_dir"]).glob(".*.tmp"))
    if leftovers:
        kill.problems.append(f"temporary files left: {leftovers}")
    kill.identical = same_weights(final_weights(Path(after["checkpoint_last"])), ref)
    if not kill.identical:
        kill.problems.append("final weights differ from the uninterrupted run's")
    kill.identical = kill.identical and not kill.problems


def checkpoint_step(folder: Path) -> int:
    """The step of the newest ``ckpt-step*.pt`` in the run folders under ``folder`` (-1: none)."""
    steps = [int(p.stem[len("ckpt-step") :]) for p in folder.glob("run-*/ckpt-step*.pt")]
    return max(steps, default=-1)


def wait_for_anchor(proc: subprocess.Popen, db: Path, step: int) -> bool:
    """Wait until the run is recorded in ``db`` and (``step`` > 0) has a checkpoint of at
    least ``step``; False when the process ended first."""
    while proc.poll() is None:
        if read_run(db) is not None and (step <= 0 or checkpoint_step(db.parent) >= step):
            return True
        time.sleep(0.01)
    return False


def one_kill(args: argparse.Namespace, workdir: Path, kill: Kill, ref: dict) -> bool:
    """Run, kill, check; False when the run ended before the kill (not a kill then)."""
    folder = workdir / f"kill-{kill.index:03d}"
    folder.mkdir(parents=True)
    db = folder / "runs.db"
    t0 = time.monotonic()
    proc = subprocess.Popen(
        train_command(args, db),
        cwd=folder,
        env=child_env(workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # A kill after the run is recorded waits for its anchor in *this* run (the run row,
    # or the checkpoint of epoch k): times vary too much on a loaded machine to aim at a
    # phase from the reference's clock alone.
    if kill.startup:
        start: float | None = t0
    else:
        start = time.monotonic() if wait_for_anchor(proc, db, kill.anchor_step) else None
    while start is not None and proc.poll() is None and time.monotonic() - start < kill.delay_s:
        time.sleep(0.005)
    if proc.poll() is not None:
        shutil.rmtree(folder)
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill.at_s = round(time.monotonic() - t0, 3)
    try:
        kill.phase = phase_of(read_run(db), folder, args.epochs, args.steps_per_epoch)
        run = check_after_kill(kill, db, folder)
        kill.consistent = not kill.problems
        if kill.consistent:
            resume_and_compare(args, kill, db, folder, run, ref)
    except Exception as exc:  # the campaign goes on; the kill counts as failed
        kill.problems.append(f"checking it raised {type(exc).__name__}: {exc}")
        kill.identical = False
    if kill.identical and not args.keep:
        shutil.rmtree(folder)
    return True


def campaign(args: argparse.Namespace) -> list[Kill]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="resnetlab-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    t_row, t_end, ref, ref_test, final_step = reference(args, workdir)
    steps_per_epoch = args.steps_per_epoch = final_step // args.epochs
    epoch_s = (t_end - t_row) / (args.epochs + 1)
    print(
        f"reference: run recorded after {t_row:.1f} s, done after {t_end:.1f} s, "
        f"test {ref_test}; folders under {workdir}",
        flush=True,
    )
    kills: list[Kill] = []
    while len(kills) < args.kills:
        startup = rng.random() < 0.2
        # Anchors: the run row, then the end of each epoch (the last one: the final test
        # and the last store writes follow); the delay spans about one epoch's time.
        epoch = rng.randrange(args.epochs + 1)
        delay = rng.uniform(0.3, t_row) if startup else rng.uniform(0.0, epoch_s)
        kill = Kill(
            index=len(kills) + 1,
            startup=startup,
            delay_s=round(delay, 3),
            anchor_step=0 if startup else epoch * steps_per_epoch,
        )
        if not one_kill(args, workdir, kill, ref):
            continue
        kills.append(kill)
        verdict = "identical" if kill.identical else "; ".join(kill.problems)
        print(
            f"kill {kill.index:3d} at {kill.at_s:6.2f} s (anchor step {kill.anchor_step}, "
            f"+{kill.delay_s:.2f} s) [{kill.phase}] -> "
            f"{kill.status or 'no run'}; {kill.resume or 'not resumed'}: {verdict}",
            flush=True,
        )
    return kills


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--workdir", help="where the runs go (default: a new temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the folders of good kills too")
    p.add_argument("--json", help="write one record per kill to this file")
    p.add_argument("--data-dir", help="Fashion-MNIST folder (default: resnetlab's search)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-limit", type=int, default=256)
    p.add_argument("--val-size", type=int, default=64)
    p.add_argument("--test-limit", type=int, default=128)
    args = p.parse_args(argv)
    args.python = [sys.executable]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kills = campaign(args)
    consistent = sum(k.consistent for k in kills)
    identical = sum(k.identical for k in kills)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(k) for k in kills], indent=1))
    print(f"{len(kills)} kills, {consistent} consistent, {identical} resumed identical")
    return 0 if consistent == identical == len(kills) else 1


if __name__ == "__main__":
    sys.exit(main())
