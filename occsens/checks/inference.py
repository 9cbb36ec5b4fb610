"""Verdicts with their uncertainty: intervals, a paired rank test, images needed, power by simulation.

A check that compares a map with chance on N images measures one number per image (here: the share of
random orders the map's order beats). The verdict is read off a confidence interval of the mean over
images against a threshold: "pass" when the whole interval lies above it, "fail" when the whole interval
lies below, "inconclusive" when it straddles the threshold; then about how many images would decide it
is the number at which the interval's half-width shrinks to the distance between mean and threshold.

Power is measured, not bounded: ``simulated_power`` replays the decision rule many times on a known-better
ordering built from the run's own random orders (per image, the best of ``better_of`` random orders), at
the run's own number of images, geometry and model, and counts how often it passes.

Everything here is plain numpy and the standard library (no scipy): the t quantile by the Cornish-Fisher
expansion (Abramowitz & Stegun 26.7.5), the Wilcoxon signed-rank test exactly by its permutation
distribution (mid-ranks for ties, zeros dropped, Wilcoxon's convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from occsens.checks.names import FAIL, INCONCLUSIVE, PASS


def t_quantile(p: float, df: int) -> float:
    """Student t quantile: ``P(T <= t) = p`` with ``df`` degrees of freedom (Abramowitz & Stegun
    26.7.5, a Cornish-Fisher expansion around the normal quantile; within 1% of the exact value for
    df >= 3 and 0.1% for df >= 5 at levels up to 99.5%, exact in the limit). df 1 and 2: closed forms."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        a = 4 * p * (1 - p)
        return (2 * p - 1) * math.sqrt(2 / a)
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` per-image values and its two-sided ``confidence`` interval [low, high]."""

    mean: float
    low: float
    high: float
    sd: float
    n: int
    confidence: float

    def clipped(self, low: float, high: float) -> Interval:
        """The interval cut to the values the mean can take (a share lies in [0, 1])."""
        return Interval(self.mean, max(self.low, low), min(self.high, high), self.sd, self.n, self.confidence)


def mean_interval(values: np.ndarray, confidence: float) -> Interval:
    """Student t interval of the mean (per-image values are independent: one image, one value). With one
    value there is no spread to estimate: the interval is unbounded."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    if n < 2:
        return Interval(mean, -math.inf, math.inf, math.nan, n, confidence)
    sd = float(values.std(ddof=1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n, confidence)


def ratio_interval(numerators: np.ndarray, denominators: np.ndarray, confidence: float) -> Interval:
    """Interval of a pooled share ``sum(numerators) / sum(denominators)`` with images as the unit.

    Windows of one image are not independent draws, so a binomial interval over windows would be too
    narrow; the ratio estimator's delta-method variance over images (Cochran 1977, 6.3) is what the
    share would vary by if other images were drawn: ``sum((a_i - r b_i)^2) / (m (m - 1) mean(b)^2)``
    over the m images with a nonzero denominator, with Student's t at m - 1 degrees of freedom."""
    a = np.asarray(numerators, dtype=np.float64)
    b = np.asarray(denominators, dtype=np.float64)
    keep = b > 0
    a, b = a[keep], b[keep]
    m = len(b)
    if m == 0:
        return Interval(math.nan, -math.inf, math.inf, math.nan, 0, confidence)
    ratio = float(a.sum() / b.sum())
    if m < 2:
        return Interval(ratio, -math.inf, math.inf, math.nan, m, confidence)
    sd = float(np.sqrt(((a - ratio * b) ** 2).sum() / (m - 1)) / b.mean())
    half = t_quantile(0.5 + confidence / 2, m - 1) * sd / math.sqrt(m)
    return Interval(ratio, ratio - half, ratio + half, sd, m, confidence)


def decide(interval: Interval, threshold: float) -> str:
    """pass: the interval lies above ``threshold``; fail: below (or at) it; inconclusive: it straddles."""
    if interval.low > threshold:
        return PASS
    if interval.high <= threshold:
        return FAIL
    return INCONCLUSIVE


def images_needed(interval: Interval, threshold: float) -> int | None:
    """About how many images would decide the verdict, if the per-image spread and the mean stayed as
    measured: the n at which the interval's half-width equals |mean - threshold| (the normal quantile
    stands in for t, which is close at the n this gives). None where mean == threshold or the spread
    is unknown (no number of images decides a mean that sits on the line)."""
    gap = abs(interval.mean - threshold)
    if not math.isfinite(interval.sd) or gap == 0:
        return None
    z = NormalDist().inv_cdf(0.5 + interval.confidence / 2)
    return max(interval.n + 1, math.ceil((z * interval.sd / gap) ** 2))


def wilcoxon_signed_rank(differences: np.ndarray) -> float:
    """One-sided p-value of the Wilcoxon signed-rank test that ``differences`` lean positive.

    Exact: the statistic's permutation distribution (each nonzero difference's sign flipped with
    probability 1/2) by dynamic programming over the doubled mid-ranks, so ties are handled exactly.
    Zero differences carry no sign and are dropped (Wilcoxon's convention). No nonzero difference: 1.0.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[d != 0]
    if len(d) == 0:
        return 1.0
    ranks2 = np.rint(2 * _mid_ranks(np.abs(d))).astype(np.int64)  # doubled mid-ranks are integers
    observed = int(ranks2[d > 0].sum())
    counts = np.zeros(int(ranks2.sum()) + 1)
    counts[0] = 1.0
    for r in ranks2:  # distribution of the sum of a random subset of ranks (the positive ones)
        shifted = np.zeros_like(counts)
        shifted[r:] = counts[: len(counts) - r]
        counts = (counts + shifted) / 2
    return float(min(1.0, counts[observed:].sum()))


def _mid_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values given the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def beaten_share(stat: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Per image, the share of null values that ``stat`` beats (is above), ties counting one half.

    ``stat`` [N], ``null`` [N, R] (higher is better; negate for lower-is-better). Under the null
    hypothesis that the map's order is one more random order, the share is uniform on {0, 1/R, ..., 1}
    (ties aside): its mean over images is 1/2 whatever the model, the geometry or the number of images."""
    above = (null < stat[:, None]).sum(axis=1)
    tied = (null == stat[:, None]).sum(axis=1)
    return (above + 0.5 * tied) / null.shape[1]


def simulated_power(
    null: np.ndarray,
    n: int,
    threshold: float,
    confidence: float,
    better_of: int,
    simulations: int,
    rng: np.random.Generator,
) -> float:
    """How often a known-better ordering passes, at ``n`` images.

    ``null`` [N, R]: the run's random orders' statistic per image (higher is better). Each simulation
    draws ``n`` of the run's images with replacement; in each, the best of ``better_of`` random orders
    plays the map and the other R - better_of orders the null. Its expected beaten share is
    better_of / (better_of + 1) where the statistic has no ties; ties (a model that barely reacts)
    lower it, as they would for any map. Returns the share of simulations whose verdict is "pass"."""
    images, orders = null.shape
    if orders <= better_of or n < 2:
        return 0.0
    passed = 0
    for _ in range(simulations):
        pick = rng.integers(0, images, n)
        chosen = rng.random((n, orders)).argsort(axis=1)
        stats = null[pick[:, None], chosen]  # [n, R], the orders in random order
        best = stats[:, :better_of].max(axis=1)
        shares = beaten_share(best, stats[:, better_of:])
        if decide(mean_interval(shares, confidence), threshold) == PASS:
            passed += 1
    return passed / simulations
