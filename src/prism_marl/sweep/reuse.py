"""Finished runs of other results directories, adopted by a sweep instead of trained again.

Two sweeps can plan the same run under two ids: the fair protocol's ``confirm`` and
``confirm-tuned`` scales differ only in MAPPO's learning rate, so their QMIX and MATD3 runs
have equal configs, and only the scale in their ids differs. ``prism-marl sweep --reuse DIR``
copies such a run from DIR when its config hash (``sweep.experiment.config_hash``, the full
config but the run directory) equals the planned run's, so equal training is never paid twice.
The copy keeps every file but the run lock; its ``config.json`` names its new directory, and
the index records where it came from. Decision 0052.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from prism_marl.config import from_dict, to_dict
from prism_marl.errors import ConfigError
from prism_marl.results import write_json
from prism_marl.sweep.experiment import PlannedRun, config_hash


def finished_runs(directories: tuple[str, ...]) -> dict[str, Path]:
    """Config hash -> run directory, over the finished runs (with ``summary.json``) of each.

    A run counts under the hash of its ``config.json`` and, where the directory has an index,
    under the hash its sweep planned it under (``index.jsonl``'s ``config_hash``): a strategy
    that prepares itself (SePS) writes its prepared form to ``config.json``, which is not the
    planned config.
    A directory named first wins where two hold the same config. Raises ConfigError (field
    ``--reuse``) for a directory that does not exist.
    """
    found: dict[str, Path] = {}
    for directory in reversed(directories):
        root = Path(directory)
        if not root.is_dir():
            raise ConfigError(f"--reuse: {directory!r} is not a directory")
        planned = _planned_hashes(root)
        for summary in sorted(root.glob("*/summary.json")):
            run = summary.parent
            if run.name in planned:
                found[planned[run.name]] = run
            try:
                data = json.loads((run / "config.json").read_text())
                found[config_hash(from_dict(data))] = run
            except (OSError, ValueError, ConfigError):
                continue  # not a run directory this version can read: nothing to adopt
    return found


def _planned_hashes(root: Path) -> dict[str, str]:
    """Run id -> the config hash its sweep planned, from ``root/index.jsonl`` (empty if none)."""
    try:
        lines = (root / "index.jsonl").read_text().splitlines()
    except OSError:
        return {}
    hashes = {}
    for line in lines:
        try:
            entry = json.loads(line)
            hashes[entry["run_id"]] = entry["config_hash"]
        except (ValueError, KeyError, TypeError):
            continue
    return hashes


def adopt(source: Path, results: Path, run: PlannedRun) -> None:
    """Copy the finished run ``source`` to ``results/run.run_id``, renamed to the new id.

    Files are copied to a temporary sibling first, so an interrupted copy never leaves a
    directory with a ``summary.json`` but missing files.
    """
    target = results / run.run_id
    partial = results / f".{run.run_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns(".lock"))
    write_json(partial / "config.json", {**to_dict(run.config), "run_dir": str(target)})
    shutil.rmtree(target, ignore_errors=True)  # an unfinished attempt of the same config
    partial.rename(target)


__all__ = ["adopt", "finished_runs"]
