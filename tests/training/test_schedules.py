"""Learning-rate schedules: the shapes the docs promise, as pure functions of the step."""

from __future__ import annotations

import pytest

from resnetlab.errors import ConfigError
from resnetlab.training.schedules import build_schedule


def test_one_cycle_warms_up_to_the_peak_then_anneals():
    f = build_schedule("onecycle", 1000)  # 25% warm-up by default
    lrs = [f(s) for s in range(1000)]
    assert lrs[0] == pytest.approx(0.04)
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 250
    assert all(a <= b for a, b in zip(lrs[:250], lrs[1:251], strict=True))
    assert all(a >= b for a, b in zip(lrs[250:], lrs[251:], strict=False))
    assert lrs[-1] < 0.01


def test_the_papers_step_schedule_divides_by_ten_at_half_and_three_quarters():
    f = build_schedule("step", 64000)
    assert [f(s) for s in (0, 31999, 32000, 47999, 48000, 63999)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01, 0.01]
    )


def test_cosine_has_a_linear_warm_up_and_ends_near_zero():
    f = build_schedule("cosine", 1000, warmup=0.1)
    assert f(0) == pytest.approx(0.01) and f(99) == pytest.approx(1.0)
    assert f(550) == pytest.approx(0.5, abs=0.01)
    assert f(999) < 1e-4


def test_a_run_without_steps_is_a_clear_error():
    with pytest.raises(ConfigError, match="total_steps=0"):
        build_schedule("onecycle", 0)
