"""Agents first: a network body's input relaid out so each agent's rows are contiguous.

Part of the speed boundary (``prism_marl.fast``): the networks' outputs are the same with or
without it (tests/networks), only the products' memory layout changes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.fast.grouped import agent_axis
from prism_marl.sharing.base import AgentIds, SharingStrategy


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
