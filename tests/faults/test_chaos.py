"""The fault campaign of bench/chaos.py, small: real SIGKILLs of a real training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(400)

ROOT = Path(__file__).resolve().parents[2]


def test_two_random_kills_leave_consistent_runs_that_resume_identically(
    fashion_mnist_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "kills.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--kills",
            "2",
            "--seed",
            "14",
            "--data-dir",
            str(fashion_mnist_dir),
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=380,
    )
    out = proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "2 kills, 2 consistent, 2 resumed identical", out
    assert proc.returncode == 0, out
    kills = json.loads(report.read_text())
    assert len(kills) == 2 and all(k["identical"] and not k["problems"] for k in kills), kills
    # a good kill's folder is removed; only the reference and the data cache stay
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["cache", "reference"]
