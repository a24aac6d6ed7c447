"""RunStore: every training run and its metrics in one SQLite file.

One database (default ``./runs/resnetlab.db``; ``$RESNETLAB_RUNS`` or ``--runs-db``
change it) in WAL mode, so a training process can write while ``resnetlab runs`` or
``resnetlab watch`` read from other processes. Two tables:

* ``runs``: id, name, status, config JSON, model and dataset names, start/end times,
  final metrics JSON, checkpoint paths, the owning process (pid, host, process start time)
  and a heartbeat.
* ``metrics``: (run, step, epoch, key, value, wall time), one row per value; readers poll
  new rows with ``metrics(run, since_rowid=...)``.

Every write is one transaction, so a process killed with SIGKILL leaves the database
consistent: at most the unflushed rows are lost. A run still marked ``running`` whose
owning process is gone is marked ``interrupted`` the next time any process opens the store.

Paths (the database itself, run folders, checkpoints) are stored absolute, so
``resnetlab eval 3 --runs-db ../runs/resnetlab.db`` works from any directory. Rows written
by older versions hold paths relative to the directory training ran in; they are resolved
when read (see :meth:`RunStore.stored_path`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resnetlab.errors import StoreError
from resnetlab.states import RunStatus

log = logging.getLogger(__name__)

DEFAULT_PATH = "runs/resnetlab.db"
ENV_VAR = "RESNETLAB_RUNS"

# Statuses a stored run can have (the shared RunStatus, stored as its plain value).
# "running" is the only one that is not final.
RUNNING, COMPLETED, STOPPED, FAILED, INTERRUPTED = (
    RunStatus.RUNNING,
    RunStatus.COMPLETED,
    RunStatus.STOPPED,
    RunStatus.FAILED,
    RunStatus.INTERRUPTED,
)
FINAL_STATUSES = (COMPLETED, STOPPED, FAILED, INTERRUPTED)
STATUSES = (RUNNING, *FINAL_STATUSES)
# Columns holding file system paths: written absolute, resolved when read.
PATH_FIELDS = ("run_dir", "checkpoint_last", "checkpoint_best")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    model         TEXT,
    dataset       TEXT,
    config        TEXT NOT NULL DEFAULT '{}',
    started_at    REAL NOT NULL,
    ended_at      REAL,
    final_metrics TEXT NOT NULL DEFAULT '{}',
    checkpoint_last TEXT,
    checkpoint_best TEXT,
    run_dir       TEXT,
    error         TEXT,
    owner_pid     INTEGER,
    owner_host    TEXT,
    owner_started REAL,
    heartbeat     REAL
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE TABLE IF NOT EXISTS metrics (
    rowid   INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    epoch   INTEGER,
    key     TEXT NOT NULL,
    value   REAL,
    time    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics(run_id, key, step);
"""


# ``PRAGMA application_id`` of a resnetlab store ("RLAB"): what tells ours from another
# program's SQLite file. Stores made before it are recognised by their tables.
APPLICATION_ID = 0x524C4142
DEAD_RUN_ERROR = "the training process ended without finishing the run (killed or crashed)"
_OWN_TABLES = {"runs", "metrics"}
_RUN_COLUMNS = {
    "id", "name", "status", "model", "dataset", "config", "started_at", "ended_at",
    "final_metrics", "checkpoint_last", "checkpoint_best", "run_dir", "error", "owner_pid",
    "owner_host", "owner_started", "heartbeat",
}  # fmt: skip


def store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    """A one-line StoreError for an SQLite error on the store ``path``: its cause and the fix."""
    text = str(exc)
    # SQLite reports ENOSPC in its WAL/shared-memory files as a plain "disk I/O error".
    if "disk is full" in text or ("disk I/O error" in text and _nearly_full(path.parent)):
        return StoreError(
            f"no space left on {path.parent} (writing the run store {path}); free some "
            "space and run again (--resume continues an interrupted run)"
        )
    if "malformed" in text or "not a database" in text:
        return StoreError(
            f"{path}: cannot open the run store: not a SQLite database, or a damaged one "
            f"({text}). Copy out what it "
            f"holds with `sqlite3 {path} .recover | sqlite3 recovered.db` and use "
            f"recovered.db, or point --runs-db / ${ENV_VAR} at another file"
        )
    return StoreError(f"{path}: {text}")


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 256 * 1024
    except OSError:
        return False


