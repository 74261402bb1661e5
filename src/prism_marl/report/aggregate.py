"""The numbers the report shows, computed from runs with ``report.stats``.

Every statistic takes a ``stats.Bootstrap``, how its intervals are drawn (2,000 resamples,
95%, seed 0 unless ``prism-marl report --resamples`` says otherwise).

Runs are grouped by experiment (and parameter budget); inside a group a *method* is the
experiment file's method name and a *task* is an environment with its backbone algorithm, e.g.
``lbf:8x8-2p-2f-coop / mappo``. Final returns come from ``summary.json`` (``final_returns``, one
per seed) of complete runs; curves come from ``metrics.jsonl`` of every run, complete or not, up
to the last evaluation point it reached.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from prism_marl.report import stats
from prism_marl.report.load import Run, Source

if TYPE_CHECKING:
    from prism_marl.resources import Resources

PRISM = "prism"
"""The method the probability of improvement compares against every other method."""


class Group(NamedTuple):
    """The runs of one experiment at one budget: one set of tables and figures."""

    name: str
    """``figure2-quick``, ``figure4-quick (half budget)``, ``runs``."""
    experiment: str
    scale: str | None
    budget: str | None
    runs: tuple[Run, ...]


class Cell(NamedTuple):
    """Final returns of one method on one task (one complete run)."""

    method: str
    task: str
    run: Run
    returns: np.ndarray
    """Per-seed final returns, ``[seeds]``."""
    iqm: stats.Estimate
    mean: stats.Estimate
    win_rate: float | None
    greedy_mean: float | None
    sampled_mean: float | None
    eval_mode: str | None


class Curve(NamedTuple):
    """One run's metric over training: IQM over seeds and its 95% band at each point."""

    method: str
    task: str
    steps: np.ndarray
    """Environment steps per seed, ``[T]``."""
    iqm: np.ndarray
    low: np.ndarray
    high: np.ndarray
    complete: bool


class Normalisation(NamedTuple):
    """A task's scale: 0 = the untrained policy, 1 = the best method's mean final return."""

    task: str
    random: float
    best: float
    best_method: str

    @property
    def usable(self) -> bool:
        """Whether some method beat the untrained policy (else the scale is undefined)."""
        return bool(np.isfinite(self.random) and self.best > self.random)


class AggregateRow(NamedTuple):
    """A method's normalised final returns over tasks: rliable's four aggregate metrics."""

    method: str
    tasks: int
    runs: int
    """Seeds over all tasks."""
    estimates: dict[str, stats.Estimate]
    """``stats.AGGREGATES``' names (IQM, mean, median, optimality gap) -> estimate."""
    strata: tuple[np.ndarray, ...]
    """The normalised final returns, one array of seeds per task."""

    @property
    def iqm(self) -> stats.Estimate:
        """The IQM's estimate."""
        return self.estimates["IQM"]


class ProfileRow(NamedTuple):
    """A method's performance profile on normalised final returns."""

    method: str
    profile: stats.Profile


class Improvement(NamedTuple):
    """P(Prism > baseline) over the tasks both ran."""

    baseline: str
    tasks: int
    estimate: stats.Estimate


class Retention(NamedTuple):
    """How much of its Full-budget return a method keeps at the Half budget."""

    method: str
    per_task: dict[str, float]
    """Task -> (IQM_half − random) / (IQM_full − random)."""
    mean: float


def task_label(run: Run) -> str:
    """``task / backbone``: the same environment under two algorithms is two tasks."""
    return f"{run.task} / {run.backbone}"


def method_order(methods: Sequence[str]) -> list[str]:
    """Prism first, then the rest alphabetically, each once."""
    unique = sorted(set(methods))
    return [m for m in unique if m == PRISM] + [m for m in unique if m != PRISM]


def make_groups(sources: Sequence[Source]) -> list[Group]:
    """Runs grouped by experiment and budget, in input order.

    Two runs of one group with the same method, task and budget (two ``prism-marl train`` runs
    of one setting, or a sweep whose config changed) are both kept: each is labelled with its
    run id instead of being pooled with the other.
    """
    by_key: dict[tuple[str, str | None, str | None], list[Run]] = {}
    for source in sources:
        for run in source.runs:
            by_key.setdefault((run.experiment, run.scale, run.budget), []).append(run)
    groups = []
    for (experiment, scale, budget), runs in by_key.items():
        name = experiment if scale is None else f"{experiment}-{scale}"
        name = name if budget is None else f"{name} ({budget} budget)"
        groups.append(Group(name, experiment, scale, budget, tuple(_distinct_methods(runs))))
    return groups


def _distinct_methods(runs: list[Run]) -> list[Run]:
    seen: dict[tuple[str, str], int] = {}
    for run in runs:
        key = (run.method, task_label(run))
        seen[key] = seen.get(key, 0) + 1
    relabelled = []
    for run in runs:
        if seen[(run.method, task_label(run))] > 1:
            run = _with_method(run, f"{run.method} [{run.run_id}]")
        relabelled.append(run)
    return relabelled


