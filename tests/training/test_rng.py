"""Each run's dropout masks from its own generator state (``resnetlab.training.rng``)."""

from __future__ import annotations

import torch
from torch import nn

from resnetlab.training.rng import RunGenerator, has_dropout, seed_state


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5), nn.Linear(8, 2)).train()


def _masks(model: nn.Module, steps: int = 3) -> list[torch.Tensor]:
    x = torch.ones(4, 8)
    return [model[1](x) for _ in range(steps)]


def test_a_run_alone_draws_what_it_drew_without_its_generator():
    net = _net()
    torch.manual_seed(7)
    plain = _masks(net)
    model = _net()
    gen = RunGenerator.for_run(7).attach(model)
    torch.manual_seed(7)  # as Trainer.fit seeds it
    hooked = _masks(model)
    assert all(torch.equal(a, b) for a, b in zip(plain, hooked, strict=True))
    # The run's state is left in the global generator: what a checkpoint saves.
    assert torch.equal(torch.get_rng_state(), gen.states["cpu"])
    gen.detach()
    assert not model[1]._forward_hooks and not model[1]._forward_pre_hooks


def test_interleaved_runs_each_draw_their_own_stream():
    a, b = _net(), _net()
    gen_a, gen_b = RunGenerator.for_run(3).attach(a), RunGenerator.for_run(3).attach(b)
    x = torch.ones(4, 8)
    got_a, got_b = [], []
    for _ in range(3):  # a, someone else, b, in turns: as two threads' steps interleave
        got_a.append(a[1](x))
        torch.rand(100)
        got_b.append(b[1](x))
    assert all(torch.equal(p, q) for p, q in zip(got_a, got_b, strict=True))
    net = _net()
    torch.manual_seed(3)
    alone = _masks(net)
    assert all(torch.equal(p, q) for p, q in zip(got_a, alone, strict=True))
    assert seed_state(3).shape == torch.get_rng_state().shape
    assert has_dropout(a) and not has_dropout(nn.Sequential(nn.Dropout(0.0)))
    gen_a.detach(), gen_b.detach()
