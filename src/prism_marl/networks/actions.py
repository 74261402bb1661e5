"""The action distributions of the policies: sampling, greedy actions, log π and H(π), spread.

A policy's output (``networks.agents.Policy``) is masked logits [..., A] for discrete actions,
or (mean, log_std) over padded action dimensions for continuous ones, where the action mask
marks the agent's real dimensions.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.networks.agents import ActionKind
from prism_marl.networks.heads import (
    MASKED_LOGIT,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)


def sample_action(
    output: Any, key: jax.Array, action_mask: jax.Array, kind: ActionKind
) -> tuple[jax.Array, jax.Array]:
    """Draw an action and its log-probability; continuous padding dimensions are zero."""
    if kind == "discrete":
        action = jax.random.categorical(key, output)
        return action, categorical_log_prob(output, action)
    mean, log_std = output
    action = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    action = jnp.where(action_mask, action, 0.0)
    return action, gaussian_log_prob(mean, log_std, action, action_mask)


def greedy_action(output: Any, kind: ActionKind) -> jax.Array:
    """The most likely action (argmax logits, or the Gaussian mean)."""
    if kind == "discrete":
        return jnp.argmax(output, axis=-1)
    return output[0]


def log_prob_and_entropy(
    output: Any, action: jax.Array, action_mask: jax.Array, kind: ActionKind
) -> tuple[jax.Array, jax.Array]:
    """Log π(a) and H(π) for the policy output."""
    if kind == "discrete":
        return categorical_log_prob(output, action), categorical_entropy(output)
    mean, log_std = output
    return gaussian_log_prob(mean, log_std, action, action_mask), gaussian_entropy(
        log_std, action_mask
    )


def output_spread(output: Any, action_mask: jax.Array, kind: ActionKind) -> jax.Array:
    """How sharp the policy's output is, averaged over samples: a scalar.

    Discrete: max − min of the available actions' logits (the log-ratio of the most to the
    least likely action). Continuous: mean |μ| / σ over real action dimensions (how far the
    mean stands from zero in units of the exploration noise).
    """
    if kind == "discrete":
        available = output > MASKED_LOGIT / 2
        top = jnp.max(jnp.where(available, output, -jnp.inf), axis=-1)
        bottom = jnp.min(jnp.where(available, output, jnp.inf), axis=-1)
        return jnp.mean(top - bottom)
    mean, log_std = output
    ratio = jnp.abs(mean) * jnp.exp(-log_std)
    real = jnp.broadcast_to(action_mask, ratio.shape)
    return jnp.sum(jnp.where(real, ratio, 0.0)) / jnp.maximum(jnp.sum(real), 1)
