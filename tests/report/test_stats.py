"""The statistics against values computed by hand, and against rliable on the same arrays."""

import functools
import inspect

import numpy as np
import pytest
import scipy.stats

from prism_marl.report import stats


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([7.0], 7.0),
        ([1.0, 2.0, 3.0, 4.0], 2.5),  # n = 4: one cut from each end
        ([10.0, 0.0, 1.0], 11 / 3),  # n = 3: floor(3/4) = 0 cut, the plain mean
        ([0.0, 1.0, 2.0, 3.0, 100.0], 2.0),  # n = 5: one cut from each end
        ([3.0, 1.0, 2.0, 1.0, 3.0, 2.0, 3.0, 2.0], 2.25),  # ties: middle four are 2, 2, 2, 3
        ([5.0] * 6, 5.0),
    ],
)
def test_iqm_hand_values(values, expected):
    assert stats.iqm(np.array(values)) == pytest.approx(expected)


def test_iqm_is_scipys_trim_mean_batched():
    rng = np.random.default_rng(3)
    for n in range(1, 14):
        rows = rng.normal(size=(4, n))
        batched = stats.iqm(rows)
        assert batched.shape == (4,)
        for row, value in zip(rows, batched, strict=True):
            assert value == pytest.approx(scipy.stats.trim_mean(row, 0.25))
    assert np.isnan(stats.iqm(np.zeros(0)))


def test_aggregates_by_hand():
    # Ragged strata: task means 2 and 2, runs pooled 0, 4, 1, 2, 3.
    strata = [np.array([0.0, 4.0]), np.array([1.0, 2.0, 3.0])]
    assert stats.aggregate_mean(strata) == pytest.approx(2.0)
    assert stats.aggregate_median(strata) == pytest.approx(2.0)
    assert stats.aggregate_iqm(strata) == pytest.approx(2.0)  # 1, 2, 3 of 0..4
    # gap below 1: only the 0 falls short (by 1) -> 1/5
    assert stats.optimality_gap(strata) == pytest.approx(0.2)
    assert stats.optimality_gap(strata, gamma=2.0) == pytest.approx((2 + 1) / 5)
    taus = np.array([-1.0, 0.0, 2.0, 4.0])
    assert stats.score_distribution(strata, taus) == pytest.approx([1.0, 0.8, 0.4, 0.0])


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
    how = stats.Bootstrap(seed=1)
    estimate = stats.iqm_estimate(values, how)
    assert estimate.point == pytest.approx(scipy.stats.trim_mean(values, 0.25))
    assert estimate.low <= estimate.point <= estimate.high
    assert estimate.low < estimate.high
    assert stats.iqm_estimate(values, how) == estimate
    # another seed draws other resamples (on data whose quantiles can tell them apart)
    many = np.random.default_rng(0).normal(size=20)
    assert stats.iqm_estimate(many, how) != stats.iqm_estimate(many, stats.Bootstrap(seed=2))
    assert stats.Bootstrap().describe() == "95% CI, 2,000 stratified-bootstrap resamples"


def test_bootstrap_interval_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    widths = []
    for n in (5, 50, 500):
        estimate = stats.mean_estimate(rng.normal(size=n), stats.Bootstrap(resamples=1000))
        widths.append(estimate.high - estimate.low)
    assert widths[0] > widths[1] > widths[2] > 0


def test_bootstrap_resamples_inside_each_stratum():
    # Three zeros and five ones: a resample that keeps each stratum's size has a pooled
    # fraction above 0.5 of 5/8 exactly; one that mixed the strata would not.
    strata = [np.zeros(3), np.ones(5)]
    profile = stats.profile_estimate(strata, np.array([0.5]), stats.Bootstrap(resamples=200))
    bands = np.concatenate([profile.point, profile.low, profile.high])
    assert bands == pytest.approx([5 / 8] * 3)
    resampled = stats.resample(strata, 7)
    assert [r.shape for r in resampled] == [(7, 3), (7, 5)]


