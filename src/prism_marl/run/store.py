"""A run's directory: what it holds, and the only code that reads or writes it.

``config.json`` (the run's config; after a phase change, the prepared strategy's),
``metrics.jsonl`` (one line per seed per evaluation), ``checkpoints/`` (orbax: the latest two
chunks' full state), ``best_checkpoints/`` (each seed's best policy so far,
``best_policy.py``), ``summary.json``, ``marl_eval.json`` (marl-eval's raw format),
``learning_curve.png``, ``agent_masks.{json,png}`` (strategies with masks),
``preparation.json`` (per-seed facts of a phase change, SePS's clusters) and the run's lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orbax.checkpoint as ocp

from prism_marl.best_policy import BestCheckpoints
from prism_marl.config import RunConfig, from_dict, to_dict
from prism_marl.errors import ConfigError
from prism_marl.results import read_jsonl, to_builtin, write_json, write_jsonl
from prism_marl.runlock import run_lock

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
MARL_EVAL_FILE = "marl_eval.json"
CURVE_FILE = "learning_curve.png"
MASKS_FILE = "agent_masks.json"
MASKS_FIGURE = "agent_masks.png"
PREPARATION_FILE = "preparation.json"


class Checkpoints:
    """The run's rolling orbax checkpoints: every seed's state after a chunk, and wall time."""

    def __init__(self, run_dir: Path):
        self.manager = ocp.CheckpointManager(
            (run_dir / "checkpoints").absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
        )

    def save(self, chunk: int, state: Any, wall_seconds: float) -> None:
        """Save (and wait for) the state after ``chunk``."""
        payload = {"state": state, "wall_seconds": np.asarray(wall_seconds)}
        self.manager.save(chunk, args=ocp.args.StandardSave(payload))
        self.manager.wait_until_finished()

    def restore(self, template: Any) -> tuple[int, Any, float] | None:
        """``(chunk, state, wall_seconds)`` of the latest checkpoint, or None without one.

        ``template`` gives the state's structure, shapes and placement (a sharded template
        puts the checkpoint on this run's devices, whatever count wrote it).
        """
        chunk = self.latest_chunk()
        if chunk is None:
            return None
        target = {"state": template, "wall_seconds": np.asarray(0.0)}
        restored = self.manager.restore(chunk, args=ocp.args.StandardRestore(target))
        return chunk, restored["state"], float(restored["wall_seconds"])

    def latest_chunk(self) -> int | None:
        """The chunk of the latest checkpoint, or None."""
        return self.manager.latest_step()

    def clear(self) -> None:
        """Delete every checkpoint (a phase change makes their shapes stale)."""
        for step in list(self.manager.all_steps()):
            self.manager.delete(step)

    def close(self) -> None:
        """Release orbax's resources."""
        self.manager.close()


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir)

    def holds_files(self) -> bool:
        """Whether the directory exists and holds anything."""
        return self.path.exists() and any(self.path.iterdir())

    def read_config(self, field: str) -> RunConfig:
        """The run's config, pointed at this directory.

        ``field`` names the CLI argument in the error raised when the directory holds no run.
        """
        path = self.path / CONFIG_FILE
        if not path.exists():
            raise ConfigError(f"{field}: {self.path} holds no {CONFIG_FILE}")
        config = from_dict(json.loads(path.read_text()))
        return dataclasses.replace(config, run_dir=str(self.path))

    def open(self, config: RunConfig, closing: contextlib.ExitStack) -> None:
        """Create the directory, take the run's lock (released by ``closing``), write config."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            closing.enter_context(run_lock(self.path))
            self.write_config(config)
        except OSError as error:
            raise ConfigError(
                f"run-dir: cannot write to {self.path} ({error.strerror or error})"
            ) from error

    def write_config(self, config: RunConfig) -> None:
        """``config.json``."""
        write_json(self.path / CONFIG_FILE, to_dict(config))

    def checkpoints(self) -> Checkpoints:
        """The rolling checkpoints (the caller closes them)."""
        return Checkpoints(self.path)

    def best_checkpoints(self) -> BestCheckpoints:
        """Each seed's best policy so far (the caller closes them)."""
        return BestCheckpoints(self.path)

    def read_metrics(self, up_to_steps: int) -> list[dict[str, Any]]:
        """``metrics.jsonl``'s records up to ``up_to_steps`` (a killed session's later ones go)."""
        return [r for r in read_jsonl(self.path / METRICS_FILE) if r["env_steps"] <= up_to_steps]

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """``metrics.jsonl``, whole (atomic)."""
        write_jsonl(self.path / METRICS_FILE, records)

    def write_preparation(self, record: dict[str, Any]) -> None:
        """``preparation.json``: per-seed facts of a phase change that the config cannot hold."""
        if record:
            write_json(self.path / PREPARATION_FILE, record)

    def write_results(
        self,
        summary: dict[str, Any],
        marl_eval: dict[str, Any],
        masks: dict[str, Any],
        records: list[dict[str, Any]],
        title: str,
    ) -> None:
        """The finished run's files: summary, marl-eval JSON, learning curve, agents' masks.

        ``masks`` maps each layer to [seed][agent][singular value] (empty: nothing written);
        the heatmap shows seed 0.
        """
        from prism_marl.report.run_figures import plot_agent_masks, plot_learning_curve

        write_json(self.path / SUMMARY_FILE, summary)
        write_json(self.path / MARL_EVAL_FILE, marl_eval)
        if masks:
            table = {name: to_builtin(np.asarray(values)) for name, values in masks.items()}
            write_json(self.path / MASKS_FILE, table)
            plot_agent_masks({k: v[0] for k, v in table.items()}, self.path / MASKS_FIGURE)
        plot_learning_curve(records, self.path / CURVE_FILE, title=title)


