"""The sprinter/stopper example notebook runs top to bottom in a real kernel, on each
ipykernel generation (where a thread's print goes differs between them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kernel_generations import KernelGeneration

nbformat = pytest.importorskip("nbformat", reason="nbformat not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient not installed")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "background_jobs.ipynb"


@pytest.mark.timeout(120)
def test_background_jobs_notebook_runs_and_keeps_job_output_out_of_cells(
    tmp_path, kernel_generation: KernelGeneration, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the example with its outputs cleared"
    )
    kernel_generation.setenv(monkeypatch)
    kernel_generation.append_version_cell(nb)
    env_backup = os.environ.pop("PYTEST_CURRENT_TEST", None)  # let the kernel watch fds too
    try:
        nbclient.NotebookClient(
            nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        if env_backup is not None:
            os.environ["PYTEST_CURRENT_TEST"] = env_backup
    kernel_generation.check_notebook(nb)
    streams = [
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    ]
    assert "this cell printed only this line\n" in streams
    # the sprinter's lines reach cells only where a cell asked for them (tail/result values)
    assert not any("sprinter: step" in s for s in streams)
    assert any("stopped | result:" in s for s in streams)
    assert any(s.startswith("killed") for s in streams)
