"""The two ipykernel generations the kernel-driving tests run against.

``ipykernel7`` is the kernel installed in the project's environment; ``ipykernel6`` is
ipykernel 6.29 from ``.venv-ipk6`` (``scripts/setup-ipykernel6.sh``, run by
``scripts/test.sh``), a folder that holds only ipykernel and its one requirement the main
environment lacks, put first on the kernel's ``PYTHONPATH``: everything else the kernel
imports (IPython, jupyter_client, pyzmq, resnetlab) is the same in both. They differ where
a thread's print goes: 6.29 sends it to the cell that started the thread (ipykernel PR
#1186), 7 to the cell that runs when it prints (#1451: a context variable, which a plain
thread does not inherit), and that is the generation users still on 6 see.

Each generation is started through a kernelspec named ``python3`` (the name notebooks
carry) in a data folder of its own, found through ``JUPYTER_PATH``: the kernelspec is what
``python -m ipykernel install`` of that generation writes, plus the ``PYTHONPATH``. So
``jupyter_client``, ``nbclient`` and a JupyterLab server all start the generation asked
for, with no change to how they are called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where scripts/setup-ipykernel6.sh installs ipykernel 6.29 (overridable for other layouts).
IPYKERNEL6_DIR = Path(os.environ.get("RESNETLAB_IPYKERNEL6_DIR", ROOT / ".venv-ipk6"))
SETUP_HINT = "create it with: bash scripts/setup-ipykernel6.sh (scripts/test.sh does)"
# Asked of a running kernel without output or history (an execute request's user expression).
VERSION_EXPRESSION = "__import__('ipykernel').__version__"
# A last cell for a notebook test: its output says which ipykernel ran the notebook.
VERSION_CELL = "import ipykernel\nprint('ipykernel', ipykernel.__version__)"


@dataclass(frozen=True)
class KernelGeneration:
    """One ipykernel generation: its test id, its major version, how to start it."""

    name: str  # the test id: "ipykernel7" or "ipykernel6"
    major: int  # what the started kernel must report, so one generation cannot run twice
    pythonpath: Path | None  # put first on the kernel's PYTHONPATH; None: the installed one
    data_dir: Path  # a Jupyter data folder holding this generation's kernels/python3
    # What makes jupyter_client, nbclient or a JupyterLab server (the process that looks the
    # kernelspec up, not only the kernel) start this generation.
    env: dict[str, str]

    def setenv(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the kernels this test starts (nbclient, jupyter_client) this generation."""
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)

    @staticmethod
    def append_version_cell(nb) -> None:
        """End ``nb`` (an nbformat notebook) with :data:`VERSION_CELL`."""
        import nbformat

        nb.cells.append(nbformat.v4.new_code_cell(VERSION_CELL))

    def check_version(self, version: str) -> None:
        """Fail unless ``version`` (what a kernel reported) belongs to this generation."""
        assert version.split(".")[0] == str(self.major), (
            f"{self.name}: the kernel reports ipykernel {version}, expected {self.major}.x"
        )

    def check_notebook(self, nb) -> None:
        """Check the output of :data:`VERSION_CELL`, the executed notebook's last cell."""
        outputs = nb.cells[-1].get("outputs", [])
        text = "".join(o.get("text", "") for o in outputs)
        assert text.startswith("ipykernel "), (self.name, outputs)
        self.check_version(text.split()[1])

    def check_connection_file(self, path: Path, timeout: float = 60) -> None:
        """Ask the kernel behind ``path`` its ipykernel version (silently) and check it."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(path))
        client.load_connection_file()
        client.start_channels()
        try:
            reply = client.execute(
                "",
                silent=True,
                store_history=False,
                user_expressions={"v": VERSION_EXPRESSION},
                reply=True,
                timeout=timeout,
            )
            value = reply["content"]["user_expressions"]["v"]["data"]["text/plain"]
        finally:
            client.stop_channels()
        self.check_version(value.strip("'\""))


def _kernel_python_path(generation_path: Path | None) -> str:
    # The kernel also needs what the tests themselves import from (the checkout under test).
    parts = [str(generation_path)] if generation_path is not None else []
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def _write_kernelspec(data_dir: Path, pythonpath: Path | None) -> None:
    env = {**os.environ, "PYTHONPATH": _kernel_python_path(pythonpath)}
    # The generation's own kernelspec: 6.29 and 7 differ (protocol version, encryption).
    spec = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import json; from ipykernel.kernelspec import get_kernel_dict; "
                "print(json.dumps(get_kernel_dict()))",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    spec["argv"][0] = sys.executable  # "python" would be looked up on PATH
    spec["env"] = {"PYTHONPATH": env["PYTHONPATH"]}
    folder = data_dir / "kernels" / "python3"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1))


def _ipykernel6_dir() -> Path:
    """The ipykernel 6.29 folder; fails under CI, skips elsewhere, when it is missing."""
    if not (IPYKERNEL6_DIR / "ipykernel" / "__init__.py").exists():
        message = f"ipykernel 6.29 environment {IPYKERNEL6_DIR} is missing; {SETUP_HINT}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return IPYKERNEL6_DIR


GENERATIONS = ("ipykernel7", "ipykernel6")


def make_generation(name: str, root: Path) -> KernelGeneration:
    """The generation called ``name``, with its kernelspec written under ``root``."""
    pytest.importorskip("ipykernel", reason="ipykernel not installed")
    pythonpath = _ipykernel6_dir() if name == "ipykernel6" else None
    data_dir = root / name
    _write_kernelspec(data_dir, pythonpath)
    rest = os.environ.get("JUPYTER_PATH")
    env = {"JUPYTER_PATH": os.pathsep.join([str(data_dir), *([rest] if rest else [])])}
    major = int(name.removeprefix("ipykernel"))
    return KernelGeneration(name, major, pythonpath, data_dir, env)