def _with_method(run: Run, method: str) -> Run:
    return dataclasses.replace(run, method=method)


def _optional_mean(summary: Mapping | None, key: str) -> float | None:
    values = (summary or {}).get(key)
    return None if values is None else float(np.mean(values))


def final_cells(group: Group, how: stats.Bootstrap = stats.DEFAULT) -> list[Cell]:
    """One cell per complete run: IQM and mean of its per-seed final returns, with intervals."""
    cells = []
    for run in group.runs:
        if not run.complete or run.final_returns.size == 0:
            continue
        summary = dict(run.summary or {})
        returns = run.final_returns
        cells.append(
            Cell(
                method=run.method,
                task=task_label(run),
                run=run,
                returns=returns,
                iqm=stats.iqm_estimate(returns, how),
                mean=stats.mean_estimate(returns, how),
                win_rate=summary.get("final_win_rate_mean"),
                greedy_mean=_optional_mean(summary, "final_returns_greedy"),
                sampled_mean=_optional_mean(summary, "final_returns_sampled"),
                eval_mode=summary.get("eval_mode"),
            )
        )
    order = {m: i for i, m in enumerate(method_order([c.method for c in cells]))}
    return sorted(cells, key=lambda c: (c.task, order[c.method]))


def curves(group: Group, metric: str, how: stats.Bootstrap = stats.DEFAULT) -> list[Curve]:
    """Every run's ``metric`` over training, IQM over its seeds with a 95% bootstrap band.

    A run that stopped early (or logs the metric at fewer points) ends where its records end.
    """
    result = []
    for run in group.runs:
        steps, values = run.metric(metric)
        if steps.size == 0:
            continue
        estimates = [stats.iqm_estimate(v, how) for v in values]
        low = np.array([e.low for e in estimates])
        high = np.array([e.high for e in estimates])
        iqm = np.array([e.point for e in estimates])
        result.append(Curve(run.method, task_label(run), steps, iqm, low, high, run.complete))
    return result


class CurveArea(NamedTuple):
    """A run's area under its learning curve, and relative to the reference method's."""

    method: str
    task: str
    area: float
    """Mean over evaluation points (step 0 included) of the seeds' mean evaluation return."""
    relative: float | None
    """``area`` / the reference method's on the same task; None without a reference run."""


AREA_REFERENCE = "fups"
"""The method curve areas are divided by (docs/experiments/protocol.md)."""


def run_area(run: Run) -> float | None:
    """A run's area under its learning curve; None when incomplete or never evaluated.

    The mean over its evaluation points (step 0 included) of the seeds' mean ``eval_return``.
    """
    steps, values = run.metric("eval_return")
    if not run.complete or not steps.size:
        return None
    return float(np.mean([np.mean(v) for v in values]))


def curve_areas(group: Group, reference: str = AREA_REFERENCE) -> list[CurveArea]:
    """Area under every complete run's evaluation curve, and relative to the reference's.

    Area = mean over the run's evaluation points of the seeds' mean ``eval_return`` (points are
    evenly spaced, so this is the trapezoid-free area per step). ``relative`` divides it by the
    ``reference`` method's area on the same task (None when that run is missing or its area is
    not positive).
    """
    areas = {}
    for run in group.runs:
        area = run_area(run)
        if area is not None:
            areas[(run.method, task_label(run))] = area
    result = []
    for (method, task), area in areas.items():
        base = areas.get((reference, task))
        relative = area / base if base is not None and base > 0 else None
        result.append(CurveArea(method, task, area, relative))
    order = {m: i for i, m in enumerate(method_order([a.method for a in result]))}
    return sorted(result, key=lambda a: (a.task, order[a.method]))


def against_optimizer_steps(curve_list: Sequence[Curve], group: Group) -> list[Curve]:
    """The same curves with optimiser steps (``train/optimizer_steps``) as their x.

    Each run maps its evaluation points' environment steps to the optimiser steps taken by
    then (``Run.optimizer_steps``); curves of runs without that mapping are left out.
    """
    by_run = {(run.method, task_label(run)): run.optimizer_steps() for run in group.runs}
    result = []
    for curve in curve_list:
        table = by_run.get((curve.method, curve.task), {})
        if all(int(s) in table for s in curve.steps):
            x = np.array([table[int(s)] for s in curve.steps], dtype=np.float64)
            result.append(curve._replace(steps=x))
    return result


def last_points(curve_list: Sequence[Curve]) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(method, task) -> (IQM, low, high) at each curve's last evaluation point."""
    return {
        (c.method, c.task): (float(c.iqm[-1]), float(c.low[-1]), float(c.high[-1]))
        for c in curve_list
    }


def random_returns(runs: Sequence[Run]) -> dict[str, float]:
    """Task -> mean return of the untrained policies: every run's and seed's step-0 evaluation."""
    pooled: dict[str, list[float]] = {}
    for run in runs:
        pooled.setdefault(task_label(run), []).extend(run.initial_returns().tolist())
    return {task: float(np.mean(v)) if v else float("nan") for task, v in pooled.items()}


