"""Every fenced Python and shell snippet of README.md and docs/*.md runs as written.

Each snippet (see :mod:`tests.docs.snippets` for the markers) runs unchanged in a fresh
temporary working directory, with ``RESNETLAB_TINY=1`` (the recipe and the experiments
cap epochs and images: the only thing that shrinks) and the venv's ``bin`` first on
PATH: Python snippets as ``python snippet.py`` (no main guard added), shell snippets
with ``bash -e``, notebook snippets in a real Jupyter kernel. Nothing is shared between
snippets but the dataset files on disk. They run two at a time in separate processes
(``RESNETLAB_SNIPPET_WORKERS`` changes that), the heaviest first, all started when the
first test asks, so the whole file takes a few minutes on two cores.
"""

from __future__ import annotations

import os
import re
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from .runner import Outcome, run_snippet
from .snippets import Snippet, all_snippets

SNIPPETS = all_snippets()
WORKERS = int(os.environ.get("RESNETLAB_SNIPPET_WORKERS", "2"))
# Lines that train or build reports: the snippets with most of them are started first,
# so the longest runs do not end up last with one worker idle.
HEAVY = re.compile(r"resnetlab (?:train|experiment|inspect|backends)|\.train\(|distributed\.run")
# A test may wait for the snippets started before its own.
TEST_TIMEOUT_S = 1500
# The README's first Python snippet: python first.py must store exactly one run.
README_FIRST = next(s for s in SNIPPETS if s.path == "README.md" and s.kind == "python")


class SnippetRuns:
    """The selected snippets, run WORKERS at a time from the first request on."""

    def __init__(self, tmp: pytest.TempPathFactory, snippets: list[Snippet]) -> None:
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="snippet")
        self.futures: dict[str, Future[Outcome]] = {}
        for snippet in sorted(snippets, key=lambda s: -len(HEAVY.findall(s.code))):
            cwd = tmp.mktemp(snippet.id.replace("/", "_").replace(":", "_"))
            self.futures[snippet.id] = self.pool.submit(run_snippet, snippet, cwd)

    def result(self, snippet: Snippet) -> Outcome:
        return self.futures[snippet.id].result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def snippet_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    chosen = {
        item.callspec.params["snippet"].id
        for item in request.session.items
        if getattr(item, "callspec", None) is not None and "snippet" in item.callspec.params
    }
    runs = SnippetRuns(tmp_path_factory, [s for s in SNIPPETS if s.id in chosen and s.skip is None])
    yield runs
    runs.close()


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_S)
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs_as_written(snippet: Snippet, snippet_runs: SnippetRuns) -> None:
    if snippet.skip is not None:
        pytest.skip(f"{snippet.id}: {snippet.skip}")
    outcome = snippet_runs.result(snippet)
    assert outcome.returncode == 0, outcome.report()


def stored_runs(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


@pytest.mark.slow
@pytest.mark.timeout(TEST_TIMEOUT_S)
@pytest.mark.parametrize("snippet", [README_FIRST], ids=[README_FIRST.id])
def test_readme_first_snippet_stores_one_run(snippet: Snippet, snippet_runs: SnippetRuns) -> None:
    """``python first.py`` with live="auto" and no main guard trains once (issue 13.1)."""
    outcome = snippet_runs.result(snippet)
    assert outcome.returncode == 0, outcome.report()
    assert "bootstrapping phase" not in outcome.output, outcome.report()
    db = outcome.cwd / "runs" / "resnetlab.db"
    assert db.exists(), outcome.report()
    assert stored_runs(db) == 1, outcome.report()