def _store_kind(conn: sqlite3.Connection, path: Path) -> str:
    """ "ours" (marked), "legacy" (our tables, unmarked), "empty"; StoreError otherwise."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    if app == APPLICATION_ID:
        return "ours"
    tables = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not r[0].startswith("sqlite_")
    }
    if app == 0 and not tables:
        return "empty"
    if app == 0 and tables >= _OWN_TABLES:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
        if columns >= _RUN_COLUMNS:
            return "legacy"
    what = f"application_id {app:#x}" if app else f"tables {', '.join(sorted(tables))}"
    raise StoreError(
        f"{path} is not a resnetlab run store ({what}); it was left untouched. Point "
        f"--runs-db or ${ENV_VAR} at another file"
    )


def default_store_path() -> Path:
    """``$RESNETLAB_RUNS`` if set, else ``./runs/resnetlab.db``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


@dataclass(frozen=True)
class RunInfo:
    """One row of the ``runs`` table, decoded."""

    id: int
    name: str
    status: RunStatus
    model: str | None
    dataset: str | None
    config: dict[str, Any]
    started_at: float
    ended_at: float | None
    final_metrics: dict[str, float]
    checkpoint_last: str | None
    checkpoint_best: str | None
    run_dir: str | None
    error: str | None
    owner_pid: int | None
    owner_host: str | None
    heartbeat: float | None

    @property
    def duration(self) -> float:
        """Seconds from start to end (or to the last heartbeat while running)."""
        end = self.ended_at or self.heartbeat or self.started_at
        return max(0.0, end - self.started_at)


@dataclass(frozen=True)
class MetricRow:
    """One row of the ``metrics`` table."""

    rowid: int
    step: int
    epoch: int | None
    key: str
    value: float
    time: float


