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


class BatchLayout(NamedTuple):
    """Where a time-major rollout keeps its agent axis during an update's gradient steps.

    ``agents_first`` moves the agent axis of the per-agent fields from [T, E, N, ...] to
    [N, T, E, ...] once per update, so that no gradient step transposes its minibatch in and its
    outputs and gradients back (decision 0030). Off, every field stays [T, E, ...] and the
    update is the reference; the numbers agree up to rounding (tests/algos/test_ppo.py).
    """

    agents_first: bool

    @classmethod
    def of(cls, strategy: SharingStrategy, recurrent: bool) -> BatchLayout:
        """Agents first where agents' kernels differ and the network does not scan time first."""
        return cls(not recurrent and strategy.per_agent_kernels)

    def arrange(self, batch: Any, agent_fields: frozenset[str]) -> tuple[Any, dict[str, int]]:
        """The rollout (a NamedTuple) laid out, and each field's environment axis in it."""
        env_axes = dict.fromkeys(batch._fields, 1)  # [T, E, ...]
        if not self.agents_first:
            return batch, env_axes
        # In the batch's field order, not the set's (string hashes vary between processes), so
        # that one program lowers to the same text in every process.
        fields = [field for field in batch._fields if field in agent_fields]
        moved = {field: self.per_agent(getattr(batch, field)) for field in fields}
        env_axes.update(dict.fromkeys(fields, 2))  # [N, T, E, ...]
        return batch._replace(**moved), env_axes

    def per_agent(self, x: jax.Array) -> jax.Array:
        """A per-agent array [T, E, N, ...] in this layout."""
        return jnp.moveaxis(x, 2, 0) if self.agents_first else x

    def agent_ids(self, num_agents: int) -> np.ndarray:
        """Static ids ``arange(N)`` shaped to enumerate the layout's agent axis."""
        ids = np.arange(num_agents)
        return ids[:, None, None] if self.agents_first else ids

    def broadcast_shared(self, x: jax.Array, per_agent_shape: tuple[int, ...]) -> jax.Array:
        """A value shared by the agents ([T, E] batch) broadcast to a per-agent array's shape."""
        if x.ndim < len(per_agent_shape):
            x = x[None] if self.agents_first else x[..., None]
        return jnp.broadcast_to(x, per_agent_shape)
