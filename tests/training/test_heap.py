"""The training heap setting: on by default on glibc, off by RESNETLAB_HEAP=default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnetlab import cli
from resnetlab.training import heap

PROBE = """
import resource
from resnetlab.training.heap import keep_training_heap
applied = keep_training_heap()
again = keep_training_heap()
# Three 16 MiB buffers, freed and allocated again, as each training step does with its
# activations.
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
size = 16 * 2**20
for round in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffers = [libc.malloc(size) for _ in range(3)]
    for p in buffers:
        ctypes.memset(p, 1, size)
    for p in buffers:
        libc.free(p)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(applied, again, faults)

"""


def run_probe(mode: str | None) -> tuple[bool, bool, int]:
    env = {k: v for k, v in os.environ.items() if k != heap.ENV}
    if mode is not None:
        env[heap.ENV] = mode
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", out[1] == "True", int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_default_keeps_freed_buffers_mapped() -> None:
    applied, again, faults_kept = run_probe(None)
    assert applied and again
    off, off_again, faults_default = run_probe("default")
    assert not off and not off_again
    # 48 MiB is 12,288 pages: glibc's default returns them to the kernel after each
    # round and faults them in again; the training heap reuses the pages it already has.
    assert faults_kept < 2048 < faults_default


def test_unknown_mode_stops_train_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(heap.ENV, raising=False)
    heap.keep_training_heap()  # as an earlier run in this process (a kernel) has done
    monkeypatch.setenv(heap.ENV, "always")
    assert cli.main(["train", "--epochs", "1", "--live", "none"]) == 2
    err = capsys.readouterr().err
    assert "RESNETLAB_HEAP='always'" in err and "RESNETLAB_HEAP=default" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # no run folder, no database


@pytest.mark.parametrize(
    ("value", "mode"), [("", "keep"), (" Keep ", "keep"), ("DEFAULT", "default")]
)
def test_mode_spelling(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv(heap.ENV, value)
    assert heap.heap_mode() == mode