def _process_start_time(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # psutil missing or the process is gone
        return None


def _owner_alive(pid: int | None, host: str | None, started: float | None) -> bool | None:
    """True/False when we can tell (same host), None when the owner is on another host."""
    if pid is None or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if started is not None:
        now_started = _process_start_time(pid)
        # A different start time means the pid was reused by another process.
        if now_started is not None and abs(now_started - started) > 1.0:
            return False
    # A zombie (killed, not yet reaped by its parent) is dead for our purpose.
    try:
        import psutil

        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return False
    except Exception:
        pass
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return repr(value)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class RunStore:
    """The SQLite run store. Thread-safe; one connection per store object.

    >>> store = RunStore("runs/resnetlab.db")
    >>> run = store.create_run("baseline", config={"lr": 0.1})
    >>> store.log_metrics(run, step=10, metrics={"loss": 0.5}, epoch=0)
    >>> store.finish_run(run, "completed", final_metrics={"test_accuracy": 0.93})
    """

    # Runs of another host count as interrupted when their heartbeat is older than this.
    stale_after_s: float = 6 * 3600.0

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        timeout: float = 30.0,
        read_only: bool = False,
    ) -> None:
        """Open (or create) the store at ``path``.

        ``read_only``: open an existing store for reading only (SQLite ``mode=ro``): no file
        is created, nothing is written; runs whose owner died read as ``interrupted``
        without being changed. A file that is not a resnetlab store is refused untouched
        either way.
        """
        # Absolute: run folders are made beside it and their paths stored, and those must
        # stay valid when the store is later opened from another directory.
        self.path = Path(os.path.abspath(path if path is not None else default_store_path()))
        self.read_only = read_only
        self._dead: set[int] = set()  # read-only: runs whose owner is gone, not yet marked
        self._conn = self._connect(timeout)
        self._lock = threading.RLock()
        self._pending: dict[int, list[tuple]] = {}
        try:
            self.mark_dead_runs()
        except sqlite3.Error as exc:  # the first read of the runs: damaged pages show here
            self._conn.close()
            raise store_error(self.path, exc) from exc

    def _connect(self, timeout: float) -> sqlite3.Connection:
        if self.read_only:
            if not self.path.is_file():
                raise StoreError(
                    f"no run store at {self.path}; train something first (`resnetlab "
                    f"train`) or point --runs-db / ${ENV_VAR} at your database"
                )
            target, uri = f"{self.path.as_uri()}?mode=ro", True
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        existed = self.path.exists()
        conn = sqlite3.connect(
            target, timeout=timeout, check_same_thread=False, isolation_level=None, uri=uri
        )
        try:
            conn.row_factory = sqlite3.Row
            kind = _store_kind(conn, self.path)  # before anything could change the file
            if self.read_only:
                if kind == "empty":
                    raise StoreError(f"{self.path} is empty: no run has been recorded in it")
                return conn
            conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across application crashes (SIGKILL) in WAL mode; only
            # a power cut may lose the last transactions, never corrupt the file.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            if kind != "ours":  # new, or made before stores were marked
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except BaseException as exc:
            conn.close()
            if not existed:  # nothing half-made: no schema-less store left behind
                for leftover in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            if isinstance(exc, sqlite3.Error):
                raise store_error(self.path, exc) from exc
            raise
        return conn

    # -- housekeeping ------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self):
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def mark_dead_runs(self) -> list[int]:
        """Mark ``running`` runs whose owner process is gone as ``interrupted``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, owner_pid, owner_host, owner_started, heartbeat FROM runs "
                "WHERE status = ?",
                (RUNNING,),
            ).fetchall()
        dead = []
        now = time.time()
        for row in rows:
            alive = _owner_alive(row["owner_pid"], row["owner_host"], row["owner_started"])
            if alive is None:  # another host: trust the heartbeat
                alive = row["heartbeat"] is not None and now - row["heartbeat"] < self.stale_after_s
            if not alive:
                dead.append(row["id"])
        if dead and self.read_only:
            self._dead = set(dead)  # shown as interrupted; the next writer records it
        elif dead:
            with self._tx() as c:
                c.executemany(
                    "UPDATE runs SET status = ?, ended_at = COALESCE(heartbeat, started_at), "
                    "error = COALESCE(error, ?) WHERE id = ? AND status = ?",
                    [(INTERRUPTED, DEAD_RUN_ERROR, rid, RUNNING) for rid in dead],
                )
            log.info("run store %s: marked runs %s as interrupted", self.path, dead)
        return dead

    def close(self) -> None:
        """Flush pending metrics and close the connection (idempotent)."""
        with self._lock:
            if self._conn is None:
                return
            with contextlib.suppress(sqlite3.Error):
                self.flush()
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------
    def create_run(
        self,
        name: str | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        model: str | None = None,
        dataset: str | None = None,
        run_dir: str | os.PathLike[str] | None = None,
    ) -> int:
        """Insert a new ``running`` run owned by this process; returns its id."""
        now = time.time()
        pid = os.getpid()
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs (name, status, model, dataset, config, started_at, run_dir, "
                "owner_pid, owner_host, owner_started, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name or "",
                    RUNNING,
                    model,
                    dataset,
                    json.dumps(dict(config or {}), default=_json_default, sort_keys=True),
                    now,
                    os.path.abspath(run_dir) if run_dir else None,
                    pid,
                    socket.gethostname(),
                    _process_start_time(pid),
                    now,
                ),
            )
            run_id = int(cur.lastrowid)
            if not name:
                c.execute("UPDATE runs SET name = ? WHERE id = ?", (f"run-{run_id}", run_id))
        return run_id

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set columns of a run: ``run_dir``, ``checkpoint_last``, ``config``, ..."""
        allowed = {
            "name",
            "status",
            "model",
            "dataset",
            "config",
            "run_dir",
            "checkpoint_last",
            "checkpoint_best",
            "error",
            "final_metrics",
        }
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"update_run: unknown run fields {sorted(bad)}; use {sorted(allowed)}")
        if not fields:
            return
        values = []
        for key, value in fields.items():
            if key in ("config", "final_metrics"):
                value = json.dumps(dict(value), default=_json_default, sort_keys=True)
            elif key in PATH_FIELDS and value:
                value = os.path.abspath(value)  # relative to this process's directory
            elif isinstance(value, Path):
                value = str(value)
            values.append(value)
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as c:
            c.execute(
                f"UPDATE runs SET {sets}, heartbeat = ? WHERE id = ?",
                (*values, time.time(), run_id),
            )

    def claim_run(self, run_id: int) -> None:
        """Make this process the owner of an existing run (resume): status ``running``."""
        pid = os.getpid()
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET status = ?, ended_at = NULL, error = NULL, owner_pid = ?, "
                "owner_host = ?, owner_started = ?, heartbeat = ? WHERE id = ?",
                (RUNNING, pid, socket.gethostname(), _process_start_time(pid), time.time(), run_id),
            )

    def finish_run(
        self,
        run_id: int,
        status: RunStatus | str = COMPLETED,
        *,
        final_metrics: Mapping[str, float] | None = None,
        error: str | None = None,
    ) -> None:
        """Flush pending metrics and close the run with a final status."""
        if status not in FINAL_STATUSES:
            names = tuple(s.value for s in FINAL_STATUSES)
            raise StoreError(f"finish_run: status {status!r} is not one of {names}")
        status = RunStatus(status).value
        self.flush()
        now = time.time()
        with self._tx() as c:
            if final_metrics:
                row = c.execute("SELECT final_metrics FROM runs WHERE id = ?", (run_id,)).fetchone()
                merged = json.loads(row["final_metrics"]) if row else {}
                merged.update({k: _finite_or_none(v) for k, v in final_metrics.items()})
                c.execute(
                    "UPDATE runs SET final_metrics = ? WHERE id = ?",
                    (json.dumps(merged, sort_keys=True), run_id),
                )
            c.execute(
                "UPDATE runs SET status = ?, ended_at = ?, heartbeat = ?, error = ? WHERE id = ?",
                (status, now, now, error, run_id),
            )

    def add_final_metrics(self, run_id: int, metrics: Mapping[str, float]) -> None:
        """Merge values (e.g. the test accuracy measured after training) into final metrics."""
        with self._tx() as c:
            row = c.execute("SELECT final_metrics FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in {self.path}")
            merged = json.loads(row["final_metrics"] or "{}")
            merged.update({k: _finite_or_none(v) for k, v in metrics.items()})
            c.execute(
                "UPDATE runs SET final_metrics = ? WHERE id = ?",
                (json.dumps(merged, sort_keys=True), run_id),
            )

    def stored_path(self, value: str | None) -> str | None:
        """A path column's value as an absolute path where it can be found.

        New rows are absolute already. Older rows hold paths relative to the directory
        training ran in (``runs/run-3/last.pt`` beside ``runs/resnetlab.db``): used as
        given if that exists from here, else looked up against the database's folder and
        its two parents; left as stored when found nowhere.
        """
        if not value or os.path.isabs(value):
            return value
        if os.path.exists(value):
            return os.path.abspath(value)
        folder = self.path.parent
        for base in (folder, *list(folder.parents)[:2]):
            candidate = base / value
            if candidate.exists():
                return str(candidate)
        return value

    def _row_to_info(self, row: sqlite3.Row) -> RunInfo:
        dead = row["id"] in self._dead and row["status"] == RUNNING
        return RunInfo(
            id=row["id"],
            name=row["name"],
            status=RunStatus.INTERRUPTED if dead else RunStatus(row["status"]),
            model=row["model"],
            dataset=row["dataset"],
            config=json.loads(row["config"] or "{}"),
            started_at=row["started_at"],
            ended_at=(row["heartbeat"] or row["started_at"]) if dead else row["ended_at"],
            final_metrics=json.loads(row["final_metrics"] or "{}"),
            checkpoint_last=self.stored_path(row["checkpoint_last"]),
            checkpoint_best=self.stored_path(row["checkpoint_best"]),
            run_dir=self.stored_path(row["run_dir"]),
            error=(row["error"] or DEAD_RUN_ERROR) if dead else row["error"],
            owner_pid=row["owner_pid"],
            owner_host=row["owner_host"],
            heartbeat=row["heartbeat"],
        )

    def get_run(self, id_or_name: int | str) -> RunInfo:
        """A run by id (``3``, ``"3"``) or by name (the newest run of that name)."""
        with self._lock:
            row = None
            text = str(id_or_name).strip()
            if text.isdigit():
                row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (int(text),)).fetchone()
            if row is None:
                row = self._conn.execute(
                    "SELECT * FROM runs WHERE name = ? ORDER BY id DESC LIMIT 1", (text,)
                ).fetchone()
        if row is None:
            raise StoreError(
                f"no run {id_or_name!r} in {self.path}; `resnetlab runs` lists the runs "
                f"(set {ENV_VAR} or --runs-db for another database)"
            )
        return self._row_to_info(row)

    def list_runs(self, *, status: str | None = None, limit: int | None = None) -> list[RunInfo]:
        """Runs, newest first."""
        sql = "SELECT * FROM runs"
        params: list[Any] = []
        if status and not self._dead:
            sql += " WHERE status = ?"
            params.append(status)
        sql += " ORDER BY id DESC"
        if limit and not (status and self._dead):
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        runs = [self._row_to_info(r) for r in rows]
        if status and self._dead:  # read-only: dead runs read as interrupted
            runs = [r for r in runs if r.status == status][: limit or None]
        return runs

    def delete_run(self, id_or_name: int | str) -> None:
        """Remove a run and its metrics (checkpoint files are left alone)."""
        run = self.get_run(id_or_name)
        with self._tx() as c:
            c.execute("DELETE FROM metrics WHERE run_id = ?", (run.id,))
            c.execute("DELETE FROM runs WHERE id = ?", (run.id,))

    # -- metrics -----------------------------------------------------------------------
    def log_metrics(
        self,
        run_id: int,
        step: int,
        metrics: Mapping[str, float],
        *,
        epoch: int | None = None,
        time_s: float | None = None,
    ) -> None:
        """Buffer metric values; they reach the database at the next :meth:`flush`."""
        t = time.time() if time_s is None else float(time_s)
        rows = [
            (run_id, int(step), epoch, str(k), _finite_or_none(v), t) for k, v in metrics.items()
        ]
        with self._lock:
            self._pending.setdefault(run_id, []).extend(rows)

    @property
    def pending(self) -> int:
        """How many buffered metric rows wait for :meth:`flush`."""
        with self._lock:
            return sum(len(v) for v in self._pending.values())

    def flush(self) -> int:
        """Write buffered metric rows in one transaction and beat the heartbeat."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return 0
            rows = [r for rs in pending.values() for r in rs]
            now = time.time()
            try:
                with self._tx() as c:
                    c.executemany(
                        "INSERT INTO metrics (run_id, step, epoch, key, value, time) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                    c.executemany(
                        "UPDATE runs SET heartbeat = ? WHERE id = ?",
                        [(now, rid) for rid in pending],
                    )
            except sqlite3.Error as exc:
                raise StoreError(
                    f"{self.path}: writing {len(rows)} metric rows failed: {exc}"
                ) from exc
            return len(rows)

    def truncate_metrics(
        self, run_id: int, after_step: int, *, logged_after: float | None = None
    ) -> int:
        """Delete a run's metric rows (stored and buffered) of steps after ``after_step``.

        Resuming from a checkpoint at step S replays the steps after S; without this, the
        rows the lost attempt logged for them would appear twice. ``logged_after`` (the
        checkpoint's save time) also drops rows *at* step S logged after the checkpoint
        was written (gradient norms recorded before step S+1, a finished run's test
        metrics). Returns how many stored rows were deleted.
        """

        def replayed(step: int, t: float) -> bool:
            return step > after_step or (
                logged_after is not None and step == after_step and t > logged_after
            )

        with self._lock:
            if run_id in self._pending:
                self._pending[run_id] = [
                    r for r in self._pending[run_id] if not replayed(r[1], r[5])
                ]
            sql = "DELETE FROM metrics WHERE run_id = ? AND (step > ?"
            params: list[Any] = [run_id, int(after_step)]
            if logged_after is not None:
                sql += " OR (step = ? AND time > ?)"
                params += [int(after_step), float(logged_after)]
            with self._tx() as c:
                deleted = c.execute(sql + ")", params).rowcount
        if deleted:
            log.info(
                "run %s: removed %d metric rows after step %d (replayed on resume)",
                run_id,
                deleted,
                after_step,
            )
        return deleted

    def metrics(
        self,
        run_id: int,
        keys: Sequence[str] | None = None,
        since_rowid: int = 0,
    ) -> list[MetricRow]:
        """Stored metric rows of a run (optionally only ``keys``) with rowid > ``since_rowid``.

        Polling with the last seen rowid gives only new rows, which is how another
        process follows a live run.
        """
        sql = (
            "SELECT rowid, step, epoch, key, value, time FROM metrics "
            "WHERE run_id = ? AND rowid > ?"
        )
        params: list[Any] = [run_id, int(since_rowid)]
        if keys:
            sql += f" AND key IN ({', '.join('?' for _ in keys)})"
            params.extend(keys)
        sql += " ORDER BY rowid"
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [
            MetricRow(
                r["rowid"],
                r["step"],
                r["epoch"],
                r["key"],
                float("nan") if r["value"] is None else r["value"],
                r["time"],
            )
            for r in rows
        ]

    def metric_keys(self, run_id: int) -> list[str]:
        """Every metric key stored for a run, in first-seen order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, MIN(rowid) AS first FROM metrics WHERE run_id = ? "
                "GROUP BY key ORDER BY first",
                (run_id,),
            ).fetchall()
        return [r["key"] for r in rows]

    def series(self, run_id: int, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of one metric of a run, in logging order."""
        rows = self.metrics(run_id, keys=[key])
        return [r.step for r in rows], [r.value for r in rows]

    # -- as DataFrames (pandas: the ``frames`` extra; see store/frames.py) ------------------
    def dataframe(self, *, status: str | None = None, limit: int | None = None) -> Any:
        """One row per run, newest first: id, name, status, model, data, config.*, finals."""
        from resnetlab.store import frames

        return frames.runs_frame(self, status=status, limit=limit)

    def metrics_frame(self, run: int | str, *, long: bool = False) -> Any:
        """One run's metrics: step, epoch, time and a column per key (``export --csv``)."""
        from resnetlab.store import frames

        return frames.metrics_frame(self, run, long=long)


def iter_metric_table(rows: Iterable[MetricRow]) -> dict[int, dict[str, float]]:
    """Pivot rows into ``{step: {key: value}}`` (the last value wins per step and key)."""
    table: dict[int, dict[str, float]] = {}
    for r in rows:
        table.setdefault(r.step, {})[r.key] = r.value
    return table


def runs(
    runs_db: str | os.PathLike[str] | None = None,
    *,
    status: str | None = None,
    limit: int | None = None,
) -> Any:
    """``resnetlab.runs()``: the runs of the store (default ``$RESNETLAB_RUNS``) as a DataFrame."""
    path = Path(runs_db) if runs_db is not None else default_store_path()
    if not path.exists():
        raise StoreError(f"no run store at {path}; train something first or pass runs_db=")
    with RunStore(path) as store:
        return store.dataframe(status=status, limit=limit)
