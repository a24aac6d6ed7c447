"""Run one snippet file as the single cell of a notebook in a real Jupyter kernel.

``python run_notebook.py SNIPPET.py`` in the snippet's working directory: the kernel
starts there with this process's environment; exit status 1 and the cell's error when
the cell fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat

CELL_TIMEOUT_S = 180


def main(path: str) -> int:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(Path(path).read_text(encoding="utf-8")))
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": "."}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        print(exc, file=sys.stderr)
        return 1
    for output in nb.cells[0].get("outputs", []):
        if output.get("output_type") == "stream":
            print(output.get("text", ""), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
