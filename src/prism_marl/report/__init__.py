"""``prism-marl report``: report.md and its figures from results directories only.

``load`` reads sweeps' results directories and run directories into frozen records,
``aggregate`` computes the numbers with ``stats`` (IQM, stratified bootstrap, probability of
improvement), ``figures`` draws the PNGs and ``markdown`` writes the text. ``write_report``
runs them in that order: every input is read and the output directory checked before anything
is written.

Per experiment (and budget): learning curves per task (Figures 2 and 3), the final-return
table, the aggregate over tasks, the ablation table (experiment ``ablations``) and the
behavioural-diversity panel; then Figure 4 for experiments with budgets, Figure 5, and every
missing or unfinished run.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from pathlib import Path

from prism_marl.errors import ConfigError
from prism_marl.report import aggregate, markdown, stats
from prism_marl.report.aggregate import Group
from prism_marl.report.load import Source, load_sources
from prism_marl.results import write_atomic

# The figure modules (matplotlib) are imported inside the functions that draw, so that building
# the CLI's parser, which imports this package for its defaults, stays light.

REPORT_FILE = "report.md"
DEFAULT_AGENT_COUNTS = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
SND = "eval/snd"
PRISM_METRICS = (
    ("prism/mask_distance", "mask distance D (mean over layers)"),
    ("prism/effective_rank", "effective rank of the masked spectra"),
)


def slug(text: str) -> str:
    """A file-name-safe form of ``text``."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-")


def check_output(text: str) -> Path:
    """``--out`` as a directory that exists or can be made and written; ``ConfigError`` if not.

    Checks only, creates nothing: the report writes nothing until every input has been read.
    """
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out: {text} exists and is not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--out: cannot create {text}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--out: cannot write to {text}: {existing} is not writable")
    return path


