"""Policy and value heads built from strategy layers, and the action distributions they define.

Axis glossary: B batch (any leading axes), H features, A actions.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from prism_marl.sharing.base import AgentIds, SharingStrategy

MASKED_LOGIT = -1e9


class CategoricalHead(nn.Module):
    """Logits [..., A] for a masked categorical policy; masked actions get ``MASKED_LOGIT``."""

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    depth: int = 2
    first_layer: bool = False
    scale: float = 0.01

    @nn.compact
    def __call__(
        self, features: jax.Array, agent_ids: AgentIds, action_mask: jax.Array | None = None
    ) -> jax.Array:
        """Features [..., H] (and mask [..., A], True = allowed) -> logits [..., A]."""
        logits = self.strategy.dense(
            self.num_actions,
            self.num_agents,
            hidden=False,
            depth=self.depth,
            agent_id_input=self.first_layer and self.strategy.agent_id_input,
            kernel_init=nn.initializers.orthogonal(self.scale),
            name="logits",
        )(features, agent_ids)
        if action_mask is None:
            return logits
        return jnp.where(action_mask, logits, MASKED_LOGIT)


class GaussianHead(nn.Module):
    """Mean [..., A] from a strategy layer and a state-independent log std [A].

    The log std is one shared vector (A numbers) for every strategy, so it does not change the
    comparison between strategies.
    """

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    depth: int = 2
    first_layer: bool = False
    init_log_std: float = -0.5

    @nn.compact
    def __call__(self, features: jax.Array, agent_ids: AgentIds) -> tuple[jax.Array, jax.Array]:
        """Features [..., H] -> (mean [..., A], log_std [..., A])."""
        mean = self.strategy.dense(
            self.num_actions,
            self.num_agents,
            hidden=False,
            depth=self.depth,
            agent_id_input=self.first_layer and self.strategy.agent_id_input,
            kernel_init=nn.initializers.orthogonal(0.01),
            name="mean",
        )(features, agent_ids)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.num_actions,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class DeterministicHead(nn.Module):
    """a = low + (tanh(layer(h)) + 1) / 2 · (high − low): actions inside the box [low, high]."""

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    low: float = -1.0
    high: float = 1.0
    depth: int = 2
    first_layer: bool = False

    @nn.compact
    def __call__(self, features: jax.Array, agent_ids: AgentIds) -> jax.Array:
        """Features [..., H] -> actions [..., A]."""
        pre = self.strategy.dense(
            self.num_actions,
            self.num_agents,
            hidden=False,
            depth=self.depth,
            agent_id_input=self.first_layer and self.strategy.agent_id_input,
            name="action",
        )(features, agent_ids)
        return self.low + (jnp.tanh(pre) + 1.0) * 0.5 * (self.high - self.low)


def categorical_log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """Log π(a) from logits [..., A] and integer actions [...]."""
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, actions[..., None].astype(jnp.int32), -1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """H(π) = −Σ_a π(a) log π(a), [...]; masked actions (π = 0) contribute 0."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.where(logits > MASKED_LOGIT / 2, jnp.exp(log_probs) * log_probs, 0.0), -1)


def gaussian_log_prob(
    mean: jax.Array, log_std: jax.Array, actions: jax.Array, mask: jax.Array | None = None
) -> jax.Array:
    """Σ_a log N(a; μ, σ²) over the last axis, [...].

    Dimensions where ``mask`` is False (padding of heterogeneous action sizes) are left out.
    """
    z = (actions - mean) * jnp.exp(-log_std)
    per_dim = -0.5 * jnp.square(z) - log_std - 0.5 * jnp.log(2 * jnp.pi)
    if mask is not None:
        per_dim = jnp.where(mask, per_dim, 0.0)
    return jnp.sum(per_dim, -1)


def gaussian_entropy(log_std: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Σ_a (log σ + ½ log 2πe) over the valid dimensions, [...]."""
    per_dim = log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)
    if mask is not None:
        per_dim = jnp.where(mask, per_dim, 0.0)
    return jnp.sum(per_dim, -1)
