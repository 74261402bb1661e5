"""The fair protocol's tuning selection (docs/experiments/protocol.md), from results files.

Every (method, setting) of a tuning sweep gets a score: on each task, the area under its
learning curve divided by the reference method's (FuPS) area at the preset setting on that
task; the score is the mean over the tasks. Each method's selected setting is its highest
score, except that a setting within ``TIE_MARGIN`` of the preset's score loses to the preset
(fewer changes win ties). A setting is a backbone of the experiment file; the preset is the
one without changes, named by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from prism_marl.config import to_dict
from prism_marl.report.aggregate import AREA_REFERENCE, Group, method_order, run_area
from prism_marl.report.load import Run

TIE_MARGIN = 0.01
"""A setting must beat the preset's score by more than this to be selected."""


class SettingScore(NamedTuple):
    """One method at one setting: its relative areas per task and the protocol's score."""

    method: str
    setting: str
    relative: dict[str, float]
    """Task -> area / the reference method's area at the preset on that task."""
    score: float | None
    """Mean of ``relative`` over every task of the group; None where a task is missing."""
    selected: bool


class Selection(NamedTuple):
    """The protocol applied to one group: every score and each method's selected setting."""

    preset: str
    reference: str
    tasks: tuple[str, ...]
    settings: tuple[str, ...]
    scores: tuple[SettingScore, ...]
    chosen: dict[str, str | None]
    """Method -> selected setting; None while any of its settings lacks a score."""
    changes: dict[str, dict[str, Any]]
    """Method -> the algorithm fields its selected setting changes from the preset's."""


def select_settings(
    group: Group, preset: str, reference: str = AREA_REFERENCE, margin: float = TIE_MARGIN
) -> Selection | None:
    """The protocol's scores and selection for ``group``; None if it has no ``preset`` runs.

    A method is selected only once every setting the group holds has a score for it (the
    protocol reads no decision from a partial sweep); ties within ``margin`` go to the preset.
    """
    runs = {(r.method, r.backbone, r.task): r for r in group.runs if r.complete}
    if not any(backbone == preset for _, backbone, _ in runs):
        return None
    tasks = tuple(sorted({r.task for r in group.runs}))
    settings = tuple([preset] + sorted({r.backbone for r in group.runs if r.backbone != preset}))
    areas = {key: run_area(run) for key, run in runs.items()}
    base = {task: areas.get((reference, preset, task)) for task in tasks}
    scores = []
    chosen: dict[str, str | None] = {}
    changes: dict[str, dict[str, Any]] = {}
    for method in method_order([r.method for r in group.runs]):
        mine = []
        for setting in settings:
            relative = {}
            for task in tasks:
                area, denominator = areas.get((method, setting, task)), base[task]
                if area is not None and denominator is not None and denominator > 0:
                    relative[task] = area / denominator
            complete = len(relative) == len(tasks)
            score = sum(relative.values()) / len(tasks) if complete else None
            mine.append(SettingScore(method, setting, relative, score, False))
        pick = _pick(mine, margin)
        chosen[method] = pick
        if pick is not None:
            changes[method] = _algo_changes(runs, method, preset, pick, tasks)
        scores += [s._replace(selected=s.setting == pick) for s in mine]
    return Selection(preset, reference, tasks, settings, tuple(scores), chosen, changes)


def _pick(scores: Sequence[SettingScore], margin: float) -> str | None:
    """The highest score, unless the preset (first) is within ``margin`` of it."""
    if any(s.score is None for s in scores):
        return None
    preset = scores[0]
    best = max(scores, key=lambda s: s.score or 0.0)
    assert best.score is not None and preset.score is not None
    return preset.setting if best.score - preset.score <= margin else best.setting


def _algo_changes(
    runs: Mapping[tuple[str, str, str], Run], method: str, preset: str, pick: str, tasks: Any
) -> dict[str, Any]:
    """Algorithm fields of the picked setting's runs that differ from the preset's runs.

    Read from each run's ``config.json``; a field counts when it differs on every task (so a
    preset's per-family values, which differ between tasks alike, never show up).
    """
    found: dict[str, Any] | None = None
    for task in tasks:
        old, new = (_algo_fields(runs[(method, s, task)]) for s in (preset, pick))
        differing = {k: v for k, v in new.items() if old.get(k) != v}
        found = (
            differing
            if found is None
            else {k: v for k, v in found.items() if differing.get(k) == v}
        )
    return found or {}


def _algo_fields(run: Run) -> dict[str, Any]:
    config = run.config()
    return {} if config is None else dict(to_dict(config)["algo_config"])


def selection_record(selection: Selection) -> dict[str, Any]:
    """``tuning-selection.json``: the rule's inputs and outcome, for experiment files."""
    return {
        "rule": "docs/experiments/protocol.md",
        "preset": selection.preset,
        "reference": selection.reference,
        "margin": TIE_MARGIN,
        "tasks": list(selection.tasks),
        "methods": {
            method: {
                "selected": pick,
                "algo_fields": selection.changes.get(method, {}),
                "scores": {s.setting: s.score for s in selection.scores if s.method == method},
            }
            for method, pick in selection.chosen.items()
        },
    }
