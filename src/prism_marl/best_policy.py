"""Each seed's best policy by evaluation return, kept for the absolute metric.

Gorsane et al., "Towards a Standardised Performance Evaluation Protocol for Cooperative MARL"
(NeurIPS 2022), which marl-eval and Mava follow: a run's *absolute metric* is its best policy
seen at any evaluation point, evaluated at the end on 10 times the evaluation episodes. The
rolling checkpoints keep only the last two states, so the best policies have their own orbax
directory, ``RUN_DIR/best_checkpoint``: one checkpoint per evaluation point at which some seed
improved, numbered by evaluation point (0 = the untrained policy, k = after chunk k − 1), the
two latest kept (decision 0043).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

BEST_DIR = "best_checkpoint"
ABSOLUTE_FACTOR = 10
"""The absolute metric's episodes per seed: this many times ``eval_episodes``."""


class Best(NamedTuple):
    """Every seed's best policy so far (host arrays with a leading seed axis)."""

    variables: Any
    """The policies' variables, each leaf ``[S, ...]``, as ``state.variables``."""
    returns: np.ndarray
    """Each seed's best mean evaluation return, ``[S]``."""
    env_steps: np.ndarray
    """The environment steps at which each seed's best policy was evaluated, ``[S]``."""


def _host_copy(variables: Any) -> Any:
    """``variables`` as host arrays that own their memory.

    The state's device buffers are donated to the next chunk, and on CPU a plain
    ``np.asarray`` of a jax array may share them.
    """
    return jax.tree_util.tree_map(lambda leaf: np.array(leaf, copy=True), variables)


def improve(best: Best | None, variables: Any, returns: Any, env_steps: int) -> Best | None:
    """``best`` with the seeds whose mean return beat theirs replaced by ``variables``.

    ``returns`` is the evaluation's ``[S, episodes]``. Ties keep the earlier policy. Returns
    None when no seed improved (nothing to save).
    """
    means = np.asarray(returns, dtype=np.float64).mean(axis=-1)
    if best is None:
        return Best(_host_copy(variables), means, np.full(means.shape, env_steps))
    better = means > best.returns
    if not better.any():
        return None
    current = _host_copy(variables)

    def pick(old: np.ndarray, new: np.ndarray) -> np.ndarray:
        mask = better.reshape((-1,) + (1,) * (np.ndim(new) - 1))
        return np.where(mask, new, old)

    return Best(
        jax.tree_util.tree_map(pick, best.variables, current),
        np.where(better, means, best.returns),
        np.where(better, env_steps, best.env_steps),
    )


class BestCheckpoints:
    """``RUN_DIR/best_checkpoint``: the latest ``Best`` at each evaluation point it changed."""

    def __init__(self, run_dir: Path):
        self.manager = ocp.CheckpointManager(
            (run_dir / BEST_DIR).absolute(),
            options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
        )

    def save(self, point: int, best: Best) -> None:
        """Save ``best`` as evaluation point ``point``'s, and wait until it is on disk."""
        if point in self.manager.all_steps():
            self.manager.delete(point)
        self.manager.save(point, args=ocp.args.StandardSave(best._asdict()))
        self.manager.wait_until_finished()

    def restore(self, variables: Any, up_to: int) -> Best | None:
        """The latest ``Best`` saved at evaluation point ``up_to`` or before; None if none.

        ``variables`` is a template of the policies' variables. A save after ``up_to`` belongs
        to an evaluation point the resumed run repeats (its process died before the rolling
        checkpoint of that point): it is deleted, and the repeat saves it again.
        """
        for point in self.manager.all_steps():
            if point > up_to:
                self.manager.delete(point)
        points = [p for p in self.manager.all_steps() if p <= up_to]
        if not points:
            return None
        seeds = jax.tree_util.tree_leaves(variables)[0].shape[0]
        template = Best(variables, np.zeros(seeds), np.zeros(seeds, dtype=np.int64))._asdict()
        restored = self.manager.restore(max(points), args=ocp.args.StandardRestore(template))
        return Best(restored["variables"], restored["returns"], restored["env_steps"])

    def clear(self) -> None:
        """Delete every saved point (a strategy's preparation changed the policies' shapes)."""
        for point in list(self.manager.all_steps()):
            self.manager.delete(point)

    def close(self) -> None:
        """Close the orbax manager."""
        self.manager.close()


__all__ = ["ABSOLUTE_FACTOR", "BEST_DIR", "Best", "BestCheckpoints", "improve"]
