"""The agent networks: every network that acts for an agent, built only from strategy layers.

One definition each, used by the algorithms that train them and by ``resources`` that counts
them (the paper's Figures 4 and 5):

- ``Policy``: MLP or dense -> GRU torso, then a categorical or Gaussian head (MAPPO, IPPO);
- ``AgentQNetwork``: dense -> GRU -> Q per action (QMIX, VDN);
- ``DeterministicActor``: MLP torso, then a tanh-squashed deterministic head (MATD3).

Axis glossary: T time, B batch (any number of axes: envs, agents), N agents, D observation
features, A actions (or padded action dimensions), H recurrent state.
"""

from __future__ import annotations

from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

from prism_marl.fast.layout import AgentsFirst
from prism_marl.networks.heads import CategoricalHead, DeterministicHead, GaussianHead
from prism_marl.networks.torso import GRUTorso, MLPTorso
from prism_marl.sharing.base import AgentIds, SharingStrategy

ActionKind = Literal["discrete", "continuous"]


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
        # Without hidden layers the head is the first layer: it takes the agent id input.
        first_layer = not self.recurrent and not self.hidden_sizes
        discrete = self.action_kind == "discrete"
        head: Any = (CategoricalHead if discrete else GaussianHead)(
            self.strategy,
            self.num_agents,
            self.num_actions,
            depth=depth,
            first_layer=first_layer,
            name="head",
        )
        output = head(features, agent_ids, action_mask) if discrete else head(features, agent_ids)
        if leading is not None:
            output = leading.restore(output)
        return hidden, output


class AgentQNetwork(nn.Module):
    """Per-agent recurrent Q-network from the sharing strategy: dense -> GRU -> dense -> Q [A].

    Time-major: (hidden [B, H], obs [T, B, D], ids, resets [T, B], mask [T, B, A]) ->
    (hidden after every step [T, B, H], Q [T, B, A] with invalid actions at a large negative
    value); B may be several axes (sequences, agents).
    """

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    hidden_size: int = 64

    @nn.compact
    def __call__(
        self,
        hidden: jax.Array,
        obs: jax.Array,
        agent_ids: Any,
        resets: jax.Array,
        action_mask: jax.Array,
    ) -> tuple[jax.Array, jax.Array]:
        """Hidden states and Q-values over the time axis."""
        _, hiddens = GRUTorso(
            self.strategy,
            self.num_agents,
            self.hidden_size,
            self.hidden_size,
            name="torso",
        )(hidden, obs, agent_ids, resets)
        q_values = CategoricalHead(
            self.strategy, self.num_agents, self.num_actions, depth=2, scale=0.01, name="head"
        )(hiddens, agent_ids, action_mask)
        return hiddens, q_values


class DeterministicActor(nn.Module):
    """μ_i(o_i) for every agent from one sharing strategy: obs [..., N, D] -> [..., N, A].

    Actions lie in [low, high] on the agent's real dimensions and are 0 on padded ones.
    """

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    low: float = -1.0
    high: float = 1.0

    @nn.compact
    def __call__(self, obs: jax.Array, agent_ids: AgentIds, action_mask: jax.Array) -> jax.Array:
        """Actions of every agent."""
        leading = AgentsFirst.of(self.strategy, obs, agent_ids, self.num_agents)
        if leading is not None:
            obs, agent_ids = leading.apply(obs)
        features = MLPTorso(
            self.strategy, self.num_agents, self.hidden_sizes, self.activation, name="torso"
        )(obs, agent_ids)
        action = DeterministicHead(
            self.strategy,
            self.num_agents,
            self.num_actions,
            self.low,
            self.high,
            depth=len(self.hidden_sizes),
            name="head",
        )(features, agent_ids)
        if leading is not None:
            action = leading.restore(action)
        return jnp.where(action_mask, action, 0.0)
