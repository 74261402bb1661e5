"""The critics of the on-policy algorithms: per-agent values (IPPO) and a centralised one (MAPPO).

The policies they train are agent networks (``networks.agents.Policy``); the action
distributions of those policies are ``networks.actions``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from prism_marl.fast.layout import AgentsFirst
from prism_marl.networks.plain import dense_stack
from prism_marl.networks.torso import ACTIVATIONS, MLPTorso
from prism_marl.sharing.base import AgentIds, SharingStrategy


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
