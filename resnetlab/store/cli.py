"""``resnetlab runs | show | plot | compare | export``: read the run store."""

from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.states import RunStatus

# The statuses a stored run can have (store.runstore.STATUSES; not imported here so that
# building the command line stays light).
STORED_STATUSES = (
    RunStatus.RUNNING,
    RunStatus.COMPLETED,
    RunStatus.STOPPED,
    RunStatus.FAILED,
    RunStatus.INTERRUPTED,
)


def _add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--runs-db",
        default=None,
        help="run store file (default $RESNETLAB_RUNS or ./runs/resnetlab.db)",
    )


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("runs", help="table of recorded training runs")
    p.add_argument(
        "--status",
        default=None,
        help=f"only runs with this status ({', '.join(STORED_STATUSES)})",
    )
    p.add_argument("--limit", type=int, default=50, help="newest N runs (default 50, 0: all)")
    _add_db(p)
    p.set_defaults(func=cmd_runs)

    p = subparsers.add_parser("show", help="everything recorded about one run")
    p.add_argument("run", help="run id or name")
    _add_db(p)
    p.set_defaults(func=cmd_show)

    p = subparsers.add_parser("plot", help="loss/accuracy/LR curves of a run as a PNG")
    p.add_argument("run", help="run id or name")
    p.add_argument("--out", default=None, help="PNG file (default run-ID.png here)")
    p.add_argument("--keys", nargs="+", default=None, help="metrics to draw (default: the usual)")
    _add_db(p)
    p.set_defaults(func=cmd_plot)

    p = subparsers.add_parser("compare", help="runs side by side: results and config differences")
    p.add_argument("runs", nargs="+", help="run ids or names")
    p.add_argument("--out", default=None, help="also plot their curves to this PNG")
    p.add_argument(
        "--keys", nargs="+", default=["val_accuracy", "loss"], help="metrics plotted with --out"
    )
    p.add_argument(
        "--x",
        choices=("step", "epoch", "time"),
        default="step",
        help="x axis of the --out plot: optimiser step (default), epoch (runs of other "
        "sizes line up), or wall time in seconds since the run's first record",
    )
    _add_db(p)
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("export", help="a run's metrics as CSV, JSON or TensorBoard events")
    p.add_argument("run", help="run id or name")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV, one row per step (default)")
    fmt.add_argument("--json", action="store_true", help="JSON: the run record and all metric rows")
    fmt.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=None,
        help="TensorBoard event files under DIR/run-ID (needs resnetlab[tensorboard])",
    )
    p.add_argument(
        "--long", action="store_true", help="CSV in long form: step,epoch,time,key,value"
    )
    p.add_argument("--out", "-o", default=None, help="file to write (default: standard output)")
    _add_db(p)
    p.set_defaults(func=cmd_export)


def _open(args: argparse.Namespace):
    """The store of ``--runs-db``, opened read-only: these commands never write to it."""
    from resnetlab.store.runstore import RunStore

    path = _db_path(args)
    if not path.exists():
        raise ConfigError(
            f"no run store at {path}; train something first (`resnetlab train`) "
            "or point --runs-db / $RESNETLAB_RUNS at your database"
        )
    return RunStore(path, read_only=True)


def _db_path(args: argparse.Namespace) -> Path:
    from resnetlab.store.runstore import default_store_path

    return Path(os.path.abspath(args.runs_db or default_store_path()))


