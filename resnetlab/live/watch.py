"""``resnetlab watch RUN``: a live dashboard on a run that trains in another process.

The training process (a ``torchrun`` rank 0, a background job, another notebook) writes
its metrics to the run store; ``watch`` polls the store for rows newer than the last one
it saw (``RunStore.metrics(run_id, since_rowid=...)``) on a background thread, appends
them to a local MetricStream, and shows that stream in a desktop window (or a WebAgg page
on 127.0.0.1). Reading SQLite in WAL mode never blocks the writer. The run store keeps
the training machine's system samples (``sys/*``, taken by the live session's system
monitor) with the run, so the CPU/RAM/GPU panels show that machine, not this one. When
the run ends (its stored status is final: completed, stopped, failed, ...) the figures'
title says so and ``watch`` prints a line; the window stays with the final metrics.

    watch = open_watch("fm-small", runs_db="runs.db", backend="webagg")
    watch.dashboard.url, watch.follower.finished
    watch.close()
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnetlab.metrics.stream import MetricStream, Record, make_record
from resnetlab.metrics.transport import append_records
from resnetlab.states import RunStatus

log = logging.getLogger(__name__)

WATCH_BACKENDS = ("auto", "qt", "tk", "gtk", "webagg")


def records_from_rows(rows: Sequence[Any]) -> list[Record]:
    """Stored metric rows (``RunStore.metrics``) as the records they were logged as.

    Consecutive rows of one ``log_metrics`` call share step, epoch and time: one record,
    checked as ``MetricStream.append`` checks one.
    """
    records: list[Record] = []
    group: dict[str, float] = {}
    head: tuple | None = None
    for row in rows:
        ident = (row.step, row.epoch, row.time)
        if head is not None and ident != head:
            records.append(make_record(head[0], group, time=head[2], epoch=head[1]))
            group = {}
        head = ident
        group[row.key] = row.value
    if head is not None:
        records.append(make_record(head[0], group, time=head[2], epoch=head[1]))
    return records


def is_final(status: str | None) -> bool:
    """Whether a stored run's status says nothing more will be written to it."""
    try:
        return status is not None and RunStatus(status).finished
    except ValueError:  # a status this version does not know: still running, perhaps
        return False


