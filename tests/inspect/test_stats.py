"""Welch's t-test and the sentences built on it, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from resnetlab.inspect.experiments.stats import (
    betainc,
    summarize,
    t_quantile2,
    t_sf2,
    verdict,
    welch,
)


def test_the_t_tails_match_the_closed_forms_for_one_and_two_degrees():
    for t in (0.3, 1.0, 2.5, 7.0):
        # dof 1 is the Cauchy distribution; dof 2 has P(|T|>=t) = 1 - t/sqrt(2+t^2)
        assert t_sf2(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
        assert t_sf2(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert t_sf2(0.0, 5) == pytest.approx(1.0)
    assert betainc(2.0, 3.0, 0.4) == pytest.approx(
        0.5248, abs=1e-12
    )  # P(Binomial(4, 0.4) >= 2) = 1 - 0.6^4 - 4*0.4*0.6^3
    assert t_quantile2(0.05, 1e7) == pytest.approx(1.959964, abs=1e-4)  # the normal's 1.96
    assert t_quantile2(0.05, 4) == pytest.approx(2.776445, abs=1e-5)  # a t table's t(0.975, 4)


def test_welch_on_hand_checked_samples():
    # a = [1, 3], b = [4, 6]: means 2 and 5, variances 2 and 2; se = sqrt(2/2 + 2/2)
    w = welch([1, 3], [4, 6])
    assert (w.diff, w.se) == (-3.0, pytest.approx(math.sqrt(2)))
    assert w.t == pytest.approx(-3 / math.sqrt(2))
    assert w.dof == pytest.approx(2.0)  # (1 + 1)^2 / (1/1 + 1/1)
    assert w.p == pytest.approx(1 - (3 / math.sqrt(2)) / math.sqrt(2 + 4.5))  # 0.16795
    # unequal variances: a = [0, 2] (var 2), b = [5, 5] (var 0): dof = 1, t = -4
    w = welch([0, 2], [5, 5])
    assert (w.t, w.dof) == (pytest.approx(-4.0), pytest.approx(1.0))
    assert w.p == pytest.approx(1 - 2 / math.pi * math.atan(4.0))  # 0.1560
    # R: t.test(1:5, c(2,4,6,8,10)) -> t = -1.8974, df = 5.8824, p-value = 0.1075
    w = welch([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert (round(w.t, 4), round(w.dof, 4), round(w.p, 4)) == (-1.8974, 5.8824, 0.1075)


def test_degenerate_arms_say_what_cannot_be_tested():
    one = welch([0.1], [0.2, 0.3])
    assert not one.testable and math.isnan(one.p)
    assert "no spread to test" in verdict("a", "b", one)
    same = welch([0.1, 0.1], [0.1, 0.1])
    assert same.p == 1.0
    apart = welch([0.1, 0.1], [0.2, 0.2])
    assert apart.p == 0.0 and apart.t == -math.inf
    assert summarize([0.07, 0.08, 0.09]).text() == "8.00 ± 1.00%"


def test_the_sentence_follows_the_numbers():
    close = welch([0.080, 0.078, 0.083], [0.079, 0.082, 0.080])
    text = verdict("with", "without", close)
    assert "not significant at 3 seeds per arm" in text
    assert f"p={close.p:.2f}" in text and "difference +0.00 ±" in text
    assert "nor rule out one of up to about" in text
    apart = welch([0.070, 0.071, 0.069], [0.080, 0.081, 0.079])
    text = verdict("with", "without", apart)
    assert "significant at 3 seeds per arm; with has the lower test error" in text
    assert "not significant" not in text
