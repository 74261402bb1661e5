"""Returns and advantages with termination kept apart from time-limit truncation.

Axis glossary: T time (leading), then any batch axes (envs, agents).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def generalized_advantages(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    episode_end: jax.Array,
    gamma: float,
    lam: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE(γ, λ) (Schulman et al., 2016) with correct bootstrapping at truncation.

        δ_t = r_t + γ (1 − term_t) V(s'_t) − V(s_t)
        A_t = δ_t + γ λ (1 − end_t) A_{t+1}

    where s'_t is the real next state of step t (the final observation when the episode ended,
    so a time-limit truncation still bootstraps from V(s'_t)), term_t marks true termination and
    end_t any episode end (termination or truncation), which stops the recursion.

    Args:
        rewards: [T, ...].
        values: V(s_t), [T, ...].
        next_values: V(s'_t), [T, ...].
        terminated: [T, ...] bool.
        episode_end: [T, ...] bool (terminated or truncated).
        gamma: discount γ.
        lam: GAE λ.

    Returns:
        (advantages [T, ...], value targets A + V [T, ...]).
    """
    not_terminated = 1.0 - terminated.astype(rewards.dtype)
    continues = 1.0 - episode_end.astype(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(
        carry: jax.Array, inputs: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        delta, cont = inputs
        advantage = delta + gamma * lam * cont * carry
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True
    )
    return advantages, advantages + values


def next_state_values(
    values: jax.Array, last_value: jax.Array, final_values: jax.Array, episode_end: jax.Array
) -> jax.Array:
    """V(s'_t): V(s_{t+1}) inside an episode, V(final observation) where the episode ended.

    Args:
        values: V(s_t) of the rollout's observations, [T, ...].
        last_value: V of the observation after the last step, [...].
        final_values: V of each step's final observation (only read at episode ends), [T, ...].
        episode_end: [T, ...] bool.

    Returns:
        [T, ...].
    """
    following = jnp.concatenate([values[1:], last_value[None]], axis=0)
    return jnp.where(episode_end, final_values, following)


def td_lambda_returns(
    rewards: jax.Array,
    bootstrap: jax.Array,
    terminated: jax.Array,
    episode_end: jax.Array,
    gamma: float,
    lam: float,
) -> jax.Array:
    """TD(λ) targets over a stored sequence (Sutton & Barto §12.1; PyMARL's QMIX targets).

        G_t = r_t + γ (1 − term_t) [(1 − λ c_t) b_t + λ c_t G_{t+1}]

    with b_t the bootstrap value of step t's real next state (the target network's Q_tot on
    the final observation where the episode ended), and c_t = 0 where the λ-recursion must stop:
    at episode ends (truncation still bootstraps from b_t, termination does not) and at the
    sequence's last step, whose continuation was not stored.

    Args:
        rewards: [T, ...].
        bootstrap: b_t, [T, ...].
        terminated: [T, ...] bool.
        episode_end: [T, ...] bool (terminated or truncated).
        gamma: discount γ.
        lam: λ ∈ [0, 1] (0: one-step targets).

    Returns:
        G [T, ...].
    """
    not_terminated = 1.0 - terminated.astype(rewards.dtype)
    continues = 1.0 - episode_end.astype(rewards.dtype)
    continues = continues.at[-1].set(0.0)

    def backward(
        carry: jax.Array, inputs: tuple[jax.Array, jax.Array, jax.Array, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        reward, value, alive, cont = inputs
        target = reward + gamma * alive * ((1.0 - lam * cont) * value + lam * cont * carry)
        return target, target

    _, targets = jax.lax.scan(
        backward,
        jnp.zeros_like(rewards[0]),
        (rewards, bootstrap, not_terminated, continues),
        reverse=True,
    )
    return targets
