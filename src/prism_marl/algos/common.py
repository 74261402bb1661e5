"""Bookkeeping every algorithm shares: merged network variables and episode statistics.

Axis glossary: E envs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from prism_marl.envs.base import EnvStep


class EpisodeStats(NamedTuple):
    """Running and completed-episode statistics per env."""

    running_return: jax.Array  # [E]
    running_length: jax.Array  # [E]
    completed_return: jax.Array  # [] sum over episodes completed since the last read
    completed_won: jax.Array  # []
    completed_count: jax.Array  # []


def merge_networks(**networks: Any) -> dict[str, Any]:
    """{"params": {name: ...}, "buffers": {name: ...}} from per-network variables."""
    merged: dict[str, Any] = {"params": {}, "buffers": {}}
    for name, variables in networks.items():
        for collection, tree in variables.items():
            merged.setdefault(collection, {})[name] = tree
    return merged


def select_network(variables: dict[str, Any], name: str) -> dict[str, Any]:
    """One network's variables out of merged ones."""
    return {c: tree[name] for c, tree in variables.items() if name in tree}


def track_episodes(stats: EpisodeStats, step: EnvStep) -> EpisodeStats:
    """Accumulate the team return; move finished episodes into the completed sums."""
    running = stats.running_return + step.team_reward
    ended = step.episode_end
    return EpisodeStats(
        running_return=jnp.where(ended, 0.0, running),
        running_length=jnp.where(ended, 0.0, stats.running_length + 1),
        completed_return=stats.completed_return + jnp.sum(jnp.where(ended, running, 0.0)),
        completed_won=stats.completed_won + jnp.sum(ended & step.won),
        completed_count=stats.completed_count + jnp.sum(ended),
    )


def run_updates(
    update: Callable[[Any], tuple[Any, dict[str, jax.Array]]], state: Any, num_updates: int
) -> tuple[Any, dict[str, jax.Array]]:
    """``num_updates`` calls of ``update`` (a scan) on a state with an EpisodeStats ``stats``.

    Returns the state and the updates' mean metrics, plus ``train/return``,
    ``train/win_rate`` and ``train/episodes`` over the episodes completed in this chunk.
    """
    stats = state.stats._replace(
        completed_return=jnp.zeros(()), completed_won=jnp.zeros(()), completed_count=jnp.zeros(())
    )
    state, metrics = jax.lax.scan(
        lambda s, _: update(s), state._replace(stats=stats), None, length=num_updates
    )
    metrics = jax.tree_util.tree_map(lambda m: jnp.mean(m, axis=0), metrics)
    count = state.stats.completed_count
    metrics["train/return"] = state.stats.completed_return / jnp.maximum(count, 1)
    metrics["train/win_rate"] = state.stats.completed_won / jnp.maximum(count, 1)
    metrics["train/episodes"] = count
    return state, metrics
