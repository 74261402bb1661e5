"""Bootstrapped targets of off-policy value learning, as small pure functions.

Sections: n-step returns and target policy smoothing (MATD3).
Axis glossary: n the steps of an n-step window (leading), then any batch axes; A action dims.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

# ------------------------------------------------------------------------ n-step returns (MATD3)


class NStepReturn(NamedTuple):
    """The parts of an n-step target y = reward_sum + discount · Q'(s', π'(s')).

    Attributes:
        reward_sum: Σ_{k<m} γ^k r_{t+k}, [...].
        discount: γ^m (1 − term_{t+m−1}), [...]; 0 where the window ends in a termination.
        last: m − 1 ∈ [0, n), [...] int: the step whose next state s'_{t+m−1} is bootstrapped.
    """

    reward_sum: jax.Array
    discount: jax.Array
    last: jax.Array


def n_step_returns(
    rewards: jax.Array, terminated: jax.Array, episode_end: jax.Array, gamma: float
) -> NStepReturn:
    """n-step return of the window starting at step t, truncated at the episode's end.

        m   = min(n, 1 + first k with end_{t+k})                 (steps inside the episode)
        G   = Σ_{k<m} γ^k r_{t+k}  +  γ^m (1 − term_{t+m−1}) Q'(s'_{t+m−1})

    where s'_{t+k} is the real next state of step t+k (the final observation when the episode
    ended there). A termination stops bootstrapping; a time-limit truncation still bootstraps
    from the final observation (Pardo et al., "Time Limits in Reinforcement Learning", 2018).
    Steps after the episode's end belong to the next episode and are ignored.

    Args:
        rewards: [n, ...] rewards r_{t..t+n−1}.
        terminated: [n, ...] bool, true termination at each step.
        episode_end: [n, ...] bool, termination or truncation at each step.
        gamma: discount γ.

    Returns:
        NStepReturn with leaves [...]; the caller evaluates Q' at s'_{t+last}.
    """
    ends = episode_end.astype(rewards.dtype)
    # alive_k = Π_{j<k} (1 − end_j): step k still belongs to the window's episode.
    alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(ends[:1]), 1.0 - ends[:-1]]), axis=0)
    powers = gamma ** jnp.arange(rewards.shape[0], dtype=rewards.dtype)
    powers = powers.reshape((-1,) + (1,) * (rewards.ndim - 1))
    reward_sum = jnp.sum(powers * alive * rewards, axis=0)
    steps = jnp.sum(alive, axis=0)  # m
    last = steps.astype(jnp.int32) - 1
    terminated_last = jnp.take_along_axis(terminated, last[None], axis=0)[0]
    discount = gamma**steps * (1.0 - terminated_last.astype(rewards.dtype))
    return NStepReturn(reward_sum, discount, last)


# ---------------------------------------------------------------- target policy smoothing (TD3)


def smoothed_target_actions(
    actions: jax.Array,
    key: jax.Array,
    policy_noise: float,
    noise_clip: float,
    low: float,
    high: float,
    action_mask: jax.Array,
) -> jax.Array:
    """TD3's target policy smoothing (Fujimoto et al., ICML 2018, eq. 14), per action dim.

        ã = clip(a + clip(ε, −c, c), low, high),   ε ~ N(0, σ²)

    with σ = ``policy_noise`` and c = ``noise_clip``, both in units of the box's half-width
    (high − low) / 2 so that the usual 0.2 / 0.5 mean the same on any box. Padded dimensions
    (``action_mask`` False) are 0.

    Args:
        actions: [..., A] target-policy actions inside the box.
        key: PRNG key of the noise.
        policy_noise: σ (fraction of the half-width).
        noise_clip: c (fraction of the half-width).
        low: lower bound of the action box.
        high: upper bound of the action box.
        action_mask: [..., A] bool, True on real action dimensions.

    Returns:
        [..., A] smoothed actions.
    """
    half_width = 0.5 * (high - low)
    noise = policy_noise * half_width * jax.random.normal(key, actions.shape, actions.dtype)
    noise = jnp.clip(noise, -noise_clip * half_width, noise_clip * half_width)
    return jnp.where(action_mask, jnp.clip(actions + noise, low, high), 0.0)
