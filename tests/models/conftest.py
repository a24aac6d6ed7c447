"""Model tests run torch on one thread.

The nets here are tiny per op; on a CPU shared with other jobs, two OpenMP threads spend
most of their time waiting for each other (measured 13x slower under load). One thread
keeps this folder fast and changes no result the tests check.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
