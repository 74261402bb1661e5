"""PPO losses (Schulman et al., 2017) used by MAPPO and IPPO (Yu et al., 2022).

All inputs share one shape [...] (time, envs, agents); losses are means over it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def clipped_policy_loss(
    log_probs: jax.Array, old_log_probs: jax.Array, advantages: jax.Array, clip: float
) -> tuple[jax.Array, jax.Array]:
    """L = −mean(min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)), ρ = exp(log π − log π_old).

    Returns:
        (loss, fraction of samples whose ratio was clipped).
    """
    ratio = jnp.exp(log_probs - old_log_probs)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages
    clip_fraction = jnp.mean((jnp.abs(ratio - 1.0) > clip).astype(jnp.float32))
    return -jnp.mean(jnp.minimum(unclipped, clipped)), clip_fraction


def clipped_value_loss(
    values: jax.Array, old_values: jax.Array, targets: jax.Array, clip: float | None
) -> jax.Array:
    """½ mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)); plain ½ MSE if clip is None."""
    error = jnp.square(values - targets)
    if clip is None:
        return 0.5 * jnp.mean(error)
    clipped = old_values + jnp.clip(values - old_values, -clip, clip)
    return 0.5 * jnp.mean(jnp.maximum(error, jnp.square(clipped - targets)))


def normalize(advantages: jax.Array, eps: float = 1e-8) -> jax.Array:
    """(A − mean A) / (std A + eps) over all elements."""
    return (advantages - jnp.mean(advantages)) / (jnp.std(advantages) + eps)
