"""Helpers shared by the jobs tests (a uniquely named module, unlike ``conftest``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from resnetlab.jobs import JobRegistry


def job_threads() -> list[str]:
    """Names of live threads that belong to jobs and loops."""
    return sorted(
        t.name
        for t in threading.enumerate()
        if t.name.startswith(("job-", "loop-", "stress-", "resnetlab-"))
    )


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.01
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture(name="registry")
def registry_fixture(tmp_path: Path):
    """A private JobRegistry (logs under tmp_path); every job is stopped afterwards and no
    job thread may be left over. A test module imports ``registry_fixture`` to use it: a
    conftest.py here would shadow the suite's top-level ``conftest`` module, which other
    folders import by that name."""
    reg = JobRegistry(tmp_path / "logs", stop_timeout=2.0)
    yield reg
    reg.stop_all(timeout=1.0)
    assert wait_for(lambda: not job_threads(), 30.0), job_threads()
