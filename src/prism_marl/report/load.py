"""Reading results directories into frozen records; the report reads nothing else.

An input is one of:

- a sweep's results directory (``prism-marl sweep``): ``index.jsonl`` lists every run with its
  status and origin (method, backbone, task, budget), ``sweep.json`` names the experiment and
  scale, and each run's directory holds its files;
- a directory of run directories (e.g. ``runs/``, from ``prism-marl train``);
- one run directory (``config.json``, ``metrics.jsonl``, ``summary.json``).

A run made by ``prism-marl train`` has no index entry: its method is its sharing strategy, its
backbone its algorithm, its task its environment. A run is complete when the index (if any) says
``finished`` and its ``summary.json`` exists; every other run is kept, with its status and last
error, for the report's "Missing or unfinished runs" section.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prism_marl.config import RunConfig, from_dict
from prism_marl.errors import ConfigError
from prism_marl.results import read_jsonl
from prism_marl.sweep.index import INDEX_FILE, IndexEntry, load_index

FIELD = "RESULTS_DIR"
"""The argument a bad input is reported against."""
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json")
LONE_RUNS = "runs"
"""The experiment name of runs that no sweep made."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One run as its results files (and the sweep index, if any) describe it."""

    run_id: str
    path: Path
    experiment: str
    """The experiment file's ``name`` (``sweep.json``), or ``runs`` for ``prism-marl train``."""
    scale: str | None
    method: str
    backbone: str
    task: str
    budget: str | None
    width: int | None
    sharing: str
    status: str
    """The index's status (finished, failed, ...); without an index, finished or unfinished."""
    attempts: int | None
    exit_code: int | None
    last_error: str
    records: tuple[Mapping[str, Any], ...]
    """``metrics.jsonl``: one record per evaluation point per seed."""
    summary: Mapping[str, Any] | None
    masks: Mapping[str, Any] | None
    """``agent_masks.json``: layer -> [seed][agent][singular value] (Prism only)."""

    @property
    def complete(self) -> bool:
        """Finished with a summary: its final returns count in the tables."""
        return self.status == "finished" and self.summary is not None

    @property
    def final_returns(self) -> np.ndarray:
        """``summary.json``'s per-seed final returns, ``[seeds]`` (empty when incomplete)."""
        if self.summary is None:
            return np.zeros(0)
        return np.asarray(self.summary["final_returns"], dtype=np.float64)

    def metric(self, name: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(steps [T], values)``: where ``name`` is logged, and the seeds' values there.

        Steps are the evaluation points in order; ``values[t]`` holds one number per seed that
        logged ``name`` at ``steps[t]`` (list-valued metrics are not curves and are skipped).
        """
        by_step: dict[int, list[float]] = {}
        for record in self.records:
            value = record.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                by_step.setdefault(int(record["env_steps"]), []).append(float(value))
        steps = sorted(by_step)
        return np.asarray(steps, dtype=np.int64), [np.asarray(by_step[s]) for s in steps]

    def optimizer_steps(self) -> dict[int, float]:
        """Environment steps -> optimiser steps taken by then, at every evaluation point.

        From ``train/optimizer_steps`` in the records, or, for runs logged before that metric
        existed, from the algorithm's config in ``config.json`` (the same count); empty when
        neither is readable.
        """
        logged = {
            int(r["env_steps"]): float(r["train/optimizer_steps"])
            for r in self.records
            if "train/optimizer_steps" in r
        }
        if logged:
            return logged
        config = self.config()
        if config is None:
            return {}
        count = config.algo_config.optimizer_steps
        return {int(r["env_steps"]): float(count(int(r["env_steps"]))) for r in self.records}

    def config(self) -> RunConfig | None:
        """The run's ``config.json`` as a RunConfig; None when missing or unreadable."""
        try:
            return from_dict(_read_json(self.path / "config.json") or {})
        except (ConfigError, TypeError, ValueError):
            return None

    def initial_returns(self) -> np.ndarray:
        """Evaluation returns of the untrained policy (the step-0 records), ``[seeds]``."""
        steps, values = self.metric("eval_return")
        return values[0] if steps.size and steps[0] == 0 else np.zeros(0)


@dataclasses.dataclass(frozen=True)
class Source:
    """One RESULTS_DIR argument and the runs read from it."""

    path: Path
    kind: str
    """``sweep``, ``runs`` (a directory of run directories) or ``run`` (one run directory)."""
    experiment: str
    scale: str | None
    runs: tuple[Run, ...]


def _read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it does not exist; a corrupt file is bad input."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{FIELD}: cannot read {path} ({error})") from None


