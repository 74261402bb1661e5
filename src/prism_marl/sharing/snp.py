"""SNP: structured network pruning for parameter sharing (Kim & Sung, AAMAS 2023).

Each agent has a fixed random binary mask over every hidden layer's neurons, drawn once at
initialisation (mask[i, h] = 1[u > p], u ~ U(0, 1)) and applied to the pre-activation; masks live
in the ``buffers`` collection and are never trained. Output layers are not pruned. In a GRU the
units are the neurons: the GRU's state is masked at every step (``recurrent_state_mask``), so a
pruned unit's state stays zero, while its input and recurrent kernels stay plain shared layers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from prism_marl.errors import require
from prism_marl.fast.grouped import per_agent
from prism_marl.sharing.base import (
    AgentLayer,
    SharedDense,
    SharingStrategy,
    Variables,
)


class PrunedDense(SharedDense):
    """Shared dense layer whose output neurons are masked per agent (hidden layers only)."""

    prune_ratio: float = 0.3

    def output_mask(self, ids: jax.Array | None) -> jax.Array | None:
        """Agent masks per sample (``grouped.per_agent``); None for output layers."""
        if not self.hidden:
            return None

        def draw(key: jax.Array) -> jax.Array:
            uniform = jax.random.uniform(key, (self.num_agents, self.features))
            return (uniform > self.prune_ratio).astype(jax.numpy.float32)

        mask = self.variable("buffers", "neuron_mask", lambda: draw(self.make_rng("params")))
        return per_agent(mask.value, ids)

    def output_mask_for(self, variables: Variables, agent: int) -> jax.Array | None:
        if not self.hidden:
            return None
        return variables["buffers"]["neuron_mask"][agent]


class UnitMask(PrunedDense):
    """No kernel: its output is each sample's neuron mask, [..., D] -> [..., O] of 0/1.

    The GRU's state mask (``SNP.recurrent_state_mask``), laid out like any layer's output.
    """

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """Ones in the layout of the layer's output; ``output_mask`` then masks them."""
        del ids
        return jnp.ones((*x.shape[:-1], self.features), x.dtype)


@dataclasses.dataclass(frozen=True)
class SNP(SharingStrategy):
    """Shared network with a fixed random neuron-level mask per agent."""

    name = "snp"
    per_agent_kernels = False  # one shared kernel; only output masks differ
    layer_class = PrunedDense
    shared_recurrent_input = True  # GRU units are pruned through the state, not the gates

    prune_ratio: float = 0.3
    """p: probability that a hidden neuron is pruned for an agent."""

    def __post_init__(self) -> None:
        require(
            0.0 <= self.prune_ratio < 1.0,
            "sharing.prune-ratio",
            f"must be in [0, 1), got {self.prune_ratio}",
        )

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """The pruning probability p (see ``SharingStrategy.layer_fields``)."""
        del num_agents
        return {"prune_ratio": self.prune_ratio}

    def recurrent_state_mask(
        self, hidden_size: int, num_agents: int, *, name: str | None = None
    ) -> AgentLayer | None:
        """Per-agent masks on the GRU's H units, drawn like a hidden layer's (``UnitMask``)."""
        return UnitMask(
            features=hidden_size, num_agents=num_agents, prune_ratio=self.prune_ratio, name=name
        )

    def per_agent_leaves(self) -> tuple[str, ...]:
        """Neuron masks (d_out numbers per agent and hidden layer) and any agent-id weights."""
        return ("neuron_mask", *super().per_agent_leaves())