def test_improvement_estimate_interval():
    x = [np.array([3.0, 4.0, 5.0]), np.array([1.0, 2.0])]
    y = [np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.5])]
    estimate = stats.improvement_estimate(x, y, stats.Bootstrap(resamples=500))
    # task 0: every x beats every y -> 1; task 1: 1>0, 1<1.5, 2>0, 2>1.5 -> 3/4
    assert estimate.point == pytest.approx(0.875)
    assert estimate.low <= estimate.point <= estimate.high <= 1.0


def test_aggregate_estimates_name_rliables_four():
    strata = [np.array([0.2, 0.9, 0.5]), np.array([1.2, 0.6, 0.7])]
    estimates = stats.aggregate_estimates(strata, stats.Bootstrap(resamples=300))
    assert list(estimates) == ["IQM", "mean", "median", "optimality gap"]
    for name, statistic in stats.AGGREGATES.items():
        assert estimates[name].point == pytest.approx(float(statistic(strata)))
        assert estimates[name].low <= estimates[name].point <= estimates[name].high


def test_normalise():
    assert stats.normalise(np.array([0.2, 0.5, 0.8]), 0.2, 0.8) == pytest.approx([0, 0.5, 1])


def test_bad_strata_are_refused():
    with pytest.raises(ValueError):
        stats.stratified_bootstrap([np.array([])], stats.aggregate_mean)
    with pytest.raises(ValueError):
        stats.probability_of_improvement([], [])


# ------------------------------------------------------------------------- against rliable


def _rliable():
    """rliable's ``metrics`` and ``library``; skips where rliable is not installed.

    rliable 1.2.0 needs arch < 8, and arch 7.2.0's ``arch.univariate`` (imported by every
    ``import arch``) decorates a plotting method with pandas' private ``deprecate_kwarg`` in
    its pre-3.0 signature, a TypeError under the lock's pandas 3 (decision 0041). The adapter
    below gives that one call its old meaning; nothing rliable computes goes through it.
    """
    metrics = pytest.importorskip("rliable.metrics", reason="rliable is a test dependency")
    from pandas.util import _decorators

    original = _decorators.deprecate_kwarg
    if next(iter(inspect.signature(original).parameters)) == "klass":

        @functools.wraps(original)
        def old_signature(*args, **kwargs):
            if args and isinstance(args[0], str):  # (old_arg_name, new_arg_name, ...)
                args = (FutureWarning, *args)
            return original(*args, **kwargs)

        _decorators.deprecate_kwarg = old_signature
        try:
            from rliable import library
        finally:
            _decorators.deprecate_kwarg = original
    else:
        from rliable import library
    return metrics, library


def _columns(scores: np.ndarray) -> list[np.ndarray]:
    """rliable's [runs, tasks] matrix as our strata (one per task); [R, runs, tasks] too."""
    return [scores[..., t] for t in range(scores.shape[-1])]


SHAPES = [(1, 1), (3, 1), (3, 2), (4, 3), (5, 2), (7, 4), (10, 5)]
"""(runs, tasks): the quick scale's 3 seeds, counts where the IQM cuts a run, and more."""


def _scores(runs: int, tasks: int, seed: int) -> np.ndarray:
    """Normalised-looking scores around [0, 1.2] with ties (rounded), [runs, tasks]."""
    return np.round(np.random.default_rng(seed).uniform(-0.2, 1.3, size=(runs, tasks)), 1)


@pytest.mark.parametrize(("runs", "tasks"), SHAPES)
def test_point_estimates_equal_rliables(runs, tasks):
    metrics, library = _rliable()

    scores = _scores(runs, tasks, seed=runs * 10 + tasks)
    other = _scores(runs + 1, tasks, seed=runs * 10 + tasks + 1)
    strata = _columns(scores)
    assert stats.aggregate_iqm(strata) == pytest.approx(metrics.aggregate_iqm(scores), abs=1e-12)
    assert stats.aggregate_mean(strata) == pytest.approx(metrics.aggregate_mean(scores), abs=1e-12)
    assert stats.aggregate_median(strata) == pytest.approx(
        metrics.aggregate_median(scores), abs=1e-12
    )
    assert stats.optimality_gap(strata) == pytest.approx(
        metrics.aggregate_optimality_gap(scores, gamma=1), abs=1e-12
    )
    for x, y in ((scores, other), (other, scores), (scores, scores)):
        assert stats.probability_of_improvement(_columns(x), _columns(y)) == pytest.approx(
            metrics.probability_of_improvement(x, y), abs=1e-12
        )
    taus = np.linspace(-0.5, 1.5, 21)
    theirs, _ = library.create_performance_profile({"a": scores}, taus, reps=2)
    assert stats.score_distribution(strata, taus) == pytest.approx(theirs["a"], abs=1e-12)