def _read_records(path: Path) -> tuple[Mapping[str, Any], ...]:
    try:
        return tuple(read_jsonl(path))
    except (OSError, ValueError) as error:
        raise ConfigError(f"{FIELD}: cannot read {path} ({error})") from None


def _is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def _lone_run(path: Path, experiment: str, scale: str | None = None) -> Run:
    """A run without an index entry: its origin from its config (or summary)."""
    config = _read_json(path / "config.json") or {}
    summary = _read_json(path / "summary.json")
    described = summary or {}
    sharing = config.get("sharing", {}).get("type") or described.get("sharing", "?")
    return Run(
        run_id=path.name,
        path=path,
        experiment=experiment,
        scale=scale,
        method=sharing,
        backbone=config.get("algo") or described.get("algo", "?"),
        task=config.get("env", {}).get("id") or described.get("env", "?"),
        budget=None,
        width=None,
        sharing=sharing,
        status="finished" if summary is not None else "unfinished",
        attempts=None,
        exit_code=None,
        last_error="" if summary is not None else "no summary.json",
        records=_read_records(path / "metrics.jsonl"),
        summary=summary,
        masks=_read_json(path / "agent_masks.json"),
    )


def _indexed_run(results: Path, entry: IndexEntry, experiment: str, scale: str | None) -> Run:
    """A sweep's run: its origin and status from the index, its numbers from its directory."""
    path = results / entry.run_id
    origin = entry.origin
    summary = _read_json(path / "summary.json")
    status: str = entry.status
    error = entry.last_error
    if status == "finished" and summary is None:
        status, error = "finished without summary.json", error or "summary.json missing"
    if not path.is_dir():
        error = error or "no run directory"
    return Run(
        run_id=entry.run_id,
        path=path,
        experiment=experiment,
        scale=scale,
        method=str(origin.get("method", origin.get("sharing", "?"))),
        backbone=str(origin.get("backbone", origin.get("algo", "?"))),
        task=str(origin.get("task", "?")),
        budget=origin.get("budget"),
        width=origin.get("width"),
        sharing=str(origin.get("sharing", origin.get("method", "?"))),
        status=status,
        attempts=entry.attempts,
        exit_code=entry.exit_code,
        last_error=error,
        records=_read_records(path / "metrics.jsonl"),
        summary=summary,
        masks=_read_json(path / "agent_masks.json"),
    )


def _sweep(path: Path) -> Source:
    try:
        index = load_index(path)
    except (OSError, ValueError, TypeError) as error:
        raise ConfigError(f"{FIELD}: cannot read {path / INDEX_FILE} ({error})") from None
    sweep = _read_json(path / "sweep.json") or {}
    # Without sweep.json the directory's name (results/<experiment>-<scale>) names the group.
    experiment, scale = str(sweep.get("experiment", path.name)), sweep.get("scale")
    runs = [_indexed_run(path, entry, experiment, scale) for entry in index.values()]
    # A run directory the index does not list (copied in by hand) is still reported.
    listed = set(index)
    for child in sorted(path.iterdir()):
        if child.name not in listed and _is_run_dir(child):
            runs.append(_lone_run(child, experiment, scale))
    return Source(path, "sweep", experiment, scale, tuple(runs))


def load_source(text: str) -> Source:
    """Read one RESULTS_DIR argument; ``ConfigError`` when it is missing or holds no runs."""
    path = Path(text)
    if not path.is_dir():
        raise ConfigError(f"{FIELD}: {text} is not a directory")
    if (path / INDEX_FILE).exists():
        source = _sweep(path)
    elif _is_run_dir(path):
        source = Source(path, "run", LONE_RUNS, None, (_lone_run(path, LONE_RUNS),))
    else:
        children = [child for child in sorted(path.iterdir()) if _is_run_dir(child)]
        runs = tuple(_lone_run(child, LONE_RUNS) for child in children)
        source = Source(path, "runs", LONE_RUNS, None, runs)
    if not source.runs:
        raise ConfigError(
            f"{FIELD}: {text} holds no runs (no index.jsonl, and neither it nor a directory in "
            "it has config.json, metrics.jsonl or summary.json)"
        )
    return source


def load_sources(texts: Sequence[str]) -> tuple[Source, ...]:
    """Read every RESULTS_DIR argument (each checked before anything is written)."""
    return tuple(load_source(text) for text in texts)


__all__ = ["FIELD", "LONE_RUNS", "Run", "Source", "load_source", "load_sources"]