def normalisations(cells: Sequence[Cell], random: dict[str, float]) -> list[Normalisation]:
    """Per task: the untrained policy's mean return and the best method's mean final return."""
    result = []
    for task in sorted({c.task for c in cells}):
        best = max((c for c in cells if c.task == task), key=lambda c: c.mean.point)
        result.append(
            Normalisation(task, random.get(task, float("nan")), best.mean.point, best.method)
        )
    return result


def aggregate(
    cells: Sequence[Cell], scales: Sequence[Normalisation], how: stats.Bootstrap = stats.DEFAULT
) -> list[AggregateRow]:
    """Per method: IQM, mean, median and optimality gap of its normalised final returns.

    Over the usable tasks; the intervals are the stratified bootstrap's, with one stratum per
    task (its seeds), as rliable's ``get_interval_estimates``.
    """
    usable = {n.task: n for n in scales if n.usable}
    rows = []
    for method in method_order([c.method for c in cells]):
        strata = tuple(
            stats.normalise(c.returns, usable[c.task].random, usable[c.task].best)
            for c in cells
            if c.method == method and c.task in usable
        )
        if not strata:
            continue
        estimates = stats.aggregate_estimates(strata, how)
        runs = sum(s.size for s in strata)
        rows.append(AggregateRow(method, len(strata), runs, estimates, strata))
    return rows


PROFILE_POINTS = 101
"""Thresholds of a performance profile, evenly spaced."""


def profiles(
    rows: Sequence[AggregateRow], how: stats.Bootstrap = stats.DEFAULT
) -> list[ProfileRow]:
    """Every method's performance profile on one grid of thresholds (normalised returns).

    The grid runs from min(0, lowest score) to max(1, highest score) over every method's runs,
    so all profiles of a group share their x axis and reach 0.
    """
    if not rows:
        return []
    pooled = np.concatenate([s for row in rows for s in row.strata])
    taus = np.linspace(min(0.0, pooled.min()), max(1.0, pooled.max()), PROFILE_POINTS)
    return [ProfileRow(row.method, stats.profile_estimate(row.strata, taus, how)) for row in rows]


def improvements(cells: Sequence[Cell], how: stats.Bootstrap = stats.DEFAULT) -> list[Improvement]:
    """P(Prism > Y) for every other method Y, over the tasks both have (empty without Prism)."""
    prism = {c.task: c.returns for c in cells if c.method == PRISM}
    result = []
    for baseline in method_order([c.method for c in cells]):
        if baseline == PRISM:
            continue
        theirs = {c.task: c.returns for c in cells if c.method == baseline}
        tasks = [t for t in sorted(prism) if t in theirs]
        if not tasks:
            continue
        x, y = [prism[t] for t in tasks], [theirs[t] for t in tasks]
        estimate = stats.improvement_estimate(x, y, how)
        result.append(Improvement(baseline, len(tasks), estimate))
    return result


def retentions(
    full: Sequence[Cell], half: Sequence[Cell], random: dict[str, float]
) -> list[Retention]:
    """Per method, the fraction of its Full-budget return kept at the Half budget.

    Measured above the untrained policy, per task, then averaged over the tasks where the Full
    return beat the untrained policy:  (IQM_half − random) / (IQM_full − random).
    """
    full_iqm = {(c.method, c.task): c.iqm.point for c in full}
    result = []
    for method in method_order([c.method for c in half]):
        per_task = {}
        for cell in (c for c in half if c.method == method):
            base = random.get(cell.task, float("nan"))
            reference = full_iqm.get((method, cell.task), float("nan")) - base
            # A Full return at or below the untrained policy's leaves nothing to keep.
            if np.isfinite(reference) and reference > 0:
                per_task[cell.task] = (cell.iqm.point - base) / reference
        mean = float(np.mean(list(per_task.values()))) if per_task else float("nan")
        result.append(Retention(method, per_task, mean))
    return result


def resource_rows(strategies: Sequence[str], agent_counts: Sequence[int]) -> list[Resources]:
    """Figure 5's rows (``resources.Resources``) for ``strategies`` at each N.

    The network is ``prism-marl resources``'s default (``resources.NetworkShape()``: the
    lbf:8x8-2p-2f-coop MLP, 64-64); FLOPs are not counted (the figure does not show them).
    """
    from prism_marl.resources import NetworkShape, measure
    from prism_marl.sharing import STRATEGIES

    shape = NetworkShape()
    return [
        measure(STRATEGIES[name](), shape, n, with_flops=False)
        for name in strategies
        if name in STRATEGIES
        for n in agent_counts
    ]


__all__ = [
    "PRISM",
    "PROFILE_POINTS",
    "AggregateRow",
    "Cell",
    "Curve",
    "Group",
    "Improvement",
    "Normalisation",
    "ProfileRow",
    "Retention",
    "aggregate",
    "curves",
    "final_cells",
    "improvements",
    "last_points",
    "make_groups",
    "method_order",
    "normalisations",
    "profiles",
    "random_returns",
    "resource_rows",
    "retentions",
    "task_label",
]
