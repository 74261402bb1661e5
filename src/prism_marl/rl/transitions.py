"""Per-agent transitions that an algorithm hands to a strategy's preparation step.

A strategy whose ``preparation_steps`` is positive (SePS clusters agents from them) receives
every seed's pretraining transitions in this form; algorithms build it from their rollouts or
replay with ``transitions_from_sequences``. Axis glossary: S seeds, T time, E envs, N agents,
D observation features, A action features, P kept pairs.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class AgentTransitions(NamedTuple):
    """Per-agent transitions collected while pretraining.

    Attributes:
        obs: [T, N, D].
        actions: [T, N, A] action features (one-hot for discrete actions).
        rewards: [T, N].
        next_obs: [T, N, D].
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_obs: jax.Array


def transitions_from_sequences(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    episode_end: np.ndarray,
    num_actions: int | None,
) -> AgentTransitions:
    """Consecutive pairs inside episodes from time-major sequences of every seed (host side).

    Args:
        obs: [S, T, E, N, D] observations before each step.
        actions: [S, T, E, N] integers (``num_actions`` given: one-hot encoded) or
            [S, T, E, N, A] continuous actions.
        rewards: [S, T, E, N] per agent or [S, T, E] team rewards (broadcast to agents).
        episode_end: [S, T, E], True where the step ended an episode (its pair is dropped).
        num_actions: A for discrete actions, None for continuous ones.

    Returns:
        AgentTransitions over the P kept pairs: obs [P, N, D], actions [P, N, A],
        rewards [P, N], next_obs [P, N, D].
    """
    obs, rewards = np.asarray(obs), np.asarray(rewards)
    actions = np.asarray(actions)
    if num_actions is not None:
        actions = np.eye(num_actions, dtype=np.float32)[actions]
    if rewards.ndim == obs.ndim - 2:
        rewards = np.broadcast_to(rewards[..., None], obs.shape[:-1])
    keep = ~np.asarray(episode_end)[:, :-1]

    def pairs(x: np.ndarray, offset: int) -> np.ndarray:
        return x[:, offset : x.shape[1] - 1 + offset][keep]

    return AgentTransitions(
        obs=jnp.asarray(pairs(obs, 0)),
        actions=jnp.asarray(pairs(actions, 0)),
        rewards=jnp.asarray(pairs(rewards, 0)),
        next_obs=jnp.asarray(pairs(obs, 1)),
    )