class RunFollower:
    """Copies a stored run's metric rows into a MetricStream as they arrive.

    Rows written by one ``log_metrics`` call share step, epoch and time; they become one
    stream record, so the dashboard sees the same records the trainer appended.
    ``on_finished(status)`` is called once, from the poll that first sees a final status.
    """

    def __init__(
        self,
        store: Any,
        run_id: int,
        stream: Any,
        interval: float = 1.0,
        on_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = int(run_id)
        self.stream = stream
        self.interval = float(interval)  # seconds between polls: SQLite reads are cheap
        self.on_finished = on_finished
        self.last_rowid = 0
        self.status: str | None = None
        self.finished = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        """Append the rows stored since the last poll; returns how many rows were read."""
        rows = self.store.metrics(self.run_id, since_rowid=self.last_rowid)
        append_records(self.stream, records_from_rows(rows))
        if rows:
            self.last_rowid = rows[-1].rowid
        self.status = str(self.store.get_run(self.run_id).status)
        if not self.finished and is_final(self.status):
            # Polling goes on: rows the recorder wrote after the status still arrive.
            self.finished = True
            if self.on_finished is not None:
                self.on_finished(self.status)
        return len(rows)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # keep the window; say why it stopped updating
                self.error = exc
                log.exception("polling run %s failed", self.run_id)
                return

    def start(self) -> RunFollower:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"watch-run-{self.run_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)


def choose_backend(requested: str) -> str:
    """The backend ``watch`` uses: a desktop toolkit when there is a display, else WebAgg."""
    if requested != "auto":
        return requested
    from resnetlab.live.drivers import resolve_backend_name

    name = resolve_backend_name("auto")
    return name if name in ("qt", "tk", "gtk", "webagg") else "webagg"


def run_title(run_id: int, name: str, status: str | None = None) -> str:
    """The figures' title: ``run 3: fm-small``, and once it ended ``... (finished: completed)``."""
    title = f"run {run_id}: {name}"
    return f"{title} (finished: {status})" if status is not None else title


@dataclass
class RunWatch:
    """A dashboard following a stored run: what :func:`open_watch` started."""

    store: Any
    info: Any  # the run's RunInfo when the watch began
    stream: MetricStream
    dashboard: Any
    follower: RunFollower

    def close(self) -> None:
        """Stop following, close the dashboard and the store connection."""
        self.follower.stop()
        try:
            self.dashboard.close()
        finally:
            self.store.close()


def open_watch(
    run: str | int,
    *,
    runs_db: str | Path | None = None,
    backend: str = "auto",
    panels: Any = None,
    poll_interval: float = 1.0,
    rate_hz: float = 2.0,
    port: int = 0,
) -> RunWatch:
    """Start a dashboard on stored run ``run`` (id or name) that follows the run store."""
    from resnetlab.errors import ConfigError, StoreError
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.store import RunStore, default_store_path

    if backend not in WATCH_BACKENDS:
        raise ConfigError(
            f"watch --backend must be one of {', '.join(WATCH_BACKENDS)}, got {backend!r}"
        )
    path = Path(runs_db) if runs_db is not None else default_store_path()
    if not path.exists():
        raise StoreError(
            f"no run store at {path}; pass --runs-db PATH (or set RESNETLAB_RUNS) "
            "to the database the training process writes"
        )
    store = RunStore(path, read_only=True)  # watching never writes to it
    try:
        info = store.get_run(run)
        stream = MetricStream(name=info.name)
        name = choose_backend(backend)
        options: dict[str, Any] = {"port": port} if name == "webagg" else {"mode": "window"}
        dash = Dashboard(
            panels, stream=stream, backend=name, title=run_title(info.id, info.name), **options
        )

        def finished(status: str) -> None:
            dash.set_title(run_title(info.id, info.name, status))
            print(f"run {info.id} has finished ({status}); showing its final metrics", flush=True)

        follower = RunFollower(store, info.id, stream, poll_interval, on_finished=finished)
        follower.poll()
        follower.start()
        dash.start(rate_hz=rate_hz)
    except BaseException:
        store.close()
        raise
    return RunWatch(store, info, stream, dash, follower)


def _wait(watch: RunWatch, exit_after: float | None) -> None:
    """Until the window is closed, Ctrl-C, or ``exit_after`` seconds."""
    dash = watch.dashboard
    if dash.backend == "webagg":
        print(f"dashboard: {dash.url}  (Ctrl-C to stop)")
        deadline = None if exit_after is None else time.monotonic() + exit_after
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    else:
        print("close the window to stop watching")
        dash.driver.wait(exit_after)


def watch_run(
    run: str | int,
    *,
    runs_db: str | Path | None = None,
    backend: str = "auto",
    panels: Any = None,
    poll_interval: float = 1.0,
    rate_hz: float = 2.0,
    port: int = 0,
    exit_after: float | None = None,
    grab: str | Path | None = None,
) -> int:
    """Open a live dashboard on stored run ``run`` until its window is closed (or Ctrl-C)."""
    watch = open_watch(
        run,
        runs_db=runs_db,
        backend=backend,
        panels=panels,
        poll_interval=poll_interval,
        rate_hz=rate_hz,
        port=port,
    )
    info, follower, dash = watch.info, watch.follower, watch.dashboard
    try:
        print(f"watching run {info.id} ({info.name}, {info.status}) from {watch.store.path}")
        _wait(watch, exit_after)
        if grab is not None:
            if dash.backend == "webagg":
                dash.save(grab)
            else:
                dash.driver.grab(grab)
    except KeyboardInterrupt:
        pass
    finally:
        watch.close()
    if follower.error is not None:
        print(f"stopped following the run: {follower.error}")
    print(f"run {info.id} is {follower.status}; {len(watch.stream)} records seen")
    return 0


def _handle(args: argparse.Namespace) -> int:
    return watch_run(
        args.run,
        runs_db=args.runs_db,
        backend=args.backend,
        panels=args.panels,
        poll_interval=args.poll,
        rate_hz=args.rate,
        port=args.port,
        exit_after=args.exit_after,
        grab=args.grab,
    )


def register(subparsers: Any) -> None:
    """Add ``resnetlab watch RUN``."""
    p = subparsers.add_parser(
        "watch",
        help="live dashboard on a run training in another process",
        description="Open a live dashboard (desktop window or browser page) on a run that "
        "is training in another process, by following the run store.",
    )
    p.add_argument("run", help="run id or name (see `resnetlab runs`)")
    p.add_argument(
        "--backend",
        choices=WATCH_BACKENDS,
        default="auto",
        help="window toolkit, or webagg for a browser page (default: auto)",
    )
    p.add_argument(
        "--runs-db",
        type=Path,
        default=None,
        help="run store the training writes (default: $RESNETLAB_RUNS or ./runs/resnetlab.db)",
    )
    p.add_argument(
        "--panels",
        nargs="+",
        default=None,
        help="panel presets or metric keys (default: training + system panels)",
    )
    p.add_argument("--poll", type=float, default=1.0, help="seconds between run-store polls")
    p.add_argument("--rate", type=float, default=2.0, help="dashboard refreshes per second")
    p.add_argument("--port", type=int, default=0, help="webagg port (default: a free one)")
    # For scripts and tests: stop after some seconds / save a grab of the window at the end.
    p.add_argument("--exit-after", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--grab", type=Path, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_handle)
