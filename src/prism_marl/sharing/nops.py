"""NoPS (no parameter sharing) and the grouped dense layer it shares with SePS.

A grouped layer holds G independent kernels and maps each agent to one group through a static
table; NoPS is the identity table (G = N), SePS a clustering of agents (G = K).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from prism_marl.sharing.base import (
    AgentLayer,
    SharingStrategy,
    Variables,
    iter_named_leaves,
)
from prism_marl.sharing.grouped import apply_group_kernels, per_agent


class GroupedDense(AgentLayer):
    """G independent dense layers; agent a uses group ``group_of_agent[a]``.

    Parameters: kernel [G, D, O] (each group drawn independently), bias [G, O].
    """

    group_of_agent: tuple[int, ...] = ()

    @property
    def num_groups(self) -> int:
        """G = number of distinct groups in the table."""
        return max(self.group_of_agent) + 1

    def project(self, x: jax.Array, ids: jax.Array | None) -> jax.Array:
        """X [B, D] -> [B, O] (or [B, N, D] -> [B, N, O]) with each sample's group kernel."""
        shape = (self.num_groups, x.shape[-1], self.features)

        def kernel_init(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
            # One group at a time, not vmapped: a batched QR (orthogonal init) can deadlock
            # XLA's CPU pool (docs/decisions/0014-no-batched-lapack.md).
            keys = jax.random.split(key, shape[0])
            return jax.lax.map(lambda k: self.kernel_init(k, shape[1:]), keys)

        kernel = self.param("group_kernel", kernel_init, shape)
        bias = self.param("group_bias", self.bias_init, (self.num_groups, self.features))
        table = np.asarray(self.group_of_agent, np.int32)
        agent_bias = bias if np.array_equal(table, np.arange(len(table))) else bias[table]
        return apply_group_kernels(x, kernel, ids, self.group_of_agent) + per_agent(agent_bias, ids)

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        group = self.group_of_agent[agent]
        params = variables["params"]
        return params["group_kernel"][group], params["group_bias"][group]


def extra_group_resource(variables: Variables) -> int:
    """Numbers in every group beyond the first: (G − 1)/G of each grouped leaf."""
    total = 0
    for name, leaf in iter_named_leaves(variables):
        if name in ("group_kernel", "group_bias"):
            size = int(np.prod(leaf.shape))
            total += size - size // leaf.shape[0]
    return total


@dataclasses.dataclass(frozen=True)
class NoPS(SharingStrategy):
    """No sharing: every agent has its own network, recurrent kernels included."""

    name = "nops"
    layer_class = GroupedDense

    def layer_fields(self, num_agents: int) -> dict[str, Any]:
        """The identity agent -> group table: one network per agent."""
        return {"group_of_agent": tuple(range(num_agents))}

    @property
    def shared_recurrent(self) -> bool:
        """False: nothing is shared under NoPS, recurrent kernels included."""
        return False

    def additional_resource(self, variables: Variables, num_agents: int) -> int:
        """Every network beyond the first (method.md §3), plus any agent-id weights."""
        return extra_group_resource(variables) + super().additional_resource(variables, num_agents)