def _reading(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """SQLite errors while reading (damaged pages, a file that is not a database) become
    the one-line StoreError naming the file and the way to recover it."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except sqlite3.Error as exc:
            from resnetlab.store.runstore import store_error

            raise store_error(_db_path(args), exc) from exc

    return run


def _fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


def _fmt_duration(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _fmt_num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.4g}"
    return str(v)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def _epochs(store: Any, run: Any) -> str:
    total = run.config.get("epochs")
    done = run.final_metrics.get("epochs_done")
    if done is None:
        rows = store.metrics(run.id, keys=["val_loss", "epoch_time"])
        done = max((r.epoch + 1 for r in rows if r.epoch is not None), default=0)
    return f"{int(done)}/{total}" if total else str(int(done))


@_reading
def cmd_runs(args: argparse.Namespace) -> int:
    if args.status is not None and args.status not in STORED_STATUSES:
        raise ConfigError(f"--status {args.status!r}: a run is one of {', '.join(STORED_STATUSES)}")
    with _open(args) as store:
        runs = store.list_runs(status=args.status, limit=args.limit or None)
        if not runs:
            print(
                f"no runs in {store.path}" + (f" with status {args.status}" if args.status else "")
            )
            return 0
        rows = []
        for r in runs:
            fm = r.final_metrics
            rows.append(
                [
                    str(r.id),
                    r.name,
                    r.status,
                    r.model or "-",
                    r.dataset or "-",
                    _epochs(store, r),
                    _fmt_num(fm.get("val_accuracy")),
                    _fmt_num(fm.get("test_accuracy")),
                    _fmt_duration(r.duration),
                    _fmt_time(r.started_at),
                ]
            )
        print(
            _table(
                [
                    "ID",
                    "NAME",
                    "STATUS",
                    "MODEL",
                    "DATA",
                    "EPOCHS",
                    "VAL_ACC",
                    "TEST_ACC",
                    "TIME",
                    "STARTED",
                ],
                rows,
            )
        )
        print(f"\n{len(runs)} run(s) in {store.path}")
    return 0


@_reading
def cmd_show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        r = store.get_run(args.run)
        print(f"run {r.id}  {r.name}  [{r.status}]")
        print(f"model    {r.model or '-'}    data {r.dataset or '-'}    epochs {_epochs(store, r)}")
        print(
            f"started  {_fmt_time(r.started_at)}    ended {_fmt_time(r.ended_at)}    "
            f"duration {_fmt_duration(r.duration)}"
        )
        if r.owner_pid:
            print(f"process  pid {r.owner_pid} on {r.owner_host}")
        print(f"run dir  {r.run_dir or '-'}")
        print(f"last checkpoint  {r.checkpoint_last or '-'}")
        print(f"best checkpoint  {r.checkpoint_best or '-'}")
        if r.error:
            print(f"error    {r.error}")
        if r.final_metrics:
            print("\nfinal metrics")
            for k in sorted(r.final_metrics):
                print(f"  {k:<16} {_fmt_num(r.final_metrics[k])}")
        keys = store.metric_keys(r.id)
        if keys:
            print("\nlatest logged values")
            for k in keys:
                rows = store.metrics(r.id, keys=[k])
                last = rows[-1]
                print(
                    f"  {k:<16} {_fmt_num(last.value):>12}  at step {last.step} "
                    f"({len(rows)} values)"
                )
        if r.config:
            print("\nconfig")
            for k in sorted(r.config):
                print(f"  {k:<16} {json.dumps(r.config[k])}")
    return 0


@_reading
def cmd_plot(args: argparse.Namespace) -> int:
    from resnetlab.store.plot import plot_run

    with _open(args) as store:
        r = store.get_run(args.run)
        if not store.metric_keys(r.id):
            raise ConfigError(f"run {r.id} ({r.name}) has no metrics yet; nothing to plot")
        out = args.out or f"run-{r.id}.png"
        drawn = plot_run(store, r, out, keys=args.keys)
        if not drawn:
            raise ConfigError(
                f"run {r.id} has none of the metrics {args.keys}; it has {store.metric_keys(r.id)}"
            )
    print(f"wrote {out} ({', '.join(drawn)})")
    return 0


def _compare_row(store: Any, r: Any, fields: list[str]) -> list[str]:
    from resnetlab.store.compare import flat_config, format_value

    fm, flat = r.final_metrics, flat_config(r.config)
    return [
        str(r.id),
        r.name,
        r.status,
        r.model or "-",
        _epochs(store, r),
        _fmt_num(fm.get("loss")),
        _fmt_num(fm.get("val_accuracy")),
        _fmt_num(fm.get("test_accuracy")),
        _fmt_duration(r.duration),
        *(format_value(flat.get(name)) for name in fields),
    ]


@_reading
def cmd_compare(args: argparse.Namespace) -> int:
    from resnetlab.store.compare import differing_fields

    with _open(args) as store:
        runs = [store.get_run(x) for x in args.runs]
        # Every field that differs between the runs is a column of its own, in full.
        fields = differing_fields([r.config for r in runs])
        headers = ["ID", "NAME", "STATUS", "MODEL", "EPOCHS", "LOSS", "VAL_ACC", "TEST_ACC"]
        headers += ["TIME", *fields]
        print(_table(headers, [_compare_row(store, r, fields) for r in runs]))
        print("\ndiffer: " + ", ".join(fields) if fields else "\nsame config")
        if args.out:
            from resnetlab.store.plot import plot_compare

            plot_compare(store, runs, args.out, keys=args.keys, x=args.x)
            print(f"wrote {args.out} (x: {args.x})")
    return 0


@_reading
def cmd_export(args: argparse.Namespace) -> int:
    from resnetlab.utils.atomic import atomic_write_text

    if args.tensorboard:
        from resnetlab.export.tensorboard import write_tensorboard

        with _open(args) as store:
            folder = write_tensorboard(store, args.run, args.tensorboard)
        print(f"wrote {folder} (tensorboard --logdir {args.tensorboard})")
        return 0
    with _open(args) as store:
        r = store.get_run(args.run)
        rows = store.metrics(r.id)
        buf = io.StringIO()
        if args.json:
            record = {k: getattr(r, k) for k in r.__dataclass_fields__}
            record["metrics"] = [
                {"step": m.step, "epoch": m.epoch, "time": m.time, "key": m.key, "value": m.value}
                for m in rows
            ]
            json.dump(record, buf, indent=1, default=str)
            buf.write("\n")
        elif args.long:
            w = csv.writer(buf)
            w.writerow(["step", "epoch", "time", "key", "value"])
            for m in rows:
                w.writerow(
                    [
                        m.step,
                        "" if m.epoch is None else m.epoch,
                        f"{m.time:.3f}",
                        m.key,
                        repr(m.value),
                    ]
                )
        else:
            keys = store.metric_keys(r.id)
            table: dict[int, dict[str, Any]] = {}
            for m in rows:
                entry = table.setdefault(m.step, {"epoch": m.epoch, "time": m.time})
                entry[m.key] = m.value
                if m.epoch is not None:
                    entry["epoch"] = m.epoch
            w = csv.writer(buf)
            w.writerow(["step", "epoch", "time", *keys])
            for step in sorted(table):
                e = table[step]
                w.writerow(
                    [
                        step,
                        "" if e["epoch"] is None else e["epoch"],
                        f"{e['time']:.3f}",
                        *("" if k not in e else repr(e[k]) for k in keys),
                    ]
                )
    text = buf.getvalue()
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out} ({len(rows)} values of run {r.id})")
    else:
        sys.stdout.write(text)
    return 0
