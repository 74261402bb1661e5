"""Per-agent transitions that an algorithm hands to a strategy's preparation step.

A strategy whose ``preparation_steps`` is positive (SePS clusters agents from them) receives
every seed's pretraining transitions in this form; algorithms collect them with
``algos.common.seed_transitions``. Axis glossary: S seeds, P pairs, N agents, D observation
features, A action features.
"""

from __future__ import annotations

from typing import NamedTuple

import jax


class AgentTransitions(NamedTuple):
    """Per-agent transitions collected while pretraining.

    Attributes:
        obs: [..., P, N, D].
        actions: [..., P, N, A] action features (one-hot for discrete actions).
        rewards: [..., P, N], each agent's own reward (``EnvStep.reward``).
        next_obs: [..., P, N, D], the observation each step reached (before any reset).

    The runner hands a strategy every seed's transitions with a leading seed axis [S, ...].
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_obs: jax.Array
