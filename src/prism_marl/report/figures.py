"""The report's PNG figures (matplotlib, Agg backend): curves, aggregates, profiles, budgets.

Every figure names its statistic and its interval's bootstrap (``note``, printed under it).

Figure 5 and the mask heatmaps are ``run_figures``' ``plot_resources`` and
``plot_agent_masks``, the ones ``prism-marl resources --plot`` and every Prism run draw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from prism_marl.report.aggregate import (  # noqa: E402
    AggregateRow,
    Cell,
    Curve,
    ProfileRow,
    method_order,
)
from prism_marl.report.run_figures import save_figure_atomically  # noqa: E402
from prism_marl.report.stats import AGGREGATES  # noqa: E402


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """One colour per method, Prism's first, the same in every figure of a group."""
    ordered = method_order(methods)
    palette = plt.get_cmap("tab10" if len(ordered) <= 10 else "tab20")
    return {m: palette(i % palette.N) for i, m in enumerate(ordered)}


def _grid(count: int, width: float = 4.6, height: float = 3.4):
    columns = min(3, count)
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(width * columns, height * rows), squeeze=False
    )
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    return figure, list(axes.flat[:count])


def _note(figure: plt.Figure, note: str) -> None:
    """``note`` in small type under the panels: which statistic, which interval."""
    if note:
        figure.text(0.5, -0.01, note, ha="center", va="top", fontsize=8)


def plot_curves(
    curve_list: Sequence[Curve],
    path: str | Path,
    *,
    ylabel: str,
    note: str,
    title: str = "",
    xlabel: str = "environment steps per seed",
) -> None:
    """One panel per task: each method's IQM over seeds against its curves' x (``steps``).

    Shaded: the bootstrap band ``note`` describes. Runs that did not finish are dashed and end
    at their last evaluation point.
    """
    tasks = sorted({c.task for c in curve_list})
    colors = method_colors([c.method for c in curve_list])
    order = list(colors)  # Prism first, as in the tables

    def rank(curve: Curve) -> int:
        return order.index(curve.method)

    figure, axes = _grid(len(tasks))
    for axis, task in zip(axes, tasks, strict=True):
        for curve in sorted((c for c in curve_list if c.task == task), key=rank):
            color = colors[curve.method]
            label = curve.method if curve.complete else f"{curve.method} (unfinished)"
            style = "-" if curve.complete else "--"
            axis.plot(curve.steps, curve.iqm, style, marker="o", ms=2.5, color=color, label=label)
            axis.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.15)
        axis.set_title(task, fontsize=9)
        axis.set_xlabel(xlabel)
        axis.xaxis.set_major_formatter(EngFormatter())  # 300k, not 300000 run together
        axis.set_ylabel(ylabel)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    _note(figure, note)
    save_figure_atomically(figure, path)


def plot_aggregates(rows: Sequence[AggregateRow], path: str | Path, *, note: str) -> None:
    """The aggregate figure of rliable: IQM, median, mean and optimality gap per method.

    One panel per statistic, one horizontal bar per method from its interval's low to high end,
    a tick at the point estimate (normalised final returns; lower is better for the gap).
    """
    names = ["IQM", "median", "mean", "optimality gap"]
    assert set(names) == set(AGGREGATES)
    methods = [row.method for row in rows]
    colors = method_colors(methods)
    figure, axes = plt.subplots(
        1, len(names), figsize=(3.2 * len(names), 0.5 * len(rows) + 1.4), squeeze=False
    )
    for axis, name in zip(axes[0], names, strict=True):
        for position, row in enumerate(rows):
            estimate = row.estimates[name]
            axis.barh(
                position,
                estimate.high - estimate.low,
                left=estimate.low,
                height=0.6,
                color=colors[row.method],
                alpha=0.75,
            )
            axis.vlines(estimate.point, position - 0.3, position + 0.3, color="black", lw=1.5)
        axis.set_yticks(range(len(rows)), methods if axis is axes[0][0] else [])
        axis.invert_yaxis()  # Prism, first in the tables, on top
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("normalised return" + (" (lower is better)" if "gap" in name else ""))
        axis.grid(True, axis="x", alpha=0.3)
    _note(figure, note)
    save_figure_atomically(figure, path)


def plot_profiles(profiles: Sequence[ProfileRow], path: str | Path, *, note: str) -> None:
    """Performance profiles: the fraction of runs above each normalised return tau, per method.

    Shaded: each profile's pointwise band (``note``).
    """
    colors = method_colors([p.method for p in profiles])
    figure, axis = plt.subplots(figsize=(6.0, 4.0))
    for row in profiles:
        profile, color = row.profile, colors[row.method]
        axis.plot(profile.taus, profile.point, color=color, label=row.method)
        axis.fill_between(profile.taus, profile.low, profile.high, color=color, alpha=0.15)
    axis.set_xlabel("normalised return τ")
    axis.set_ylabel("fraction of runs with return > τ")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    _note(figure, note)
    save_figure_atomically(figure, path)


def _bars(cells: Sequence[Cell | None]) -> tuple[list[float], list[list[float]]]:
    """Bar heights (IQM) and error-bar lengths below and above (NaN where a cell is missing)."""
    points = [c.iqm if c is not None else (np.nan, np.nan, np.nan) for c in cells]
    heights = [p[0] for p in points]
    return heights, [[p[0] - p[1] for p in points], [p[2] - p[0] for p in points]]


def plot_budgets(
    full: Sequence[Cell], half: Sequence[Cell], path: str | Path, *, note: str
) -> None:
    """Figure 4: per task, each method's final-return IQM at the Full and Half budgets.

    Error bars: the bootstrap intervals of the IQMs (``note``).
    """
    tasks = sorted({c.task for c in (*full, *half)})
    figure, axes = _grid(len(tasks), width=5.2)
    for axis, task in zip(axes, tasks, strict=True):
        cells = {
            (c.method, budget): c
            for budget, group in (("full", full), ("half", half))
            for c in group
            if c.task == task
        }
        methods = method_order([method for method, _ in cells])
        positions = np.arange(len(methods))
        for offset, budget, shade in ((-0.2, "full", 0.9), (0.2, "half", 0.45)):
            heights, errors = _bars([cells.get((m, budget)) for m in methods])
            axis.bar(
                positions + offset,
                heights,
                0.4,
                yerr=errors,
                capsize=3,
                alpha=shade,
                color="C0" if budget == "full" else "C1",
                label=budget,
            )
        axis.set_xticks(positions, methods, rotation=30, ha="right", fontsize=8)
        axis.set_title(task, fontsize=9)
        axis.set_ylabel("final return (IQM over seeds)")
        axis.grid(True, axis="y", alpha=0.3)
        axis.legend(fontsize=8, title="budget")
    _note(figure, note)
    save_figure_atomically(figure, path)


__all__ = ["method_colors", "plot_aggregates", "plot_budgets", "plot_curves", "plot_profiles"]
