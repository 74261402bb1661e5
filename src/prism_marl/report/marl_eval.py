"""One marl-eval file for many runs: ``prism-marl report RESULTS_DIR ... --marl-eval FILE``.

marl-eval (Gorsane et al., "Towards a Standardised Performance Evaluation Protocol for
Cooperative MARL", NeurIPS 2022; the ``id-marl-eval`` package) reads one JSON file::

    {env: {task: {algorithm: {"run_<i>": {
        "step_<k>": {"step_count": <env steps>, "<metric>": [one value per episode], ...},
        "absolute_metrics": {"<metric>": [one value per episode of the best policy]},
    }}}}}

Every finished run writes that tree for its own seeds (``marl_eval.json``, ``run.Trainer``);
this module merges the runs of results directories into one. A run's algorithm is its backbone
and method (``mappo_prism``), with its budget where it has one (``mappo_prism_half``) and its
run id where two runs of the inputs would share the name. Runs without ``marl_eval.json``
(unfinished ones) are left out. marl-eval expects every run of an environment to share its
evaluation steps; runs of different lengths are written as they are (decision 0043).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from prism_marl.errors import ConfigError
from prism_marl.report.load import Run, Source
from prism_marl.results import write_json

RUN_FILE = "marl_eval.json"
ABSOLUTE = "absolute_metrics"


class Merged(NamedTuple):
    """The merged tree and what went into it."""

    data: dict[str, Any]
    runs: int
    """Run directories merged."""
    seeds: int
    """``run_<i>`` entries written (one per seed)."""


def algorithm_name(run: Run) -> str:
    """``<backbone>_<method>``, and ``_<budget>`` for a budget sweep's run."""
    name = f"{run.backbone}_{run.method}"
    return name if run.budget is None else f"{name}_{run.budget}"


def _read(run: Run) -> dict[str, Any] | None:
    path = run.path / RUN_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"RESULTS_DIR: cannot read {path} ({error})") from None


def merge(sources: Sequence[Source]) -> Merged:
    """Every complete run's ``marl_eval.json`` under one env -> task -> algorithm tree."""
    found: list[tuple[Run, str, str, dict[str, Any]]] = []
    for run in (r for source in sources for r in source.runs if r.complete):
        data = _read(run)
        if data is None:
            continue
        for env, tasks in data.items():
            for task, algorithms in tasks.items():
                for seeds in algorithms.values():
                    found.append((run, env, task, seeds))
    names = [(env, task, algorithm_name(run)) for run, env, task, _ in found]
    merged: dict[str, Any] = {}
    for (run, env, task, seeds), key in zip(found, names, strict=True):
        algorithm = key[2] if names.count(key) == 1 else f"{key[2]} [{run.run_id}]"
        merged.setdefault(env, {}).setdefault(task, {})[algorithm] = seeds
    count = sum(len(seeds) for _, _, _, seeds in found)
    return Merged(merged, len({run.path for run, *_ in found}), count)


def check_file(text: str) -> Path:
    """``--marl-eval FILE`` as a file that can be written; ``ConfigError`` if not."""
    path = Path(text)
    if path.is_dir():
        raise ConfigError(f"--marl-eval: {text} is a directory")
    existing = path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--marl-eval: cannot create {text}: {existing} is not a directory")
    return path


def write_marl_eval(sources: Sequence[Source], path: Path) -> Merged:
    """Merge ``sources``' runs and write the file atomically; ``ConfigError`` without any."""
    merged = merge(sources)
    if not merged.runs:
        raise ConfigError(
            f"--marl-eval: no finished run with {RUN_FILE} in "
            + ", ".join(str(source.path) for source in sources)
        )
    try:
        write_json(path, merged.data)
    except OSError as error:
        raise ConfigError(f"--marl-eval: cannot write {path} ({error.strerror or error})") from None
    return merged


__all__ = [
    "ABSOLUTE",
    "RUN_FILE",
    "Merged",
    "algorithm_name",
    "check_file",
    "merge",
    "write_marl_eval",
]
