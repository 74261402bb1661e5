"""Where a run's evaluation points go besides metrics.jsonl: TensorBoard, and Weights & Biases.

Both receive the same scalars at the same environment steps (``scalars``): per seed
``seed_<i>/<metric>`` and ``mean/eval_return``, from the untrained policy's step 0 on. W&B is
optional (``prism-marl train --wandb-project P``, the ``wandb`` extra) and imported only when a
run asks for it; it also receives the run's config at the start and ``summary.json`` at the end.
Its options are not part of ``RunConfig``, the run's identity, which sweeps hash (decision 0042).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prism_marl.errors import ConfigError
from prism_marl.results import write_json

WANDB_FILE = "wandb.json"
"""The run directory's W&B run id: a resumed run continues the same W&B run."""
SKIPPED = ("seed", "env_steps")
"""Record fields that say where a value belongs rather than being one."""


@dataclasses.dataclass(frozen=True)
class WandbOptions:
    """Which W&B project (and entity, group, tags) a run logs to."""

    project: str
    entity: str | None = None
    group: str | None = None
    """Runs of one group are shown together; ``prism-marl sweep`` passes the sweep's name."""
    tags: tuple[str, ...] = ()

    def flags(self) -> list[str]:
        """These options as ``prism-marl train`` flags (how a sweep hands them to its runs)."""
        flags = ["--wandb-project", self.project]
        if self.entity:
            flags += ["--wandb-entity", self.entity]
        if self.group:
            flags += ["--wandb-group", self.group]
        if self.tags:
            flags += ["--wandb-tags", ",".join(self.tags)]
        return flags


def scalars(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The logged values of one evaluation point's records (one record per seed).

    ``seed_<i>/<name>`` for every number of every record (lists such as the episode returns
    are left to metrics.jsonl), and ``mean/eval_return``, the mean over seeds.
    """
    values: dict[str, float] = {}
    for record in records:
        for name, value in record.items():
            if name in SKIPPED or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            values[f"seed_{record['seed']}/{name}"] = value
    values["mean/eval_return"] = float(np.mean([r["eval_return"] for r in records]))
    return values


class TensorBoardLog:
    """TensorBoard events in ``RUN_DIR/tensorboard``; a resumed run drops events after its step."""

    def __init__(self, run_dir: Path, purge_step: int):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)

    def log(self, records: Sequence[Mapping[str, Any]], step: int) -> None:
        """Write one evaluation point."""
        for name, value in scalars(records).items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (twice is harmless)."""
        self.writer.close()


def require_wandb(field: str = "wandb-project") -> Any:
    """The ``wandb`` module; a one-line ``ConfigError`` naming the extra when it is missing."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            f"{field}: Weights & Biases is not installed; install prism-marl's `wandb` extra "
            "(pip install 'prism-marl[wandb]')"
        ) from None
    return wandb


def _run_id(run_dir: Path) -> str:
    """The W&B run id kept in ``RUN_DIR/wandb.json``, made on the run's first W&B session.

    Eight random lowercase letters and digits, the form W&B gives its own ids.
    """
    path = run_dir / WANDB_FILE
    if path.exists():
        return str(json.loads(path.read_text())["id"])
    alphabet = string.ascii_lowercase + string.digits
    run_id = "".join(secrets.choice(alphabet) for _ in range(8))
    write_json(path, {"id": run_id})
    return run_id


class WandbLog:
    """One W&B run per run directory: the config, every evaluation point, the summary.

    Its files go to ``$WANDB_DIR`` when set, else to ``RUN_DIR/wandb``; ``WANDB_MODE=offline``
    writes them without a network (``wandb sync`` uploads them later). A resumed run continues
    the W&B run of the same id; W&B keeps the first value of a step logged twice (the steps a
    killed run logged after its last checkpoint, which the resumed run logs again).
    """

    def __init__(self, options: WandbOptions, run_dir: Path, config: Mapping[str, Any]):
        wandb = require_wandb()
        self.run = wandb.init(
            project=options.project,
            entity=options.entity,
            group=options.group,
            tags=list(options.tags) or None,
            name=run_dir.name,
            id=_run_id(run_dir),
            resume="allow",
            config=dict(config),
            dir=None if os.environ.get("WANDB_DIR") else str(run_dir),
            # The progress line redraws itself with "\r"; W&B's copy of the console would
            # hold every redraw.
            settings=wandb.Settings(console="off"),
        )

    def log(self, records: Sequence[Mapping[str, Any]], step: int) -> None:
        """Log one evaluation point at environment step ``step``."""
        self.run.log(scalars(records), step=step)

    def summary(self, summary: Mapping[str, Any]) -> None:
        """Put ``summary.json``'s entries in the W&B run's summary."""
        self.run.summary.update(dict(summary))

    def close(self, failed: bool = False) -> None:
        """Finish the W&B run (exit code 1 when training failed)."""
        self.run.finish(exit_code=1 if failed else 0)


__all__ = [
    "WANDB_FILE",
    "TensorBoardLog",
    "WandbLog",
    "WandbOptions",
    "require_wandb",
    "scalars",
]
