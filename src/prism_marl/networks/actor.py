"""Per-agent actors: a torso and a categorical head, all layers from one sharing strategy."""

from __future__ import annotations

import flax.linen as nn
import jax

from prism_marl.networks.heads import CategoricalHead
from prism_marl.networks.torso import GRUTorso, MLPTorso
from prism_marl.sharing.base import SharingStrategy


class MLPActor(nn.Module):
    """obs [..., D] -> logits [..., A] through an MLP torso (the paper's 2×64 actor by default)."""

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(
        self, obs: jax.Array, agent_ids: jax.Array, action_mask: jax.Array | None = None
    ) -> jax.Array:
        """Masked logits for each agent's observation."""
        features = MLPTorso(
            self.strategy, self.num_agents, self.hidden_sizes, self.activation, name="torso"
        )(obs, agent_ids)
        return CategoricalHead(
            self.strategy,
            self.num_agents,
            self.num_actions,
            depth=len(self.hidden_sizes),
            first_layer=not self.hidden_sizes,
            name="head",
        )(features, agent_ids, action_mask)


class RecurrentActor(nn.Module):
    """(hidden [B, H], obs [T, B, D], resets [T, B]) -> (hidden, logits [T, B, A])."""

    strategy: SharingStrategy
    num_agents: int
    num_actions: int
    input_size: int = 64
    hidden_size: int = 64
    activation: str = "relu"

    @nn.compact
    def __call__(
        self,
        hidden: jax.Array,
        obs: jax.Array,
        agent_ids: jax.Array,
        resets: jax.Array,
        action_mask: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Masked logits over a sequence."""
        hidden, features = GRUTorso(
            self.strategy,
            self.num_agents,
            self.input_size,
            self.hidden_size,
            self.activation,
            name="torso",
        )(hidden, obs, agent_ids, resets)
        logits = CategoricalHead(
            self.strategy, self.num_agents, self.num_actions, depth=2, name="head"
        )(features, agent_ids, action_mask)
        return hidden, logits
