"""Running one snippet as written: a fresh working directory, a user's environment at
the tiny budget, a process group of its own (killed whole on a timeout)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .snippets import ROOT, Snippet

SNIPPET_TIMEOUT_S = 240
NOTEBOOK_RUNNER = Path(__file__).with_name("run_notebook.py")


@dataclass
class Outcome:
    snippet: Snippet
    cwd: Path
    returncode: int | None  # None: killed after SNIPPET_TIMEOUT_S
    output: str
    seconds: float

    def report(self) -> str:
        status = (
            f"timed out after {SNIPPET_TIMEOUT_S} s"
            if self.returncode is None
            else f"exit status {self.returncode}"
        )
        return (
            f"{self.snippet.id} ({self.snippet.kind}): {status} in {self.seconds:.0f} s, "
            f"run in {self.cwd}\n--- snippet ---\n{self.snippet.code}"
            f"--- output (last 6000 characters) ---\n{self.output[-6000:]}"
        )


# Every finished run, for the run-time summary (tests/docs/conftest.py).
FINISHED: list[Outcome] = []


def snippet_env(cwd: Path) -> dict[str, str]:
    """This process's environment, for a user's shell: tiny budget, no display."""
    env = dict(os.environ)
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND", "RESNETLAB_RUNS", "RESNETLAB_DATA"):
        env.pop(name, None)  # a headless machine; stores in the working directory
    env["RESNETLAB_TINY"] = "1"
    env["RESNETLAB_JOBS_DIR"] = str(cwd / ".jobs")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")  # two snippets share the cores
    return env


def command_for(snippet: Snippet, cwd: Path) -> list[str]:
    for name, text in snippet.files.items():
        (cwd / name).write_text(text, encoding="utf-8")
    if snippet.kind == "shell":
        (cwd / "snippet.sh").write_text(snippet.code, encoding="utf-8")
        return ["bash", "-e", "-o", "pipefail", "snippet.sh"]
    (cwd / "snippet.py").write_text(snippet.code, encoding="utf-8")
    if snippet.notebook:
        return [sys.executable, str(NOTEBOOK_RUNNER), "snippet.py"]
    return [sys.executable, "snippet.py"]


def run_snippet(snippet: Snippet, cwd: Path) -> Outcome:
    cmd = command_for(snippet, cwd)
    t0 = time.monotonic()
    # A session of its own: on a timeout the whole group (render processes, workers,
    # torchrun ranks) is killed, not only the shell.
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=snippet_env(cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=SNIPPET_TIMEOUT_S)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        code = None
    outcome = Outcome(snippet, cwd, code, output, time.monotonic() - t0)
    FINISHED.append(outcome)
    return outcome
