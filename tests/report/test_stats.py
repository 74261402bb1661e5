"""The report's statistics against values computed by hand."""

import numpy as np
import pytest

from prism_marl.report import stats
from prism_marl.results import interquartile_mean


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([7.0], 7.0),
        ([1.0, 2.0, 3.0, 4.0], 2.5),  # quarters: drop 1 and 4
        ([10.0, 0.0, 1.0], 7 / 3),  # n = 3: weights 1/6, 2/3, 1/6 -> 0/6 + 2/3 + 10/6
        ([0.0, 1.0, 2.0, 3.0, 100.0], 2.0),  # n = 5: weights 0, .3, .4, .3, 0
        ([3.0, 1.0, 2.0, 1.0, 3.0, 2.0, 3.0, 2.0], 2.25),  # ties: middle four are 2, 2, 2, 3
        ([5.0] * 6, 5.0),
    ],
)
def test_iqm_hand_values(values, expected):
    assert stats.iqm(np.array(values)) == pytest.approx(expected)


def test_iqm_is_the_summary_iqm_batched():
    rng = np.random.default_rng(3)
    for n in range(1, 13):
        rows = rng.normal(size=(4, n))
        batched = stats.iqm(rows)
        assert batched.shape == (4,)
        for row, value in zip(rows, batched, strict=True):
            assert value == pytest.approx(interquartile_mean(row))


def test_pooled_statistics_join_the_strata():
    strata = [np.array([0.0, 4.0]), np.array([1.0, 2.0, 3.0])]
    assert stats.pooled_mean(strata) == pytest.approx(2.0)
    assert stats.pooled_iqm(strata) == pytest.approx(stats.iqm(np.arange(5.0)))


def test_probability_of_improvement_hand_values():
    x, y = [np.array([1.0, 2.0])], [np.array([0.0, 2.0])]
    # 1>0: 1, 1<2: 0, 2>0: 1, 2=2: 1/2 -> 2.5 / 4
    assert stats.probability_of_improvement(x, y) == pytest.approx(0.625)
    assert stats.probability_of_improvement(y, x) == pytest.approx(0.375)
    # averaged over tasks: (0.625 + 0) / 2
    two = stats.probability_of_improvement(x + [np.array([0.0])], y + [np.array([1.0])])
    assert two == pytest.approx(0.3125)
    same = [np.array([1.0, 1.0, 3.0])]
    assert stats.probability_of_improvement(same, same) == pytest.approx(0.5)


def test_bootstrap_contains_the_point_and_is_deterministic():
    values = np.array([0.1, 0.5, 0.4, 0.9, 0.3])
    estimate = stats.iqm_estimate(values, seed=1)
    assert estimate.point == pytest.approx(interquartile_mean(values))
    assert estimate.low <= estimate.point <= estimate.high
    assert estimate.low < estimate.high
    assert stats.iqm_estimate(values, seed=1) == estimate
    # another seed draws other resamples (on data whose quantiles can tell them apart)
    many = np.random.default_rng(0).normal(size=20)
    assert stats.iqm_estimate(many, seed=1) != stats.iqm_estimate(many, seed=2)


def test_bootstrap_interval_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (5, 50, 500):
        estimate = stats.iqm_estimate(rng.normal(size=n), resamples=1000)
        widths.append(estimate.high - estimate.low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_bootstrap_resamples_inside_each_stratum():
    # Three zeros and five ones: a resample that keeps each stratum's size has mean 5/8
    # exactly; one that mixed the strata would not.
    strata = [np.zeros(3), np.ones(5)]
    estimate = stats.stratified_bootstrap(strata, stats.pooled_mean, resamples=200)
    assert estimate == pytest.approx((5 / 8, 5 / 8, 5 / 8))


def test_improvement_estimate_interval():
    x = [np.array([3.0, 4.0, 5.0]), np.array([1.0, 2.0])]
    y = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.5])]
    estimate = stats.improvement_estimate(x, y, resamples=500)
    # task 0: every x beats every y -> 1; task 1: 1>0, 1<1.5, 2>0, 2>1.5 -> 3/4
    assert estimate.point == pytest.approx(0.875)
    assert estimate.low <= estimate.point <= estimate.high <= 1.0


def test_normalise():
    assert stats.normalise(np.array([0.2, 0.5, 0.8]), 0.2, 0.8) == pytest.approx([0, 0.5, 1])


def test_bad_strata_are_refused():
    with pytest.raises(ValueError):
        stats.stratified_bootstrap([np.array([])], stats.pooled_mean)
    with pytest.raises(ValueError):
        stats.probability_of_improvement([], [])
