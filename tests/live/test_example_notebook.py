"""examples/live_dashboard.ipynb runs top to bottom in a real kernel (smoke budget), on
each ipykernel generation: it trains in a thread and redraws ipympl figures meanwhile."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kernel_generations import KernelGeneration

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipympl")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "live_dashboard.ipynb"


def test_example_notebook_runs(
    tmp_path, fashion_mnist_dir, monkeypatch, kernel_generation: KernelGeneration
):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the example with outputs cleared"
    )
    kernel_generation.setenv(monkeypatch)
    kernel_generation.append_version_cell(nb)
    monkeypatch.setenv("RESNETLAB_SMOKE", "1")
    monkeypatch.setenv("RESNETLAB_OUT", str(tmp_path))
    client = nbclient.NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    kernel_generation.check_notebook(nb)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "latest loss:" in text and "trained 60 steps" in text
    widgets = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert len(widgets) >= 2  # the dashboard and the side figure are ipympl widgets
    assert (tmp_path / "live_dashboard.png").stat().st_size > 10_000
    assert os.environ["RESNETLAB_SMOKE"] == "1"
