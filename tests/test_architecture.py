"""The layering that docs/architecture.md states, checked on the package's own imports.

Every ``import`` counts, also those inside functions: an import moved into a function
still ties the two modules together. The rules are the table in docs/architecture.md
("Layers"); a new import across layers, or a new cycle between modules, fails here with
the modules that break it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "resnetlab"

# Which top-level parts of resnetlab each part may import (besides itself). The order is
# the layering, bottom to top; ``ENTRY`` modules (the command line) may import anything
# and nothing but another entry module imports them.
LEAVES = {"errors", "states", "utils"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "states": {"errors"},
    "utils": {"errors"},
    "runtime": LEAVES,
    "metrics": LEAVES,
    "models": LEAVES,
    "data": LEAVES,
    "distributed": LEAVES | {"metrics"},
    "store": LEAVES | {"metrics"},
    "training": LEAVES | {"metrics", "runtime", "models", "data", "distributed", "store"},
    "live": LEAVES | {"metrics", "runtime", "store"},
    "inspect": LEAVES | {"metrics", "runtime", "models", "data", "store", "training"},
    "inference": LEAVES | {"models", "data", "store", "training"},
    "export": LEAVES | {"metrics", "models", "data", "store", "training", "inference"},
    "jobs": LEAVES | {"metrics", "runtime", "store", "training", "live"},
    # Experiments as background work: joins what an experiment trains (inspect/) with the
    # process jobs that run it (jobs/) and the live comparison (live/); above both, so
    # neither has to know the other.
    "lab": LEAVES
    | {"metrics", "runtime", "models", "data", "store", "training", "live", "inspect", "jobs"},
    "api": LEAVES
    | {"metrics", "runtime", "models", "data", "distributed", "store", "training", "live"}
    | {"inspect", "inference", "jobs", "export", "lab"},
    "<root>": LEAVES,
}


def is_entry(module: str) -> bool:
    """The command-line modules: ``resnetlab.cli``, ``resnetlab.__main__``, ``*.cli``."""
    last = module.rsplit(".", 1)[-1]
    return last in ("cli", "__main__")


def part(module: str) -> str:
    """``resnetlab.live.drivers.agg`` -> ``live``; ``resnetlab`` -> ``<root>``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "<root>"


def package_modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
        mods[name] = path
    return mods


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The resnetlab modules that ``module`` imports anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``
            # imports mod.
            targets = [
                f"{origin}.{a.name}" if f"{origin}.{a.name}" in known else origin
                for a in node.names
            ]
        else:
            continue
        for target in targets:
            # ``import resnetlab.a.b`` also runs resnetlab.a: count the deepest known module.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("resnetlab") and target != module:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = package_modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(old)
    return out


def test_the_graph_is_read():
    graph = import_graph()
    # A few edges that must exist, so that a broken parser cannot pass the rules below.
    assert "resnetlab.errors" in graph["resnetlab.metrics.stream"]
    assert "resnetlab.training.config" in graph["resnetlab.training.trainer"]
    assert sum(len(v) for v in graph.values()) > 150


def test_no_import_cycles_between_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (break them; see docs/architecture.md):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_every_part_has_a_layer():
    parts = {part(m) for m in import_graph() if not is_entry(m)}
    assert parts <= set(ALLOWED), f"add {sorted(parts - set(ALLOWED))} to ALLOWED and the docs"


def test_imports_follow_the_layers():
    bad = []
    for module, targets in sorted(import_graph().items()):
        for target in sorted(targets):
            if is_entry(target) and not is_entry(module):
                bad.append(f"{module} -> {target} (only command-line modules import *.cli)")
                continue
            if is_entry(module):
                continue
            src, dst = part(module), part(target)
            if src != dst and dst not in ALLOWED.get(src, set()):
                bad.append(f"{module} -> {target} ({src}/ may not import {dst}/)")
    assert not bad, "imports against the layers of docs/architecture.md:\n" + "\n".join(bad)
