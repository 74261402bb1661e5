"""The project's one implementation of its statistics, with ``rliable``'s definitions.

Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice" (NeurIPS
2021), as their package ``rliable`` 1.2.0 defines them (``rliable.metrics`` and
``rliable.library``): the interquartile mean (IQM), mean, median and optimality gap of scores
pooled over runs and tasks, the probability of improvement, performance profiles, and
percentile intervals from the stratified bootstrap. ``summary.json`` and ``prism-marl report``
both compute with this module; ``tests/report/test_stats.py`` compares every function with
``rliable`` on the same arrays (decision 0041).

Shapes: scores arrive as *strata*, one array per task holding that task's runs, ``[..., n_t]``
(a method's runs may differ in number between tasks, which ``rliable``'s runs × tasks matrices
cannot hold). A function of strata works on their last axes and keeps any leading axes, so one
call computes a statistic on ``R`` bootstrap resamples at once: ``[R, n_t]`` strata give ``[R]``.
For a rectangular set (n runs on every task) each statistic equals ``rliable``'s on the
``[n, T]`` matrix whose columns are the strata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

Statistic = Callable[[list[np.ndarray]], np.ndarray]
"""A statistic of strata: a list of arrays ``[..., n_t]`` (one per task) -> ``[...]`` or
``[..., K]``."""

RESAMPLES = 2_000
"""Bootstrap resamples per interval (``rliable``'s default for performance profiles)."""
CONFIDENCE = 0.95
SEED = 0
TRIM = 0.25
"""The IQM's proportion cut from each end (``rliable.metrics.aggregate_iqm``)."""
GAMMA = 1.0
"""The optimality gap's threshold: 1 is the best method's mean on normalised scores."""


class Estimate(NamedTuple):
    """A point estimate and its percentile bootstrap interval."""

    point: float
    low: float
    high: float


class Profile(NamedTuple):
    """A performance profile: the fraction of runs above each threshold, with its band."""

    taus: np.ndarray
    """Thresholds, ``[K]``."""
    point: np.ndarray
    """Fraction of runs (pooled over tasks) scoring above each tau, ``[K]``."""
    low: np.ndarray
    high: np.ndarray


class Bootstrap(NamedTuple):
    """How an interval was computed; the report and ``summary.json`` print it beside it."""

    resamples: int = RESAMPLES
    confidence: float = CONFIDENCE
    seed: int = SEED

    def describe(self) -> str:
        """E.g. ``95% CI, 2,000 stratified-bootstrap resamples``."""
        return f"{self.confidence:.0%} CI, {self.resamples:,} stratified-bootstrap resamples"


DEFAULT = Bootstrap()
"""2,000 resamples, 95%, seed 0: every interval of ``summary.json`` and of the report."""


def trimmed_mean(values: np.ndarray, proportion: float = TRIM) -> np.ndarray:
    """Mean after cutting ``floor(proportion · n)`` values from each end: ``[..., n] -> [...]``.

        TM_p(x) = 1 / (n − 2k) · Σ_{i=k}^{n−k−1} x_(i),   k = ⌊p · n⌋

    with x_(0) <= ... <= x_(n−1) the sorted values. This is ``scipy.stats.trim_mean(x, p)``
    along the last axis; with p = 1/4 and n < 4 nothing is cut (the plain mean). NaN for n = 0.
    """
    data = np.sort(np.asarray(values, dtype=np.float64), axis=-1)
    n = data.shape[-1]
    if n == 0:
        return np.full(data.shape[:-1], np.nan)
    cut = int(proportion * n)
    return np.asarray(data[..., cut : n - cut].mean(axis=-1))


def iqm(values: np.ndarray) -> np.ndarray:
    """Interquartile mean of the last axis, the 25% trimmed mean: ``[..., n] -> [...]``."""
    return trimmed_mean(values, TRIM)


def _pooled(strata: Sequence[np.ndarray]) -> np.ndarray:
    """Every run of every task side by side: ``[..., Σ n_t]``."""
    return np.concatenate([np.asarray(s, dtype=np.float64) for s in strata], axis=-1)


def _task_means(strata: Sequence[np.ndarray]) -> np.ndarray:
    """Each task's mean over its runs: ``[..., T]``."""
    return np.stack([np.asarray(s, dtype=np.float64).mean(axis=-1) for s in strata], axis=-1)


def aggregate_iqm(strata: Sequence[np.ndarray]) -> np.ndarray:
    """IQM of all runs of all tasks pooled: ``rliable.metrics.aggregate_iqm``, ``[...]``.

    IQM = TM_{1/4}( {x_{t,i} : every task t, every run i} )
    """
    return iqm(_pooled(strata))


def aggregate_mean(strata: Sequence[np.ndarray]) -> np.ndarray:
    """Mean over tasks of each task's mean over runs: ``rliable.metrics.aggregate_mean``.

        mean = (1/T) Σ_t (1/n_t) Σ_i x_{t,i}

    Every task weighs the same, whatever its number of runs. ``[...]``.
    """
    return np.asarray(_task_means(strata).mean(axis=-1))


def aggregate_median(strata: Sequence[np.ndarray]) -> np.ndarray:
    """Median over tasks of each task's mean over runs: ``rliable.metrics.aggregate_median``.

        median = median_t ( (1/n_t) Σ_i x_{t,i} )

    ``[...]``; with one task it is that task's mean.
    """
    return np.asarray(np.median(_task_means(strata), axis=-1))


def optimality_gap(strata: Sequence[np.ndarray], gamma: float = GAMMA) -> np.ndarray:
    """How far the pooled runs fall short of γ: ``rliable.metrics.aggregate_optimality_gap``.

        OG = (1/N) Σ_{t,i} max(γ − x_{t,i}, 0) = γ − mean(min(x, γ)),   N = Σ_t n_t

    Lower is better; scores above γ earn nothing more. ``[...]``.
    """
    return np.asarray(np.maximum(gamma - _pooled(strata), 0.0).mean(axis=-1))


def score_distribution(strata: Sequence[np.ndarray], taus: np.ndarray) -> np.ndarray:
    """Fraction of the pooled runs scoring above each tau: ``[...]`` strata -> ``[..., K]``.

        F(τ) = (1/N) Σ_{t,i} 1[x_{t,i} > τ]

    ``rliable.library.create_performance_profile`` with ``use_score_distribution=True``.
    """
    pooled = _pooled(strata)[..., :, None]  # [..., N, 1]
    return np.asarray((pooled > np.asarray(taus, dtype=np.float64)).mean(axis=-2))


def probability_of_improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> np.ndarray:
    """P(X > Y): how likely a run of X beats a run of Y on a task, averaged over tasks.

    ``x[t]`` is ``[..., m_t]`` (X's runs on task t), ``y[t]`` is ``[..., n_t]``. Per task, the
    Mann-Whitney U statistic divided by m·n, ties counting one half:

        P_t = (1 / (m n)) Σ_i Σ_j ( 1[x_i > y_j] + ½ · 1[x_i = y_j] )

    and P(X > Y) = (1/T) Σ_t P_t: ``rliable.metrics.probability_of_improvement``. 0.5 means
    neither is better; only the order of scores within a task matters, so raw and normalised
    returns give the same value. ``[...]``.
    """
    if len(x) != len(y) or not x:
        raise ValueError("x and y must hold the same, non-zero number of tasks")
    per_task = []
    for xt, yt in zip(x, y, strict=True):
        xi = np.asarray(xt, dtype=np.float64)[..., :, None]  # [..., m, 1]
        yj = np.asarray(yt, dtype=np.float64)[..., None, :]  # [..., 1, n]
        wins = (xi > yj) + 0.5 * (xi == yj)
        per_task.append(wins.mean(axis=(-2, -1)))
    return np.asarray(np.mean(per_task, axis=0))


def resample(strata: Sequence[np.ndarray], resamples: int, seed: int = SEED) -> list[np.ndarray]:
    """The stratified bootstrap's resamples: each stratum ``[n_t]`` -> ``[resamples, n_t]``.

    Each resample draws n_t runs with replacement from stratum t, independently of the other
    strata, so it keeps every task's number of runs (``rliable.library.StratifiedBootstrap``
    with ``task_bootstrap=False``). ``numpy.random.default_rng(seed)`` draws the strata in order.
    """
    data = [np.asarray(s, dtype=np.float64) for s in strata]
    if not data or any(s.ndim != 1 or s.size == 0 for s in data):
        raise ValueError("every stratum must be a non-empty 1-D array")
    rng = np.random.default_rng(seed)
    return [s[rng.integers(0, s.size, size=(resamples, s.size))] for s in data]


def percentile_interval(
    values: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """The (1−c)/2 and (1+c)/2 quantiles over the first axis: ``[R, ...] -> ([...], [...])``.

    Linear interpolation between order statistics (``numpy.percentile``'s default), as
    ``arch``'s ``conf_int(method="percentile")``, which ``rliable`` calls.
    """
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.asarray(values, dtype=np.float64), [tail, 1.0 - tail], axis=0)
    return np.asarray(low), np.asarray(high)


def bootstrap(
    strata: Sequence[np.ndarray], statistic: Statistic, how: Bootstrap = DEFAULT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(point, low, high)``: ``statistic`` on the strata and its stratified-bootstrap interval.

    Each stratum is a 1-D array of its runs; ``point`` has the statistic's shape for one set of
    strata (``[]`` or ``[K]``). The same ``how.seed`` gives the same interval.
    """
    resampled = resample(strata, how.resamples, how.seed)
    point = statistic([np.asarray(s, dtype=np.float64)[None, :] for s in strata])[0]
    low, high = percentile_interval(statistic(resampled), how.confidence)
    return np.asarray(point), low, high


def stratified_bootstrap(
    strata: Sequence[np.ndarray], statistic: Statistic, how: Bootstrap = DEFAULT
) -> Estimate:
    """A scalar statistic of the strata with its percentile interval (see ``bootstrap``)."""
    point, low, high = bootstrap(strata, statistic, how)
    return Estimate(float(point), float(low), float(high))


AGGREGATES: dict[str, Statistic] = {
    "IQM": aggregate_iqm,
    "mean": aggregate_mean,
    "median": aggregate_median,
    "optimality gap": optimality_gap,
}
"""rliable's four aggregate metrics, in its figure's order; the optimality gap at γ = 1."""


def aggregate_estimates(
    strata: Sequence[np.ndarray], how: Bootstrap = DEFAULT
) -> dict[str, Estimate]:
    """IQM, mean, median and optimality gap of the strata, each with its interval.

    All four are computed on the same resamples; names as in ``AGGREGATES``.
    """
    resampled = resample(strata, how.resamples, how.seed)
    single = [np.asarray(s, dtype=np.float64)[None, :] for s in strata]
    result = {}
    for name, statistic in AGGREGATES.items():
        low, high = percentile_interval(statistic(resampled), how.confidence)
        result[name] = Estimate(float(statistic(single)[0]), float(low), float(high))
    return result


def iqm_estimate(values: Sequence[float] | np.ndarray, how: Bootstrap = DEFAULT) -> Estimate:
    """IQM of one set of runs (e.g. the seeds of one method on one task) with its interval."""
    return stratified_bootstrap([np.asarray(values)], aggregate_iqm, how)


def mean_estimate(values: Sequence[float] | np.ndarray, how: Bootstrap = DEFAULT) -> Estimate:
    """Mean of one set of runs with its interval."""
    return stratified_bootstrap([np.asarray(values)], aggregate_mean, how)


def improvement_estimate(
    x: Sequence[np.ndarray], y: Sequence[np.ndarray], how: Bootstrap = DEFAULT
) -> Estimate:
    """P(X > Y) over tasks with its interval; X's and Y's runs are resampled separately per task.

    ``rliable.library.StratifiedIndependentBootstrap``: each of the 2T strata (X's runs on task
    t, Y's runs on task t) is resampled on its own.
    """
    strata = [s for pair in zip(x, y, strict=True) for s in pair]  # x_0, y_0, x_1, y_1, ...

    def statistic(resampled: list[np.ndarray]) -> np.ndarray:
        return probability_of_improvement(resampled[0::2], resampled[1::2])

    return stratified_bootstrap(strata, statistic, how)


def profile_estimate(
    strata: Sequence[np.ndarray], taus: np.ndarray, how: Bootstrap = DEFAULT
) -> Profile:
    """The performance profile (``score_distribution``) at ``taus`` with its pointwise band."""
    taus = np.asarray(taus, dtype=np.float64)
    point, low, high = bootstrap(strata, lambda s: score_distribution(s, taus), how)
    return Profile(taus, point, low, high)


def normalise(returns: np.ndarray, random: float, best: float) -> np.ndarray:
    """Returns on a task's scale from its random policy (0) to its best method (1).

        x̃ = (x − random) / (best − random)

    Callers leave out tasks where best <= random (no method beat the untrained policy).
    """
    return (np.asarray(returns, dtype=np.float64) - random) / (best - random)


__all__ = [
    "AGGREGATES",
    "CONFIDENCE",
    "DEFAULT",
    "GAMMA",
    "RESAMPLES",
    "SEED",
    "TRIM",
    "Bootstrap",
    "Estimate",
    "Profile",
    "aggregate_estimates",
    "aggregate_iqm",
    "aggregate_mean",
    "aggregate_median",
    "bootstrap",
    "improvement_estimate",
    "iqm",
    "iqm_estimate",
    "mean_estimate",
    "normalise",
    "optimality_gap",
    "percentile_interval",
    "probability_of_improvement",
    "profile_estimate",
    "resample",
    "score_distribution",
    "stratified_bootstrap",
    "trimmed_mean",
]
