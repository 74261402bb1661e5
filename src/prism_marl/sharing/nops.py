"""NoPS (no parameter sharing) and the grouped dense layer it shares with SePS.

A grouped layer holds G independent kernels and maps each agent to one group through a table;
NoPS is the identity table (G = N), SePS a clustering of agents (G = K). The table is static, or,
for SePS's clusters found per seed, a ``buffers`` leaf that differs between seeds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.fast.grouped import apply_group_kernels, is_identity, per_agent
from prism_marl.sharing.base import (
    AgentLayer,
    SharingStrategy,
    Variables,
    iter_named_leaves,
)


class GroupedDense(AgentLayer):
    """G independent dense layers; agent a uses group ``table[a]``.

    Parameters: kernel [G, D, O] (each group drawn independently), bias [G, O]. With
    ``table_in_buffers`` the table is the buffer ``group_of_agent`` [N] (int32), initialised
    from ``group_of_agent`` and replaced per seed (SePS's clusters), so that seeds vmapped
    through one program use different tables; G stays ``max(group_of_agent) + 1``.
    """

    group_of_agent: tuple[int, ...] = ()
    table_in_buffers: bool = False

    @property
    def num_groups(self) -> int:
        """G = number of distinct groups in the (initial) table."""
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
        table: tuple[int, ...] | jax.Array = self.group_of_agent
        if self.table_in_buffers:
            table = self.variable(
                "buffers", "group_of_agent", lambda: jnp.asarray(self.group_of_agent, jnp.int32)
            ).value
            agent_bias = bias[table]
        else:
            static = np.asarray(self.group_of_agent, np.int32)
            agent_bias = bias if is_identity(static, self.num_groups) else bias[static]
        return apply_group_kernels(x, kernel, ids, table) + per_agent(agent_bias, ids)

    def kernel_and_bias(self, variables: Variables, agent: int) -> tuple[jax.Array, jax.Array]:
        if self.table_in_buffers:
            group = variables["buffers"]["group_of_agent"][agent]
        else:
            group = self.group_of_agent[agent]
        params = variables["params"]
        return params["group_kernel"][group], params["group_bias"][group]


def extra_group_resource(variables: Variables, used_groups: int | None = None) -> int:
    """Numbers in every group beyond the first: (U − 1)/G of each grouped leaf.

    U = ``used_groups``, or G when None. SePS passes the clusters its table uses: a seed with
    fewer clusters than the program's G leaves the other groups as untrained padding.
    """
    total = 0
    for name, leaf in iter_named_leaves(variables):
        if name in ("group_kernel", "group_bias"):
            groups = leaf.shape[0]
            used = groups if used_groups is None else min(used_groups, groups)
            total += int(np.prod(leaf.shape)) // groups * (used - 1)
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
