"""``prism-marl report``: report.md and its figures from results directories only.

``load`` reads sweeps' results directories and run directories into frozen records,
``aggregate`` computes the numbers with ``stats`` (rliable's IQM, mean, median, optimality gap,
stratified bootstrap, probability of improvement, performance profiles), ``figures`` draws the
PNGs and ``markdown`` writes the text. ``write_report`` runs them in that order: every input is
read and the output directory checked before anything is written. ``marl_eval`` merges the
runs' ``marl_eval.json`` files into the one file marl-eval's tools read.

Per experiment (and budget): learning curves per task (Figures 2 and 3), the final-return
table, the aggregate over tasks with rliable's aggregate figure and the performance profiles,
the ablation table (experiment ``ablations``) and the behavioural-diversity panel; then Figure 4
for experiments with budgets, Figure 5, and every missing or unfinished run.
"""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

from prism_marl.errors import ConfigError
from prism_marl.report import aggregate, markdown, stats
from prism_marl.report.aggregate import Group
from prism_marl.report.load import Source, load_sources
from prism_marl.results import write_atomic, write_json

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
    tuning_preset: str | None = None,
) -> Path:
    """Read ``inputs`` (RESULTS_DIR arguments) and write ``out/report.md`` and its PNGs.

    ``command`` is printed at the top of the report as the command that made it. Returns the
    report's path. Bad input (a missing directory, one without runs, an unwritable ``out``) is a
    ``ConfigError`` raised before anything is written. With ``tuning_preset`` (a backbone name),
    each group holding it gets the fair protocol's tuning selection (``report.tuning``).
    """
    sources = load_sources(inputs)
    out_dir = check_output(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out: cannot create {out} ({error.strerror or error})") from None
    how = stats.Bootstrap(resamples=resamples)
    groups = aggregate.make_groups(sources)
    parts = [
        markdown.header(sources, command, generated_at()),
        markdown.missing_runs([run for source in sources for run in source.runs]),
        markdown.how_to_read(how),
    ]
    parts += [_group_section(group, out_dir, how) for group in groups]
    if tuning_preset is not None:
        parts += [_tuning_section(group, tuning_preset, out_dir) for group in groups]
    parts += _budget_sections(groups, out_dir, how)
    parts.append(_resources_section(sources, out_dir, agent_counts))
    path = out_dir / REPORT_FILE
    write_atomic(path, "\n\n".join(parts) + "\n")
    return path


def generated_at() -> str:
    """When the report was made: now, or ``$SOURCE_DATE_EPOCH`` (reproducible builds' variable).

    A report regenerated from the same files with the same epoch is the same, byte for byte.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = int(epoch) if epoch and epoch.isdigit() else time.time()
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _band(how: stats.Bootstrap) -> str:
    """The caption of a curve figure's statistic and band."""
    return f"IQM over seeds; shaded: {how.describe()}"


def _group_section(group: Group, out_dir: Path, how: stats.Bootstrap) -> str:
    """Curves, final returns, aggregate, ablations and diversity of one group."""
    from prism_marl.report.figures import plot_curves

    name = slug(group.name)
    complete = sum(run.complete for run in group.runs)
    parts = [f"## {group.name}", f"{len(group.runs)} runs, {complete} complete."]
    returns = aggregate.curves(group, "eval_return", how)
    if returns:
        plot_curves(
            returns,
            out_dir / f"{name}-curves.png",
            ylabel="evaluation return (IQM)",
            note=_band(how),
        )
        parts += [
            "### Learning curves",
            markdown.image(f"{name}-curves.png", f"{group.name} learning curves"),
            "Evaluation return against environment steps per seed: IQM over seeds at each "
            f"evaluation point, shaded by its {how.describe()}; dashed: runs that did not "
            "finish, drawn to their last evaluation point.",
        ]
        by_updates = aggregate.against_optimizer_steps(returns, group)
        if by_updates:
            plot_curves(
                by_updates,
                out_dir / f"{name}-curves-optimizer-steps.png",
                ylabel="evaluation return (IQM)",
                xlabel="optimiser steps (critic steps for MATD3)",
                note=_band(how),
            )
            parts += [
                markdown.image(
                    f"{name}-curves-optimizer-steps.png", f"{group.name} against optimiser steps"
                ),
                "The same curves against the optimiser steps taken by each evaluation point "
                "(`train/optimizer_steps`): how far each method gets per gradient step.",
            ]
    cells = aggregate.final_cells(group, how)
    parts.append("### Final returns")
    if cells:
        parts += [
            "Per method and task, the seeds' final returns: IQM (25% trimmed mean) and mean, "
            f"each with its {how.describe()}.",
            markdown.final_table(cells, how),
        ]
        parts.append(_aggregate(group, cells, out_dir, how))
    else:
        parts.append("No complete run in this group.")
    areas = aggregate.curve_areas(group)
    if areas:
        parts += [
            "### Area under the learning curve",
            "Mean over the evaluation points (step 0 included) of the seeds' mean evaluation "
            f"return; in brackets, divided by {aggregate.AREA_REFERENCE}'s on the same task. "
            "With several settings, `--tuning-preset` gives the tuning protocol's scores.",
            markdown.area_table(areas, aggregate.AREA_REFERENCE),
        ]
    if group.experiment == "ablations" and cells:
        parts += [
            "### Ablations",
            f"Final return per Prism setting and task: IQM over seeds [{how.describe()}].",
            markdown.pivot({(c.method, c.task): c.iqm for c in cells}),
        ]
    parts.append(_diversity(group, out_dir, how))
    return "\n\n".join(parts)


def _tuning_section(group: Group, preset: str, out_dir: Path) -> str:
    """The protocol's scores and selection for one group, and its JSON beside the report."""
    from prism_marl.report.tuning import TIE_MARGIN, select_settings, selection_record

    selection = select_settings(group, preset)
    heading = f"## Tuning selection: {group.name}"
    if selection is None:
        return f"{heading}\n\nNo complete run at the preset setting {preset!r}."
    name = f"{slug(group.name)}-tuning-selection.json"
    write_json(out_dir / name, selection_record(selection))
    return "\n\n".join(
        [
            heading,
            f"The fair protocol's rule (docs/experiments/protocol.md): per task, the area under "
            f"the learning curve divided by {selection.reference}'s at the preset setting "
            f"({preset}); the score is the mean over the tasks; each method's selected setting "
            f"(✓) has the highest score, unless the preset's is within {TIE_MARGIN} of it. "
            f"A method is selected only once every setting has a score. Machine-readable: "
            f"[{name}]({name}).",
            markdown.tuning_table(selection),
        ]
    )


def _aggregate(
    group: Group, cells: list[aggregate.Cell], out_dir: Path, how: stats.Bootstrap
) -> str:
    """The aggregate over tasks: table, rliable's aggregate figure, profiles, P(Prism > Y)."""
    from prism_marl.report.figures import plot_aggregates, plot_profiles

    name = slug(group.name)
    scales = aggregate.normalisations(cells, aggregate.random_returns(group.runs))
    rows = aggregate.aggregate(cells, scales, how)
    figures = []
    if rows:
        figures = [f"{name}-aggregates.png", f"{name}-profiles.png"]
        note = f"normalised final returns; {how.describe()}"
        plot_aggregates(rows, out_dir / figures[0], note=note)
        plot_profiles(aggregate.profiles(rows, how), out_dir / figures[1], note=note)
    improvements = aggregate.improvements(cells, how)
    return markdown.aggregate_section(scales, rows, improvements, how, figures)


def _diversity(group: Group, out_dir: Path, how: stats.Bootstrap) -> str:
    """SND over training and at the end, Prism's mask metrics, and the final masks."""
    from prism_marl.report.figures import plot_curves
    from prism_marl.report.run_figures import plot_agent_masks

    name = slug(group.name)
    parts = ["### Behavioural diversity"]
    snd = aggregate.curves(group, SND, how)
    if snd:
        plot_curves(
            snd, out_dir / f"{name}-snd.png", ylabel="SND (IQM over seeds)", note=_band(how)
        )
        parts += [
            markdown.image(f"{name}-snd.png", f"{group.name} SND"),
            "`eval/snd` (system neural diversity, decision 0019) over training: IQM over "
            f"seeds, shaded by its {how.describe()}. At the last evaluation point of the "
            "complete runs, IQM [95% CI]:",
            markdown.pivot(aggregate.last_points([c for c in snd if c.complete])),
        ]
    else:
        parts.append(
            "`eval/snd` is not logged by these runs (not defined on MaBrax, whose agents "
            "observe different limbs, or turned off with `--diversity-episodes 0`)."
        )
    for metric, label in PRISM_METRICS:
        prism = aggregate.curves(group, metric, how)
        if prism:
            figure = f"{name}-{slug(metric)}.png"
            plot_curves(prism, out_dir / figure, ylabel=label, note=_band(how))
            parts += [
                f"`{metric}` over training (IQM over seeds, shaded by its {how.describe()}):",
                markdown.image(figure, label),
            ]
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


def _budget_sections(groups: Sequence[Group], out_dir: Path, how: stats.Bootstrap) -> list[str]:
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
        full_cells = aggregate.final_cells(full, how)
        half_cells = aggregate.final_cells(half, how)
        random = aggregate.random_returns([*full.runs, *half.runs])
        figure = f"{slug(name)}-budgets.png"
        note = f"IQM over seeds of the final return; error bars: {how.describe()}"
        plot_budgets(full_cells, half_cells, out_dir / figure, note=note)
        cells = [("full", c) for c in full_cells] + [("half", c) for c in half_cells]
        cells.sort(key=lambda item: (item[1].task, item[1].method, item[0]))
        retained = aggregate.retentions(full_cells, half_cells, random)
        sections.append(markdown.budget_section(name, figure, cells, retained, how))
    return sections


def _resources_section(
    sources: Sequence[Source], out_dir: Path, agent_counts: Sequence[int]
) -> str:
    """Figure 5 for the strategies the runs used."""
    from prism_marl.report.run_figures import plot_resources

    strategies = aggregate.method_order([r.sharing for s in sources for r in s.runs])
    rows = aggregate.resource_rows(strategies, agent_counts)
    if not rows:
        return "## Figure 5: resources against the number of agents\n\nNo known strategy."
    plot_resources(rows, out_dir / "resources.png")
    return markdown.resources_section("resources.png", rows, agent_counts)


__all__ = ["DEFAULT_AGENT_COUNTS", "REPORT_FILE", "check_output", "generated_at", "write_report"]
