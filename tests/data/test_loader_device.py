"""``TensorLoader(device=...)`` and the one ``resolve_device``: names a laptop user types."""

from __future__ import annotations

import pytest
import torch

from resnetlab.data import TensorLoader
from resnetlab.errors import ConfigError
from resnetlab.utils.device import resolve_device


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    loader = TensorLoader(
        torch.zeros(8, 1, 4, 4, dtype=torch.uint8), torch.zeros(8), 4, device="auto"
    )
    assert loader.device.type == expected
    x, y = next(iter(loader))
    assert x.device.type == expected and x.shape == (4, 1, 4, 4)


@pytest.mark.parametrize("name", ["bogus", "cuda:x", "gpu"])
def test_a_name_that_is_not_a_device_says_which_names_work(name):
    with pytest.raises(ConfigError, match="not a device name|unsupported here"):
        TensorLoader(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4), 2, device=name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_machine_without_a_gpu_is_a_clear_error():
    with pytest.raises(ConfigError, match="no usable CUDA GPU; use device='cpu' or 'auto'"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="no usable CUDA GPU"):
        TensorLoader(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4), 2, device="cuda")
