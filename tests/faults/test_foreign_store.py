"""Stores that are not ours, damaged stores, and commands that must not write.

Another program's SQLite file is refused untouched (same bytes, same journal mode, no
tables added) by every command; read-only commands open our store read-only and create
no file; a store with damaged pages is a one-line error naming the file and the recovery.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from resnetlab.cli import main
from resnetlab.errors import StoreError
from resnetlab.store import RunStore
from resnetlab.store.runstore import _SCHEMA, APPLICATION_ID

pytestmark = pytest.mark.timeout(240)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> list[str]:
    """The files in ``folder``, besides SQLite's own -wal/-shm of a WAL-mode store (a
    reader of such a store needs them; they belong to the store, not to the command)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if not p.name.endswith(("-wal", "-shm")) or not p.name.startswith("runs.db")
    )


def _cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def _app_db(path: Path, *, clash: bool = False, app_id: int = 0) -> None:
    """Another program's database (rollback journal, its own tables)."""
    con = sqlite3.connect(path)
    if clash:  # a table named like ours, with other columns
        con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, lap REAL)")
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    con.execute("INSERT INTO invoices (total) VALUES (12.5)")
    if app_id:
        con.execute(f"PRAGMA application_id = {app_id}")
    con.commit()
    con.close()


def _journal_mode(path: Path) -> str:
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize(
    "kind", [{"clash": False}, {"clash": True}, {"app_id": 0x46524F47}], ids=str
)
def test_another_programs_database_is_refused_untouched(tmp_path, capsys, kind) -> None:
    app = tmp_path / "app.db"
    _app_db(app, **kind)
    before = _digest(app)
    for argv in (["runs"], ["show", "1"], ["export", "1"], ["plot", "1"], ["eval", "1"]):
        rc, _, err = _cli(capsys, *argv, "--runs-db", str(app))
        assert rc == 2 and "is not a resnetlab run store" in err, (argv, err)
        assert "left untouched" in err and err.count("\n") == 1, err
    with pytest.raises(StoreError, match="is not a resnetlab run store"):
        RunStore(app)  # what `resnetlab train --runs-db app.db` opens: refused as well
    assert _digest(app) == before and _journal_mode(app) == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal/-shm, no PNG


def _recorded_store(db: Path, *, dead_run: bool = False) -> None:
    """A store with one finished run (and, if asked, one whose process died), written
    by other processes; closed, so no -wal/-shm files are left beside it."""
    code = (
        "import os, sys; from resnetlab.store import RunStore; s = RunStore(sys.argv[1]); "
        "r = s.create_run('done', config={'lr': 0.1}); "
        "[s.log_metrics(r, i, {'loss': 1.0 / i}) for i in range(1, 4)]; "
        "s.finish_run(r, 'completed', final_metrics={'test_accuracy': 0.5}); s.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(db)], check=True)
    if dead_run:
        code = (
            "import os, sys; from resnetlab.store import RunStore; s = RunStore(sys.argv[1]); "
            "s.create_run('dead'); s.close(); os._exit(0)"
        )
        subprocess.run([sys.executable, "-c", code, str(db)], check=True)


def test_read_only_commands_create_no_file_and_change_no_byte(tmp_path, capsys) -> None:
    db = tmp_path / "runs.db"
    _recorded_store(db, dead_run=True)
    before, files = _digest(db), _files(tmp_path)
    rc, out, _ = _cli(capsys, "runs", "--runs-db", str(db))
    assert rc == 0 and "interrupted" in out  # the dead run reads as what it is...
    assert "running" not in out
    rc, out, _ = _cli(capsys, "runs", "--status", "interrupted", "--runs-db", str(db))
    assert rc == 0 and "dead" in out and "done" not in out
    assert _cli(capsys, "show", "dead", "--runs-db", str(db))[0] == 0
    assert _cli(capsys, "export", "done", "--runs-db", str(db))[0] == 0
    assert _cli(capsys, "compare", "done", "dead", "--runs-db", str(db))[0] == 0
    rc, _, err = _cli(capsys, "plot", "done", "--keys", "bogus", "--runs-db", str(db))
    assert rc == 2 and "none of the metrics ['bogus']" in err
    assert not (Path.cwd() / "run-1.png").exists()
    rc, _, err = _cli(capsys, "runs", "--status", "bogus", "--runs-db", str(db))
    assert rc == 2 and "--status 'bogus'" in err
    assert _digest(db) == before and _files(tmp_path) == files  # ...without being changed
    with RunStore(db) as store:  # a writer records it
        assert store.get_run("dead").status == "interrupted"


def test_plot_with_unknown_keys_writes_no_png(tmp_path, capsys, monkeypatch) -> None:
    db = tmp_path / "runs.db"
    _recorded_store(db)
    monkeypatch.chdir(tmp_path)
    rc, _, err = _cli(capsys, "plot", "1", "--keys", "bogus", "--runs-db", str(db))
    assert rc == 2 and "has none of the metrics" in err
    assert _files(tmp_path) == ["runs.db"]


def test_eval_of_a_missing_checkpoint_creates_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESNETLAB_RUNS", raising=False)
    rc, _, err = _cli(capsys, "eval", "/nonexistent.pt")
    assert rc == 2 and "/nonexistent.pt: no such checkpoint" in err
    assert _files(tmp_path) == []  # no ./runs/resnetlab.db


def test_stores_made_before_the_mark_are_still_ours(tmp_path, capsys) -> None:
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)  # the layout older versions created, no application_id
    con.executescript(_SCHEMA)
    con.execute(
        "INSERT INTO runs (name, status, config, started_at) VALUES ('old', 'completed', '{}', 1)"
    )
    con.commit()
    con.close()
    rc, out, _ = _cli(capsys, "runs", "--runs-db", str(db))
    assert rc == 0 and "old" in out
    with RunStore(db) as store:  # a writer marks it
        assert store.get_run("old").status == "completed"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.close()


def test_a_store_with_damaged_pages_is_one_line_naming_the_file_and_recovery(
    tmp_path, capsys
) -> None:
    db = tmp_path / "runs.db"
    _recorded_store(db)
    size = db.stat().st_size
    with open(db, "r+b") as fh:  # keep the header page, smash every page after it
        page = int.from_bytes(fh.read(18)[16:18], "big")
        fh.seek(page)
        fh.write(os.urandom(size - page))
    for argv in (["show", "1"], ["runs"], ["export", "1"], ["plot", "1"]):
        rc, _, err = _cli(capsys, *argv, "--runs-db", str(db))
        assert rc == 2 and err.startswith(f"error: {db}"), (argv, err)
        assert f"sqlite3 {db} .recover" in err and err.count("\n") == 1, err
    with pytest.raises(StoreError, match=r"\.recover"):
        RunStore(db)