def _rliable_resamples(statistic, scores, reps):
    """rliable's interval of ``statistic`` and the resamples it drew (recorded as it calls).

    rliable calls the statistic once for its point estimate, arch once for its base, then once
    per resample: the last ``reps`` calls are the resamples.
    """
    _, library = _rliable()
    calls = []

    def recording(*arrays):
        calls.append(tuple(np.array(a) for a in arrays))
        return statistic(*arrays)

    np.random.seed(5)  # rliable's StratifiedBootstrap draws from numpy's global generator
    _, intervals = library.get_interval_estimates(
        {"a": scores}, recording, reps=reps, confidence_interval_size=0.95
    )
    assert len(calls) == reps + 2
    return intervals["a"], calls[2:]


@pytest.mark.parametrize(("runs", "tasks"), [(3, 2), (5, 3)])
def test_intervals_equal_rliables_on_its_resamples(runs, tasks):
    """On the very resamples rliable drew, our statistics and percentile interval give its
    interval to float precision: only the random draws differ between the two bootstraps."""
    metrics, _ = _rliable()
    scores = _scores(runs, tasks, seed=7)
    reps = 300
    for ours, theirs in (
        (stats.aggregate_iqm, metrics.aggregate_iqm),
        (stats.aggregate_mean, metrics.aggregate_mean),
        (stats.aggregate_median, metrics.aggregate_median),
        (stats.optimality_gap, metrics.aggregate_optimality_gap),
    ):
        interval, calls = _rliable_resamples(theirs, scores, reps)
        resampled = np.stack([call[0] for call in calls])  # [R, runs, tasks]
        # rliable resamples within each task: every column keeps to its task's values.
        for t in range(tasks):
            assert set(np.unique(resampled[..., t])) <= set(scores[:, t])
        low, high = stats.percentile_interval(ours(_columns(resampled)))
        assert [low, high] == pytest.approx(np.ravel(interval), abs=1e-12)
    other = _scores(runs + 2, tasks, seed=8)
    # A pair of matrices: rliable resamples X's and Y's runs independently within each task.
    interval, calls = _rliable_resamples(metrics.probability_of_improvement, (scores, other), reps)
    xs = np.stack([call[0] for call in calls])
    ys = np.stack([call[1] for call in calls])
    low, high = stats.percentile_interval(
        stats.probability_of_improvement(_columns(xs), _columns(ys))
    )
    assert [low, high] == pytest.approx(np.ravel(interval), abs=1e-12)


def test_intervals_agree_with_rliables_within_bootstrap_noise():
    """Our own draws against rliable's (2,000 resamples each, different generators): the
    interval ends differ by bootstrap noise only, here under a tenth of the interval's width."""
    metrics, library = _rliable()

    scores = np.random.default_rng(11).normal(0.6, 0.25, size=(10, 3))
    np.random.seed(0)
    _, theirs = library.get_interval_estimates(
        {"a": scores}, metrics.aggregate_iqm, reps=stats.RESAMPLES
    )
    ours = stats.stratified_bootstrap(_columns(scores), stats.aggregate_iqm)
    low, high = np.ravel(theirs["a"])
    width = high - low
    assert abs(ours.low - low) < 0.1 * width and abs(ours.high - high) < 0.1 * width
    np.random.seed(0)
    taus = np.linspace(0.0, 1.2, 7)
    _, bands = library.create_performance_profile({"a": scores}, taus, reps=stats.RESAMPLES)
    profile = stats.profile_estimate(_columns(scores), taus)
    assert np.max(np.abs(profile.low - bands["a"][0])) <= 0.05
    assert np.max(np.abs(profile.high - bands["a"][1])) <= 0.05
