"""The newcomer's notebook runs top to bottom in a real Jupyter kernel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "01_build_and_summarise.ipynb"


@pytest.mark.slow
def test_build_and_summarise_notebook_runs(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="nbformat not installed (dev extra)")
    nbclient = pytest.importorskip("nbclient", reason="nbclient not installed (dev extra)")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook with its outputs cleared"
    )
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env={**os.environ, "OMP_NUM_THREADS": "1"})  # see conftest.py: shared CPUs
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "Total params" in text
    assert "stacks.2.units.1" in text
    assert "1,703,258" in text  # ResNet-164, the paper's 1.7M
    assert "plain-56" in text and "resnetv2-mini" in text