def write_report(
    inputs: Sequence[str],
    out: str,
    *,
    command: str,
    resamples: int = stats.RESAMPLES,
    agent_counts: Sequence[int] = DEFAULT_AGENT_COUNTS,
) -> Path:
    """Read ``inputs`` (RESULTS_DIR arguments) and write ``out/report.md`` and its PNGs.

    ``command`` is printed at the top of the report as the command that made it. Returns the
    report's path. Bad input (a missing directory, one without runs, an unwritable ``out``) is a
    ``ConfigError`` raised before anything is written.
    """
    sources = load_sources(inputs)
    out_dir = check_output(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out: cannot create {out} ({error.strerror or error})") from None
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    groups = aggregate.make_groups(sources)
    parts = [
        markdown.header(sources, command, when),
        markdown.missing_runs([run for source in sources for run in source.runs]),
        markdown.how_to_read(resamples),
    ]
    parts += [_group_section(group, out_dir, resamples) for group in groups]
    parts += _budget_sections(groups, out_dir, resamples)
    parts.append(_resources_section(sources, out_dir, agent_counts))
    path = out_dir / REPORT_FILE
    write_atomic(path, "\n\n".join(parts) + "\n")
    return path


def _group_section(group: Group, out_dir: Path, resamples: int) -> str:
    """Curves, final returns, aggregate, ablations and diversity of one group."""
    from prism_marl.report.figures import plot_curves

    name = slug(group.name)
    complete = sum(run.complete for run in group.runs)
    parts = [f"## {group.name}", f"{len(group.runs)} runs, {complete} complete."]
    returns = aggregate.curves(group, "eval_return", resamples)
    if returns:
        plot_curves(returns, out_dir / f"{name}-curves.png", ylabel="evaluation return (IQM)")
        parts += [
            "### Learning curves",
            markdown.image(f"{name}-curves.png", f"{group.name} learning curves"),
            "Evaluation return against environment steps per seed: IQM over seeds at each "
            "evaluation point, shaded by its 95% stratified-bootstrap band; dashed: runs that "
            "did not finish, drawn to their last evaluation point.",
        ]
        by_updates = aggregate.against_optimizer_steps(returns, group)
        if by_updates:
            plot_curves(
                by_updates,
                out_dir / f"{name}-curves-optimizer-steps.png",
                ylabel="evaluation return (IQM)",
                xlabel="optimiser steps (critic steps for MATD3)",
            )
            parts += [
                markdown.image(
                    f"{name}-curves-optimizer-steps.png", f"{group.name} against optimiser steps"
                ),
                "The same curves against the optimiser steps taken by each evaluation point "
                "(`train/optimizer_steps`): how far each method gets per gradient step.",
            ]
    cells = aggregate.final_cells(group, resamples)
    parts.append("### Final returns")
    parts.append(markdown.final_table(cells) if cells else "No complete run in this group.")
    if cells:
        scales = aggregate.normalisations(cells, aggregate.random_returns(group.runs))
        parts.append(
            markdown.aggregate_section(
                scales,
                aggregate.aggregate(cells, scales, resamples),
                aggregate.improvements(cells, resamples),
            )
        )
    areas = aggregate.curve_areas(group)
    if areas:
        parts += [
            "### Area under the learning curve",
            "Mean over the evaluation points (step 0 included) of the seeds' mean evaluation "
            f"return; in brackets, divided by {aggregate.AREA_REFERENCE}'s on the same task. "
            "The last column is the tuning protocol's score (docs/experiments/protocol.md).",
            markdown.area_table(areas, aggregate.AREA_REFERENCE),
        ]
    if group.experiment == "ablations" and cells:
        parts += [
            "### Ablations",
            "Final return per Prism setting and task: IQM over seeds [95% CI].",
            markdown.pivot({(c.method, c.task): c.iqm for c in cells}),
        ]
    parts.append(_diversity(group, out_dir, resamples))
    return "\n\n".join(parts)


def _diversity(group: Group, out_dir: Path, resamples: int) -> str:
    """SND over training and at the end, Prism's mask metrics, and the final masks."""
    from prism_marl.analysis.figures import plot_agent_masks
    from prism_marl.report.figures import plot_curves

    name = slug(group.name)
    parts = ["### Behavioural diversity"]
    snd = aggregate.curves(group, SND, resamples)
    if snd:
        plot_curves(snd, out_dir / f"{name}-snd.png", ylabel="SND (IQM over seeds)")
        parts += [
            markdown.image(f"{name}-snd.png", f"{group.name} SND"),
            "`eval/snd` (system neural diversity, decision 0019) over training: IQM over "
            "seeds, 95% band. At the last evaluation point of the complete runs, IQM [95% CI]:",
            markdown.pivot(aggregate.last_points([c for c in snd if c.complete])),
        ]
    else:
        parts.append(
            "`eval/snd` is not logged by these runs (not defined on MaBrax, whose agents "
            "observe different limbs, or turned off with `--diversity-episodes 0`)."
        )
    for metric, label in PRISM_METRICS:
        prism = aggregate.curves(group, metric, resamples)
        if prism:
            figure = f"{name}-{slug(metric)}.png"
            plot_curves(prism, out_dir / figure, ylabel=label)
            parts += [f"`{metric}` over training (IQM over seeds):", markdown.image(figure, label)]
    masked = [run for run in group.runs if run.masks]
    if masked:
        parts.append("Final masks of seed 0, agents (rows) × singular values, per layer:")
    for run in masked:
        figure = f"masks-{slug(run.run_id)}.png"
        plot_agent_masks(
            {layer: seeds[0] for layer, seeds in (run.masks or {}).items()}, out_dir / figure
        )
        parts.append(
            f"{run.method} on {aggregate.task_label(run)}:\n\n{markdown.image(figure, run.run_id)}"
        )
    return "\n\n".join(parts)


def _budget_sections(groups: Sequence[Group], out_dir: Path, resamples: int) -> list[str]:
    """Figure 4 for each experiment whose runs have Full and Half budgets."""
    from prism_marl.report.figures import plot_budgets

    sections = []
    for full in (g for g in groups if g.budget == "full"):
        half = next(
            (
                g
                for g in groups
                if g.budget == "half" and (g.experiment, g.scale) == (full.experiment, full.scale)
            ),
            None,
        )
        if half is None:
            continue
        name = full.experiment if full.scale is None else f"{full.experiment}-{full.scale}"
        full_cells = aggregate.final_cells(full, resamples)
        half_cells = aggregate.final_cells(half, resamples)
        random = aggregate.random_returns([*full.runs, *half.runs])
        figure = f"{slug(name)}-budgets.png"
        plot_budgets(full_cells, half_cells, out_dir / figure)
        cells = [("full", c) for c in full_cells] + [("half", c) for c in half_cells]
        cells.sort(key=lambda item: (item[1].task, item[1].method, item[0]))
        retained = aggregate.retentions(full_cells, half_cells, random)
        sections.append(markdown.budget_section(name, figure, cells, retained))
    return sections


def _resources_section(
    sources: Sequence[Source], out_dir: Path, agent_counts: Sequence[int]
) -> str:
    """Figure 5 for the strategies the runs used."""
    from prism_marl.analysis.figures import plot_resources

    strategies = aggregate.method_order([r.sharing for s in sources for r in s.runs])
    rows = aggregate.resource_rows(strategies, agent_counts)
    if not rows:
        return "## Figure 5: resources against the number of agents\n\nNo known strategy."
    plot_resources(rows, out_dir / "resources.png")
    return markdown.resources_section("resources.png", rows, agent_counts)


__all__ = ["DEFAULT_AGENT_COUNTS", "REPORT_FILE", "check_output", "write_report"]
