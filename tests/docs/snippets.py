"""The fenced Python and shell snippets of README.md and docs/*.md, as runnable units.

A fence opened with ```python (or py), ```bash (sh, shell) or ```console is a snippet;
other fences (```text, a bare ```) are output or illustration and are not run. An HTML
comment on the line before a fence changes how it runs:

* ``<!-- snippet: skip REASON -->``: not run; the test is skipped with REASON.
* ``<!-- snippet: continues -->``: the block continues the previous snippet of the same
  file that is not skipped; both run together as one script.
* ``<!-- snippet: notebook -->``: IPython code (``%matplotlib widget``): run in a real
  Jupyter kernel instead of as a script.
* ``<!-- snippet: file NAME -->``: the block is a file the next snippet uses (a module a
  spawned process must import): saved as NAME in that snippet's working directory.

In a ```console block only the ``$ `` lines (and the lines they continue with a
trailing backslash) are commands; the rest is their output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LANGS = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
CONSOLE = "console"
MARKER = re.compile(r"^<!--\s*snippet:\s*(skip|continues|notebook|file)\b\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")


@dataclass
class Snippet:
    """One runnable unit: a fenced block, or a block and the blocks that continue it."""

    path: str  # relative to the repository root, e.g. "docs/jobs.md"
    line: int  # 1-based line of the opening fence
    kind: str  # "python" or "shell"
    code: str
    skip: str | None = None  # the reason, when marked skip
    notebook: bool = False
    lines: list[int] = field(default_factory=list)  # opening fences of every block joined
    files: dict[str, str] = field(default_factory=dict)  # name -> text, written beside it

    @property
    def id(self) -> str:
        return f"{self.path}:{'+'.join(str(n) for n in self.lines)}"


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and docs/*.md (not docs/bench/ nor docs/experiments/: generated pages)."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def _markers(lines: list[str], fence_index: int) -> dict[str, str]:
    """The marker comments on the lines right above a fence (blank lines between allowed)."""
    found: dict[str, str] = {}
    i = fence_index - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    while i >= 0 and (m := MARKER.match(lines[i].strip())):
        found[m.group(1)] = m.group(2)
        i -= 1
    return found


def _console_commands(body: list[str]) -> list[str]:
    commands, continuing = [], False
    for text in body:
        if continuing or text.startswith("$ "):
            commands.append(text[2:] if text.startswith("$ ") and not continuing else text)
            continuing = text.rstrip().endswith("\\")
    return commands


def _blocks(text: str) -> list[tuple[int, str, list[str], dict[str, str]]]:
    """(line, language, body lines, markers) of every fenced block."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, lang, start = m.group(1), m.group(2).lower(), i
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != ticks:
            body.append(lines[i])
            i += 1
        blocks.append((start + 1, lang, body, _markers(lines, start)))
        i += 1
    return blocks


def snippets_of(path: Path, root: Path = ROOT) -> list[Snippet]:
    """Every runnable snippet of one Markdown file, continued blocks joined."""
    rel = path.relative_to(root).as_posix()
    found: list[Snippet] = []
    files: dict[str, str] = {}  # "file" blocks waiting for the snippet that uses them
    for line, lang, body, markers in _blocks(path.read_text(encoding="utf-8")):
        if "file" in markers:
            if not markers["file"]:
                raise ValueError(f"{rel}:{line}: 'snippet: file' needs a file name")
            files[markers["file"]] = "\n".join(body) + "\n"
            continue
        if lang == CONSOLE:
            kind, body = "shell", _console_commands(body)
        elif lang in LANGS:
            kind = LANGS[lang]
        else:
            continue
        code = "\n".join(body) + "\n"
        if "continues" in markers:
            # The previous snippet that runs: a skipped block in between (another
            # machine's command) is not what this block builds on.
            runs = [s for s in found if s.skip is None]
            if not runs or runs[-1].kind != kind:
                raise ValueError(f"{rel}:{line}: 'continues' needs a {kind} snippet before it")
            prev = runs[-1]
            prev.code += code
            prev.lines.append(line)
            prev.skip = prev.skip or markers.get("skip") or None
            prev.notebook = prev.notebook or "notebook" in markers
            continue
        skip = markers.get("skip")
        if skip is not None and not skip:
            raise ValueError(f"{rel}:{line}: 'snippet: skip' needs a reason")
        found.append(Snippet(rel, line, kind, code, skip, "notebook" in markers, [line], files))
        files = {}
    return found


def all_snippets(root: Path = ROOT) -> list[Snippet]:
    return [s for path in doc_files(root) for s in snippets_of(path, root)]
