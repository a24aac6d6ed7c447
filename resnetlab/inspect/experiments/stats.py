"""Mean ± std over seeds and Welch's t-test between two arms, with the sentence they support.

Pure Python (``math`` only): the Student-t distribution comes from the regularised
incomplete beta function (a continued fraction, Numerical Recipes §6.4), so no SciPy.

    >>> w = welch([7.9, 8.1, 8.0], [7.5, 7.7, 7.6])
    >>> round(w.t, 3), round(w.dof, 2), round(w.p, 4)
    (4.899, 4.0, 0.008)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Two-sided significance level the plain-language lines judge by.
ALPHA = 0.05


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (ddof=1; 0 for one value) and count of some values."""

    mean: float
    std: float
    n: int

    def text(self, scale: float = 100.0, digits: int = 2, unit: str = "%") -> str:
        """``7.61 ± 0.22%`` (``7.61%`` for one value)."""
        if self.n < 2:
            return f"{scale * self.mean:.{digits}f}{unit}"
        return f"{scale * self.mean:.{digits}f} ± {scale * self.std:.{digits}f}{unit}"


def summarize(values: Sequence[float]) -> Summary:
    """Mean ± std (ddof=1) of ``values``; NaN mean for none."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return Summary(mean, math.sqrt(var), n)


# -- the t distribution ------------------------------------------------------------------


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)), None):
            if num is None:  # the odd step of the recurrence
                num = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    # The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry above it.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def t_sf2(t: float, dof: float) -> float:
    """Two-sided tail probability P(|T| >= |t|) of Student's t with ``dof`` degrees."""
    if math.isnan(t) or not dof > 0:
        return math.nan
    if math.isinf(t):
        return 0.0
    return betainc(dof / 2.0, 0.5, dof / (dof + t * t))


def t_quantile2(p: float, dof: float) -> float:
    """The t with ``P(|T| >= t) = p`` (e.g. p=0.05: the 95% interval's half-width in se)."""
    lo, hi = 0.0, 1.0
    while t_sf2(hi, dof) > p:
        hi *= 2.0
    for _ in range(100):  # bisection: t_sf2 falls monotonically in t
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_sf2(mid, dof) > p else (lo, mid)
    return 0.5 * (lo + hi)


# -- Welch's test --------------------------------------------------------------------------


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test of mean(a) - mean(b)."""

    a: Summary
    b: Summary
    diff: float  # mean(a) - mean(b)
    se: float  # standard error of the difference
    t: float
    dof: float  # Welch–Satterthwaite degrees of freedom
    p: float  # two-sided

    @property
    def testable(self) -> bool:
        """Whether both arms have >= 2 values and the test gives a number."""
        return self.a.n >= 2 and self.b.n >= 2 and math.isfinite(self.p)

    def half_width(self, level: float = 0.95) -> float:
        """Half-width of the ``level`` confidence interval of the difference."""
        if not self.testable:
            return math.nan
        return t_quantile2(1.0 - level, self.dof) * self.se if self.se > 0 else 0.0


def welch(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's t-test between the values ``a`` and ``b`` (NaN t/dof/p under 2 values each).

    Two arms without any spread (every seed equal) give ``t=±inf, p=0`` if their means
    differ and ``p=1`` if they do not.
    """
    sa, sb = summarize(a), summarize(b)
    diff = sa.mean - sb.mean
    if sa.n < 2 or sb.n < 2:
        return Welch(sa, sb, diff, math.nan, math.nan, math.nan, math.nan)
    va, vb = sa.std**2 / sa.n, sb.std**2 / sb.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        same = diff == 0.0
        return Welch(
            sa,
            sb,
            diff,
            0.0,
            0.0 if same else math.copysign(math.inf, diff),
            math.inf,
            1.0 if same else 0.0,
        )
    t = diff / se
    dof = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    return Welch(sa, sb, diff, se, t, dof, t_sf2(t, dof))


def format_p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def test_cells(w: Welch, scale: float = 100.0) -> tuple[str, str, str]:
    """Table cells: the difference ± se (points), ``t (dof)``, p."""
    if not w.testable:
        return (f"{scale * w.diff:+.2f}" if math.isfinite(w.diff) else "n/a", "n/a", "n/a")
    return (
        f"{scale * w.diff:+.2f} ± {scale * w.se:.2f}",
        f"{w.t:.2f} ({w.dof:.1f})",
        format_p(w.p),
    )


def verdict(
    name_a: str,
    name_b: str,
    w: Welch,
    *,
    metric: str = "test error",
    scale: float = 100.0,
    unit: str = "points",
    alpha: float = ALPHA,
) -> str:
    """One plain sentence: what the numbers support about ``a`` vs ``b``, and what not."""
    n = min(w.a.n, w.b.n)
    head = (
        f"{name_a} vs {name_b}: {metric} {w.a.text(scale)} vs {w.b.text(scale)}, difference "
        f"{scale * w.diff:+.2f}"
    )
    if not w.testable:
        return (
            f"{head} {unit} with {n} seed{'s' if n != 1 else ''} per arm: no spread to test "
            "it against; run with --seeds 3 or more before reading anything into it."
        )
    stats = (
        f"{head} ± {scale * w.se:.2f} {unit} (Welch t={w.t:.2f}, dof {w.dof:.1f}, {format_p(w.p)})"
    )
    lower = name_a if w.diff < 0 else name_b
    if w.p < alpha:
        return (
            f"{stats}: significant at {n} seeds per arm; {lower} has the lower {metric}. "
            f"The 95% interval of the difference is ±{scale * w.half_width():.2f} {unit}; "
            "it says nothing about other budgets, depths or data sets."
        )
    return (
        f"{stats}: not significant at {n} seeds per arm. The data do not show a "
        f"difference, nor rule out one of up to about {scale * w.half_width():.2f} {unit} "
        "either way (95% interval); more seeds would narrow it."
    )
