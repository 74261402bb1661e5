"""A run's evaluations: episodes of every seed's policy, SND, and the final statistics.

Its programs come from ``prism_marl.programs``, whose memoised builders are the one cache of
compiled programs: an evaluator is cheap to build, and two of one phase share every program.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.algos import Algorithm
from prism_marl.algos.common import select_network
from prism_marl.best_policy import ABSOLUTE_FACTOR, Best
from prism_marl.config import RunConfig
from prism_marl.programs import diversities, evaluations
from prism_marl.report import stats
from prism_marl.rl.evaluation import samples_at_test
from prism_marl.run.phase import Plan
from prism_marl.sharing.base import agent_masks, count_leaves

# Chunk indices past any run's last chunk, so that the final and the absolute evaluation play
# episodes that no evaluation during training played.
FINAL_CHUNK_OFFSET = 10_000
ABSOLUTE_CHUNK_OFFSET = 20_000


@dataclasses.dataclass(frozen=True)
class Evaluator:
    """Evaluates the policies of one phase of a run (``config`` and the ``algo`` built from it)."""

    config: RunConfig
    algo: Algorithm

    @property
    def greedy(self) -> bool:
        """The run's evaluation mode: its ``eval_greedy``, else the algorithm's test policy."""
        if self.config.eval_greedy is not None:
            return self.config.eval_greedy
        return not samples_at_test(self.algo.output_kind)

    def episodes(
        self, variables: Any, episodes: int, *, chunk: int, greedy: bool | None = None
    ) -> tuple[Any, Any]:
        """Play ``episodes`` whole episodes with every seed's policy (leading seed axis).

        Returns ``(returns, won)``, each [num_seeds, episodes]. ``greedy`` defaults to the
        run's evaluation mode. ``chunk`` picks the episodes' keys (``PRNGKey(chunk + 1)``
        folded with each seed): training passes the chunk just trained, -1 before the first,
        so equal arguments replay equal episodes.
        """
        greedy = self.greedy if greedy is None else greedy
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(chunk + 1), i))(
            jnp.arange(self.config.num_seeds) + 1000 * self.config.seed
        )
        return evaluations(self.algo, episodes)(variables, keys, jnp.asarray(greedy))

    def diversity(self, variables: Any) -> dict[str, Any]:
        """``{"eval/snd": [num_seeds]}``: every seed's SND (``rl/diversity.py``).

        Measured on the same ``diversity_episodes`` episodes at each evaluation; empty where
        SND is not defined (agents with different observation layouts) or turned off.
        """
        episodes = self.config.diversity_episodes
        if episodes == 0 or not self.algo.spec.homogeneous:
            return {}
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(7), i))(
            jnp.arange(self.config.num_seeds)
        )
        return {"eval/snd": diversities(self.algo, episodes)(variables, keys)}

    def final(self, variables: Any, best: Best | None, plan: Plan, timing: dict) -> Final:
        """The finished run's evaluations and its ``summary.json``.

        ``variables``: every seed's final policy; ``best``: each seed's best policy so far
        (None: the final policy stands in, as for a run resumed from a checkpoint written
        before the best was kept); ``timing``: the summary's ``wall_seconds`` and
        ``steps_per_second``.
        """
        config, spec = self.config, self.algo.spec
        episodes, chunk = config.final_eval_episodes, plan.num_chunks + FINAL_CHUNK_OFFSET
        returns, won = (np.asarray(a) for a in self.episodes(variables, episodes, chunk=chunk))
        first = jax.tree_util.tree_map(lambda x: x[0], variables)
        actor = select_network(first, self.algo.policy_network)
        summary: dict[str, Any] = {
            "algo": config.algo,
            "sharing": config.sharing.name,
            "env": config.env.id,
            "num_seeds": config.num_seeds,
            "env_steps": plan.total_steps,
            **final_statistics([float(np.mean(r)) for r in returns]),
            "wall_seconds": timing["wall_seconds"],
            "steps_per_second": timing["steps_per_second"],
            "parameters": count_leaves(first["params"]),
            "actor_parameters": count_leaves(actor["params"]),
            "additional": self.algo.strategy.additional_resource(actor, spec.num_agents),
        }
        if spec.has_win:
            summary["final_win_rate_mean"] = float(np.mean(won))
        summary["eval_mode"] = "greedy" if self.greedy else "sampled"
        summary.update(self._both_modes(variables, episodes, chunk, returns, won))
        absolute = self._absolute(variables, best, plan)
        summary.update(
            absolute_episodes=ABSOLUTE_FACTOR * config.eval_episodes,
            absolute_returns=[float(v) for v in absolute["returns"].mean(axis=1)],
            absolute_return_mean=float(np.mean(absolute["returns"])),
            best_env_steps=[int(v) for v in absolute["env_steps"]],
        )
        if spec.has_win:
            summary["absolute_win_rate_mean"] = float(np.mean(absolute["won"]))
        strategy, policy = self.algo.strategy, self.algo.policy_network
        masks = jax.vmap(lambda v: agent_masks(strategy, select_network(v, policy)))
        return Final(summary, absolute, masks(variables))

    def _absolute(self, variables: Any, best: Best | None, plan: Plan) -> dict[str, Any]:
        """Gorsane et al.'s absolute metric: each seed's best policy on 10× the episodes.

        ``returns`` and ``won``, each ``[S, 10 · eval_episodes]`` (``won`` only in games with a
        winner), and ``env_steps`` [S], where each seed's best policy was evaluated (the run's
        last step for the final policy standing in for an unrecorded best).
        """
        if best is None:
            best = Best(variables, np.zeros(0), np.full(self.config.num_seeds, plan.total_steps))
        returns, won = self.episodes(
            best.variables,
            ABSOLUTE_FACTOR * self.config.eval_episodes,
            chunk=plan.num_chunks + ABSOLUTE_CHUNK_OFFSET,
        )
        absolute = {"returns": np.asarray(returns), "env_steps": np.asarray(best.env_steps)}
        if self.algo.spec.has_win:
            absolute["won"] = np.asarray(won)
        return absolute

    def _both_modes(self, variables: Any, episodes: int, chunk: int, returns, won) -> dict:
        """A stochastic policy's final returns both greedy and sampled, on the same keys.

        ``final_returns_{greedy,sampled}`` per seed, their means, and win rates.
        Empty for Q-learners and deterministic actors, whose greedy policy is their policy.
        """
        if not samples_at_test(self.algo.output_kind):
            return {}
        other = self.episodes(variables, episodes, chunk=chunk, greedy=not self.greedy)
        modes = {self.greedy: (returns, won), not self.greedy: other}
        keys: dict[str, Any] = {}
        for greedy, (mode_returns, mode_won) in modes.items():
            mode = "greedy" if greedy else "sampled"
            per_seed = [float(v) for v in np.asarray(mode_returns).mean(axis=1)]
            keys[f"final_returns_{mode}"] = per_seed
            keys[f"final_return_{mode}_mean"] = float(np.mean(per_seed))
            if self.algo.spec.has_win:
                keys[f"final_win_rate_{mode}_mean"] = float(np.mean(mode_won))
        return keys


@dataclasses.dataclass(frozen=True)
class Final:
    """A finished run's evaluations: the summary, the best policies' episodes, the masks."""

    summary: dict[str, Any]
    absolute: dict[str, Any]
    masks: dict[str, Any]


def final_statistics(finals: list[float]) -> dict[str, Any]:
    """``summary.json``'s statistics of the seeds' final returns (``report.stats``).

    Mean and IQM (rliable's: the 25% trimmed mean, the plain mean for fewer than 4 seeds), each
    with its 95% percentile interval over 2,000 bootstrap resamples of the seeds, and a
    ``statistics`` entry that says so.
    """
    how = stats.DEFAULT
    mean, iqm = stats.mean_estimate(finals, how), stats.iqm_estimate(finals, how)
    return {
        "final_return_mean": mean.point,
        "final_return_mean_ci95": [mean.low, mean.high],
        "final_return_iqm": iqm.point,
        "final_return_iqm_ci95": [iqm.low, iqm.high],
        "final_returns": finals,
        "statistics": {
            "iqm": "25% trimmed mean over seeds (rliable's aggregate_iqm)",
            "ci95": f"{how.describe()} of the seeds (percentile interval, seed {how.seed})",
        },
    }
