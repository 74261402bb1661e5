"""Per-agent network bodies built only from strategy layers: an MLP and a GRU.

Every layer is ``strategy.dense(...)`` (or ``strategy.recurrent_dense`` for the GRU's recurrent
kernels), so a torso never branches on the strategy. The first layer receives the one-hot agent
id when the strategy asks for it. Axis glossary: T time, B batch (any leading axes), D features,
H hidden units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prism_marl.networks.gru import gru_unroll
from prism_marl.sharing.base import DEFAULT_KERNEL_INIT, AgentIds, Initializer, SharingStrategy

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "gelu": nn.gelu,
}


class MLPTorso(nn.Module):
    """x [..., D] -> [..., H_last]: (strategy layer, activation) per hidden size."""

    strategy: SharingStrategy
    num_agents: int
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    kernel_init: Initializer = DEFAULT_KERNEL_INIT

    @nn.compact
    def __call__(self, x: jax.Array, agent_ids: AgentIds) -> jax.Array:
        """Features for each agent's sample."""
        act = ACTIVATIONS[self.activation]
        for depth, width in enumerate(self.hidden_sizes):
            layer = self.strategy.dense(
                width,
                self.num_agents,
                depth=depth,
                agent_id_input=depth == 0 and self.strategy.agent_id_input,
                kernel_init=self.kernel_init,
                name=f"dense_{depth}",
            )
            x = act(layer(x, agent_ids))
        return x


class GRUCell(nn.Module):
    """The GRU's recurrent projection c = W_h h + b_h, one fused [H, 3H] strategy layer.

    ``strategy.recurrent_dense`` (per agent where the strategy shares no recurrent kernel).
    The gate arithmetic, with the input projections W_i x + b_i precomputed for every step,
    is ``gru.gru_step``; ``GRUTorso`` unrolls both with ``gru.gru_unroll``.
    """

    strategy: SharingStrategy
    num_agents: int
    hidden_size: int

    def setup(self) -> None:
        """The fused recurrent layer, named ``recurrent_kernels``."""
        self.recurrent_kernels = self.strategy.recurrent_dense(
            3 * self.hidden_size, self.num_agents, kernel_init=nn.initializers.orthogonal()
        )

    def __call__(self, hidden: jax.Array, agent_ids: AgentIds) -> jax.Array:
        """Hidden [..., H] -> c [..., 3H]."""
        return self.recurrent_kernels(hidden, agent_ids)


class GRUTorso(nn.Module):
    """Recurrent body over time: dense -> activation -> GRU, with hidden-state resets.

    Parameters: ``dense_0``, the GRU's ``input_kernels`` (applied to all steps before the
    scan) and ``gru/cell/recurrent_kernels``; with SNP, the buffer ``state_mask`` (per-agent
    GRU unit masks, ``strategy.recurrent_state_mask``).

    Called with x [T, B, D], agent_ids broadcastable to [T, B], resets [T, B] or a prefix of
    its axes (True where an episode starts, so the hidden state is zeroed before that step) and
    hidden [B, H]; B may be several axes.
    Returns (last hidden [B, H], features [T, B, H]).
    """

    strategy: SharingStrategy
    num_agents: int
    input_size: int = 64
    hidden_size: int = 64
    activation: str = "relu"
    kernel_init: Initializer = DEFAULT_KERNEL_INIT

    @nn.compact
    def __call__(
        self, hidden: jax.Array, x: jax.Array, agent_ids: AgentIds, resets: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Run the GRU over the time axis."""
        # Resets may omit trailing axes (e.g. [T, E] for [T, E, N] samples): one flag per env.
        resets = resets.reshape(resets.shape + (1,) * (x.ndim - 1 - resets.ndim))
        resets = jnp.broadcast_to(resets, x.shape[:-1])
        embedded = ACTIVATIONS[self.activation](
            self.strategy.dense(
                self.input_size,
                self.num_agents,
                depth=0,
                agent_id_input=self.strategy.agent_id_input,
                kernel_init=self.kernel_init,
                name="dense_0",
            )(x, agent_ids)
        )
        # One product over all T steps: per-agent kernels (Prism's W_i = U diag(s ⊙ m_i) Vᵀ,
        # NoPS's stacks) are then built once per unroll instead of once per step.
        from_input = self.strategy.recurrent_input_dense(
            3 * self.hidden_size, self.num_agents, depth=1, name="input_kernels"
        )(embedded, agent_ids)
        # SNP prunes GRU units as neurons: a per-agent mask on every step's new state.
        mask_layer = self.strategy.recurrent_state_mask(
            self.hidden_size, self.num_agents, name="state_mask"
        )
        state_mask = None if mask_layer is None else mask_layer(embedded, agent_ids)
        hiddens = _Unroll(self.strategy, self.num_agents, self.hidden_size, name="gru")(
            hidden, from_input, agent_ids, resets, state_mask
        )
        return hiddens[-1], hiddens

    def initial_hidden(self, batch_shape: tuple[int, ...]) -> jax.Array:
        """Zeros [*batch_shape, H]."""
        return jnp.zeros((*batch_shape, self.hidden_size))


class _Unroll(nn.Module):
    """The GRU over time (``gru.gru_unroll``) around the recurrent layer ``cell``."""

    strategy: SharingStrategy
    num_agents: int
    hidden_size: int

    @nn.compact
    def __call__(
        self,
        hidden: jax.Array,
        from_input: jax.Array,
        agent_ids: AgentIds,
        resets: jax.Array,
        state_mask: jax.Array | None = None,
    ) -> jax.Array:
        """Hidden [B, H], W_i x + b_i [T, B, 3H], ids, resets [T, B] -> hiddens [T, B, H].

        ``state_mask`` [T, B, H], if given, multiplies every step's new state.
        """
        cell = GRUCell(self.strategy, self.num_agents, self.hidden_size, name="cell")
        # Static ids (np.arange(N) along the agent axis) stay static inside the loops so that
        # the layer keeps its agent-major products; traced ids are scanned over time.
        static = isinstance(agent_ids, np.ndarray)
        ids: jax.Array | np.ndarray
        if static:
            ids = np.zeros(from_input.shape[0], np.int32)  # scanned, unread
        else:
            ids = jnp.broadcast_to(agent_ids, from_input.shape[:-1])
        if self.is_initializing():
            cell(hidden, agent_ids.ravel() if static else ids[0])
        recurrent, variables = cell.unbind()

        def layer(variables: Any, h: jax.Array, ids_t: Any) -> jax.Array:
            return jnp.asarray(
                recurrent.apply(variables, h, agent_ids.ravel() if static else ids_t)
            )

        return gru_unroll(layer, variables, from_input, ids, resets, hidden, state_mask)
