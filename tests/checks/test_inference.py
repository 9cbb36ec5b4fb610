"""Verdicts with their uncertainty (``occsens.checks.inference``): intervals, the rank test, images needed,
power by simulation, and the false-pass rate of maps no better than chance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from occsens.checks import inference as inf
from occsens.checks.conditions import BEAT_MIN, BETTER_OF, CONFIDENCE, RANDOM_ORDERS


@pytest.mark.parametrize(
    ("p", "df", "exact"),  # Student t quantiles from published tables
    [
        (0.975, 7, 2.3646),
        (0.975, 31, 2.0395),
        (0.975, 99, 1.9842),
        (0.995, 3, 5.8409),
        (1 - 0.05 / 6, 99, 2.4353),
    ],
)
def test_t_quantile_matches_the_tables(p: float, df: int, exact: float) -> None:
    assert inf.t_quantile(p, df) == pytest.approx(exact, rel=0.01 if df < 5 else 1e-3)


def test_t_quantile_closed_forms_for_one_and_two_degrees_of_freedom() -> None:
    assert inf.t_quantile(0.975, 1) == pytest.approx(12.7062, rel=1e-4)
    assert inf.t_quantile(0.975, 2) == pytest.approx(4.3027, rel=1e-4)


def test_wilcoxon_exact_small_cases() -> None:
    assert inf.wilcoxon_signed_rank(np.array([1.0, 2.0, 3.0])) == pytest.approx(1 / 8)  # all 3 positive
    # ranks 1..4, positive ranks 1, 3, 4 (sum 8); subsets of {1,2,3,4} summing to >= 8: 3 of 16
    assert inf.wilcoxon_signed_rank(np.array([1.0, -2.0, 3.0, 4.0])) == pytest.approx(3 / 16)
    assert inf.wilcoxon_signed_rank(np.array([0.0, 0.0])) == 1.0  # no signs to test
    assert inf.wilcoxon_signed_rank(np.array([-1.0, -2.0])) == 1.0


def test_beaten_share_counts_ties_as_half() -> None:
    assert inf.beaten_share(np.array([2.0]), np.array([[1.0, 2.0, 3.0, 4.0]]))[0] == pytest.approx(1.5 / 4)


def test_the_verdict_is_where_the_interval_lies_against_the_line() -> None:
    interval = inf.Interval
    assert inf.decide(interval(0.8, 0.65, 0.95, 0.3, 30, 0.95), 0.6) == "pass"
    assert inf.decide(interval(0.5, 0.4, 0.59, 0.3, 30, 0.95), 0.6) == "fail"
    assert inf.decide(interval(0.6, 0.5, 0.7, 0.3, 30, 0.95), 0.6) == "inconclusive"
    assert inf.decide(inf.mean_interval(np.array([0.9]), 0.95), 0.6) == "inconclusive"  # one image


def test_images_needed_is_where_the_half_width_meets_the_distance_to_the_line() -> None:
    interval = inf.Interval(0.7, 0.45, 0.95, 0.3, 8, 0.95)
    assert inf.images_needed(interval, 0.6) == math.ceil((1.959964 * 0.3 / 0.1) ** 2)  # 35
    assert inf.images_needed(inf.Interval(0.6, 0.5, 0.7, 0.3, 8, 0.95), 0.6) is None  # on the line


def test_power_grows_with_the_number_of_images() -> None:
    rng = np.random.default_rng(0)
    null = rng.exponential(1.0, (100, RANDOM_ORDERS)) * rng.uniform(0.1, 2.0, (100, 1))  # skewed, per image
    few = inf.simulated_power(null, 8, BEAT_MIN, CONFIDENCE, BETTER_OF, 200, np.random.default_rng(1))
    many = inf.simulated_power(null, 64, BEAT_MIN, CONFIDENCE, BETTER_OF, 200, np.random.default_rng(1))
    assert few < many and many > 0.95
    flat = np.zeros((20, RANDOM_ORDERS))  # a model that never reacts: every order ties, no power
    assert inf.simulated_power(flat, 20, BEAT_MIN, CONFIDENCE, BETTER_OF, 50, np.random.default_rng(1)) == 0.0


@pytest.mark.parametrize("n", [8, 32, 100])
def test_maps_no_better_than_chance_pass_at_most_five_percent(n: int) -> None:
    """400 random maps against 100 random orders each, on images whose random-order areas are skewed and
    differ in scale from image to image: the share beaten is uniform whatever the areas, so the rule's
    false-pass rate does not depend on the model. The line above chance makes it far below 5%."""
    rng = np.random.default_rng(n)
    passes = 0
    for _ in range(400):
        aucs = rng.gamma(2.0, 1.0, (n, RANDOM_ORDERS + 1)) * rng.uniform(0.1, 3.0, (n, 1))
        share = inf.beaten_share(aucs[:, 0], aucs[:, 1:])
        assert abs(share.mean() - 0.5) < 0.35
        passes += inf.decide(inf.mean_interval(share, CONFIDENCE), BEAT_MIN) == "pass"
    assert passes / 400 <= 0.05, passes


def test_a_pooled_share_over_equal_images_has_the_interval_of_the_mean_share() -> None:
    """With the same number of windows per image the pooled share is the mean of the per-image shares,
    and the ratio interval (images as the unit) is the t interval of that mean."""
    hits = np.array([3, 10, 0, 7, 5])
    windows = np.full(5, 16)
    ratio = inf.ratio_interval(hits, windows, 0.95)
    mean = inf.mean_interval(hits / windows, 0.95)
    assert ratio.mean == pytest.approx(hits.sum() / windows.sum())
    assert (ratio.low, ratio.high) == pytest.approx((mean.low, mean.high))


def test_a_pooled_share_ignores_images_with_nothing_to_count_and_needs_two() -> None:
    ratio = inf.ratio_interval(np.array([2, 0, 4]), np.array([4, 0, 8]), 0.95)
    assert ratio.n == 2 and ratio.mean == pytest.approx(0.5) and ratio.low == ratio.high == 0.5
    one = inf.ratio_interval(np.array([1]), np.array([4]), 0.95)
    assert one.n == 1 and math.isinf(one.high - one.low)
