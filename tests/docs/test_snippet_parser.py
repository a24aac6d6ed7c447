"""The snippet extraction the docs test relies on: fences, languages, markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from .snippets import doc_files, snippets_of

PAGE = """# Page

```python
a = 1
```

<!-- snippet: continues -->
```python
print(a)
```

```text
output, not run
```

```
a bare fence: not run
```

<!-- snippet: skip needs a GPU -->
```bash
nvidia-smi
```

```console
$ resnetlab models \\
    --family plain
family  depth
$ resnetlab runs
```

<!-- snippet: notebook -->
```python
%matplotlib widget
```

<!-- snippet: file helper.py -->
```python
def f():
    return 1
```

```py
from helper import f
```
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "docs").mkdir()
    path = tmp_path / "docs" / "page.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_fences_markers_and_console_commands(tmp_path: Path) -> None:
    found = snippets_of(write(tmp_path, PAGE), root=tmp_path)
    assert [s.id for s in found] == [
        "docs/page.md:3+8",
        "docs/page.md:21",
        "docs/page.md:25",
        "docs/page.md:33",
        "docs/page.md:43",
    ]
    joined, gpu, console, notebook, user = found
    assert (joined.kind, joined.code) == ("python", "a = 1\nprint(a)\n")
    assert (gpu.kind, gpu.skip) == ("shell", "needs a GPU")
    assert console.code == "resnetlab models \\\n    --family plain\nresnetlab runs\n"
    assert notebook.notebook and notebook.skip is None
    assert user.files == {"helper.py": "def f():\n    return 1\n"} and user.kind == "python"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- snippet: skip -->\n```bash\nls\n```\n", "needs a reason"),
        ("<!-- snippet: continues -->\n```bash\nls\n```\n", "needs a shell snippet before it"),
        ("<!-- snippet: file -->\n```python\nx = 1\n```\n", "needs a file name"),
    ],
)
def test_bad_markers_are_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        snippets_of(write(tmp_path, text), root=tmp_path)


def test_readme_and_docs_pages_but_not_bench_reports() -> None:
    names = [p.relative_to(p.parents[1]).as_posix() for p in doc_files()[1:]]
    assert doc_files()[0].name == "README.md"
    assert names and all(n.startswith("docs/") and n.count("/") == 1 for n in names)
