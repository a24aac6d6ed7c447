"""A full disk: a real small tmpfs holding the store and the run folder (made by the test,
so it runs as root only; skipped with the reason otherwise).

Training that fills it ends with one line ``error: no space left on <path>`` and records
what it still can; nothing half-made is left (no temporary file, no checkpoint under a
final name that does not load, no schema-less store); ``resnetlab runs`` reads the store
while the disk is full; once space is freed the store is intact and ``--resume`` completes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from resnetlab.errors import StoreError
from resnetlab.store import RunStore

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]


def _mount(point: Path, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a real full filesystem)")
    point = tmp_path / "small"
    point.mkdir()
    try:
        _mount(point, "300k")
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc})")
    try:
        yield point
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(point)], check=True)


def _train(db: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "resnetlab", "train", "--model", "resnetv2-micro"]
    cmd += ["--data-dir", str(data), "--device", "cpu", "--live", "none", "--no-progress"]
    cmd += ["--epochs", "6", "--train-limit", "256", "--val-size", "64", "--test-limit", "64"]
    cmd += ["--batch-size", "64", "--runs-db", str(db), *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, env=env, cwd=db.parent, capture_output=True, text=True)


def test_training_into_a_full_disk_says_so_and_leaves_nothing_half_made(
    small_disk: Path, fashion_mnist_dir: Path
) -> None:
    db = small_disk / "runs.db"
    proc = _train(db, fashion_mnist_dir)
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert err.splitlines()[-1].startswith(f"error: no space left on {small_disk}"), err
    assert "Traceback" not in err, err
    assert not list(small_disk.rglob("*.tmp")), list(small_disk.rglob("*"))
    for ckpt in small_disk.rglob("*.pt"):  # every checkpoint under a final name loads
        torch.load(ckpt, map_location="cpu", weights_only=True)
    listing = subprocess.run(
        [sys.executable, "-m", "resnetlab", "runs", "--runs-db", str(db)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0 and "run-1" in listing.stdout, listing.stderr  # still full

    _mount_bigger(small_disk)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with RunStore(db) as store:
        run = store.get_run(1)
        assert run.status in ("failed", "interrupted"), run
        assert run.checkpoint_last
    again = _train(db, fashion_mnist_dir, "--resume", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    with RunStore(db, read_only=True) as store:
        done = store.get_run(1)
    assert done.status == "completed" and "test_accuracy" in done.final_metrics


def _mount_bigger(point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=8m", str(point)], check=True)


def test_a_new_store_on_a_nearly_full_disk_is_not_left_half_made(small_disk: Path) -> None:
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as fh, contextlib.suppress(OSError):
        while True:  # fill the disk...
            fh.write(b"\0" * 4096)
    os.truncate(filler, filler.stat().st_size - 8192)  # ...then free a few KB, not enough
    db = small_disk / "runs.db"
    with pytest.raises(StoreError, match=f"no space left on {small_disk}"):
        RunStore(db)
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # no schema-less store