class EvalPoint(NamedTuple):
    """One evaluation point of a run: when it was, and every seed's episodes."""

    env_steps: int
    wall_time: float
    """Seconds the run has trained, over all its sessions."""
    steps_per_second: float
    """Environment steps per second of this session, all seeds together (0 at step 0)."""
    returns: Any
    """Each seed's episode returns, [S, episodes]."""
    won: Any
    """Each seed's episode wins, [S, episodes] (zeros in games without a winner)."""


def metric_records(
    config: RunConfig,
    has_win: bool,
    point: EvalPoint,
    metrics: dict[str, Any],
) -> list[dict[str, Any]]:
    """One ``metrics.jsonl`` record per seed for an evaluation point.

    ``metrics``: per-seed training metrics ([S, ...]), of which scalars and arrays of at most
    64 numbers are kept.
    """
    returns, won = np.asarray(point.returns), np.asarray(point.won)
    records = []
    for seed in range(config.num_seeds):
        record: dict[str, Any] = {
            "seed": seed,
            "env_steps": point.env_steps,
            "wall_time": round(point.wall_time, 3),
            "eval_return": float(np.mean(returns[seed])),
            "steps_per_second": round(point.steps_per_second, 1),
            "train/optimizer_steps": config.algo_config.optimizer_steps(point.env_steps),
        }
        if has_win:
            record["eval_win_rate"] = float(np.mean(won[seed]))
        # Every episode, for marl-eval's per-step lists (marl_eval.json).
        record["eval_episode_returns"] = [float(v) for v in returns[seed]]
        if has_win:
            record["eval_episode_wins"] = [float(v) for v in won[seed]]
        for name, value in metrics.items():
            array = np.asarray(value[seed])
            if array.ndim == 0 or array.size <= 64:
                record[name] = to_builtin(array)
        records.append(record)
    return records


def marl_eval_table(
    config: RunConfig, records: list[dict[str, Any]], absolute: dict[str, Any]
) -> dict[str, Any]:
    """marl-eval's raw format: env -> task -> algorithm -> run -> step -> metric lists.

    Each step holds every evaluation episode's return (and win); ``absolute_metrics`` the
    best policy's episodes (``absolute``: ``returns`` and, in games with a winner, ``won``,
    each [S, episodes]).
    """
    family, _, task = config.env.id.partition(":")
    algorithm = f"{config.algo}_{config.sharing.name}"
    runs: dict[str, Any] = {}
    for seed in range(config.num_seeds):
        run: dict[str, Any] = {}
        for index, record in enumerate(r for r in records if r["seed"] == seed):
            # Records written before the episodes were kept hold only their means.
            episodes = record.get("eval_episode_returns", [record["eval_return"]])
            step = {"step_count": record["env_steps"], "return": episodes}
            if "eval_win_rate" in record:
                step["win_rate"] = record.get("eval_episode_wins", [record["eval_win_rate"]])
            run[f"step_{index}"] = step
        run["absolute_metrics"] = {
            name: [float(v) for v in np.asarray(values)[seed]]
            for name, values in (("return", absolute["returns"]), ("win_rate", absolute.get("won")))
            if values is not None
        }
        runs[f"run_{seed}"] = run
    return {family: {task: {algorithm: runs}}}
