"""Backend discovery: what matplotlib offers, what works here, and what "auto" picks.

Import checks run each backend in a fresh subprocess, so probing Qt or GTK never
changes this process's matplotlib backend or loads a toolkit into it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# matplotlib backend -> our driver that serves it (None: no live driver for it).
DRIVER_FOR_BACKEND = {
    "ipympl": "ipympl",
    "widget": "ipympl",
    "webagg": "webagg",
    "agg": "agg",
    "qtagg": "qt",
    "qt5agg": "qt",
    "tkagg": "tk",
    "gtk3agg": "gtk",
    "gtk4agg": "gtk",
}
# Toolkit modules a desktop driver needs, in order of preference.
DESKTOP_TOOLKITS = (("qt", ("PySide6", "PyQt6", "PyQt5")), ("tk", ("tkinter",)), ("gtk", ("gi",)))


@dataclass(frozen=True)
class BackendChoice:
    """What ``backend="auto"`` resolves to here, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class BackendInfo:
    """One matplotlib backend as seen from this environment."""

    name: str
    interactive: bool
    importable: bool
    detail: str
    driver: str | None


def in_jupyter_kernel() -> bool:
    """True inside an IPython kernel (JupyterLab, Notebook, VS Code), not a terminal IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


def has_display() -> bool:
    """A desktop to open windows on: X11/Wayland on Linux, always on macOS/Windows."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def display_works() -> bool:
    """True if the display can actually be opened (a stale ``DISPLAY`` is not enough).

    matplotlib's own check, which it also uses to refuse GUI backends: it connects to the
    X server (or Wayland compositor) named in the environment.
    """
    if not has_display():
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    try:
        from matplotlib import _c_internal_utils
    except ImportError:  # a matplotlib without it: trust the environment
        return True
    return bool(_c_internal_utils.display_is_valid())


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def pick_backend() -> BackendChoice:
    """The live backend for the current context: Jupyter+ipympl, a desktop toolkit, or Agg."""
    if in_jupyter_kernel():
        if _module_available("ipympl"):
            return BackendChoice("ipympl", "Jupyter kernel with ipympl")
        return BackendChoice(
            "agg", "Jupyter kernel without ipympl (pip install ipympl for live widgets); snapshots"
        )
    if has_display():
        if not display_works():
            where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            return BackendChoice(
                "agg", f"the display {where!r} cannot be opened (no X server there?): PNG snapshots"
            )
        for driver, modules in DESKTOP_TOOLKITS:
            for module in modules:
                if _module_available(module):
                    return BackendChoice(driver, f"desktop display with {module}")
    return BackendChoice("agg", "headless (no display, not in Jupyter): PNG snapshots")


_CHECK = """
import importlib, sys
from matplotlib.backends import backend_registry as r
name = sys.argv[1]
module = r._backend_module_name(name) if name not in ("widget", "ipympl") else "ipympl.backend_nbagg"
importlib.import_module(module)
"""


# Toolkit a backend needs; when it is not installed at all, no subprocess is needed to say so.
_TOOLKIT_OF = {
    "gtk3": "gi",
    "gtk4": "gi",
    "qt": "matplotlib.backends.qt_compat",
    "tk": "tkinter",
    "wx": "wx",
    "widget": "ipympl",
    "ipympl": "ipympl",
    "cairo": "cairo",
}


def _check_import(name: str, timeout: float = 60.0) -> tuple[bool, str]:
    if name == "macosx" and sys.platform != "darwin":
        return False, "macOS only"
    for prefix, module in _TOOLKIT_OF.items():
        if (name.startswith(prefix) or name.endswith(prefix)) and not _module_available(module):
            return False, f"ModuleNotFoundError: No module named {module!r}"
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHECK, name],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return False, f"import took over {timeout:.0f} s"
    if proc.returncode == 0:
        return True, "ok"
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return False, lines[-1][:120] if lines else f"exit status {proc.returncode}"


def backend_names() -> tuple[list[str], set[str]]:
    """matplotlib's built-in backends plus ipympl's ``widget``, and the interactive ones."""
    from matplotlib.backends import backend_registry
    from matplotlib.backends.registry import BackendFilter

    names = list(backend_registry.list_builtin())
    interactive = set(backend_registry.list_builtin(BackendFilter.INTERACTIVE))
    if "widget" not in names:
        names.append("widget")
        interactive.add("widget")
    return names, interactive


def list_backends(names: list[str] | None = None, jobs: int = 4) -> list[BackendInfo]:
    """Backends (default: all of :func:`backend_names`), each import-checked in a subprocess."""
    from resnetlab.errors import BackendError

    known, interactive = backend_names()
    if names:
        unknown = [n for n in names if n.lower() not in known]
        if unknown:
            raise BackendError(
                f"unknown matplotlib backend(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        names = [n.lower() for n in names]
    else:
        names = known
    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        results = list(pool.map(_check_import, names))
    return [
        BackendInfo(n, n in interactive, ok, detail, DRIVER_FOR_BACKEND.get(n))
        for n, (ok, detail) in zip(names, results, strict=True)
    ]
