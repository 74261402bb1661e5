"""The report's statistics: IQM, stratified bootstrap intervals, probability of improvement.

Following Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical Precipice"
(NeurIPS 2021), the protocol the ``rliable`` package implements; decision 0020 says why this
module implements it instead. Every function works on the last axis and keeps any leading axes,
so one call computes a statistic on ``R`` bootstrap resamples at once: shapes below are written
``[..., n]`` (n runs, e.g. seeds) -> ``[...]``.

A *stratum* is one task (or one method on one task): the stratified bootstrap resamples runs
with replacement inside each stratum, never across, so every resample keeps each task's number
of runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

Statistic = Callable[[list[np.ndarray]], np.ndarray]
"""A statistic of strata: a list of arrays ``[..., n_k]`` (one per stratum) -> ``[...]``."""

RESAMPLES = 2_000
CONFIDENCE = 0.95


class Estimate(NamedTuple):
    """A point estimate and its percentile bootstrap interval."""

    point: float
    low: float
    high: float


def iqm(values: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis: ``[..., n] -> [...]``.

    With the sorted values x_(0) <= ... <= x_(n-1), value i stands for the quantile range
    [i/n, (i+1)/n], and the IQM is the mean over the middle half [1/4, 3/4]:

        IQM = 2 · Σ_i |[i/n, (i+1)/n] ∩ [1/4, 3/4]| · x_(i)

    When n is a multiple of 4 this drops the lowest and highest quarters and averages the
    rest; otherwise the boundary values count fractionally (n = 3: weights 1/6, 2/3, 1/6), so
    it is defined for any n >= 1. This is ``prism_marl.results.interquartile_mean`` (what
    ``summary.json``'s ``final_return_iqm`` holds) for many arrays at once. ``rliable`` uses
    ``scipy.stats.trim_mean(x, 0.25)``, which drops floor(n/4) values per side: the plain mean
    for n = 3.
    """
    data = np.sort(np.asarray(values, dtype=np.float64), axis=-1)
    n = data.shape[-1]
    if n == 0:
        return np.full(data.shape[:-1], np.nan)
    lower = np.arange(n) / n
    upper = (np.arange(n) + 1) / n
    weights = np.clip(np.minimum(upper, 0.75) - np.maximum(lower, 0.25), 0.0, None)
    return np.asarray(data @ (2.0 * weights))


def pooled_iqm(strata: list[np.ndarray]) -> np.ndarray:
    """IQM of all runs of all strata together (Agarwal et al.'s aggregate IQM): ``[...]``."""
    return iqm(np.concatenate(strata, axis=-1))


def pooled_mean(strata: list[np.ndarray]) -> np.ndarray:
    """Mean of all runs of all strata together: ``[...]``."""
    return np.asarray(np.concatenate(strata, axis=-1).mean(axis=-1))


def probability_of_improvement(x: Sequence[np.ndarray], y: Sequence[np.ndarray]) -> np.ndarray:
    """P(X > Y): how likely a run of X beats a run of Y on a task, averaged over tasks.

    ``x[t]`` is ``[..., m_t]`` (X's runs on task t), ``y[t]`` is ``[..., n_t]``. Per task, the
    Mann-Whitney statistic divided by m·n, ties counting one half:

        P_t = (1 / (m n)) Σ_i Σ_j ( 1[x_i > y_j] + ½ · 1[x_i = y_j] )

    and P(X > Y) = (1/T) Σ_t P_t. 0.5 means neither is better; only the order of returns within
    a task matters, so raw and normalised returns give the same value.
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


def stratified_bootstrap(
    strata: Sequence[np.ndarray],
    statistic: Statistic,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Estimate:
    """The statistic on the strata and its percentile interval under the stratified bootstrap.

    Each stratum ``strata[k]`` is a 1-D array of its n_k runs. A resample draws n_k runs with
    replacement from each stratum independently; the interval is the (1-c)/2 and (1+c)/2
    quantiles of the statistic over ``resamples`` resamples. The same ``seed`` gives the same
    interval.
    """
    data = [np.asarray(s, dtype=np.float64) for s in strata]
    if not data or any(s.ndim != 1 or s.size == 0 for s in data):
        raise ValueError("every stratum must be a non-empty 1-D array")
    point = float(statistic([s[None, :] for s in data])[0])
    rng = np.random.default_rng(seed)
    resampled = [s[rng.integers(0, s.size, size=(resamples, s.size))] for s in data]
    values = statistic(resampled)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Estimate(point, float(low), float(high))


def iqm_estimate(
    values: Sequence[float] | np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0
) -> Estimate:
    """IQM of one set of runs (e.g. the seeds of one method on one task) with its interval."""
    return stratified_bootstrap([np.asarray(values)], pooled_iqm, resamples=resamples, seed=seed)


def improvement_estimate(
    x: Sequence[np.ndarray], y: Sequence[np.ndarray], *, resamples: int = RESAMPLES, seed: int = 0
) -> Estimate:
    """P(X > Y) over tasks with its interval; X's and Y's runs are resampled separately per task."""
    strata = [s for pair in zip(x, y, strict=True) for s in pair]  # x_0, y_0, x_1, y_1, ...

    def statistic(resampled: list[np.ndarray]) -> np.ndarray:
        return probability_of_improvement(resampled[0::2], resampled[1::2])

    return stratified_bootstrap(strata, statistic, resamples=resamples, seed=seed)


def normalise(returns: np.ndarray, random: float, best: float) -> np.ndarray:
    """Returns on a task's scale from its random policy (0) to its best method (1).

        x̃ = (x − random) / (best − random)

    Callers leave out tasks where best <= random (no method beat the untrained policy).
    """
    return (np.asarray(returns, dtype=np.float64) - random) / (best - random)


__all__ = [
    "CONFIDENCE",
    "RESAMPLES",
    "Estimate",
    "improvement_estimate",
    "iqm",
    "iqm_estimate",
    "normalise",
    "pooled_iqm",
    "pooled_mean",
    "probability_of_improvement",
    "stratified_bootstrap",
]
