"""Markdown for report.md: tables and the text of each section, from computed numbers.

Nothing here computes a statistic; every number arrives from ``report.aggregate``. Numbers are
printed with four significant digits (``number``), so a reader can recompute them from the
results files to that precision. Every table names its statistic and its intervals' bootstrap
(``stats.Bootstrap``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from prism_marl.report import stats
from prism_marl.report.aggregate import (
    PRISM,
    AggregateRow,
    Cell,
    Improvement,
    Normalisation,
    Retention,
    method_order,
)
from prism_marl.report.load import Run, Source
from prism_marl.report.stats import AGGREGATES, Bootstrap

MISSING = "–"


def number(value: float | None) -> str:
    """A value to four significant digits; a dash for none or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.4g}"


def count(value: float | None) -> str:
    """A count with thousands separators; a dash for none."""
    return MISSING if value is None else f"{int(value):,}"


def interval(low: float, high: float) -> str:
    """``[low, high]``."""
    return f"[{number(low)}, {number(high)}]"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells are printed with ``str``."""

    def line(cells: Iterable[Any]) -> str:
        # A "|" inside a cell (mabrax:humanoid_9|8) would end the cell.
        return (
            "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
        )

    return "\n".join([line(headers), "|" + "---|" * len(headers), *map(line, rows)])


def image(path: str, alt: str) -> str:
    """An image link relative to report.md."""
    return f"![{alt}]({path})"


def header(sources: Sequence[Source], command: str, when: str) -> str:
    """The title, the command, when, and the inputs read."""
    rows = []
    for source in sources:
        complete = sum(run.complete for run in source.runs)
        scale = f" ({source.scale})" if source.scale else ""
        rows.append(
            [
                f"`{source.path}`",
                source.kind,
                f"{source.experiment}{scale}",
                len(source.runs),
                complete,
            ]
        )
    return "\n\n".join(
        [
            "# prism-marl report",
            f"Generated {when} by\n\n```sh\n{command}\n```",
            "Inputs: only results files were read, from these directories: `index.jsonl` and "
            "`sweep.json` of a sweep, and each run's `config.json`, `metrics.jsonl`, "
            "`summary.json` and `agent_masks.json`.",
            table(["input", "kind", "experiment", "runs", "complete"], rows),
        ]
    )


def how_to_read(how: Bootstrap) -> str:
    """What the statistics are (the equations are in ``report/stats.py``)."""
    return "\n\n".join(
        [
            "## How the numbers are computed",
            "The statistics are rliable's (Agarwal et al., 2021), computed by "
            "`prism_marl.report.stats`, which the test suite checks against rliable 1.2.0 on the "
            "same arrays (decision 0041); `summary.json` uses the same code.\n\n"
            "- **Final return** of a seed: `summary.json`'s `final_returns`, the mean return "
            "of the final evaluation episodes of that seed's policy.\n"
            "- **IQM**: interquartile mean, the 25% trimmed mean (`scipy.stats.trim_mean(x, "
            "0.25)`, rliable's `aggregate_iqm`): floor(n/4) runs are cut from each end, so for "
            "fewer than 4 seeds it is the plain mean. Over tasks, the runs of all tasks are "
            "pooled first.\n"
            "- **Mean** and **median** over tasks: of the tasks' mean normalised returns; "
            "**optimality gap**: the mean over all runs of max(1 − normalised return, 0), lower "
            "is better (rliable's `aggregate_optimality_gap`, γ = 1).\n"
            f"- **95% CI**: the percentile interval of the statistic over {how.resamples:,} "
            "stratified bootstrap resamples (seeds resampled with replacement within each "
            f"task; rliable's `StratifiedBootstrap`), seed {how.seed}.\n"
            "- **Normalised return**: per task, (return − random) / (best − random), where "
            "*random* is the untrained policy's return — the step-0 evaluation in "
            "`metrics.jsonl`, averaged over every run and seed of the task — and *best* is "
            "the best method's mean final return on the task.\n"
            "- **P(prism > Y)**: the probability that a seed of Prism ends with a higher "
            "return than a seed of Y on the same task (Mann-Whitney U / (m·n), ties count "
            "one half), averaged over the tasks both ran; its interval resamples each "
            "method's seeds separately within each task.\n"
            "- **Performance profile**: the fraction of runs (all tasks pooled) whose "
            "normalised final return exceeds τ, for each τ, with a pointwise 95% band.",
        ]
    )


def missing_runs(runs: Sequence[Run]) -> str:
    """Every run that is not finished with a summary, with its status and last error."""
    lines = ["## Missing or unfinished runs"]
    unfinished = [run for run in runs if not run.complete]
    if not unfinished:
        lines.append("None: every run read is finished and has its `summary.json`.")
        return "\n\n".join(lines)
    lines.append(
        f"{len(unfinished)} run(s) have no final returns; they are left out of the tables, and "
        "their curves (dashed) end at their last evaluation point."
    )
    rows = []
    for run in unfinished:
        points = len({r.get("env_steps") for r in run.records})
        rows.append(
            [
                f"`{run.run_id}`",
                run.experiment,
                run.status,
                count(run.attempts),
                count(run.exit_code),
                run.last_error or MISSING,
                points,
            ]
        )
    headers = ["run", "experiment", "status", "attempts", "exit code", "last error"]
    lines.append(table([*headers, "evaluation points"], rows))
    return "\n\n".join(lines)


def final_table(cells: Sequence[Cell], how: Bootstrap) -> str:
    """Method × task: IQM and mean with intervals, seeds, and the optional columns present."""
    wins = any(c.win_rate is not None for c in cells)
    modes = any(c.greedy_mean is not None or c.sampled_mean is not None for c in cells)
    ci = f"95% CI ({how.resamples:,} resamples)"
    headers = ["method", "task", "IQM", ci, "mean", ci, "seeds"]
    headers += ["win rate"] * wins
    headers += ["eval mode", "greedy mean", "sampled mean"] * modes
    rows = []
    for c in cells:
        row = [
            c.method,
            c.task,
            number(c.iqm.point),
            interval(c.iqm.low, c.iqm.high),
            number(c.mean.point),
            interval(c.mean.low, c.mean.high),
            len(c.returns),
        ]
        row += [number(c.win_rate)] * wins
        row += [c.eval_mode or MISSING, number(c.greedy_mean), number(c.sampled_mean)] * modes
        rows.append(row)
    return table(headers, rows)


def area_table(areas: Sequence[Any], reference: str) -> str:
    """Methods × tasks: area under the curve (relative to ``reference``), and the mean relative."""
    methods = method_order([a.method for a in areas])
    tasks = sorted({a.task for a in areas})
    cells = {(a.method, a.task): a for a in areas}
    rows = []
    for method in methods:
        row: list[Any] = [method]
        relatives = []
        for task in tasks:
            area = cells.get((method, task))
            if area is None:
                row.append(MISSING)
                continue
            if area.relative is not None:
                relatives.append(area.relative)
            relative = MISSING if area.relative is None else number(area.relative)
            row.append(f"{number(area.area)} ({relative})")
        complete = len(relatives) == len(tasks)
        row.append(number(float(sum(relatives) / len(relatives))) if complete else MISSING)
        rows.append(row)
    return table(["method", *tasks, f"mean relative to {reference}"], rows)


def tuning_table(selection: Any) -> str:
    """Methods × settings: relative areas per task, the protocol's score, the selected setting.

    ``selection`` is a ``report.tuning.Selection``; areas are relative to its reference method
    at the preset setting.
    """
    rows = []
    for score in selection.scores:
        cells = [number(score.relative.get(task)) for task in selection.tasks]
        changes = selection.changes.get(score.method, {}) if score.selected else {}
        mark = "✓" + (f" ({_fields(changes)})" if changes else "") if score.selected else ""
        rows.append([score.method, score.setting, *cells, number(score.score), mark])
    return table(["method", "setting", *selection.tasks, "score", "selected"], rows)


def _fields(fields: dict[str, Any]) -> str:
    return ", ".join(f"{key} = {value}" for key, value in sorted(fields.items()))


def pivot(values: dict[tuple[str, str], stats.Estimate | tuple[float, float, float]]) -> str:
    """Methods (rows) × tasks (columns), each cell ``IQM [low, high]``."""
    methods = method_order([m for m, _ in values])
    tasks = sorted({t for _, t in values})
    rows = []
    for method in methods:
        row = [method]
        for task in tasks:
            value = values.get((method, task))
            row.append(MISSING if value is None else f"{number(value[0])} {interval(*value[1:])}")
        rows.append(row)
    return table(["method", *tasks], rows)


def aggregate_section(
    scales: Sequence[Normalisation],
    rows: Sequence[AggregateRow],
    improvements: Sequence[Improvement],
    how: Bootstrap,
    figures: Sequence[str] = (),
) -> str:
    """The normalisation per task, rliable's aggregates per method, its figures, P(Prism > Y).

    ``figures`` are the aggregate figure and the performance profiles, relative to report.md.
    """
    parts = ["### Aggregate over tasks"]
    parts.append(
        table(
            ["task", "random (untrained, step 0)", "best method", "best mean", "used"],
            [
                [
                    n.task,
                    number(n.random),
                    n.best_method,
                    number(n.best),
                    "yes" if n.usable else "no: no method beat the untrained policy",
                ]
                for n in scales
            ],
        )
    )
    if rows:
        parts.append(
            "Normalised final returns over the usable tasks, each statistic with its "
            f"{how.describe()} (one stratum per task):"
        )
        headers = ["method", "tasks", "runs"]
        for name in AGGREGATES:
            headers += [name, "95% CI"]
        cells = []
        for r in rows:
            row: list[Any] = [r.method, r.tasks, r.runs]
            for name in AGGREGATES:
                estimate = r.estimates[name]
                row += [number(estimate.point), interval(estimate.low, estimate.high)]
            cells.append(row)
        parts.append(table(headers, cells))
        parts += [image(figure, figure) for figure in figures]
        if figures:
            parts.append(
                "Above: rliable's aggregate metrics (bars span the 95% CI, ticks mark the point "
                "estimate) and the performance profiles (fraction of runs whose normalised "
                f"final return exceeds τ; shaded: pointwise 95% CI), {how.resamples:,} "
                "stratified-bootstrap resamples each."
            )
    else:
        parts.append("No task has a usable normalisation.")
    if improvements:
        parts.append(
            table(
                ["baseline Y", "tasks", f"P({PRISM} > Y)", f"95% CI ({how.resamples:,} resamples)"],
                [
                    [
                        i.baseline,
                        i.tasks,
                        number(i.estimate.point),
                        interval(i.estimate.low, i.estimate.high),
                    ]
                    for i in improvements
                ],
            )
        )
    else:
        parts.append(f"No probability of improvement: no method named `{PRISM}` with a baseline.")
    return "\n\n".join(parts)


def budget_section(
    name: str,
    figure: str,
    cells: Sequence[tuple[str, Cell]],
    retained: Sequence[Retention],
    how: Bootstrap,
) -> str:
    """Figure 4: the bars, the per-budget table (width, actor parameters) and the retention."""
    rows = []
    for budget, c in cells:
        actor = (c.run.summary or {}).get("actor_parameters")
        rows.append(
            [
                c.method,
                c.task,
                budget,
                count(c.run.width),
                count(actor),
                number(c.iqm.point),
                interval(c.iqm.low, c.iqm.high),
                number(c.mean.point),
                len(c.returns),
            ]
        )
    kept = [
        [
            r.method,
            number(r.mean),
            ", ".join(f"{task}: {number(v)}" for task, v in r.per_task.items()) or MISSING,
        ]
        for r in retained
    ]
    ci = f"95% CI ({how.resamples:,} resamples)"
    headers = ["method", "task", "budget", "width", "actor parameters", "IQM", ci, "mean"]
    return "\n\n".join(
        [
            f"## Figure 4: {name}, Full vs Half parameter budget",
            image(figure, f"{name} budgets"),
            "Bars: IQM over seeds of the final return; error bars: its "
            f"{how.describe()}. Width: the hidden width the width solver chose for the budget.",
            table([*headers, "seeds"], rows),
            "Fraction of the Full-budget return kept at the Half budget, above the untrained "
            "policy: (IQM_half − random) / (IQM_full − random) per task, then the mean over "
            "tasks (tasks whose Full return did not beat the untrained policy are left out).",
            table(["method", "kept at Half (mean over tasks)", "per task"], kept),
        ]
    )


def resources_section(figure: str, rows: Sequence[Any], agent_counts: Sequence[int]) -> str:
    """Figure 5 and its numbers: parameters, additional resource and overhead per N."""
    strategies = list(dict.fromkeys(r.strategy for r in rows))
    by_key = {(r.strategy, r.num_agents): r for r in rows}

    def cells(attribute: str, show: Any) -> list[list[Any]]:
        return [
            [s] + [show(getattr(by_key[(s, n)], attribute)) for n in agent_counts]
            for s in strategies
        ]

    columns = ["strategy", *[f"N={n}" for n in agent_counts]]
    command = (
        f"prism-marl resources --strategies {' '.join(strategies)} "
        f"--agents {' '.join(map(str, agent_counts))} --plot resources.png"
    )
    return "\n\n".join(
        [
            "## Figure 5: resources against the number of agents",
            image(figure, "resources"),
            "Computed, not read from the results, by `prism_marl.resources` for the strategies "
            "of the runs above, on `prism-marl resources`' default network (the "
            f"lbf:8x8-2p-2f-coop MLP, 64-64); `{command}` draws the same figure. Normalised "
            "overhead = additional / (parameters + additional).",
            "Trainable parameters:",
            table(columns, cells("parameters", count)),
            "Additional resource (grows with N):",
            table(columns, cells("additional", count)),
            "Normalised overhead:",
            table(columns, cells("normalized_overhead", number)),
        ]
    )


__all__ = [
    "aggregate_section",
    "budget_section",
    "count",
    "final_table",
    "header",
    "how_to_read",
    "image",
    "interval",
    "missing_runs",
    "number",
    "pivot",
    "resources_section",
    "table",
]
