"""The Python API: configure, train, resume, evaluate and read a run without the command line.

Everything here is what ``prism-marl train`` and ``prism-marl eval`` do, as functions; the run
directory they write is the same (config.json, metrics.jsonl, summary.json, marl_eval.json,
TensorBoard events, orbax checkpoints). docs/python-api.md shows it end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prism_marl.config import RunConfig
from prism_marl.presets import build_run_config
from prism_marl.results import read_jsonl


def configure(
    *,
    sharing: str = "prism",
    algo: str | None = None,
    env: str | None = None,
    preset: str | None = None,
    sharing_fields: dict[str, Any] | None = None,
    algo_fields: dict[str, Any] | None = None,
    env_fields: dict[str, Any] | None = None,
    **run_fields: Any,
) -> RunConfig:
    """A validated RunConfig, with the same names and precedence as ``prism-marl train``.

    Args:
        sharing: the strategy's name (``prism_marl.sharing.STRATEGIES``).
        algo: the algorithm's name; None takes the preset's, else mappo.
        env: the environment id, e.g. ``"smax:3m"``; None takes the preset's, else LBF 8x8.
        preset: a preset (``prism_marl.presets.PRESETS``) under the explicit values.
        sharing_fields: the strategy's fields, as ``--sharing.*``.
        algo_fields: the algorithm's hyper-parameters, as ``--algo.*``.
        env_fields: the environment's switches, as ``--env.*``.
        **run_fields: RunConfig's own fields (num_seeds, total_steps, run_dir, ...).

    Raises:
        ConfigError: an unknown name or an invalid value, with a one-line message.
    """
    env_values = dict(env_fields or {})
    if env is not None:
        env_values["id"] = env
    return build_run_config(
        sharing=sharing,
        sharing_fields=sharing_fields,
        algo=algo,
        preset=preset,
        run_fields=run_fields,
        env_fields=env_values,
        algo_fields=algo_fields,
    )


def train(
    config: RunConfig, *, progress: bool = False, devices: int | None = None
) -> dict[str, Any]:
    """Train ``config`` into ``config.run_dir``; returns the summary (summary.json's content).

    The run directory must not hold another run; ``resume`` continues one. ``devices``: local
    devices the seeds are spread over (None: as many as divide the seeds evenly).
    """
    from prism_marl.run import Trainer

    return _finished(Trainer(config, progress=progress, devices=devices).run())


def resume(
    run_dir: str | Path, *, progress: bool = False, devices: int | None = None
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its last checkpoint (on any number of devices)."""
    from prism_marl.run import Trainer

    return _finished(Trainer.from_run_dir(run_dir, progress=progress, devices=devices).run())


def _finished(summary: dict[str, Any] | None) -> dict[str, Any]:
    """The summary of a run that ran to its end.

    ``Trainer.run`` returns None only after ``request_stop``, which nothing here calls.
    """
    if summary is None:
        raise RuntimeError("the run stopped before its end; resume it with api.resume(run_dir)")
    return summary


def evaluate(
    run_dir: str | Path, episodes: int = 100, *, greedy: bool | None = None
) -> dict[str, Any]:
    """Return (and win rate) per seed of the run's last checkpoint over ``episodes`` episodes.

    ``greedy`` None plays the run's own evaluation mode (``RunConfig.eval_greedy``).
    """
    from prism_marl.evaluate import evaluate_run

    return evaluate_run(run_dir, episodes, greedy=greedy)


def learning_curve(run_dir: str | Path) -> list[dict[str, Any]]:
    """metrics.jsonl's records: one per seed and evaluation, with every logged metric."""
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


__all__ = ["RunConfig", "configure", "evaluate", "learning_curve", "resume", "train"]
