"""Policies and critics used by the on-policy algorithms.

A policy is time-major: it takes (hidden [B, H], obs [T, B, D], ids, resets [T, B],
action_mask [T, B, A]) and returns (hidden, output [T, B, ...]); a feed-forward policy ignores
hidden and resets, so algorithms treat both kinds alike. B may be several axes (envs, agents).
Discrete policies output masked logits; continuous ones (mean, log_std) over padded action
dimensions, where the mask marks the agent's real dimensions.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.networks.heads import (
    CategoricalHead,
    GaussianHead,
    categorical_entropy,
    categorical_log_prob,
    gaussian_entropy,
    gaussian_log_prob,
)
from prism_marl.networks.plain import dense_stack
from prism_marl.networks.torso import ACTIVATIONS, GRUTorso, MLPTorso
from prism_marl.sharing.base import AgentIds, SharingStrategy
from prism_marl.sharing.grouped import agent_axis

ActionKind = Literal["discrete", "continuous"]


class AgentsFirst(NamedTuple):
    """Moves a trailing agent axis to the front for a network's body, and back.

    With static ids ``np.arange(N)`` on x [..., N, D], strategy layers already run agent-major
    products, but each layer then slices every agent's rows out of the interleaved batch. Moving
    the agent axis first once (x [N, ..., D], ids ``np.arange(N)[:, None, ...]``) makes every
    agent's block contiguous for all layers; only the input and the output are transposed.
    """

    ndim: int

    @classmethod
    def of(
        cls, strategy: SharingStrategy, x: jax.Array, agent_ids: AgentIds, num_agents: int
    ) -> AgentsFirst | None:
        """The transform, when agents' kernels differ and ``agent_ids`` enumerates x's axis -2."""
        if not strategy.per_agent_kernels:
            return None
        axis = agent_axis(x, agent_ids, num_agents)
        return cls(x.ndim) if axis is not None and axis == x.ndim - 2 and x.ndim > 2 else None

    def apply(self, *arrays: jax.Array) -> tuple[Any, ...]:
        """Each array [..., N, F] -> [N, ..., F], then the matching static ids."""
        ids = np.arange(arrays[0].shape[-2]).reshape(-1, *(1,) * (self.ndim - 2))
        return (*(jnp.moveaxis(a, -2, 0) for a in arrays), ids)

    def restore(self, output: Any) -> Any:
        """[N, ..., F] -> [..., N, F] for every array of the output of the input's rank."""

        def back(a: jax.Array) -> jax.Array:
            return jnp.moveaxis(a, 0, -2) if a.ndim == self.ndim else a

        return jax.tree_util.tree_map(back, output)


class Policy(nn.Module):
    """Per-agent policy from one sharing strategy: MLP or dense -> GRU torso, then a head."""

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    action_kind: ActionKind = "discrete"
    hidden_sizes: tuple[int, ...] = (64, 64)
    recurrent: bool = False
    activation: str = "relu"

    @property
    def hidden_size(self) -> int:
        """Size of the recurrent state (1 for a feed-forward policy, unused)."""
        return self.hidden_sizes[-1] if self.recurrent else 1

    @nn.compact
    def __call__(
        self,
        hidden: jax.Array,
        obs: jax.Array,
        agent_ids: AgentIds,
        resets: jax.Array,
        action_mask: jax.Array,
    ) -> tuple[jax.Array, Any]:
        """Return (next hidden, logits or (mean, log_std)), both time-major."""
        leading = None
        if self.recurrent:
            hidden, features = GRUTorso(
                self.strategy,
                self.num_agents,
                self.hidden_sizes[0],
                self.hidden_sizes[-1],
                self.activation,
                name="torso",
            )(hidden, obs, agent_ids, resets)
        else:
            leading = AgentsFirst.of(self.strategy, obs, agent_ids, self.num_agents)
            if leading is not None:
                obs, action_mask, agent_ids = leading.apply(obs, action_mask)
            features = MLPTorso(
                self.strategy, self.num_agents, self.hidden_sizes, self.activation, name="torso"
            )(obs, agent_ids)
        depth = 2 if self.recurrent else len(self.hidden_sizes)
        if self.action_kind == "discrete":
            output: Any = CategoricalHead(
                self.strategy, self.num_agents, self.num_actions, depth=depth, name="head"
            )(features, agent_ids, action_mask)
        else:
            output = GaussianHead(
                self.strategy, self.num_agents, self.num_actions, depth=depth, name="head"
            )(features, agent_ids)
        if leading is not None:
            output = leading.restore(output)
        return hidden, output


class AgentCritic(nn.Module):
    """Per-agent value V(o_i) built from the sharing strategy (IPPO): [..., D] -> [...]."""

    strategy: SharingStrategy
    num_agents: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs: jax.Array, agent_ids: AgentIds) -> jax.Array:
        """Values for each agent's observation."""
        leading = AgentsFirst.of(self.strategy, obs, agent_ids, self.num_agents)
        if leading is not None:
            obs, agent_ids = leading.apply(obs)
        features = MLPTorso(
            self.strategy, self.num_agents, self.hidden_sizes, self.activation, name="torso"
        )(obs, agent_ids)
        value = self.strategy.dense(
            1,
            self.num_agents,
            hidden=False,
            depth=len(self.hidden_sizes),
            kernel_init=nn.initializers.orthogonal(1.0),
            name="value",
        )(features, agent_ids)[..., 0]
        return value if leading is None else leading.restore(value[..., None])[..., 0]


class CentralCritic(nn.Module):
    """Centralised value V(s) on the global state (MAPPO): one plain network, [..., S] -> [...]."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, state: jax.Array) -> jax.Array:
        """Values of global states."""
        return dense_stack(
            state,
            self.hidden_sizes,
            1,
            ACTIVATIONS[self.activation],
            hidden_init=nn.initializers.orthogonal(jnp.sqrt(2.0)),
            output_init=nn.initializers.orthogonal(1.0),
        )[..., 0]


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
